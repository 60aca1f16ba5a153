"""Slices: k-means clusters of training intents scored with the paper's metrics. Two obvious
clusters on a made-up embedding, one all wrong; the finals of a small set; the distinctive words;
the default k; and slices of a mined run in the store and through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines import slices
from tests.conftest import curated_store
from workbench.errors import WorkbenchError
from workbench.metrics import IntentScore
from workbench.slices import build_slices, default_clusters, slice_finals, top_words

WARM = ["warm golden sunset", "warm sunset glow", "warm beach at dusk", "warm honey light",
        "warm golden hour", "warm summer evening"]
COLD = ["cold blue winter", "cold icy morning", "cold arctic light", "cold blue steel",
        "cold snowy field", "cold winter night"]


def answers(key: str, cosine: float, filter_right: bool) -> list[IntentScore]:
    """adjust used by both with `cosine`; selective_adjust by neither; a filter by both."""
    return [IntentScore(key, "adjust", True, True, cosine, cosine),
            IntentScore(key, "selective_adjust", False, False, None, 1.0),
            IntentScore(key, "filter", True, True, float(filter_right), intensity_error=0)]


def two_clusters() -> tuple[list[str], list[str], np.ndarray, list[IntentScore]]:
    """Twelve intents: six warm ones near e1, all right; six cold ones near e2, adjust cosine
    .2 and the wrong filter."""
    rng = np.random.default_rng(0)
    keys = [f"w{i}" for i in range(6)] + [f"c{i}" for i in range(6)]
    centres = np.repeat(np.eye(4)[:2], 6, axis=0)                                 # (12, 4)
    vectors = centres + rng.normal(0, 0.05, size=centres.shape)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = [s for key in keys[:6] for s in answers(key, 1.0, True)]
    scores += [s for key in keys[6:] for s in answers(key, 0.2, False)]
    return keys, WARM + COLD, vectors.astype(np.float32), scores


def test_the_all_wrong_cluster_is_flagged_and_the_other_not() -> None:
    keys, texts, vectors, scores = two_clusters()
    k, student, found = build_slices(keys, texts, vectors, scores, seed=0)
    # Whole split: adjust selection 1, quality (6 + 6 x .2) / 12 = .6, final 2 x .6 / 1.6
    # = .75; selective_adjust unused (does not count); filter selection 1, quality .5, final
    # 2 x .5 / 1.5 = 2/3. Overall (.75 + 2/3) / 2 = .7083.
    assert k == default_clusters(12) == 2
    assert student == pytest.approx((0.75 + 2 / 3) / 2)
    worst, best = found
    # Cold: adjust quality .2, final 2 x .2 / 1.2 = 1/3; filter quality 0, final 0.
    assert (worst.rank, worst.size, set(worst.intent_keys)) == (1, 6, set(keys[6:]))
    assert worst.overall == pytest.approx(1 / 6)
    assert worst.finals == pytest.approx({"adjust": 1 / 3, "filter": 0.0,
                                          "selective_adjust": None})
    assert worst.worst_tool == "filter" and worst.flagged and worst.n_flagged == 6
    assert worst.top_words == ("cold", "blue", "winter")
    assert set(worst.examples) <= set(COLD) and len(worst.examples) == 5
    # Warm: every answer right.
    assert (best.rank, best.overall, best.flagged, best.n_flagged) == (2, 1.0, False, 0)
    # warm in all six; golden and sunset in two each (and in no cold one); light in one here.
    assert best.top_words == ("warm", "golden", "sunset")


def test_the_gap_decides_which_slices_are_flagged() -> None:
    keys, texts, vectors, scores = two_clusters()
    # The cold slice is .7083 - .1667 = .54 below the student: flagged up to a gap of .54.
    assert build_slices(keys, texts, vectors, scores, gap=0.54)[2][0].flagged
    assert not build_slices(keys, texts, vectors, scores, gap=0.55)[2][0].flagged
    # The student's own level: the warm slice (1.0) is above it, never flagged.
    assert [s.flagged for s in build_slices(keys, texts, vectors, scores, gap=0.0)[2]] \
        == [True, False]


def test_within_a_slice_the_worst_intents_come_first() -> None:
    keys, texts, vectors, scores = two_clusters()
    # Make c3 opposite on adjust (loss (1 + 1)/2 = 1 instead of .4) and c5 right on the filter.
    scores = [s for s in scores if s.intent_key not in ("c3", "c5")]
    scores += answers("c3", -1.0, False) + answers("c5", 0.2, True)
    worst = build_slices(keys, texts, vectors, scores)[2][0]
    # adjust's mean cosine: (6 x 1 + 5 x .2 - 1) / 12 = .5, so every cold intent is flagged
    # for adjust. c3: the wrong filter too (two flags), loss (1 + 0 + 1) / 3 = 2/3; c0, c1,
    # c2, c4: two flags, loss (.4 + 0 + 1) / 3 = .467; c5: one flag (adjust), loss .4 / 3.
    assert worst.intent_keys == ("c3", "c0", "c1", "c2", "c4", "c5")
    by_key = {m.intent_key: m for m in worst.intents}
    assert by_key["c3"].loss == pytest.approx(2 / 3) and by_key["c3"].n_flagged == 2
    assert (by_key["c5"].filter, by_key["c0"].filter) == ("right", "wrong name")
    assert by_key["c3"].adjust_cosine == -1.0


def test_each_intent_says_how_its_filter_went() -> None:
    keys, texts, vectors, scores = two_clusters()
    scores = [s for s in scores if s.intent_key not in ("w0", "w1", "w2")]
    scores += [IntentScore("w0", "adjust", True, True, 1.0, 1.0),
               IntentScore("w0", "selective_adjust", False, False, None, 1.0),
               IntentScore("w0", "filter", False, True, None),             # only the student
               IntentScore("w1", "adjust", True, True, 1.0, 1.0),
               IntentScore("w1", "selective_adjust", False, False, None, 1.0),
               IntentScore("w1", "filter", True, False, None),             # only the teacher
               IntentScore("w2", "adjust", True, True, 1.0, 1.0),
               IntentScore("w2", "selective_adjust", False, False, None, 1.0),
               IntentScore("w2", "filter", False, False, None)]            # neither
    found = {m.intent_key: m.filter for s in build_slices(keys, texts, vectors, scores)[2]
             for m in s.intents}
    assert (found["w0"], found["w1"], found["w2"], found["w3"], found["c0"]) == (
        "extra", "missed", None, "right", "wrong name")


def test_finals_of_a_small_set() -> None:
    # Nobody used selective_adjust: it does not count. The filter used only by the student
    # (FP) and never by both: 0. adjust: TP cosine .5, selection 1, final 2 x .5 / 1.5 = 2/3.
    scores = [IntentScore("a", "adjust", True, True, 0.5, 0.5),
              IntentScore("a", "selective_adjust", False, False, None, 1.0),
              IntentScore("a", "filter", False, True, None)]
    overall, finals = slice_finals(scores)
    assert finals == pytest.approx({"adjust": 2 / 3, "selective_adjust": None, "filter": 0.0})
    assert overall == pytest.approx(1 / 3)
    # An opposite answer: quality -1, final 0 (the paper's harmonic mean needs both positive).
    assert slice_finals([IntentScore("a", "adjust", True, True, -1.0, -1.0)])[1]["adjust"] == 0


def test_top_words_are_frequent_inside_and_rarer_outside() -> None:
    members = ["warm sunset glow", "warm golden sunset", "warm beach"]
    others = ["cold winter", "cold blue sunset"]
    # warm 3/3 - 0 = 1; sunset 2/3 - 1/2 = 1/6; golden, glow, beach: in one intent only.
    assert top_words(members, others) == ("warm", "sunset")
    assert top_words(others, members) == ("cold",)
    # Function words never count; a slice of one takes its own words.
    assert top_words(["make it a bit warmer"], ["cool"]) == ("bit", "make", "warmer")


@pytest.mark.parametrize("n,k", [(2, 2), (3, 2), (12, 2), (50, 5), (2000, 32), (8252, 60)])
def test_the_default_number_of_slices(n: int, k: int) -> None:
    assert default_clusters(n) == k


def test_bad_inputs_say_what_is_wrong() -> None:
    keys, texts, vectors, scores = two_clusters()
    with pytest.raises(WorkbenchError, match="at least 2 training intents"):
        build_slices(keys[:1], texts[:1], vectors[:1], scores)
    with pytest.raises(WorkbenchError, match="at least 2 clusters"):
        build_slices(keys, texts, vectors, scores, k=1)
    with pytest.raises(WorkbenchError, match="no scores"):
        build_slices(keys, texts, vectors, scores[3:])
    # k above the number of intents: one slice per intent.
    assert len(build_slices(keys[:3], texts[:3], vectors[:3], scores, k=10)[2]) == 3


# ------------------------------------------------------------------------------ with the store

@pytest.fixture(scope="module")
def encoder() -> Any:
    from workbench.embeddings import load_encoder

    return load_encoder()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, encoder: Any) -> tuple[Path, str]:
    from pipelines import train

    folder = tmp_path_factory.mktemp("slices")
    store = curated_store(folder)
    run = train.run(train.TrainConfig(student="heads", student_config={
        "epochs": 1, "hidden": 8, "device": "cpu"}), store, encoder=encoder)
    return folder / "w.duckdb", run.run_id


def test_slices_of_a_run_mine_it_once(trained, encoder, tmp_path: Path) -> None:
    from workbench.store import Store

    path = tmp_path / "w.duckdb"
    shutil.copy(trained[0], path)
    with pytest.raises(WorkbenchError, match="has not been mined yet"):
        slices.compute_slices(Store(path, read_only=True), run_id=trained[1], encoder=encoder)
    store = Store(path)
    first = slices.compute_slices(store, run_id=trained[1], encoder=encoder, k=3)
    assert first.run_id == trained[1] and first.k == 3 and first.n_intents == 15
    assert sum(s.size for s in first.slices) == 15
    assert sorted(k for s in first.slices for k in s.intent_keys) == sorted(
        m.intent_key for s in first.slices for m in s.intents)
    overalls = [s.overall for s in first.slices]
    assert overalls == sorted(overalls)
    # The run's mining evaluation is reused (read-only now: no second prediction, and the
    # training texts' embeddings come from the cache); the same seed, the same slices.
    again = slices.compute_slices(Store(path, read_only=True), run_id=trained[1], k=3)
    assert again.evaluation_id == first.evaluation_id
    assert [s.intent_keys for s in again.slices] == [s.intent_keys for s in first.slices]
    with pytest.raises(WorkbenchError, match="no evaluation #999"):
        slices.compute_slices(store, evaluation_id=999)


def test_the_slices_command(trained, tmp_path: Path, cli) -> None:
    path = tmp_path / "w.duckdb"
    shutil.copy(trained[0], path)
    code, out, err = cli("slices", "--db", path, "--run", trained[1], "--clusters", 3)
    assert code == 0, err
    assert "3 slices" in out and "worst tool" in out and "e.g. '" in out
    assert f"--run {trained[1]} --strategy slices --clusters 3" in out
    code, out, err = cli("slices", "--db", path, "--clusters", 2, "--json")
    assert code == 0, err
    found = json.loads(out)
    assert found["k"] == 2 and len(found["slices"]) == 2
    assert {"rank", "size", "overall", "finals", "worst_tool", "top_words", "examples",
            "intent_keys", "flagged"} <= set(found["slices"][0])
    code, out, err = cli("slices", "--db", path, "--clusters", 1)
    assert code == 2 and "at least 2 clusters" in err


def test_the_augment_command_takes_a_strategy(trained, tmp_path: Path, cli) -> None:
    path = tmp_path / "w.duckdb"
    shutil.copy(trained[0], path)
    code, out, err = cli("augment", "--db", path, "--run", trained[1], "--strategy", "worst",
                         "--worst-percent", 20, "--paraphraser", "offline", "--n", 2)
    assert code == 0, err
    assert "strategy worst): 3 intents flagged" in out
    code, out, err = cli("augment", "--db", path, "--intent", "x", "--strategy", "worst")
    assert code == 2 and "--strategy chooses how a run is mined" in err
    code, out, err = cli("augment", "--db", path, "--strategy", "worst", "--worst-percent", 0)
    assert code == 2 and "worst_percent must be in (0, 100]" in err
