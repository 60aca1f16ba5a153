"""What the run comparison needs beyond each run's own evaluation: the reference lines (the
teacher's self-consistency as the ceiling, the constant answer as the floor, computed by
`evaluate.baselines`) and the difference between two runs with its noise (a paired bootstrap
over the test intents both evaluations scored, `workbench.bootstrap`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipelines import evaluate
from workbench.bootstrap import OVERALL, RESAMPLES, SEED, BootstrapResult, paired_bootstrap
from workbench.errors import WorkbenchError
from workbench.metrics import IntentScore
from workbench.progress import Progress
from workbench.store import Store
from workbench.store.evaluations import evaluation_intent_scores


@dataclass(frozen=True)
class ReferenceLinesConfig:
    """Compute the ceiling and the floor on a dataset version's test split."""

    version: int | None = None          # None: the current version


@dataclass(frozen=True)
class ReferenceLinesResult:
    version_id: int
    ceiling_evaluation_id: int
    floor_evaluation_id: int
    ceiling_overall: float | None       # on All; None where undefined
    floor_overall: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reference_lines(config: ReferenceLinesConfig, store: Store,
                    progress: Progress | None = None) -> ReferenceLinesResult:
    """Store the ceiling and floor evaluations (what `workbench baselines` does)."""
    if progress is not None:
        progress("baselines", 0, 1)
    result = evaluate.baselines(config.version, store)
    if progress is not None:
        progress("baselines", 1, 1)
    ceiling, floor = result.self_consistency, result.constant
    return ReferenceLinesResult(ceiling.version_id, ceiling.evaluation_id, floor.evaluation_id,
                                ceiling.subsets[0].overall, floor.subsets[0].overall)


@dataclass(frozen=True)
class RunDifference:
    """Evaluation A's score minus evaluation B's over the test intents both scored."""

    evaluation_a: int
    evaluation_b: int
    n_only_a: int                       # intents only one side scored: left out of the pairing
    n_only_b: int
    bootstrap: BootstrapResult


def _intent_scores(store: Store, evaluation_id: int) -> list[IntentScore]:
    with store.session() as session:
        rows = evaluation_intent_scores(session, evaluation_id)
    if not rows:
        raise WorkbenchError(f"evaluation {evaluation_id} has no stored scores")
    return [IntentScore(row["intent_key"], row["tool"], bool(row["teacher_used"]),
                        bool(row["student_used"]), row["similarity"], row["cosine"],
                        row["intensity_error"]) for row in rows]


def run_difference(store: Store, evaluation_a: int, evaluation_b: int, metric: str = OVERALL,
                   resamples: int = RESAMPLES, seed: int = SEED) -> RunDifference:
    """The paired bootstrap of two stored evaluations (`metric`: 'overall' or a tool); a
    WorkbenchError says why two evaluations cannot be paired."""
    a, b = _intent_scores(store, evaluation_a), _intent_scores(store, evaluation_b)
    try:
        result = paired_bootstrap(a, b, metric=metric, resamples=resamples, seed=seed)
    except ValueError as error:
        raise WorkbenchError(f"evaluations {evaluation_a} and {evaluation_b}: {error}") from None
    keys_a, keys_b = {s.intent_key for s in a}, {s.intent_key for s in b}
    return RunDifference(evaluation_a, evaluation_b, len(keys_a - keys_b), len(keys_b - keys_a),
                         result)
