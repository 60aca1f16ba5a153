"""The paired bootstrap of two evaluations (workbench.bootstrap), checked on hand-worked cases
and against the paper's metrics recomputed resample by resample."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.bootstrap import (
    OVERALL,
    paired_bootstrap,
    paired_keys,
    resample_weights,
)
from workbench.metrics import IntentScore, subset_score
from workbench.tools import TOOLS


def used(key: str, tool: str, similarity: float = 1.0, teacher: bool = True,
         student: bool = True) -> IntentScore:
    """One intent's score for one tool (TP with `similarity` unless a side did not use it)."""
    both = teacher and student
    return IntentScore(key, tool, teacher, student, similarity if both else None)


def perfect(keys: list[str]) -> list[IntentScore]:
    return [used(key, tool) for key in keys for tool in TOOLS]


def test_identical_runs_differ_by_exactly_zero_with_a_zero_width_interval() -> None:
    scores = [used(f"i{n}", tool, similarity=0.1 * (n % 7) + 0.2) for n in range(30)
              for tool in TOOLS]
    result = paired_bootstrap(scores, list(scores))
    assert (result.observed, result.mean, result.low, result.high) == (0.0, 0.0, 0.0, 0.0)
    assert (result.n_intents, result.resamples, result.n_undefined) == (30, 1000, 0)
    assert not result.excludes_zero


def test_two_intents_worked_by_hand() -> None:
    # Both runs use every tool on both intents (selection is 1 everywhere). A matches the
    # teacher exactly; B's adjust cosine is 1 on x and 1/2 on y. A resample of two draws is
    # {x, x}, {x, y} (either order) or {y, y}, so B's adjust quality is 1, 3/4 or 1/2, its final
    # 1, 6/7 or 2/3, its overall (final + 1 + 1) / 3 = 1, 20/21 or 8/9, and A - B is 0, 1/21 or
    # 1/9, with probabilities 1/4, 1/2, 1/4.
    a = perfect(["x", "y"])
    b = [used("y", "adjust", similarity=0.5) if (s.intent_key, s.tool) == ("y", "adjust") else s
         for s in a]
    result = paired_bootstrap(a, b, resamples=4000, seed=3)
    assert result.observed == pytest.approx(1 / 21)
    drawn_y = resample_weights(2, 4000, 3)[:, 1].astype(int)      # 0, 1 or 2 draws of y
    assert np.bincount(drawn_y, minlength=3) / 4000 == pytest.approx([0.25, 0.5, 0.25], abs=0.03)
    by_hand = np.array([0.0, 1 / 21, 1 / 9])[drawn_y]              # A - B of each resample
    assert result.mean == pytest.approx(by_hand.mean())
    assert result.mean == pytest.approx(0 / 4 + (1 / 21) / 2 + (1 / 9) / 4, abs=0.004)
    assert (result.low, result.high) == (pytest.approx(0.0), pytest.approx(1 / 9))


def test_a_negative_quality_gives_a_final_of_zero_in_a_resample() -> None:
    # Issue 15: quality is the signed mean cosine. As above, but B's adjust cosine on y is -1/2
    # (an opposed answer). B's adjust quality is 1 on {x, x}, (1 - 1/2) / 2 = 1/4 on {x, y} and
    # -1/2 on {y, y}; its final 1, 2 * 1/4 / (5/4) = 2/5, and 0 (quality not positive; the plain
    # formula would give 2 * -1/2 / (1/2) = -2); its overall 1, (2/5 + 2) / 3 = 4/5 and 2/3;
    # A - B is 0, 1/5 or 1/3 with probabilities 1/4, 1/2, 1/4.
    a = perfect(["x", "y"])
    b = [used("y", "adjust", similarity=-0.5) if (s.intent_key, s.tool) == ("y", "adjust")
         else s for s in a]
    result = paired_bootstrap(a, b, resamples=4000, seed=3)
    assert result.observed == pytest.approx(1 / 5)
    drawn_y = resample_weights(2, 4000, 3)[:, 1].astype(int)
    by_hand = np.array([0.0, 1 / 5, 1 / 3])[drawn_y]
    assert result.mean == pytest.approx(by_hand.mean())
    assert result.mean == pytest.approx((1 / 5) / 2 + (1 / 3) / 4, abs=0.004)
    assert (result.low, result.high) == (pytest.approx(0.0), pytest.approx(1 / 3))
    assert result.n_undefined == 0


def test_a_run_better_on_every_intent_has_an_interval_above_zero() -> None:
    keys = [f"i{n}" for n in range(40)]
    better = perfect(keys)
    worse = [used(key, tool, similarity=0.4 + 0.01 * n) for n, key in enumerate(keys)
             for tool in TOOLS]
    result = paired_bootstrap(better, worse)
    assert result.low is not None and result.low > 0 and result.excludes_zero
    backwards = paired_bootstrap(worse, better)
    assert backwards.high is not None and backwards.high < 0
    assert backwards.observed == pytest.approx(-result.observed)


def reference_differences(a: list[IntentScore], b: list[IntentScore], weights: np.ndarray,
                          metric: str) -> list[float | None]:
    """Each resample recomputed with the paper's metrics (workbench.metrics), one at a time."""
    keys = paired_keys(a, b)
    out: list[float | None] = []
    for row in weights:
        drawn = [key for key, times in zip(keys, row, strict=True) for _ in range(int(times))]
        values = []
        for side in (a, b):
            by_key = {}
            for score in side:
                by_key.setdefault(score.intent_key, []).append(score)
            subset = subset_score("All", [s for key in drawn for s in by_key[key]])
            values.append(subset.overall if metric == OVERALL else subset.tools[metric].final)
        out.append(None if None in values else values[0] - values[1])
    return out


@pytest.mark.parametrize("metric", [OVERALL, "adjust", "filter"])
def test_every_resample_matches_the_papers_metrics_recomputed_directly(metric: str) -> None:
    rng = np.random.default_rng(11)
    keys = [f"i{n}" for n in range(25)]

    def run() -> list[IntentScore]:
        scores = []
        for key in keys:
            for tool in TOOLS:
                teacher, student = rng.random() < 0.8, rng.random() < 0.7
                # Signed cosines for the vector tools (SPEC 5): some resamples' quality is
                # negative, where the final must be 0 as in metrics.tool_score.
                similarity = (float(rng.integers(0, 2)) if tool == "filter"
                              else float(rng.uniform(-1, 1)))
                scores.append(used(key, tool, similarity, teacher, student))
        return scores

    a, b = run(), run()
    result = paired_bootstrap(a, b, metric=metric, resamples=200, seed=5)
    reference = reference_differences(a, b, resample_weights(len(keys), 200, 5), metric)
    defined = np.array([d for d in reference if d is not None])
    assert result.n_undefined == reference.count(None)
    assert result.mean == pytest.approx(defined.mean())
    assert (result.low, result.high) == (pytest.approx(np.percentile(defined, 2.5)),
                                         pytest.approx(np.percentile(defined, 97.5)))
    whole = reference_differences(a, b, np.ones((1, len(keys))), metric)[0]
    assert result.observed == pytest.approx(whole)


def test_a_score_undefined_on_the_intents_themselves_is_reported_as_undefined() -> None:
    # No side ever uses selective_adjust: its final, and so the overall, has no denominator.
    keys = ["x", "y", "z"]
    a = [used(k, t, teacher=t != "selective_adjust", student=t != "selective_adjust")
         for k in keys for t in TOOLS]
    result = paired_bootstrap(a, list(a))
    assert (result.observed, result.mean, result.low, result.high) == (None, None, None, None)
    assert paired_bootstrap(a, list(a), metric="adjust").observed == 0.0


def test_only_intents_both_runs_scored_are_paired_and_bad_input_is_refused() -> None:
    a, b = perfect(["x", "y", "z"]), perfect(["y", "z", "w"])
    assert paired_keys(a, b) == ["y", "z"]
    assert paired_bootstrap(a, b).n_intents == 2
    with pytest.raises(ValueError, match="share no scored intent"):
        paired_bootstrap(perfect(["x"]), perfect(["y"]))
    with pytest.raises(ValueError, match="two adjust scores"):
        paired_bootstrap(a + [used("x", "adjust")], b)
    with pytest.raises(ValueError, match="unknown score"):
        paired_bootstrap(a, b, metric="exposure")


def test_the_same_seed_gives_the_same_interval() -> None:
    keys = [f"i{n}" for n in range(20)]
    a = [used(k, t, similarity=0.5 + 0.02 * n) for n, k in enumerate(keys) for t in TOOLS]
    b = [used(k, t, similarity=0.9 - 0.02 * n) for n, k in enumerate(keys) for t in TOOLS]
    assert paired_bootstrap(a, b, seed=1) == paired_bootstrap(a, b, seed=1)
    assert paired_bootstrap(a, b, seed=1).low != paired_bootstrap(a, b, seed=2).low


# ---------------------------------------------------------------------------- from the store

def test_reference_lines_and_the_difference_of_two_stored_evaluations(tmp_path) -> None:
    from pipelines.compare import ReferenceLinesConfig, reference_lines, run_difference
    from tests.conftest import curated_store
    from workbench.errors import WorkbenchError
    from workbench.store.evaluations import latest_baselines

    store = curated_store(tmp_path, second_outputs=True)     # 3 test intents
    lines = reference_lines(ReferenceLinesConfig(), store)
    with store.session() as session:
        stored = latest_baselines(session, 1)
    assert (lines.version_id, lines.ceiling_evaluation_id, lines.floor_evaluation_id) == (
        1, stored["self_consistency"]["evaluation_id"], stored["baseline"]["evaluation_id"])
    # The tiny world never uses selective_adjust: the overall has no denominator.
    assert lines.ceiling_overall is None and lines.floor_overall is None

    floor = lines.floor_evaluation_id
    same = run_difference(store, floor, floor, metric="adjust").bootstrap
    assert (same.n_intents, same.observed, same.low, same.high) == (3, 0.0, 0.0, 0.0)
    undefined = run_difference(store, floor, floor).bootstrap
    assert undefined.observed is None
    with pytest.raises(WorkbenchError, match="evaluation 999 has no stored scores"):
        run_difference(store, floor, 999)
