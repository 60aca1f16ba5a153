"""Train a student on a dataset version's training split and record the run (SPEC 8).

The store is open only to read the training rows and, at the end, to write the run row: the
training itself runs with the file closed, so the app and other commands keep working. A run that
fails leaves neither a row nor an artifact folder behind; one that is killed leaves a folder that
the next `train` removes (see `remove_orphans`).

Under `accelerate launch` (or `torchrun`) with several processes, every process runs `run`: the
main one picks the dataset version and the run id and hands them to the others; heads and
seq2seq then train data-parallel (`workbench.students.parallel`), and only the main process saves
the model and writes the database (DuckDB takes one writer per file) while the others wait for it
and return its result. The retrieval student has no gradient step: the main process trains it
alone and the others return at once. The run records how many processes trained it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.embeddings import Encoder
from workbench.errors import StoreReadOnlyError, WorkbenchError
from workbench.outputs import writable_problem
from workbench.processes import pid_alive
from workbench.progress import Progress
from workbench.store import Store, runs
from workbench.store.versions import Split, resolve_version, version_rows
from workbench.students import STUDENT_KINDS, make_student
from workbench.students.base import TrainingData, trains_data_parallel
from workbench.students.parallel import ProcessGroup
from workbench.tools import answer_from_json


@dataclass(frozen=True)
class TrainConfig:
    student: str
    version: int | None = None                 # None: the current version
    student_config: dict[str, Any] = field(default_factory=dict)
    runs_dir: Path | None = None               # None: a 'runs' folder beside the database
    note: str = ""


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    student: str
    version_id: int
    n_train: int
    duration_s: float
    artifact_path: Path
    processes: int = 1                 # how many processes trained it (accelerate launch)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "artifact_path": str(self.artifact_path)}


def run_config(student_config: dict[str, Any], processes: int) -> str:
    """The JSON stored in a run's `config`: the student's settings, and how many processes
    trained it (`processes`, beside the settings: it is not one of them)."""
    return json.dumps({**student_config, "processes": processes}, sort_keys=True)


def run_processes(row: dict[str, Any]) -> int:
    """How many processes trained a run, from its row; 1 for runs recorded before it was
    recorded (every run was trained by one process then)."""
    try:
        return int(json.loads(row["config"]).get("processes", 1))
    except (TypeError, ValueError, AttributeError):
        return 1


def runs_dir(store: Store, configured: Path | None = None) -> Path:
    return Path(configured) if configured else store.path.parent / "runs"


def training_data(store: Store, version: int | None) -> tuple[int, TrainingData]:
    with store.session(read_only=True) as session:
        version_id = resolve_version(session, version)
        rows = version_rows(session, version_id, Split.TRAIN)
    if not rows:
        raise WorkbenchError(f"dataset version {version_id} has no training rows")
    return version_id, TrainingData(
        intents=[row["intent_text"] for row in rows],
        answers=[answer_from_json(row["adjust"], row["selective_adjust"], row["filter"])
                 for row in rows])


# A run is saved into `.saving-<run id>-<pid>` beside the finished runs and renamed to
# `<run id>` inside the transaction that records it, so a killed `train` leaves at most a
# `.saving-` folder of a dead process, or (killed between the rename and the commit) a run
# folder with no row; both are removed when the next `train` starts. A run folder carries a
# note naming its database, so databases that share one runs folder leave each other's alone.
SAVING_PREFIX = ".saving-"
OWNER_FILE = ".workbench-database"
RUN_ID = re.compile(r"\d{8}-\d{6}-\w+-[0-9a-f]{4}")


def _saving_pid(folder: Path) -> int | None:
    found = re.fullmatch(re.escape(SAVING_PREFIX) + r".+-(\d+)", folder.name)
    return int(found.group(1)) if found else None


def _owner(folder: Path) -> str | None:
    try:
        return (folder / OWNER_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def remove_orphans(store: Store, folder: Path) -> list[Path]:
    """Remove what killed `train`s left in the runs folder: `.saving-` folders of processes
    that are gone, and run folders of this database with no row in `runs`. Returns them."""
    if not folder.is_dir():
        return []
    # List before querying: a folder renamed into place by a concurrent `train` was renamed
    # while that process held the database, so its row is committed before our query can run.
    listed = sorted(folder.iterdir())
    with store.session(read_only=True) as session:
        recorded = runs.run_ids(session)
    ours = str(store.path.resolve())
    orphans = []
    for path in listed:
        if not path.is_dir() or path.is_symlink():
            continue
        pid = _saving_pid(path)
        if pid is not None:
            if not pid_alive(pid):
                orphans.append(path)
        elif RUN_ID.fullmatch(path.name) and path.name not in recorded and _owner(path) == ours:
            orphans.append(path)
    for path in orphans:
        shutil.rmtree(path, ignore_errors=True)
        print(f"removed {path}: the model of an interrupted `train` (no run was recorded)",
              file=sys.stderr)
    return orphans


def check_can_record(store: Store, folder: Path) -> None:
    """Fail before training, not after it, when the model or the run row cannot be written."""
    store.check_writable()
    problem = writable_problem(folder)
    if problem:
        raise StoreReadOnlyError(f"cannot save models into {folder}: {problem}. Fix the "
                                 "permissions, or pass another runs folder")


def run(config: TrainConfig, store: Store, progress: Progress | None = None,
        encoder: Encoder | None = None) -> TrainResult:
    """Train a student on a version's training split, save it and record the run.

    `encoder` shares an already loaded sentence encoder (experiments load it once). Under a
    launch of several processes every process calls this and gets the main process's result
    (see the module docstring); pass `progress` on the main process only."""
    if config.student not in STUDENT_KINDS:
        raise WorkbenchError(f"unknown student {config.student!r}; choose one of "
                             f"{', '.join(STUDENT_KINDS)}")
    student = make_student(config.student, config.student_config, encoder=encoder)
    group = ProcessGroup(cpu=getattr(student, "device", "cpu") == "cpu")
    together = trains_data_parallel(student)    # else the main process trains it alone
    processes = group.processes if together else 1
    root = runs_dir(store, config.runs_dir)
    chosen = None
    if group.main:
        check_can_record(store, root)
        version_id, data = training_data(store, config.version)
        remove_orphans(store, root)
        started_at = datetime.now(UTC)
        run_id = f"{started_at:%Y%m%d-%H%M%S}-{config.student}-{secrets.token_hex(2)}"
        chosen = (version_id, run_id, len(data.intents))
    # The others read the version the main process chose (a `curate` may land meanwhile).
    version_id, run_id, n_train = group.share(chosen)
    folder = root / run_id
    if not group.main:
        if not together:
            # Retrieval has no gradient step: the main process trains it alone. The others
            # return at once rather than wait in a collective that times out (30 minutes on
            # gloo, 10 on NCCL) while a large training set is embedded.
            return TrainResult(run_id, config.student, version_id, n_train, 0.0, folder, 1)
        _, data = training_data(store, version_id)
    saving = root / f"{SAVING_PREFIX}{run_id}-{os.getpid()}"
    started = time.perf_counter()
    try:
        student.train(data, progress)
        duration = time.perf_counter() - started
        if not group.main:
            return group.share(None)    # wait for the main process to save and record
        saving.mkdir(parents=True)
        (saving / OWNER_FILE).write_text(str(store.path.resolve()) + "\n", encoding="utf-8")
        student.save(saving)
        with store.atomic() as session:
            runs.record_run(
                session, run_id=run_id, student=config.student,
                config=run_config(student.config_dict(), processes),
                version_id=version_id, n_train=len(data.intents), started_at=started_at,
                finished_at=datetime.now(UTC), duration_s=duration,
                device=getattr(student, "device", "cpu"), size_bytes=student.size_bytes(),
                artifact_path=str(folder), note=config.note)
            os.rename(saving, folder)   # last: a failed rename rolls the row back
    except BaseException:
        if group.main:
            shutil.rmtree(saving, ignore_errors=True)
            shutil.rmtree(folder, ignore_errors=True)
        raise
    result = TrainResult(run_id, config.student, version_id, len(data.intents), duration, folder,
                         processes)
    return group.share(result) if together else result
