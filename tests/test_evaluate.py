"""Evaluation pipeline: storage, repeatability, bad input, ceiling and floor on hand-made data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines import evaluate, ingest
from tests.conftest import make_record
from workbench.store import Store
from workbench.store.requests import ground_truth_by_intent
from workbench.store.versions import DatasetRow, Origin, create_version

WARM = {"temperature": 30}
WARMER = {"temperature": 40}
COOL = {"temperature": -30}
NOIR = {"name": "mono_Noir", "intensity": 80}
GOLD = {"name": "warm_Golden", "intensity": 40}


def rec(request_id, intent, adjust=None, filter_=None, exports=(1, 0, 1), day=1):
    return make_record(
        request_id=request_id, intent=intent, created_at=f"2024-01-{day:02d}T00:00:00Z",
        teacher={"adjust": adjust, "selective_adjust": None, "filter": filter_},
        exports=dict(zip(("adjust", "selective_adjust", "filter"), exports, strict=True)))


LOGS = [
    # "golden hour" (test): ground truth WARM + GOLD from g1/g2 (rate 1); g3 and g4 differ.
    rec("g1", "golden hour", WARM, GOLD, day=1),
    rec("g2", "golden hour", WARM, GOLD, day=2),
    rec("g3", "golden hour", WARMER, GOLD, exports=(0, 0, 1), day=3),   # adjust differs only
    rec("g4", "golden hour", COOL, None, exports=(0, 0, 0), day=4),     # never exported
    # "noir" (test): one output only, so no self-consistency sample.
    rec("n1", "noir", None, NOIR, exports=(0, 0, 1)),
    # train intents for the majority floor: adjust WARM twice, COOL once; filter used once of 3.
    rec("t1", "sunset", WARM, None, exports=(1, 0, 0)),
    rec("t2", "beach", WARM, None, exports=(1, 0, 0)),
    rec("t3", "winter", COOL, GOLD, exports=(1, 0, 1)),
]
TEST = {"golden hour", "noir"}


@pytest.fixture
def version(store: Store, tmp_path: Path) -> int:
    path = tmp_path / "logs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in LOGS))
    ingest.ingest_file(path, store)
    with store.atomic() as session:
        chosen = ground_truth_by_intent(session)
        counts = {r["intent_key"]: r["n"] for r in session.query(
            "SELECT intent_key, count(*) AS n FROM requests GROUP BY intent_key")}
        rows = [DatasetRow(key, key, "test" if key in TEST else "train", counts[key],
                           tools["adjust"]["output"], tools["selective_adjust"]["output"],
                           tools["filter"]["output"]) for key, tools in sorted(chosen.items())]
        return create_version(session, rows, Origin.CURATION, "hand-made split", {})


def write_predictions(path: Path, lines: list) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                            for line in lines))
    return path


def perfect(tmp_path: Path) -> Path:
    return write_predictions(tmp_path / "p.jsonl", [
        {"intent": "Golden Hour", "adjust": WARM, "selective_adjust": None, "filter": GOLD},
        {"intent": "noir", "adjust": None, "selective_adjust": None, "filter": NOIR}])


def evaluations(store: Store) -> int:
    return store.query("SELECT count(*) AS n FROM evaluations")[0]["n"]


def test_perfect_predictions_and_storage(store: Store, version: int, tmp_path: Path):
    result = evaluate.run(evaluate.EvaluateConfig(perfect(tmp_path), version), store)
    everything = result.subsets[0]
    assert everything.name == "All" and everything.n_intents == 2
    # adjust: golden hour TP (cos 1), noir TN -> (1, 1, 1); filter: both TP with right names.
    assert everything.tools["adjust"].triple() == (1.0, 1.0, 1.0)
    assert everything.tools["filter"].triple() == (1.0, 1.0, 1.0)
    # selective_adjust is used by nobody: undefined, and so is the overall.
    assert everything.tools["selective_adjust"].final is None and everything.overall is None
    # request counts: golden hour 4 (r_3 and r_5? 4 < 5), noir 1.
    assert [s.n_intents for s in result.subsets] == [2, 1, 0]
    stored = store.query("SELECT * FROM evaluations WHERE evaluation_id = ?",
                         [result.evaluation_id])[0]
    assert (stored["version_id"], stored["split"], stored["kind"]) == (version, "test", "predictions")
    assert json.loads(stored["summary"])["subsets"][0]["tools"]["filter"]["quality"] == 1.0
    scores = store.query("SELECT count(*) AS n, count(*) FILTER (WHERE flagged) AS flagged "
                         "FROM evaluation_scores WHERE evaluation_id = ?", [result.evaluation_id])
    assert scores == [{"n": 6, "flagged": 0}]  # 2 intents x 3 tools, nothing wrong


def test_same_predictions_give_the_same_numbers(store: Store, version: int, tmp_path: Path):
    path = write_predictions(tmp_path / "p.jsonl", [
        {"intent": "golden hour", "adjust": COOL, "filter": NOIR},
        {"intent": "noir", "adjust": WARM}])
    first = evaluate.run(evaluate.EvaluateConfig(path, version), store).to_dict()
    second = evaluate.run(evaluate.EvaluateConfig(path, version), store).to_dict()
    assert first["evaluation_id"] != second["evaluation_id"]
    assert first["subsets"] == second["subsets"]
    adjust = first["subsets"][0]["tools"]["adjust"]
    # golden hour TP with cosine(-30, 30) = -1, counted as it is (SPEC 5); noir FP.
    # selection 2/(2+1) = 2/3, quality -1, final 0 (quality is not positive).
    assert adjust["selection"] == pytest.approx(2 / 3) and adjust["quality"] == pytest.approx(-1)
    assert adjust["final"] == 0.0


def test_stored_per_intent_scores_are_signed(store: Store, version: int, tmp_path: Path):
    path = write_predictions(tmp_path / "p.jsonl", [
        {"intent": "golden hour", "adjust": COOL, "filter": GOLD},
        {"intent": "noir", "adjust": WARM, "filter": NOIR}])
    result = evaluate.run(evaluate.EvaluateConfig(path, version), store)
    rows = {row["intent_key"]: row for row in store.query(
        "SELECT intent_key, similarity, cosine, cosine_gap, flagged FROM evaluation_scores "
        "WHERE evaluation_id = ? AND tool = 'adjust'", [result.evaluation_id])}
    summary = store.query("SELECT summary FROM evaluations WHERE evaluation_id = ?",
                          [result.evaluation_id])[0]["summary"]
    # The one TP (golden hour: COOL against WARM) has cosine -1, so the mean cosine is -1.
    assert json.loads(summary)["mean_cosine"]["adjust"] == pytest.approx(-1)
    golden, noir = rows["golden hour"], rows["noir"]
    assert (golden["similarity"], golden["cosine"]) == (pytest.approx(-1), pytest.approx(-1))
    assert golden["cosine_gap"] == pytest.approx(0)             # -1 - (-1)
    # noir: the teacher used no adjust (a zero vector): cosine 0, no similarity, gap -1 - 0.
    assert (noir["similarity"], noir["cosine"]) == (None, 0.0)
    assert noir["cosine_gap"] == pytest.approx(-1)
    # The paper's flag rule on signed cosines: nothing lies below the mean of -1.
    assert not golden["flagged"] and not noir["flagged"]


@pytest.mark.parametrize("lines, fragment", [
    (['{"intent": "golden hour", "adjust": {"temperature": 300}}', {"intent": "noir"}],
     "line 1 ('golden hour'): adjust.temperature: must be in [-100, 100] (got 300)"),
    (['{"intent": "golden hour", "filter": {"name": "nope", "intensity": 3}}', {"intent": "noir"}],
     "filter.name: is not in the filter catalogue"),
    (["{oops", {"intent": "noir"}], "line 1: malformed JSON"),
    ([{"intent": "noir"}, {"intent": "NOIR "}], "line 2: intent 'NOIR ' already predicted on line 1"),
    ([{"intent": "golden hour", "filters": None}, {"intent": "noir"}], "unknown key 'filters'"),
    ([{"adjust": None}], "'intent' must be a non-empty string"),
    ([{"intent": "noir"}], "1 test intent(s) of version"),
    ([{"intent": "noir"}, {"intent": "golden hour"}, {"intent": "sunset"}],
     "1 predicted intent(s) are not in the test split"),
    ([], "holds no predictions"),
])
def test_bad_predictions_are_named_and_nothing_is_stored(store, version, tmp_path, lines, fragment):
    path = write_predictions(tmp_path / "p.jsonl", lines)
    with pytest.raises(evaluate.PredictionsError) as caught:
        evaluate.run(evaluate.EvaluateConfig(path, version), store)
    assert fragment in str(caught.value)
    assert evaluations(store) == 0


def test_missing_predictions_file(store, version, tmp_path):
    with pytest.raises(evaluate.PredictionsError, match="no such file"):
        evaluate.run(evaluate.EvaluateConfig(tmp_path / "none.jsonl", version), store)


def test_self_consistency_and_majority_by_hand(store: Store, version: int):
    result = evaluate.baselines(version, store)
    ceiling = result.self_consistency
    # golden hour's outputs: (WARM, GOLD) is the truth; (WARMER, GOLD) and (COOL, none) are not.
    # noir has one output. So 2 samples, both of golden hour (4 requests: All and r_3 only).
    assert ceiling.n_samples == 2
    assert [s.n_intents for s in ceiling.subsets] == [1, 1, 0]
    adjust = ceiling.subsets[0].tools["adjust"]
    # Both samples use adjust: cos(30, 40) = 1 and cos(30, -30) = -1; mean 0 (it was 0.5 while
    # negative cosines were clamped). Selection 1, so the final is 0: quality is not positive.
    assert adjust.tp == 2 and adjust.quality == pytest.approx(0.0, abs=1e-12)
    assert (adjust.selection, adjust.final) == (1.0, 0.0)
    filter_ = ceiling.subsets[0].tools["filter"]
    # GOLD vs GOLD: TP, right name; none vs GOLD: FN. selection 2/(2+1), quality 1.
    assert (filter_.tp, filter_.fn, filter_.quality) == (1, 1, 1.0)
    assert filter_.selection == pytest.approx(2 / 3)
    # Floor: train intents beach, sunset, winter use adjust with temperature 30, 30, -30: the
    # mean is 10; selective_adjust is never used; the only filter is GOLD at 40.
    assert result.constant_answer.adjust["temperature"] == 10
    assert result.constant_answer.selective_adjust is None
    assert result.constant_answer.filter.name == "warm_Golden"
    floor = result.constant.subsets[0]
    # adjust: golden hour TP, cos(10, 30) = 1; noir FP -> (2/3, 1, 0.8).
    assert floor.tools["adjust"].triple() == (pytest.approx(2 / 3), 1.0, pytest.approx(0.8))
    # filter: both TP; golden hour right name, noir wrong -> (1, .5, 2/3); intensity |0| and |40|.
    assert floor.tools["filter"].triple() == (1.0, 0.5, pytest.approx(2 / 3))
    assert floor.tools["filter"].intensity_error == 20
    kinds = [r["kind"] for r in store.query("SELECT kind FROM evaluations ORDER BY evaluation_id")]
    assert kinds == ["self_consistency", "baseline"]


def test_cli_evaluate_formats(store: Store, version: int, tmp_path: Path, capsys):
    from workbench.cli import main

    predictions = perfect(tmp_path)
    assert main(["evaluate", "--db", str(store.path), "--predictions", str(predictions)]) == 0
    out = capsys.readouterr().out
    assert "(1.00, 1.00, 1.00)" in out and "undef" in out
    assert main(["evaluate", "--db", str(store.path), "--predictions", str(predictions),
                 "--out", str(tmp_path / "t.md")]) == 0
    markdown = (tmp_path / "t.md").read_text()
    assert markdown.splitlines()[2].startswith("| Test | n | Adjust |")
    assert main(["evaluate", "--db", str(store.path), "--predictions", str(predictions),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in summary["subsets"]] == ["All", "r_3", "r_5"]
    assert main(["evaluate", "--db", str(store.path), "--predictions",
                 str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_baselines(store: Store, version: int, capsys):
    from workbench.cli import main

    assert main(["baselines", "--db", str(store.path), "--no-details"]) == 0
    out = capsys.readouterr().out
    assert "Ceiling: teacher self-consistency" in out and "Floor: constant predictor" in out


def test_a_negative_quality_is_printed_in_the_posters_style():
    from workbench.report import number

    assert [number(v) for v in (0.95, -0.4, -1.0, 0.0, None)] == [".95", "-.40", "-1.00", ".00",
                                                                   "undef"]
