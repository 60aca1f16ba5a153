"""Intents page: empty databases, browsing the tiny curated world (search, paging, sorting),
and the detail of one intent on the hand-made world of tests/test_intents.py."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines import curate, ingest
from tests.conftest import curated_store, make_record
from tests.test_intents import intent_world
from workbench.store import Store


def _table(at):  # the intents table is the page's first dataframe
    return at.dataframe[0].value


def test_without_a_database_it_says_how_to_make_one(page, tmp_path: Path) -> None:
    at = page("intents", tmp_path / "none.duckdb").run()
    assert not at.exception
    assert "workbench demo" in at.info[0].body


def test_an_empty_database_says_to_ingest(page, tmp_path: Path) -> None:
    store = Store(tmp_path / "empty.duckdb")
    with store.session(create=True):
        pass
    at = page("intents", store.path).run()
    assert not at.exception
    assert "workbench ingest" in at.info[0].body and not at.dataframe


def test_logs_without_a_version_are_browsable_and_say_how_to_curate(page,
                                                                   tmp_path: Path) -> None:
    logs = tmp_path / "logs.jsonl"
    logs.write_text("".join(json.dumps(make_record(request_id=f"r{i}", intent=f"look {i}"))
                            + "\n" for i in range(3)))
    store = Store(tmp_path / "w.duckdb")
    ingest.ingest_file(logs, store)
    at = page("intents", store.path).run()
    assert not at.exception
    assert "workbench curate" in at.info[0].body
    assert len(_table(at)) == 3 and set(_table(at)["split"]) == {"—"}
    assert at.selectbox(key="intents_split").disabled


def test_search_filters_the_table_and_shows_the_total(page, tmp_path: Path) -> None:
    store = curated_store(tmp_path)   # 18 intents: 3 looks x 6 phrasings, 1 request each
    at = page("intents", store.path).run()
    assert not at.exception and not at.warning   # hand-made data: not labelled synthetic
    assert len(_table(at)) == 18
    assert "**18** intents match" in at.caption[0].value
    at.text_input(key="intents_search").input("NOIR").run()
    assert list(_table(at)["intent"]) == sorted(p + "black and white noir" for p in
                                                ("", "very ", "soft ", "a ", "make it ",
                                                 "give me "))
    assert "**6** intents match" in at.caption[0].value
    at.text_input(key="intents_search").input("sepia").run()
    assert len(_table(at)) == 0 and "**0** intents match" in at.caption[0].value


def test_paging_moves_through_the_matches(page, tmp_path: Path) -> None:
    store = curated_store(tmp_path)
    at = page("intents", store.path).run()
    at.selectbox(key="intents_sort").set_value(at.selectbox(key="intents_sort").options[3])
    at.selectbox(key="intents_page_size").set_value(10).run()   # sorted A to Z, 10 a page
    first = list(_table(at)["intent"])
    assert len(first) == 10 and first == sorted(first)
    assert at.number_input(key="intents_page").label == "Page (of 2)"
    at.number_input(key="intents_page").set_value(2).run()
    second = list(_table(at)["intent"])
    assert len(second) == 8 and first[-1] < second[0]
    assert "showing 11 to 18" in at.caption[0].value
    at.checkbox(key="intents_reverse").check().run()   # a new order starts again at page 1
    assert at.number_input(key="intents_page").value == 1
    assert list(_table(at)["intent"]) == sorted(first + second, reverse=True)[:10]


def test_split_and_tool_filters(page, tmp_path: Path) -> None:
    store = curated_store(tmp_path)   # 3 test intents; every ground truth uses adjust and filter
    at = page("intents", store.path).run()
    at.selectbox(key="intents_split").set_value(at.selectbox(key="intents_split").options[2])
    at.run()
    assert set(_table(at)["split"]) == {"test"} and len(_table(at)) == 3
    at.selectbox(key="intents_split").set_value(at.selectbox(key="intents_split").options[0])
    at.selectbox(key="intents_tool_filter").set_value(
        at.selectbox(key="intents_tool_filter").options[2]).run()   # filter: not used
    assert len(_table(at)) == 0
    at.selectbox(key="intents_tool_filter").set_value(
        at.selectbox(key="intents_tool_filter").options[1]).run()   # filter: used
    assert len(_table(at)) == 18 and set(_table(at)["ground truth uses"]) == {"Adjust, Filter"}


def test_the_detail_shows_the_ground_truth_choice_and_why(page, tmp_path: Path) -> None:
    store = intent_world(tmp_path)
    at = page("intents", store.path).run()
    assert not at.exception
    opener = at.selectbox(key="intents_open")
    assert opener.options == ["—", "golden hour", "cool morning", "Golden Gate fog"]
    opener.set_value("golden hour").run()
    assert not at.exception
    assert at.code[0].value == "golden hour"
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Requests"], metrics["Exported requests"], metrics["Export rate"]) \
        == ("4", "3", "0.75")
    assert any(md.value == "Dataset version **1**, **train** split." for md in at.markdown)
    choice = at.dataframe[1].value.set_index("tool")   # after the intents table
    assert choice.loc["Adjust", "ground truth"] == "temperature +50"
    assert list(choice.loc["Adjust", ["export rate", "exports", "requests", "candidates"]]) \
        == [1.0, 1, 1, 2]
    assert choice.loc["Filter", "ground truth"] == "warm_Golden @ 40"
    assert list(choice.loc["Filter", ["export rate", "exports", "requests", "candidates"]]) \
        == [1.0, 2, 2, 2]
    assert choice.loc["Selective Adjust", "ground truth"] == "not used"
    assert any("Ties go to the output seen in more requests, then to the one seen latest"
               in caption.value for caption in at.caption)
    adjust = at.dataframe[2].value   # the adjust tab's candidates, ranked
    assert list(adjust["output"]) == ["temperature +50", "temperature +30"]
    assert list(adjust["ground truth"]) == ["✓", ""]
    outputs = at.dataframe[5].value
    assert list(outputs["requests"]) == [2, 2] and list(outputs["exported requests"]) == [1, 2]
    assert at.selectbox(key="intent_editor.photo").value == "astronaut"
    captions = [caption for image in at.image for caption in image.captions]
    assert "current ground truth" in captions and "after: your edit" in captions   # the editor


def test_an_intent_outside_the_version_has_no_ground_truth(page, tmp_path: Path) -> None:
    store = intent_world(tmp_path)
    at = page("intents", store.path).run()
    at.selectbox(key="intents_open").set_value("golden gate fog").run()
    assert not at.exception
    assert any("Not in dataset version 1" in info.body for info in at.info)
    captions = [caption for image in at.image for caption in image.captions]
    assert "current ground truth" not in captions and "no ground truth" in captions


def test_clicking_a_row_opens_that_intent(page, tmp_path: Path) -> None:
    store = intent_world(tmp_path)
    at = page("intents", store.path).run()
    at.session_state["intents_table"] = {"selection": {"rows": [1], "columns": [],
                                                       "cells": []}}
    at.run()
    assert not at.exception
    assert at.selectbox(key="intents_open").value == "cool morning"
    assert at.code[0].value == "cool morning"


def test_user_text_is_shown_escaped_and_the_demo_is_labelled_synthetic(page,
                                                                      tmp_path: Path) -> None:
    sneaky = "**bold** <b>x</b> [link](http://example.com)"
    logs = tmp_path / "synthetic-demo-logs.jsonl"   # the demo's file name marks it synthetic
    logs.write_text("".join(json.dumps(make_record(request_id=f"r{i}", intent=text)) + "\n"
                            for i, text in enumerate([sneaky, "plain look", "other look"])))
    store = Store(tmp_path / "w.duckdb")
    ingest.ingest_file(logs, store)
    curate.run(curate.CurateConfig(test_size=1, seed=0), store)
    at = page("intents", store.path).run()
    assert "synthetic" in at.warning[0].body
    at.selectbox(key="intents_open").set_value(sneaky.lower()).run()
    assert not at.exception
    assert at.code[0].value == sneaky   # shown as text, as typed
    assert not any("example.com" in md.value for md in [*at.markdown, *at.caption])
