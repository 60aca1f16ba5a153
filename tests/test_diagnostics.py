"""The error-analysis queries (workbench.store.evaluations) on a hand-made world: one dataset
version (three test intents, two training intents), a student evaluation with predictions chosen
so every number can be worked out by hand, and an augmentation round written row by row."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines import evaluate
from workbench.app.state import escape_markdown, evaluation_label, round_label
from workbench.describe import parameter_table
from workbench.errors import WorkbenchError
from workbench.store import Store, evaluations
from workbench.store.candidates import augmentation_rounds
from workbench.store.runs import recent_runs
from workbench.store.versions import (
    DatasetRow,
    Origin,
    Split,
    create_version,
    intent_texts,
    intents_by_split,
    version_exists,
)
from workbench.tools import ADJUST_KEYS, Answer, FilterCall, parse_answer

# Ground truth: every intent uses adjust (one slider at 40) and a filter; none selective_adjust.
TRUTH = {
    "alpha": parse_answer({"adjust": {"temperature": 40},
                           "filter": {"name": "warm_Golden", "intensity": 50}}),
    "beta": parse_answer({"adjust": {"temperature": -40},
                          "filter": {"name": "cool_Arctic", "intensity": 60}}),
    "gamma": parse_answer({"adjust": {"contrast": 40},
                           "filter": {"name": "mono_Noir", "intensity": 80}}),
}
# alpha: right sliders, right filter 20 too weak -> adjust cosine 1, filter right;
# beta: an extra slider as strong as the right one -> cosine 1/sqrt(2); no filter -> FN;
# gamma: no adjust -> cosine 0 (FN); the wrong filter at the right intensity.
PREDICTION = {
    "alpha": parse_answer({"adjust": {"temperature": 40},
                           "filter": {"name": "warm_Golden", "intensity": 30}}),
    "beta": parse_answer({"adjust": {"temperature": -40, "exposure": 40}}),
    "gamma": parse_answer({"filter": {"name": "mono_Sepia", "intensity": 80}}),
}
# The adjust mean over TP intents (alpha, beta) and each intent's gap (mean - cosine).
MEAN = (1 + 1 / math.sqrt(2)) / 2            # 0.8536
GAPS = {"alpha": MEAN - 1, "beta": MEAN - 1 / math.sqrt(2), "gamma": MEAN}


def row(key: str, split: str, answer: Answer, request_count: int = 1) -> DatasetRow:
    return DatasetRow(key, key.capitalize(), split, request_count, answer.tool_json("adjust"),
                      answer.tool_json("selective_adjust"), answer.tool_json("filter"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, int]:
    store = Store(tmp_path_factory.mktemp("diagnostics") / "w.duckdb")
    with store.atomic(create=True) as session:
        rows = [row(key, "test", answer) for key, answer in TRUTH.items()]
        rows += [row("delta", "train", TRUTH["alpha"]), row("epsilon", "train", TRUTH["beta"])]
        version_id = create_version(session, rows, Origin.CURATION, "hand-made", {})
        samples = [evaluate.Sample(key, key, 1, TRUTH[key], PREDICTION[key]) for key in TRUTH]
        result = evaluate.evaluate_samples(session, samples, evaluate.EvaluationKind.RUN,
                                           "run-a", version_id, Split.TEST)
        session.execute(
            "INSERT INTO runs VALUES ('run-a', 'heads', '{}', ?, 'train', 2, ?, ?, 1.0, 'cpu', "
            "1, '/nowhere', '')", [version_id, datetime(2024, 5, 1, tzinfo=UTC),
                                   datetime(2024, 5, 1, tzinfo=UTC)])
        session.execute(
            "INSERT INTO augmentations VALUES (7, ?, NULL, ?, NULL, 'offline', '{}', ?)",
            [datetime(2024, 5, 2, 9, 30, tzinfo=UTC), version_id,
             json.dumps({"sources": 1, "generated": 5})])
        for i, status in enumerate(["pending", "pending", "approved", "rejected", "dropped"]):
            session.execute(
                "INSERT INTO candidates (augmentation_id, source_intent_key, intent_key, "
                "intent_text, status) VALUES (7, 'delta', ?, ?, ?)", [f"c{i}", f"c{i}", status])
    assert result.evaluation_id == 1
    return store, version_id


def test_evaluations_of_a_kind_newest_first_with_a_label(world) -> None:
    store, _ = world
    with store.session() as session:
        [found] = evaluations.student_evaluations(session, "run")
        assert evaluations.student_evaluations(session, "mining") == []
        with pytest.raises(WorkbenchError, match="unknown evaluation kind 'baseline'"):
            evaluations.student_evaluations(session, "baseline")
    assert (found["evaluation_id"], found["run_id"], found["student"], found["split"],
            found["n_intents"]) == (1, "run-a", "heads", "test", 3)
    assert found["summary"]["flagged"] == {"adjust": 2, "selective_adjust": 0, "filter": 2}
    label = evaluation_label({**found, "created_at": datetime(2024, 5, 3, 14, 5)})
    assert label == "#1 · run run-a (heads) · version 1 test · 2024-05-03 14:05"


def test_adjust_intents_come_largest_gap_first(world) -> None:
    store, _ = world
    with store.session() as session:
        rows = evaluations.tool_errors(session, 1, "adjust")
        flagged = evaluations.tool_errors(session, 1, "adjust", only_flagged=True)
        second_page = evaluations.tool_errors(session, 1, "adjust", limit=2, offset=2)
        counts = (evaluations.count_tool_errors(session, 1, "adjust"),
                  evaluations.count_tool_errors(session, 1, "adjust", only_flagged=True))
    assert [r["intent_key"] for r in rows] == ["gamma", "beta", "alpha"]
    assert [r["intent_text"] for r in rows] == ["Gamma", "Beta", "Alpha"]
    assert [r["cosine"] for r in rows] == pytest.approx([0, 1 / math.sqrt(2), 1])
    assert [r["cosine_gap"] for r in rows] == pytest.approx([GAPS[k] for k in
                                                             ("gamma", "beta", "alpha")])
    assert [(r["teacher_used"], r["student_used"], r["flagged"]) for r in rows] == [
        (True, False, True), (True, True, True), (True, True, False)]
    assert [r["intent_key"] for r in flagged] == ["gamma", "beta"]
    assert [r["intent_key"] for r in second_page] == ["alpha"]
    assert counts == (3, 2)


def test_an_unused_tool_on_both_sides_has_cosine_one_and_no_gap(world) -> None:
    store, _ = world
    with store.session() as session:
        rows = evaluations.tool_errors(session, 1, "selective_adjust")
    assert [(r["intent_key"], r["cosine"], r["cosine_gap"], r["flagged"]) for r in rows] == [
        ("alpha", 1.0, None, False), ("beta", 1.0, None, False), ("gamma", 1.0, None, False)]


def test_filter_intents_wrong_first_with_names_and_intensity_error(world) -> None:
    store, _ = world
    with store.session() as session:
        rows = evaluations.tool_errors(session, 1, "filter")
        confusions = evaluations.filter_confusions(session, 1)
        with pytest.raises(WorkbenchError, match="unknown tool 'hue'"):
            evaluations.tool_errors(session, 1, "hue")
    # gamma (wrong name, error 0) before beta (no filter: no error), then alpha (right).
    assert [(r["intent_key"], r["teacher_filter"], r["teacher_intensity"], r["student_filter"],
             r["student_intensity"], r["intensity_error"], r["flagged"]) for r in rows] == [
        ("gamma", "mono_Noir", 80, "mono_Sepia", 80, 0, True),
        ("beta", "cool_Arctic", 60, None, None, None, True),
        ("alpha", "warm_Golden", 50, "warm_Golden", 30, 20, False)]
    assert confusions == [{"teacher": "cool_Arctic", "student": None, "intents": 1},
                          {"teacher": "mono_Noir", "student": "mono_Sepia", "intents": 1}]


def test_intents_ranked_by_flags_then_gap(world) -> None:
    store, _ = world
    with store.session() as session:
        ranked = evaluations.ranked_intents(session, 1)
    assert [(r["intent_key"], r["n_flagged"]) for r in ranked] == [
        ("gamma", 2), ("beta", 2), ("alpha", 0)]
    assert ranked[0]["max_gap"] == pytest.approx(MEAN)


def test_one_intent_teacher_and_student_side_by_side(world) -> None:
    store, _ = world
    with store.session() as session:
        detail = evaluations.evaluated_intent(session, 1, "beta")
        assert evaluations.evaluated_intent(session, 1, "delta") is None   # not in the evaluation
    assert detail is not None
    assert (detail.intent_text, detail.split) == ("Beta", "test")
    assert detail.teacher == TRUTH["beta"] and detail.student == PREDICTION["beta"]
    assert detail.scores["filter"]["flagged"] and not detail.scores["filter"]["student_used"]
    assert detail.scores["adjust"]["cosine"] == pytest.approx(1 / math.sqrt(2))

    table = parameter_table(detail.teacher, detail.student, "adjust")
    assert [r["parameter"] for r in table] == list(ADJUST_KEYS)
    changed = {r["parameter"]: (r["teacher"], r["student"], r["difference"]) for r in table
               if r["difference"]}
    assert changed == {"exposure": (0, 40, 40)}
    assert {r["parameter"]: r["teacher"] for r in table}["temperature"] == -40
    assert parameter_table(detail.teacher, detail.student, "filter") == [
        {"parameter": "name", "teacher": "cool_Arctic", "student": None,
         "difference": "different"},
        {"parameter": "intensity", "teacher": "60", "student": None, "difference": None}]


def test_parameter_table_counts_an_unused_tool_as_zeros_but_shows_it_empty() -> None:
    teacher = Answer(selective_adjust={c: {"saturation": 0, "luminance": 0} for c in (
        "red", "orange", "yellow", "green", "cyan", "blue")} | {
        "blue": {"saturation": 30, "luminance": -10}}, filter=FilterCall("mono_Noir", 70))
    student = Answer(filter=FilterCall("mono_Noir", 55))
    table = parameter_table(teacher, student, "selective_adjust")
    assert len(table) == 12 and table[0]["parameter"] == "red.saturation"
    assert table[-2:] == [
        {"parameter": "blue.saturation", "teacher": 30, "student": None, "difference": -30},
        {"parameter": "blue.luminance", "teacher": -10, "student": None, "difference": 10}]
    assert parameter_table(teacher, student, "filter") == [
        {"parameter": "name", "teacher": "mono_Noir", "student": "mono_Noir",
         "difference": "same"},
        {"parameter": "intensity", "teacher": "70", "student": "55", "difference": "-15"}]
    assert parameter_table(Answer(), Answer(), "filter")[0]["difference"] == "same"


def test_sources_are_sorted_into_train_test_and_unknown(world) -> None:
    store, version_id = world
    with store.session() as session:
        found = intents_by_split(session, version_id,
                                             ["delta", "beta", "nope", "delta", "epsilon"])
        texts = intent_texts(session, version_id, ["delta", "nope"])
        assert version_exists(session, version_id)
        assert not version_exists(session, 99)
        assert not version_exists(session, None)
    assert found == {"train": ["delta", "epsilon"], "test": ["beta"], "unknown": ["nope"]}
    assert texts == {"delta": "Delta"}


def test_runs_and_rounds_with_candidate_counts(world) -> None:
    store, version_id = world
    with store.session() as session:
        [run] = recent_runs(session)
        [round_] = augmentation_rounds(session)
    assert (run["run_id"], run["student"], run["version_id"], run["n_train"]) == (
        "run-a", "heads", version_id, 2)
    assert {k: round_[k] for k in ("augmentation_id", "pending", "approved", "rejected",
                                   "dropped", "committed", "approved_uncommitted")} == {
        "augmentation_id": 7, "pending": 2, "approved": 1, "rejected": 1, "dropped": 1,
        "committed": 0, "approved_uncommitted": 1}
    assert round_["summary"] == {"sources": 1, "generated": 5}
    label = round_label({**round_, "created_at": datetime(2024, 5, 2, 9, 30)})
    assert label == "Round 7 · hand-picked intents · version 1 · offline · 2024-05-02 09:30"


@pytest.mark.parametrize(("text", "shown"), [
    ("golden hour", "golden hour"),
    ("**bold** _it_ `code`", r"\*\*bold\*\* \_it\_ \`code\`"),
    ("[link](http://x.y) <b>", r"\[link\]\(http\://x\.y\) \<b\>"),
    ("$x$ :red[warm] # h", r"\$x\$ \:red\[warm\] \# h"),
])
def test_markdown_is_escaped(text: str, shown: str) -> None:
    assert escape_markdown(text) == shown


def test_the_queries_need_no_streamlit() -> None:
    import subprocess
    import sys

    code = ("import sys, workbench.store.evaluations, workbench.describe; "
            "print('streamlit' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parent.parent).stdout
    assert out.split() == ["False", "False"]
