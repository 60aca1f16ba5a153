"""Training runs (SPEC 8): the table `runs`, one row per trained and saved student.

A run's row is written in the transaction that renames its model folder into place, so a row
always has its model. `load_run` loads the model too; the students (and torch) are imported
only inside it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError
from workbench.store.connection import Session, Store

if TYPE_CHECKING:
    from workbench.embeddings import Encoder
    from workbench.students import Student


def record_run(session: Session, *, run_id: str, student: str, config: str, version_id: int,
               n_train: int, started_at: datetime, finished_at: datetime, duration_s: float,
               device: str, size_bytes: int, artifact_path: str, note: str) -> None:
    """The row of a run trained on `version_id`'s training split (`config` is JSON)."""
    session.execute(
        "INSERT INTO runs (run_id, student, config, version_id, split, n_train, started_at,"
        " finished_at, duration_s, device, size_bytes, artifact_path, note) "
        "VALUES (?, ?, ?, ?, 'train', ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, student, config, version_id, n_train, started_at, finished_at, duration_s,
         device, size_bytes, artifact_path, note])


def run_ids(session: Session) -> set[str]:
    """The ids of every recorded run."""
    return {row["run_id"] for row in session.query("SELECT run_id FROM runs")}


def find_run(store: Store, run_id: str | None) -> dict:
    """A run row by id (or unique prefix), or the latest run when `run_id` is None."""
    with store.session(read_only=True) as session:
        if run_id is None:
            row = session.first("SELECT * FROM runs ORDER BY started_at DESC LIMIT 1")
            if row is None:
                raise WorkbenchError("there are no training runs yet; run `workbench train`")
            return row
        rows = session.query("SELECT * FROM runs WHERE starts_with(run_id, ?) "
                             "ORDER BY started_at DESC", [run_id])
    if not rows:
        raise WorkbenchError(f"no training run {run_id!r}; list them with `workbench runs`")
    if len(rows) > 1 and rows[0]["run_id"] != run_id:
        raise WorkbenchError(f"{run_id!r} matches {len(rows)} runs; give more of the id")
    return rows[0]


def load_run(store: Store, run_id: str | None,
             encoder: Encoder | None = None) -> tuple[dict, Student]:
    """A run row (as `find_run`) and its student, loaded from the run's folder."""
    from workbench.students import load_student

    row = find_run(store, run_id)
    folder = Path(row["artifact_path"])
    if not folder.exists():
        raise WorkbenchError(f"the model of run {row['run_id']} is missing: {folder}")
    return row, load_student(folder, encoder=encoder)


def list_runs(store: Store) -> list[dict]:
    """Every run, oldest first."""
    with store.session(read_only=True) as session:
        return session.query("SELECT * FROM runs ORDER BY started_at")


def recent_runs(session: Session) -> list[dict]:
    """Training runs, newest first: run_id, student, version_id, n_train, started_at, note."""
    return session.query(
        "SELECT run_id, student, version_id, n_train, started_at, note FROM runs "
        "ORDER BY started_at DESC, run_id DESC")
