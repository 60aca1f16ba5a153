"""Slices of a run (`workbench.slices`): the run's training intents, embedded (the embedding
cache, all-MiniLM-L6-v2), clustered and scored from its mining evaluation (kind 'mining': the run
on its own training split), so slices never predict again once a run has been mined."""

from __future__ import annotations

from pipelines import augment
from workbench.embeddings import Encoder
from workbench.errors import WorkbenchError
from workbench.progress import Progress
from workbench.slices import DEFAULT_GAP, Slice, SliceIntent, SlicesResult, stored_scores
from workbench.store import Store, evaluations
from workbench.store.versions import Split, version_rows

__all__ = ["DEFAULT_GAP", "Slice", "SliceIntent", "SlicesResult", "compute_slices"]


def compute_slices(store: Store, *, run_id: str | None = None,
                   evaluation_id: int | None = None, encoder: Encoder | None = None,
                   k: int | None = None, seed: int = 0, gap: float = DEFAULT_GAP,
                   model: str | None = None, progress: Progress | None = None) -> SlicesResult:
    """The slices of a mining evaluation: the one named, else the newest of the run (`run_id`
    or a prefix; None: the latest run). A run never mined is mined first (its prediction on
    the training split is stored as a mining evaluation), unless the store is read-only."""
    if evaluation_id is None:
        from workbench.store.runs import find_run

        run = find_run(store, run_id)
        with store.session() as session:
            found = evaluations.latest_mining_evaluation(session, run["run_id"])
        if found is None:
            if store.read_only:
                raise WorkbenchError(
                    f"run {run['run_id']} has not been mined yet: run `workbench slices --run "
                    f"{run['run_id']}` or an augmentation round of it first")
            evaluation_id = augment.mine_run(run["run_id"], store, encoder, progress,
                                             model=model).evaluation_id
        else:
            evaluation_id = int(found["evaluation_id"])
    with store.session() as session:
        found = evaluations.evaluation_row(session, evaluation_id)
        if found is None:
            raise WorkbenchError(f"there is no evaluation #{evaluation_id}")
        if found["kind"] != "mining":
            raise WorkbenchError(f"evaluation #{evaluation_id} is a {found['kind']} evaluation "
                                 f"of the {found['split']} split; slices need a mining "
                                 "evaluation (a run on its own training split)")
        rows = version_rows(session, found["version_id"], Split.TRAIN)
        scores = stored_scores(evaluations.evaluation_intent_scores(session, evaluation_id))
    scored = {score.intent_key for score in scores}
    rows = [row for row in rows if row["intent_key"] in scored]
    return augment.slices_of_rows(store, rows, scores, encoder, model, k, seed, gap, progress,
                                  found["source"], evaluation_id, found["version_id"])
