"""Background jobs (training, evaluation, augmentation) that run outside the app's process.

A job is a folder beside the database, `<db dir>/jobs/<job id>/`, not rows in DuckDB: progress
events are frequent, the job process needs the database file for its own short writes, and the
app must never hold the file. Each folder holds

    job.json        id, kind, config, status, timestamps, pid/pgid, result or error (replaced
                    atomically, read-modify-write under a file lock)
    progress.jsonl  one {"t", "stage", "done", "total"} per line, throttled per stage
    log.txt         the job process's stdout and stderr, tracebacks included

This module is a layer above `pipelines/` (it starts them), below the app and the CLI, which
both use it; it imports no UI framework, and the pipelines only inside the functions that run a
job, so importing it stays cheap.

`submit` validates the config in the caller (by constructing the pipeline's config object) and
starts `python -m workbench.app.jobs run FOLDER --db DB` in its own session; the child runs the
pipeline and writes the outcome. It refuses to start a second job of the same kind and settings
while one is unfinished (`JobAlreadyRunningError`, naming it): the check and the new job's folder
are made under one lock file in the jobs folder, so two processes cannot both pass it. A job
whose process vanished without writing one (killed for memory, machine restarted) is reported,
and recorded, as failed on the next read. "No half-made
run or dataset version" is each pipeline's own guarantee (it writes in one transaction at the
end and removes its artifacts on any exception, including the cancellation raised on SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import traceback
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import MISSING, asdict, dataclass, fields, is_dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import IO, Any

from workbench.errors import StoreMissingError, WorkbenchError
from workbench.processes import pid_alive
from workbench.progress import Progress

JOB_FILE = "job.json"
PROGRESS_FILE = "progress.jsonl"
LOG_FILE = "log.txt"
LOCK_FILE = "job.lock"
SUBMIT_LOCK_FILE = ".submit.lock"  # in the jobs folder: one submit at a time decides duplicates
PROGRESS_INTERVAL_S = 0.2          # at most ~5 progress events per second per stage
CANCEL_GRACE_S = 5.0               # SIGTERM, then SIGKILL if the job is still alive after this
NEVER_STARTED_S = 60.0             # a queued job with no process after this long has failed
LOST_MESSAGE = "the job process ended without reporting (killed?)"


class JobAlreadyRunningError(WorkbenchError):
    """A job of the same kind and settings is still queued or running; `job` is that job."""

    def __init__(self, message: str, job: Job):
        super().__init__(message)
        self.job = job


class JobKind(str, Enum):
    TRAIN = "train"
    EVALUATE = "evaluate"
    AUGMENT = "augment"
    EXPERIMENT_RQ1 = "experiment_rq1"
    EXPERIMENT_RQ2 = "experiment_rq2"
    BASELINES = "baselines"
    INGEST = "ingest"
    DEMO = "demo"
    CURATE = "curate"
    EMBED_INTENTS = "embed_intents"


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class ProgressEvent:
    t: float                   # unix time
    stage: str                 # e.g. "epoch", "embed", "paraphrase"
    done: int
    total: int | None

    @property
    def fraction(self) -> float | None:
        """done / total in [0, 1], for a progress bar; None when the total is unknown."""
        if not self.total:
            return None
        return min(1.0, max(0.0, self.done / self.total))


@dataclass(frozen=True)
class Job:
    """A job as last read from its folder. Read it again (`load_job`) to see it move."""

    id: str
    kind: JobKind
    config: dict[str, Any]
    status: JobStatus
    created_at: datetime
    folder: Path
    db: Path
    started_at: datetime | None = None
    finished_at: datetime | None = None
    pid: int | None = None
    pgid: int | None = None
    result: dict[str, Any] | None = None
    error: str | None = None           # the message, for failed and cancelled jobs
    error_type: str | None = None      # the exception's class name
    cancel_requested_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        return ((self.finished_at or datetime.now(UTC)) - self.started_at).total_seconds()

    def progress(self) -> dict[str, ProgressEvent]:
        """The latest event of each stage, stages in the order they first reported."""
        latest: dict[str, ProgressEvent] = {}
        for event in self.progress_events():
            latest[event.stage] = event
        return latest

    def progress_events(self) -> list[ProgressEvent]:
        """Every recorded event, oldest first (a line the job is still writing is skipped)."""
        path = self.folder / PROGRESS_FILE
        if not path.exists():
            return []
        events = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                raw = json.loads(line)
                events.append(ProgressEvent(float(raw["t"]), str(raw["stage"]), int(raw["done"]),
                                            None if raw["total"] is None else int(raw["total"])))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
        return events

    def log_tail(self, n_chars: int = 4000) -> str:
        """The end of the job's log. Progress bars redrawn with carriage returns keep only
        their last state, so the text reads as it would have on a terminal."""
        path = self.folder / LOG_FILE
        if not path.exists():
            return ""
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - 4 * n_chars))   # utf-8: at most 4 bytes a character
            text = handle.read().decode("utf-8", errors="replace")
        lines = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n")]
        return "\n".join(lines)[-n_chars:]


# ---------------------------------------------------------------------------- job kinds

@dataclass(frozen=True)
class _Kind:
    config_class: Callable[[], type]               # imported on demand: pipelines are heavy
    run: Callable[[Any, Any, Progress], dict[str, Any]]
    check: Callable[[Any], None] | None = None     # further checks of a built config
    creates_database: bool = False                 # may start before the database exists


def _train_config() -> type:
    from pipelines.train import TrainConfig

    return TrainConfig


def _check_student(student: str, settings: dict[str, Any]) -> None:
    # The student's own config class, not make_student: building a student imports torch.
    from workbench.students import STUDENT_KINDS, _classes

    if student not in STUDENT_KINDS:
        raise WorkbenchError(f"unknown student {student!r}; choose one of "
                             f"{', '.join(STUDENT_KINDS)}")
    _, settings_class = _classes(student)
    _build(settings_class, settings, f"{student} student")


def _check_train(config: Any) -> None:
    _check_student(config.student, config.student_config)


def _run_train(config: Any, store: Any, progress: Progress) -> dict[str, Any]:
    from pipelines import train

    return train.run(config, store, progress).to_dict()


def _evaluate_config() -> type:
    from pipelines.evaluate import EvaluateRunConfig

    return EvaluateRunConfig


def _run_evaluate(config: Any, store: Any, progress: Progress) -> dict[str, Any]:
    from pipelines import evaluate

    return evaluate.evaluate_run(config.run_id, config.version, store).to_dict()


def _augment_config() -> type:
    from pipelines.augment import AugmentConfig

    return AugmentConfig


def _run_augment(config: Any, store: Any, progress: Progress) -> dict[str, Any]:
    from pipelines import augment

    return augment.run(config, store, progress).to_dict()


def _rq1_config() -> type:
    from pipelines.experiments import RQ1Config

    return RQ1Config


def _check_rq1(config: Any) -> None:
    for student in config.students:
        _check_student(student, config.student_configs.get(student, {}))


def _run_rq1(config: Any, store: Any, progress: Progress) -> dict[str, Any]:
    from pipelines import experiments

    return experiments.rq1(config, store, progress).to_dict()


def _rq2_config() -> type:
    from pipelines.experiments import RQ2Config

    return RQ2Config


def _check_rq2(config: Any) -> None:
    _check_student(config.student, config.student_config)


def _run_rq2(config: Any, store: Any, progress: Progress) -> dict[str, Any]:
    from pipelines import experiments

    return experiments.rq2(config, store, progress).to_dict()


def _embed_intents_config() -> type:
    from pipelines.meaning import EmbedIntentsConfig

    return EmbedIntentsConfig


def _run_embed_intents(config: Any, store: Any, progress: Progress) -> dict[str, Any]:
    from pipelines import meaning

    return meaning.run(config, store, progress).to_dict()


def _baselines_config() -> type:
    from pipelines.compare import ReferenceLinesConfig

    return ReferenceLinesConfig


def _run_baselines(config: Any, store: Any, progress: Progress) -> dict[str, Any]:
    from pipelines import compare

    return compare.reference_lines(config, store, progress).to_dict()


def _ingest_config() -> type:
    from pipelines.ingest import IngestConfig

    return IngestConfig


def _check_ingest(config: Any) -> None:
    if not config.paths:
        raise WorkbenchError("the ingest job needs at least one log file")


def _run_ingest(config: Any, store: Any, progress: Progress) -> dict[str, Any]:
    from pipelines import ingest

    return ingest.run(config, store, progress).to_dict()


def _demo_config() -> type:
    from pipelines.demo import DemoRunConfig

    return DemoRunConfig


def demo_refusal(store: Any) -> str | None:
    """Why the demo may not be built into this database, or None when it may: the demo job
    builds only into a missing database or one without requests (a failed upload leaves such a
    file), so synthetic and real requests never mix and no log is ever deleted."""
    if not store.exists:
        return None
    from workbench.store import requests

    with store.session(read_only=True) as session:
        held = requests.log_counts(session)["requests"]
    if not held:
        return None
    return (f"the database {store.path} already holds {held:,} requests: the demo is built only "
            "into a database without logs, so synthetic and real requests never mix. Build it "
            "into another file (workbench demo --db OTHER.duckdb) and open that one "
            "(workbench app --db OTHER.duckdb).")


def _run_demo(config: Any, store: Any, progress: Progress) -> dict[str, Any]:
    from dataclasses import replace as with_changes

    from pipelines import demo

    refusal = demo_refusal(store)           # checked again here: logs may have come meanwhile
    if refusal is not None:
        raise WorkbenchError(refusal)
    # A database without requests is rebuilt (the demo replaces a file only once it is built).
    result = demo.run(with_changes(config, replace=store.exists), store, progress)
    return {"corpus_path": str(result.corpus_path), "ingest": asdict(result.ingest),
            "curate": result.curate.to_dict()}


def _curate_config() -> type:
    from pipelines.curate import CurateConfig

    return CurateConfig


def _run_curate(config: Any, store: Any, progress: Progress) -> dict[str, Any]:
    from pipelines import curate

    return curate.run(config, store).to_dict()


KINDS: dict[JobKind, _Kind] = {
    JobKind.TRAIN: _Kind(_train_config, _run_train, _check_train),
    JobKind.EVALUATE: _Kind(_evaluate_config, _run_evaluate),
    JobKind.AUGMENT: _Kind(_augment_config, _run_augment),
    JobKind.EXPERIMENT_RQ1: _Kind(_rq1_config, _run_rq1, _check_rq1),
    JobKind.EXPERIMENT_RQ2: _Kind(_rq2_config, _run_rq2, _check_rq2),
    JobKind.BASELINES: _Kind(_baselines_config, _run_baselines),
    JobKind.INGEST: _Kind(_ingest_config, _run_ingest, _check_ingest, creates_database=True),
    JobKind.DEMO: _Kind(_demo_config, _run_demo, creates_database=True),
    JobKind.CURATE: _Kind(_curate_config, _run_curate),
    JobKind.EMBED_INTENTS: _Kind(_embed_intents_config, _run_embed_intents),
}


def _job_kind(kind: str | JobKind) -> JobKind:
    try:
        return JobKind(kind)
    except ValueError:
        raise WorkbenchError(f"unknown job kind {kind!r}; choose one of "
                             f"{', '.join(k.value for k in JobKind)}") from None


def build_config(kind: str | JobKind, config: dict[str, Any]) -> Any:
    """The pipeline's config object for a job's JSON config; WorkbenchError names what is wrong.

    `submit` calls this before starting anything, and the job process again to run."""
    spec = KINDS[_job_kind(kind)]
    built = _build(spec.config_class(), config, f"{JobKind(kind).value} job")
    if spec.check is not None:
        spec.check(built)
    return built


def _build(cls: type, config: Any, what: str) -> Any:
    """The dataclass `cls` from a JSON mapping, each value checked against its type (JSON
    arrays become tuples, strings enums or paths); WorkbenchError names what is wrong."""
    from pydantic import TypeAdapter, ValidationError

    if not isinstance(config, dict):
        raise WorkbenchError(f"the {what}'s settings must be a mapping, got {config!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise WorkbenchError(f"unknown setting(s) {', '.join(unknown)} for the {what}; its "
                             f"settings are {', '.join(known)}")
    _check_nested_names(cls, config, what)
    missing = [name for name, f in known.items() if name not in config
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise WorkbenchError(f"the {what} needs the setting(s) {', '.join(missing)}")
    try:
        # Strict, from JSON: no "2" for 2 nor true for 1, but what JSON cannot spell is read as
        # the type says (a list as a tuple, a string as an enum member or a path).
        return TypeAdapter(cls).validate_json(json.dumps(config), strict=True)
    except ValidationError as error:
        raise WorkbenchError(_explain(error, typing.get_type_hints(cls), what)) from None
    except (TypeError, ValueError) as error:    # the config class's own checks
        raise WorkbenchError(f"{what}: {error}") from None


def _check_nested_names(cls: type, config: dict[str, Any], what: str, where: str = "") -> None:
    """A misspelt name inside a nested setting (`{"mining": {"stratgy": ...}}`) is an error,
    not silently the default, as pydantic would have it."""
    hints = typing.get_type_hints(cls)
    for name, value in config.items():
        hint = hints.get(name)
        if isinstance(value, dict) and isinstance(hint, type) and is_dataclass(hint):
            known = [f.name for f in fields(hint)]
            unknown = sorted(set(value) - set(known))
            if unknown:
                raise WorkbenchError(
                    f"unknown setting(s) {', '.join(unknown)} in the {what}'s setting "
                    f"{where + name!r}; its settings are {', '.join(known)}")
            _check_nested_names(hint, value, what, f"{where}{name}.")


def _explain(error: Any, hints: dict[str, Any], what: str) -> str:
    """The first problem pydantic found, in the words of a settings error."""
    found = error.errors(include_url=False)[0]
    name, *path = found["loc"] or ("",)
    if name not in hints:                       # the config class's own checks
        cause = found.get("ctx", {}).get("error")
        return f"{what}: {cause if cause is not None else found['msg']}"
    hint, dotted, items = hints[name], name, ""
    for step in path:
        if isinstance(step, int) and typing.get_origin(hint) is tuple:  # 'students'[1]
            hint = (typing.get_args(hint) or (Any,))[0]
            items += f"[{step}]"
        elif isinstance(step, str) and isinstance(hint, type) and is_dataclass(hint):
            nested = typing.get_type_hints(hint)      # into a nested setting: 'mining.strategy'
            if step not in nested:
                break
            hint, dotted = nested[step], f"{dotted}.{step}"
    where = f"the {what}'s setting {dotted!r}{items}"
    return f"{where} must be {_expected(hint)}, got {found['input']!r}"


def _expected(hint: Any) -> str:
    """'int | None', 'str', 'one of auto, offline, llm' (an enum)."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    members = typing.get_args(hint) if union else (hint,)
    if not union and isinstance(hint, type) and issubclass(hint, Enum):
        return "one of " + ", ".join(str(member.value) for member in hint)
    if not union and isinstance(hint, type) and is_dataclass(hint):
        return f"a mapping of {', '.join(f.name for f in fields(hint))}"
    return " | ".join("None" if member is type(None)
                      else getattr(typing.get_origin(member) or member, "__name__", str(member))
                      for member in members)


# ---------------------------------------------------------------------------- the job folder

def jobs_dir(db_path: str | Path | None = None) -> Path:
    """The jobs folder beside the database (`WORKBENCH_DB` or the default when None)."""
    return _db(db_path).parent / "jobs"


def _db(db_path: str | Path | None) -> Path:
    if db_path is None:
        from workbench.store import default_db_path

        db_path = default_db_path()
    return Path(db_path).resolve()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _read(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / JOB_FILE).read_text())
    return data


def _write(folder: Path, data: dict[str, Any]) -> None:
    """Replace job.json in one step, so a reader never sees half a file."""
    temporary = folder / f".{JOB_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    temporary.write_text(json.dumps(data, indent=2, default=str))
    os.replace(temporary, folder / JOB_FILE)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the job's lock file: the app, `cancel` and the job process all read-modify-write."""
    import fcntl

    with (folder / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield                                    # closing the file releases the lock


def _update(folder: Path, changes: dict[str, Any],
            only_if: Callable[[dict[str, Any]], bool] | None = None) -> bool:
    """Apply `changes` to job.json (when `only_if` holds for the current contents)."""
    with _locked(folder):
        data = _read(folder)
        if only_if is not None and not only_if(data):
            return False
        data.update(changes)
        _write(folder, data)
    return True


def _unfinished(data: dict[str, Any]) -> bool:
    return not JobStatus(data["status"]).finished


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _job(folder: Path, data: dict[str, Any]) -> Job:
    return Job(id=data["id"], kind=JobKind(data["kind"]), config=data["config"],
               status=JobStatus(data["status"]), created_at=datetime.fromisoformat(
                   data["created_at"]), folder=folder, db=Path(data["db"]),
               started_at=_time(data.get("started_at")),
               finished_at=_time(data.get("finished_at")), pid=data.get("pid"),
               pgid=data.get("pgid"), result=data.get("result"), error=data.get("error"),
               error_type=data.get("error_type"),
               cancel_requested_at=_time(data.get("cancel_requested_at")))


# ---------------------------------------------------------------------------- processes

def _process_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) from /proc; None when there is no such
    process. Raises OSError where /proc does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if not Path("/proc/self/stat").exists():
            raise
        return None
    after_name = text[text.rindex(")") + 2:].split()   # the name may hold spaces and parens
    return after_name[0], after_name[19]               # fields 3 and 22 of proc(5)


def _process_start(pid: int) -> str | None:
    try:
        stat = _process_stat(pid)
    except OSError:
        return None
    return None if stat is None else stat[1]


def _alive(pid: int, start: str | None) -> bool:
    """Whether the job's process still runs: not gone, not a zombie, and not a later process
    that happens to have the same pid (its start time differs)."""
    try:
        stat = _process_stat(pid)
    except OSError:                              # no /proc: ask the kernel
        return pid_alive(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return start is None or stat[1] == start


def _refresh(folder: Path) -> dict[str, Any]:
    """job.json, with an unfinished job whose process is gone recorded as failed."""
    data = _read(folder)
    if not _unfinished(data):
        return data
    pid = data.get("pid")
    if pid is None:
        age = (datetime.now(UTC) - datetime.fromisoformat(data["created_at"])).total_seconds()
        if age < NEVER_STARTED_S:
            return data
        reason = "the job process was never started"
    elif _alive(pid, data.get("proc_start")):
        return data
    else:
        reason = LOST_MESSAGE

    def still_lost(current: dict[str, Any]) -> bool:
        # Re-checked under the lock: the process may have reported just before it ended.
        return _unfinished(current) and current.get("pid") == pid
    _update(folder, {"status": JobStatus.FAILED.value, "finished_at": _now(), "error": reason,
                     "error_type": "JobLost"}, only_if=still_lost)
    return _read(folder)


# ---------------------------------------------------------------------------- public API

def fingerprint(kind: str | JobKind, config: dict[str, Any]) -> str:
    """What makes two jobs the same job: the kind and the settings as the pipeline reads them
    (defaults filled in, so `{}` and `{"n": 5}` are the same augmentation when 5 is the
    default). Raises WorkbenchError for a config that does not build."""
    built = build_config(kind, config)
    return json.dumps({"kind": _job_kind(kind).value, "config": asdict(built)}, sort_keys=True,
                      default=str)


def _fingerprint_of(data: dict[str, Any]) -> str | None:
    """A stored job's fingerprint (recorded at submit; computed for older jobs)."""
    if data.get("fingerprint"):
        return str(data["fingerprint"])
    try:
        return fingerprint(data["kind"], data["config"])
    except (WorkbenchError, KeyError):   # a kind or setting this version no longer knows
        return None


def running_duplicate(db_path: str | Path | None, kind: str | JobKind,
                      config: dict[str, Any]) -> Job | None:
    """The unfinished job of this kind and these settings, if there is one (newest first)."""
    wanted = fingerprint(kind, json.loads(json.dumps(config)))
    root = jobs_dir(db_path)
    if not root.exists():
        return None
    for folder in sorted(root.iterdir(), reverse=True):   # ids start with the creation time
        if not (folder / JOB_FILE).exists():
            continue
        try:
            data = _refresh(folder)
            if _unfinished(data) and data["kind"] == _job_kind(kind).value \
                    and _fingerprint_of(data) == wanted:
                return _job(folder, data)
        except (json.JSONDecodeError, KeyError, ValueError):
            continue                              # not a job folder of ours
    return None


@contextmanager
def _submit_lock(root: Path) -> Iterator[None]:
    """One submit at a time per jobs folder, across processes: the duplicate check and the new
    job's folder happen under it, so two identical submits cannot both pass the check."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    with (root / SUBMIT_LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def submit(db_path: str | Path | None, kind: str | JobKind, config: dict[str, Any],
           allow_duplicate: bool = False) -> Job:
    """Validate the config and start the job in a process of its own; returns it (queued).

    Raises WorkbenchError for an unknown kind, a bad config or a missing database, and
    `JobAlreadyRunningError` (naming the job) while a job of the same kind and settings is
    queued or running, unless `allow_duplicate`; nothing is written then."""
    db = _db(db_path)
    job_kind = _job_kind(kind)
    try:
        config = json.loads(json.dumps(config))  # exactly what the job process will read
    except (TypeError, ValueError) as error:
        raise WorkbenchError(f"the {job_kind.value} job's settings must be JSON: {error}") \
            from None
    key = fingerprint(job_kind, config)
    if not db.exists() and not KINDS[job_kind].creates_database:
        raise StoreMissingError(
            f"no database at {db}. Build the demo with `workbench demo`, or ingest logs with "
            "`workbench ingest FILE`, or point --db / WORKBENCH_DB at one.")

    with _submit_lock(jobs_dir(db)):
        duplicate = None if allow_duplicate else running_duplicate(db, job_kind, config)
        if duplicate is not None:
            raise JobAlreadyRunningError(_duplicate_message(duplicate), duplicate)
        created = datetime.now(UTC)
        job_id = f"{created:%Y%m%d-%H%M%S}-{job_kind.value}-{secrets.token_hex(3)}"
        folder = jobs_dir(db) / job_id
        folder.mkdir(parents=True)
        _write(folder, {"id": job_id, "kind": job_kind.value, "config": config,
                        "fingerprint": key, "db": str(db), "status": JobStatus.QUEUED.value,
                        "created_at": created.isoformat(), "started_at": None,
                        "finished_at": None, "pid": None, "pgid": None, "proc_start": None,
                        "result": None, "error": None, "error_type": None})
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # The job process imports this checkout's packages, whatever the caller's working folder.
    project_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root, env.get("PYTHONPATH")) if p)
    try:
        with (folder / LOG_FILE).open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "workbench.app.jobs", "run", str(folder), "--db", str(db)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True, close_fds=True)
    except OSError as error:
        _update(folder, {"status": JobStatus.FAILED.value, "finished_at": _now(),
                         "error": f"could not start the job process: {error}",
                         "error_type": type(error).__name__})
        raise WorkbenchError(f"could not start the job process: {error}") from None
    _update(folder, {"pid": process.pid, "pgid": process.pid,      # its own session and group
                     "proc_start": _process_start(process.pid)})
    # Reap the child when it ends, so it never lingers as a zombie of the app's process.
    threading.Thread(target=process.wait, name=f"job-{job_id}", daemon=True).start()
    return load_job(db, job_id)


def _duplicate_message(job: Job) -> str:
    age = (datetime.now(UTC) - job.created_at).total_seconds()
    return (f"an identical {job.kind.value} job is already {job.status.value}: {job.id} "
            f"(started {age:.0f} s ago). Wait for it to finish (`workbench jobs show {job.id}`)"
            f" or cancel it (`workbench jobs cancel {job.id}`) before starting it again.")


def latest_outcome(listed: list[Job]) -> Job | None:
    """The job that finished last: what a page reports as the latest outcome, so a later
    success is never hidden behind an earlier failure (or the other way round)."""
    done = [job for job in listed if job.finished]
    if not done:
        return None
    return max(done, key=lambda job: (job.finished_at or job.created_at, job.created_at, job.id))


def load_job(db_path: str | Path | None, job_id: str) -> Job:
    """A job by id (or unique prefix of one), refreshed."""
    root = jobs_dir(db_path)
    matches = [root / job_id] if job_id and (root / job_id / JOB_FILE).exists() else []
    if job_id and not matches and root.exists():
        matches = [folder for folder in root.iterdir()
                   if folder.name.startswith(job_id) and (folder / JOB_FILE).exists()]
    if not matches:
        raise WorkbenchError(f"no job {job_id!r} in {root}; list them with `workbench jobs`")
    if len(matches) > 1:
        raise WorkbenchError(f"{job_id!r} matches {len(matches)} jobs; give more of the id")
    return _job(matches[0], _refresh(matches[0]))


def list_jobs(db_path: str | Path | None = None) -> list[Job]:
    """Every job beside the database, newest first, refreshed."""
    root = jobs_dir(db_path)
    if not root.exists():
        return []
    jobs = []
    for folder in root.iterdir():
        if not (folder / JOB_FILE).exists():    # a folder `submit` is still filling
            continue
        try:
            jobs.append(_job(folder, _refresh(folder)))
        except (json.JSONDecodeError, KeyError, ValueError):
            continue                              # not a job folder of ours
    return sorted(jobs, key=lambda job: (job.created_at, job.id), reverse=True)


def cancel(job: Job, grace_s: float = CANCEL_GRACE_S) -> Job:
    """Stop a job: SIGTERM to its process group (the job cleans up and records 'cancelled'),
    then SIGKILL after `grace_s` if it is still alive. Returns the job as it ended; a job that
    had already finished is returned unchanged."""
    folder = job.folder
    data = _refresh(folder)
    if not _unfinished(data):
        return _job(folder, data)
    _update(folder, {"cancel_requested_at": _now()})
    pid, start = data.get("pid"), data.get("proc_start")
    if pid is not None and _alive(pid, start):
        group = data.get("pgid") or pid
        _signal(group, signal.SIGTERM)
        if not _wait_dead(pid, start, grace_s):
            _signal(group, signal.SIGKILL)
            _wait_dead(pid, start, CANCEL_GRACE_S)
    _update(folder, {"status": JobStatus.CANCELLED.value, "finished_at": _now(),
                     "error": "cancelled (the job process was killed)" if pid is not None
                     else "cancelled before it started", "error_type": "Cancelled"},
            only_if=_unfinished)
    return _job(folder, _refresh(folder))


def _signal(group: int, sig: signal.Signals) -> None:
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass


def _wait_dead(pid: int, start: str | None, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _alive(pid, start):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


# ---------------------------------------------------------------------------- the job process

def _summary(data: dict[str, Any]) -> str:
    """A few words on what a job does, e.g. 'train heads' or 'augment run 2024…'."""
    config = data.get("config") or {}
    detail = {JobKind.TRAIN.value: config.get("student"),
              JobKind.EVALUATE.value: config.get("run_id") and f"run {config['run_id']}",
              JobKind.AUGMENT.value: config.get("run_id") and f"run {config['run_id']}"}.get(
                  data["kind"])
    return f"{data['kind']} {detail}" if detail else str(data["kind"])


class JobCancelled(BaseException):
    """Raised in the job process on SIGTERM; a BaseException, so pipelines clean up but no
    `except Exception` swallows it."""


class _ProgressLog:
    """The progress callback: appends events to progress.jsonl, at most one per stage every
    `interval_s`. A held-back event is written when the stage next reports after the interval,
    when it completes (done == total), or at close, so the last state of every stage is kept."""

    def __init__(self, path: Path, interval_s: float = PROGRESS_INTERVAL_S,
                 clock: Callable[[], float] = time.time):
        self.interval_s = interval_s
        self.clock = clock
        self.written_at: dict[str, float] = {}
        self.held: dict[str, dict[str, Any]] = {}
        self.handle: IO[str] = path.open("a")

    def __call__(self, stage: str, done: int, total: int | None = None) -> None:
        now = self.clock()
        event = {"t": now, "stage": stage, "done": int(done),
                 "total": None if total is None else int(total)}
        last = self.written_at.get(stage)
        if last is None or now - last >= self.interval_s or (total is not None
                                                             and done >= total):
            self.held.pop(stage, None)
            self._append(event)
        else:
            self.held[stage] = event

    def _append(self, event: dict[str, Any]) -> None:
        self.written_at[event["stage"]] = event["t"]
        self.handle.write(json.dumps(event) + "\n")
        self.handle.flush()

    def close(self) -> None:
        for event in self.held.values():
            self._append(event)
        self.held.clear()
        self.handle.close()


def run_job(folder: Path, db: Path) -> int:
    """The job process: run the job in `folder` and record its outcome. Returns the exit code."""
    cancelled = threading.Event()

    def on_sigterm(signum: int, frame: types.FrameType | None) -> None:
        if not cancelled.is_set():        # raise once; a second signal must not interrupt cleanup
            cancelled.set()
            raise JobCancelled(f"cancelled by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, on_sigterm)
    progress: _ProgressLog | None = None
    try:
        with _locked(folder):
            data = _read(folder)
            if data["status"] != JobStatus.QUEUED.value:  # cancelled before it could start
                print(f"job {data['id']} is {data['status']}; not running it", flush=True)
                return 0
            data.update(status=JobStatus.RUNNING.value, started_at=_now(), pid=os.getpid(),
                        pgid=os.getpgrp(), proc_start=_process_start(os.getpid()))
            _write(folder, data)
        print(f"[{_now()}] job {data['id']}: {data['kind']} {json.dumps(data['config'])}",
              flush=True)
        from workbench.store import Store

        kind = JobKind(data["kind"])
        config = build_config(kind, data["config"])
        progress = _ProgressLog(folder / PROGRESS_FILE)
        # The label is what a command or page waiting for the file is told holds it.
        store = Store.at(db, label=f"background job {data['id']} ({_summary(data)})")
        result = KINDS[kind].run(config, store, progress)
        progress.close()
        result = json.loads(json.dumps(result, default=str))
    except (JobCancelled, KeyboardInterrupt) as error:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if progress is not None:
            progress.close()
        print(f"[{_now()}] cancelled: {error or type(error).__name__}", flush=True)
        _update(folder, {"status": JobStatus.CANCELLED.value, "finished_at": _now(),
                         "error": str(error) or "cancelled",
                         "error_type": "Cancelled"}, only_if=_unfinished)
        return 130
    except BaseException as error:  # noqa: BLE001 (any failure is the job's outcome, logged)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        traceback.print_exc()
        if progress is not None:
            progress.close()
        print(f"[{_now()}] failed: {type(error).__name__}: {error}", flush=True)
        _update(folder, {"status": JobStatus.FAILED.value, "finished_at": _now(),
                         "error": str(error) or type(error).__name__,
                         "error_type": type(error).__name__}, only_if=_unfinished)
        return 1
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finished: a late cancel changes nothing
    _update(folder, {"status": JobStatus.SUCCEEDED.value, "finished_at": _now(),
                     "result": result}, only_if=_unfinished)
    print(f"[{_now()}] succeeded: {json.dumps(result)}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.app.jobs",
        description="The background job process (started by `workbench.app.jobs.submit`).")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the job in a job folder and record its outcome")
    run.add_argument("folder", type=Path, help="the job's folder (holds job.json)")
    run.add_argument("--db", type=Path, required=True, help="the DuckDB database file")
    args = parser.parse_args(argv)
    return run_job(args.folder, args.db)


if __name__ == "__main__":
    exit_code = main()
    # The outcome is on disk and every file is closed: skip the interpreter's teardown, which
    # takes seconds with torch loaded and would keep `cancel` (and the app) waiting.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
