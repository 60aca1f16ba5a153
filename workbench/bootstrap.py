"""The paired bootstrap of two evaluations on the same test intents: how much of the difference
between two runs' scores is noise.

The paper's scores are not means of per-intent numbers (tool selection is an F1 over the set,
quality a mean over its TP intents), so each resample draws test intents with replacement, the
same draw for both runs (paired), and recomputes the score of SPEC 5 on it for each run. The
per-tool counts of a resample are a weighted sum of per-intent indicators, so all resamples are
computed at once as one matrix product: weights (R, n) @ indicators (n, 4 * tools).
Imports numpy and `metrics` only: no duckdb, no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workbench.metrics import IntentScore
from workbench.tools import TOOLS

OVERALL = "overall"              # the score compared: the overall, or one tool's final
RESAMPLES = 1000
SEED = 0
LEVEL = 0.95


@dataclass(frozen=True)
class BootstrapResult:
    """Score of A minus score of B over `n_intents` paired intents. `observed` is the difference
    on the intents themselves; `mean`, `low` and `high` are the mean and the central `level`
    interval of the resampled differences. A resample where a score is undefined (a zero
    denominator: no intent used the tool, or none was TP) is left out and counted in
    `n_undefined`; every number is None when the observed difference itself is undefined."""

    metric: str
    n_intents: int
    resamples: int
    seed: int
    level: float
    observed: float | None
    mean: float | None
    low: float | None
    high: float | None
    n_undefined: int

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies wholly above or wholly below 0."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def _by_intent(scores: Sequence[IntentScore]) -> dict[str, dict[str, IntentScore]]:
    found: dict[str, dict[str, IntentScore]] = {}
    for score in scores:
        tools = found.setdefault(score.intent_key, {})
        if score.tool in tools:
            raise ValueError(f"intent {score.intent_key!r} has two {score.tool} scores: a paired "
                             "bootstrap needs one answer per intent")
        tools[score.tool] = score
    return found


_COLUMNS = ("tp", "fp", "fn", "tp_similarity")      # per tool, in TOOLS order


def _indicators(scores: dict[str, dict[str, IntentScore]], keys: Sequence[str]) -> np.ndarray:
    """(n, 4 * tools): per paired intent and tool, 1.0 where the outcome is TP, FP, FN, and the
    similarity where it is TP (else 0), in `_COLUMNS` order tool by tool. A weighted sum of its
    rows gives a resample's counts, so all resamples are one matrix product."""
    columns = []
    for tool in TOOLS:
        rows = [scores[key][tool] for key in keys]
        tp = np.array([s.outcome == "TP" for s in rows], dtype=float)
        columns += [tp, np.array([s.outcome == "FP" for s in rows], dtype=float),
                    np.array([s.outcome == "FN" for s in rows], dtype=float),
                    tp * np.array([s.similarity or 0.0 for s in rows], dtype=float)]
    return np.stack(columns, axis=1)


def resample_weights(n_intents: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, n_intents): how many times each intent is drawn in each resample of
    `n_intents` draws with replacement (seeded, so a comparison reads the same every time)."""
    draws = np.random.default_rng(seed).integers(0, n_intents, size=(resamples, n_intents))
    cells = draws + n_intents * np.arange(resamples)[:, None]    # (R, n) flat (row, intent)
    counts = np.bincount(cells.ravel(), minlength=resamples * n_intents)
    return counts.reshape(resamples, n_intents).astype(float)


def _tool_finals(counts: np.ndarray) -> np.ndarray:
    """(R,) one tool's final score from its (R, 4) weighted counts (NaN where undefined), as
    `metrics.tool_score`: selection 2TP / (2TP + FP + FN), quality the mean TP similarity
    (signed: it can be negative), final their harmonic mean when both are positive, else 0."""
    tp, fp, fn, similarity = counts.T
    with np.errstate(divide="ignore", invalid="ignore"):
        selection = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        quality = np.where(tp > 0, similarity / tp, np.nan)
        positive = (selection > 0) & (quality > 0)          # False where either is NaN
        final = np.where(positive, 2 * selection * quality / (selection + quality), 0.0)
        return np.where(np.isnan(selection) | np.isnan(quality), np.nan, final)


def _scores(weights: np.ndarray, indicators: np.ndarray, metric: str) -> np.ndarray:
    """(R,) the score of each weighting of the intents: (R, n) @ (n, 4 * tools)."""
    counts = weights @ indicators
    width = len(_COLUMNS)
    finals = {tool: _tool_finals(counts[:, i * width:(i + 1) * width])
              for i, tool in enumerate(TOOLS)}
    if metric == OVERALL:       # NaN when any tool's final is undefined, as SubsetScore.overall
        return np.mean([finals[tool] for tool in TOOLS], axis=0)
    return finals[metric]


def paired_keys(a: Sequence[IntentScore], b: Sequence[IntentScore]) -> list[str]:
    """The intents both evaluations scored for every tool, sorted (the order resamples use)."""
    first, second = _by_intent(a), _by_intent(b)
    return sorted(key for key in first.keys() & second.keys()
                  if set(first[key]) == set(second[key]) == set(TOOLS))


def paired_bootstrap(a: Sequence[IntentScore], b: Sequence[IntentScore], *,
                     metric: str = OVERALL, resamples: int = RESAMPLES, seed: int = SEED,
                     level: float = LEVEL) -> BootstrapResult:
    """Score of A minus score of B (`metric`: 'overall' or a tool's final), with its bootstrap
    mean and central `level` interval over `resamples` paired resamples of the intents both
    scored. Each score list holds one IntentScore per intent and tool."""
    if metric != OVERALL and metric not in TOOLS:
        raise ValueError(f"unknown score {metric!r}; choose {OVERALL} or one of "
                         f"{', '.join(TOOLS)}")
    if resamples < 1 or not 0 < level < 1:
        raise ValueError("resamples must be at least 1 and level in (0, 1)")
    keys = paired_keys(a, b)
    if not keys:
        raise ValueError("the two evaluations share no scored intent: nothing to pair")
    first, second = _by_intent(a), _by_intent(b)
    sides = [_indicators(side, keys) for side in (first, second)]
    everything = np.ones((1, len(keys)))
    observed = float((_scores(everything, sides[0], metric)
                      - _scores(everything, sides[1], metric))[0])
    if np.isnan(observed):
        return BootstrapResult(metric, len(keys), resamples, seed, level, None, None, None, None,
                               resamples)
    weights = resample_weights(len(keys), resamples, seed)
    differences = _scores(weights, sides[0], metric) - _scores(weights, sides[1], metric)
    defined = differences[~np.isnan(differences)]
    if defined.size == 0:
        return BootstrapResult(metric, len(keys), resamples, seed, level, observed, None, None,
                               None, resamples)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return BootstrapResult(metric, len(keys), resamples, seed, level, observed,
                           float(defined.mean()), float(low), float(high),
                           resamples - int(defined.size))
