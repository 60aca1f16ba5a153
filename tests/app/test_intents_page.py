"""Intents page: empty databases, browsing the tiny curated world (search, paging, sorting),
the detail of one intent on the hand-made world of tests/test_intents.py (every teacher output
readable and rendered on click, the per-tool ground truth in words, exports per request, "-"
for empty values), and search by meaning with the bundled all-MiniLM-L6-v2 and the map (a
lasso sent to the label queue and to augmentation)."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import numpy as np
import pytest

from pipelines import curate, ingest, meaning
from pipelines.label_queue import QueueReason
from tests.conftest import curated_store, make_record
from tests.test_intents import intent_world
from tests.test_meaning import GREYS, OTHERS, grey_world
from workbench.app import jobs
from workbench.app.meaning_search import map_figure
from workbench.app.state import LABEL_SELECTION_KEY, SOURCES_KEY, SOURCES_VERSION_KEY
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
    assert len(_table(at)) == 3 and set(_table(at)["split"]) == {"-"}
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
    numbers = ["exports per request", "exports", "requests", "candidates"]
    assert choice.loc["Adjust", "ground truth"] == "temperature +50"
    assert list(choice.loc["Adjust", numbers]) == ["1.00", "1", "1", "2"]
    assert choice.loc["Filter", "ground truth"] == "warm_Golden @ 40"
    assert list(choice.loc["Filter", numbers]) == ["1.00", "2", "2", "2"]
    assert choice.loc["Selective Adjust", "ground truth"] == "not used"
    assert any("Ties go to the output seen in more requests, then to the one seen latest"
               in caption.value for caption in at.caption)
    adjust = at.dataframe[2].value   # the adjust tab's candidates, ranked
    assert list(adjust["output"]) == ["temperature +50", "temperature +30"]
    assert list(adjust["ground truth"]) == ["✓", "-"]
    headings = [md.value for md in at.markdown if md.value.startswith("**Output ")]
    assert headings == [   # (B, no filter) 2 requests seen latest, then (A, F) 2 requests
        "**Output 1** · 2 requests, 1 with an export · ground truth for Adjust, Selective Adjust",
        "**Output 2** · 2 requests, 2 with an export · ground truth for Selective Adjust, Filter"]
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


# ------------------------------------------------------------------------------ the detail

def _open(at, key: str):
    at.selectbox(key="intents_open").set_value(key).run()
    assert not at.exception
    return at


def test_every_teacher_output_is_readable_and_renders_on_click(page, tmp_path: Path) -> None:
    at = _open(page("intents", intent_world(tmp_path).path).run(), "golden hour")
    # One block per output with its parameters per tool in a table that wraps (st.table), so
    # nothing is cut off or scrolls sideways; its cells are Markdown, escaped.
    first, second = (table.value.map(_unescape) for table in at.table)
    assert at.table[1].value.loc["Filter", "parameters"] == r"warm\_Golden @ 40"
    assert list(first.index) == ["Adjust", "Selective Adjust", "Filter"]
    assert list(first.columns) == ["parameters", "exports", "exports per request",
                                   "ground truth"]
    assert list(first["parameters"]) == ["temperature +50", "not used", "not used"]
    assert list(second["parameters"]) == ["temperature +30", "not used", "warm_Golden @ 40"]
    assert list(second["exports per request"]) == ["0.50", "0.00", "1.00"]
    chooser = at.radio(key="intents_render_output")
    assert chooser.options == ["output 1", "output 2"]
    strip = next(image for image in at.image
                 if image.captions == ["original and teacher output 1"])
    chooser.set_value(2).run()       # a click on "output 2" renders that one instead
    assert not at.exception
    second_strip = next(image for image in at.image
                        if image.captions == ["original and teacher output 2"])
    assert second_strip.proto.imgs[0].url != strip.proto.imgs[0].url


def test_per_tool_ground_truth_is_explained_in_words(page, tmp_path: Path) -> None:
    at = _open(page("intents", intent_world(tmp_path).path).run(), "golden hour")
    said = next(md.value for md in at.markdown if md.value.startswith("Each tool's"))
    assert "chosen **on its own**, by that tool's exports" in said
    assert "never produced as a whole" in said
    # golden hour's ground truth (adjust +50, filter warm_Golden) was never one answer.
    assert "**That is the case here**" in said
    assert ("(Adjust from output 1; Selective Adjust from output 1 or 2; Filter from output 2)"
            in said)
    at = _open(at, "cool morning")   # its ground truth is output 1 exactly
    said = next(md.value for md in at.markdown if md.value.startswith("Each tool's"))
    assert "Here it did: teacher output 1 below is this ground truth as a whole." in said
    assert "That is the case here" not in said


def _help(dataframe, column: str) -> str | None:
    config = json.loads(dataframe.proto.columns)
    return config.get(column, {}).get("help")


def test_exports_above_requests_read_as_exports_per_request_with_the_definition(
        page, tmp_path: Path) -> None:
    # 3 requests of one output, its adjust exported 2 + 1 + 1 = 4 times: 1.33 per request.
    logs = tmp_path / "logs.jsonl"
    logs.write_text("".join(json.dumps(make_record(
        request_id=f"r{i}", intent="rainy day", created_at=f"2024-01-0{i + 1}T10:00:00Z",
        exports={"adjust": n, "selective_adjust": 0, "filter": 1})) + "\n"
        for i, n in enumerate((2, 1, 1))) + json.dumps(make_record(request_id="s")) + "\n")
    store = Store(tmp_path / "w.duckdb")
    ingest.ingest_file(logs, store)
    curate.run(curate.CurateConfig(test_size=1, seed=0), store)
    at = _open(page("intents", store.path).run(), "rainy day")
    truth = at.dataframe[1]
    assert truth.value.set_index("tool").loc["Adjust", "exports per request"] == "1.33"
    assert "export rate" not in truth.value.columns
    candidates = at.dataframe[2].value
    assert candidates.loc[0, "exports per request"] == pytest.approx(4 / 3)
    assert _unescape(at.table[0].value.loc["Adjust", "exports per request"]) == "1.33"
    for frame in (truth, at.dataframe[2]):    # the definition is one hover away
        assert "4 exports from 3 requests is 1.33" in _help(frame, "exports per request")
    rate = next(m for m in at.metric if m.label == "Export rate")
    assert rate.value == "1.00" and "at most 1" in rate.proto.help


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _cells(at) -> list:
    tables = [table.value.map(_unescape) for table in at.table]
    return [value for frame in [*(d.value for d in at.dataframe), *tables]
            for value in frame.reset_index().to_numpy().ravel()]


def _empty(value) -> bool:
    return value is None or value == "None" or (isinstance(value, float) and math.isnan(value))


@pytest.mark.parametrize("intent", ["golden hour", "golden gate fog"])
def test_empty_values_show_a_dash_never_none(page, tmp_path: Path, intent: str) -> None:
    # golden gate fog is outside the version and was never exported (no export rate per tool);
    # golden hour has a curation label with no note and no label it was edited from.
    at = _open(page("intents", intent_world(tmp_path).path).run(), intent)
    cells = _cells(at)
    assert cells and not [value for value in cells if _empty(value)]
    assert "-" in cells


# ------------------------------------------------------------------------------ by meaning

@pytest.fixture(scope="module")
def grey_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """b&w, monochrome and black-and-white intents among others, embedded with the bundled
    all-MiniLM-L6-v2 (HF_HUB_OFFLINE=1: nothing else could load)."""
    store = grey_world(tmp_path_factory.mktemp("grey"))
    meaning.run(meaning.EmbedIntentsConfig(), store)
    return store.path


def _meaning(at):
    at.radio(key="intents_mode").set_value("meaning").run()
    assert not at.exception
    return at


def test_search_by_meaning_finds_b_and_w_and_monochrome_for_black_and_white(
        page, grey_db: Path) -> None:
    at = _meaning(page("intents", grey_db, timeout=180).run())
    assert any(f"All {len(GREYS) + len(OTHERS)} intents have an embedding" in c.value
               for c in at.caption)
    at.text_input(key="intents_meaning_query").input("black and white").run()
    assert not at.exception and not at.error
    found = at.dataframe[0].value
    assert list(found.columns) == ["intent", "similarity", "requests", "export rate", "split",
                                   "ground truth uses"]
    top = list(found["intent"][:5])
    assert any("monochrome" in text or "b&w" in text for text in top)
    assert list(found["similarity"]) == sorted(found["similarity"], reverse=True)
    assert 0.5 < found["similarity"][0] <= 1.0
    # A click on a result opens it below.
    at.session_state["intents_meaning_table"] = {"selection": {"rows": [0], "columns": [],
                                                               "cells": []}}
    at.run()
    assert at.selectbox(key="intents_open").value == found["intent"][0]
    assert at.code[0].value == found["intent"][0]


def test_a_lasso_on_the_map_goes_to_the_label_queue_and_to_augmentation(
        page, grey_db: Path) -> None:
    at = _meaning(page("intents", grey_db, timeout=180).run())
    assert any("Each dot is an intent (all 18 with an embedding)" in c.value for c in at.caption)
    # A lasso around the first three points of the first trace (what the chart sends back).
    at.session_state["intents_map"] = {"selection": {
        "points": [{"curve_number": 0, "point_index": i} for i in range(3)],
        "point_indices": [0, 1, 2], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert any(md.value == "**3 intents selected on the map**" for md in at.markdown)
    picked = list(at.dataframe[-1].value["intent"])
    at.button(key="intents_map_to_labels").click().run()
    sent = at.session_state[LABEL_SELECTION_KEY]
    assert len(sent) == 3 and any("label queue" in s.body for s in at.success)
    at.button(key="intents_map_to_augmentation").click().run()
    train = [key for key in sent if key in at.session_state[SOURCES_KEY]]
    assert train == at.session_state[SOURCES_KEY] and at.session_state[SOURCES_VERSION_KEY] == 1
    assert len(picked) == 3


def test_the_label_queue_serves_the_map_selection(page, grey_db: Path) -> None:
    at = page("labels", grey_db)
    at.session_state[LABEL_SELECTION_KEY] = ["sepia tone", "b&w vibes"]
    at.session_state["curator"] = "ana"
    at.run()
    at.selectbox(key="labels_reason").set_value(QueueReason.SELECTED).run()
    assert not at.exception
    assert at.code[0].value == "sepia tone"          # first picked, first served
    assert any("selected on the map" in md.value for md in at.markdown)


def test_the_map_colours_by_tool_use_or_by_an_evaluations_cosine_gap() -> None:
    vectors = np.eye(4, dtype=np.float32)
    index = meaning.IntentIndex("m", ["a", "b", "c", "d"], ["A", "B", "C", "D"], vectors,
                                (4, 4))
    drawn = meaning.intent_map(index)
    figure, keys = map_figure(drawn, {"a": "Adjust"}, {"b": 0.4, "d": 0.1}, index,
                              [meaning.Match("c", "C", 0.9)], 1)
    assert [trace.name for trace in figure.data] == ["not in the evaluation", "cosine gap",
                                                     "search results"]
    assert keys == [["a", "c"], ["b", "d"], ["c"]]
    assert list(figure.data[1].marker.color) == [0.4, 0.1]
    figure, keys = map_figure(drawn, {"a": "Adjust", "b": "Adjust", "c": "no tool"}, None,
                              index, [], 1)
    assert [trace.name for trace in figure.data] == ["not in version 1", "Adjust", "no tool"]
    assert keys == [["d"], ["a", "b"], ["c"]]


def test_without_embeddings_a_background_job_embeds_the_intents(page, tmp_path: Path) -> None:
    store = curated_store(tmp_path)               # 18 intents, none embedded
    at = _meaning(page("intents", store.path, timeout=180).run())
    assert any("18 of 18 intents have no embedding yet" in i.body for i in at.info)
    at.button(key="intents_embed").click().run()
    assert not at.exception
    job_id = at.session_state["intents_embed_job"]
    deadline = time.monotonic() + 300
    while not (job := jobs.load_job(store.path, job_id)).finished:
        assert time.monotonic() < deadline, job.log_tail()
        time.sleep(1)
    assert job.status is jobs.JobStatus.SUCCEEDED, job.log_tail()
    assert job.result["n_embedded"] == 18
    at.run()
    assert any("All 18 intents have an embedding" in c.value for c in at.caption)
