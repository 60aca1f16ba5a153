"""Errors page, Slices section: on a mining evaluation in which the student gets every "cold blue
winter" training intent wrong (the opposite temperature, a warm filter) and every other one right,
the slices table puts that look's slice first and flags it; opening it lists its intents; sending
it hands its intents to the Augmentation page."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.app.test_errors_page import shared_world
from tests.conftest import LOOKS
from workbench.store import Store
from workbench.store.versions import Split, version_rows
from workbench.tools import answer_from_json, parse_answer

COLD = "cold blue winter"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return shared_world(tmp_path_factory)


@pytest.fixture
def db(world, tmp_path: Path) -> Path:
    """The shared world plus a hand-made mining evaluation (the newest, so the page's default)."""
    from pipelines import evaluate

    path = tmp_path / "w.duckdb"
    shutil.copy(world[0], path)
    store = Store(path)
    with store.session() as session:
        rows = version_rows(session, 1, Split.TRAIN)

    def answer(row: dict) -> Any:
        truth = answer_from_json(row["adjust"], row["selective_adjust"], row["filter"])
        if COLD not in row["intent_text"]:
            return truth
        return parse_answer({"adjust": {"temperature": 40},
                             "filter": {"name": "warm_Golden", "intensity": 50}})

    samples = [evaluate.Sample(row["intent_key"], row["intent_key"], row["request_count"],
                               answer_from_json(row["adjust"], row["selective_adjust"],
                                                row["filter"]), answer(row)) for row in rows]
    with store.atomic() as session:
        evaluate.evaluate_samples(session, samples, evaluate.EvaluationKind.MINING,
                                  world[1]["run_id"], 1, Split.TRAIN)
    return path


def slices_table(at: Any) -> Any:
    return next(frame.value for frame in at.dataframe if "top words" in frame.value)


def test_the_slices_table_puts_the_wrong_look_first(page, db: Path, world) -> None:
    at = page("errors", db)
    at.session_state["errors_kind"] = "mining"
    at.run()
    assert not at.exception
    table = slices_table(at)
    # 15 training intents: k = round(sqrt(7.5)) = 3 slices, one per look.
    assert list(table["#"]) == [1, 2, 3]
    assert sorted(table["size"]) == sorted(
        sum(look in row["intent_text"] for row in world[1]["train"]) for look in LOOKS)
    first = table.iloc[0]
    cold = sum(COLD in row["intent_text"] for row in world[1]["train"])
    # The cold slice: adjust quality -1 and no right filter, so both finals are 0.
    assert (first["size"], first["Overall"], bool(first["flagged"])) == (cold, 0.0, True)
    assert first["top words"].split(", ")[:3] == ["blue", "cold", "winter"]
    assert first["paper flags"] == cold
    assert all(COLD in text for text in first["examples"].split(" · "))
    assert len(first["examples"].split(" · ")) == 5
    assert list(table["Overall"][1:]) == [1.0, 1.0] and not table["flagged"][1:].any()
    # The student: adjust quality (n - 2c) / n, filter (n - c) / n over n = 15, c = cold.
    n = 15
    adjust, filter_ = (n - 2 * cold) / n, (n - cold) / n
    overall = (2 * adjust / (1 + adjust) + 2 * filter_ / (1 + filter_)) / 2
    caption = next(c.value for c in at.caption if "slices (k-means" in c.value)
    assert f"{overall:.2f}".lstrip("0") in caption and "1 slice(s)" in caption


def test_a_slice_opens_and_goes_to_augmentation(page, db: Path, world) -> None:
    at = page("errors", db)
    at.session_state["errors_kind"] = "mining"
    at.session_state["errors_slice"] = 1
    at.run()
    assert not at.exception
    intents = next(frame.value for frame in at.dataframe if "loss" in frame.value)
    cold = [row for row in world[1]["train"] if COLD in row["intent_text"]]
    assert sorted(intents["intent"]) == sorted(row["intent_text"] for row in cold)
    # Opposite adjust (loss 1) and a wrong filter (1); selective adjust unused (0): 2/3 each.
    assert list(intents["loss"]) == pytest.approx([2 / 3] * len(cold))
    assert set(intents["filter"]) == {"wrong name"} and set(intents["adjust cosine"]) == {-1.0}
    at.button(key="errors_slice_send").click().run()
    assert sorted(at.session_state["augmentation_sources"]) == sorted(
        row["intent_key"] for row in cold)
    assert at.session_state["augmentation_sources_version"] == 1
    assert any("slice 1" in s.body for s in at.success)
    at.button(key="errors_slice_add").click().run()
    assert sorted(at.session_state["errors_send_selection"]) == sorted(
        row["intent_key"] for row in cold)


def test_more_slices_and_a_larger_gap(page, db: Path) -> None:
    at = page("errors", db)
    at.session_state["errors_kind"] = "mining"
    at.run()
    at.number_input(key="errors_slices_k").set_value(5).run()
    assert not at.exception
    assert len(slices_table(at)) == 5
    at.number_input(key="errors_slices_gap").set_value(1.0).run()
    assert not slices_table(at)["flagged"].any()      # nothing is a whole 1.0 below .6
    at.number_input(key="errors_slices_k").set_value(1).run()
    assert "at least 2 clusters" in at.warning[0].body


def test_a_test_split_evaluation_points_to_the_mining_one(page, db: Path) -> None:
    at = page("errors", db).run()
    assert not at.exception
    assert any("choose *Training split (mining)*" in c.value for c in at.caption)
    assert not any("top words" in frame.value for frame in at.dataframe)
