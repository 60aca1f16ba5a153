"""Background jobs: real job processes on the tiny curated world (train, fail, cancel, kill),
stale jobs, submit-time validation and progress throttling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import curated_store
from workbench.app import jobs
from workbench.app.jobs import Job, JobKind, JobStatus
from workbench.errors import StoreMissingError, WorkbenchError
from workbench.store import Store

# The torch runtime: saving skips the ONNX export, which the job tests do not need.
RETRIEVAL = {"student": "retrieval", "student_config": {"runtime": "torch"}}
ENDLESS_HEADS = {"student": "heads", "student_config": {"epochs": 100_000, "runtime": "torch"}}


def wait_for(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (value := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)
    return value


def finished(job: Job, timeout_s: float = 120) -> Job:
    def check() -> Job | None:
        current = jobs.load_job(job.db, job.id)
        return current if current.finished else None
    try:
        done: Job = wait_for(check, timeout_s, f"job {job.id} to finish")
    except pytest.fail.Exception:
        print(jobs.load_job(job.db, job.id).log_tail())
        raise
    return done


def run_rows(store: Store) -> list[dict]:
    return store.query("SELECT run_id, artifact_path FROM runs")


def run_folders(store: Store) -> list[Path]:
    runs = store.path.parent / "runs"
    return sorted(runs.iterdir()) if runs.exists() else []


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Store]:
    """The curated world; any job still running at the end is stopped."""
    store = curated_store(tmp_path)
    yield store
    for job in jobs.list_jobs(store.path):
        if not job.finished:
            jobs.cancel(job, grace_s=1)


def write_job(db: Path, job_id: str, **fields: Any) -> Path:
    """A job folder written by hand, as `submit` would have left it."""
    folder = jobs.jobs_dir(db) / job_id
    folder.mkdir(parents=True)
    data = {"id": job_id, "kind": "train", "config": RETRIEVAL, "db": str(db),
            "status": "running", "created_at": datetime.now(UTC).isoformat(),
            "started_at": None, "finished_at": None, "pid": None, "pgid": None,
            "proc_start": None, "result": None, "error": None, "error_type": None, **fields}
    (folder / jobs.JOB_FILE).write_text(json.dumps(data))
    return folder


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# ---------------------------------------------------------------------------- no processes

def test_importing_jobs_loads_no_pipeline_database_or_torch():
    code = ("import sys, workbench.app.jobs; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('duckdb', 'torch', 'pipelines', 'streamlit', "
            "'sentence_transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(("kind", "config", "message"), [
    ("fly", {}, "unknown job kind 'fly'; choose one of train, evaluate"),
    ("train", {}, "needs the setting(s) student"),
    ("train", {"student": "gpt5"}, "unknown student 'gpt5'"),
    ("train", {"student": "retrieval", "epochs": 3}, "unknown setting(s) epochs for the train"),
    ("train", {"student": "heads", "version": "2"}, "'version' must be int | None, got '2'"),
    ("train", {"student": "heads", "student_config": {"epochs": 0}},
     "heads student: epochs must be a positive integer"),
    ("train", {"student": "heads", "student_config": {"layers": 2}},
     "unknown setting(s) layers for the heads student"),
    ("train", {"student": "heads", "note": b"x"}, "must be JSON"),
    ("evaluate", {"run_id": 7}, "'run_id' must be str | None, got 7"),
    ("augment", {"paraphraser": "gpt"}, "'paraphraser' must be one of auto, offline, llm"),
    ("augment", {"n": 0}, "n must be at least 1"),
    ("experiment_rq1", {"students": ["heads", "gpt5"]}, "unknown student 'gpt5'"),
    # Strict types from JSON (pydantic): no 1 for True, "0.5" for 0.5, 2.5 for an int.
    ("augment", {"auto_approve": 1}, "'auto_approve' must be bool, got 1"),
    ("augment", {"threshold": "0.5"}, "'threshold' must be float, got '0.5'"),
    ("augment", {"sources": "abc"}, "'sources' must be tuple, got 'abc'"),
    ("experiment_rq1", {"students": ["heads", 3]}, "'students'[1] must be str, got 3"),
    ("train", {"student": "heads", "student_config": {"epochs": 2.5}},
     "the heads student's setting 'epochs' must be int, got 2.5"),
    # Nested settings: named by their dotted path, a misspelt name is never the default.
    ("augment", {"mining": {"strategy": "bogus"}},
     ("the augment job's setting 'mining.strategy' must be one of mean, margin, worst, slices, "
     "got 'bogus'")),
    ("augment", {"mining": "worst"}, ("the augment job's setting 'mining' must be a mapping of "
     "strategy, margin")),
    ("augment", {"mining": {"stratgy": "worst"}},
     "unknown setting(s) stratgy in the augment job's setting 'mining'"),
])
def test_submit_rejects_a_bad_job_before_starting_anything(tmp_path, kind, config, message):
    db = tmp_path / "w.duckdb"
    db.touch()
    with pytest.raises(WorkbenchError) as error:
        jobs.submit(db, kind, config)
    assert message in str(error.value)
    assert not jobs.jobs_dir(db).exists()


def test_submit_needs_the_database(tmp_path):
    with pytest.raises(StoreMissingError, match="no database at"):
        jobs.submit(tmp_path / "missing.duckdb", "train", {"student": "heads"})
    assert jobs.list_jobs(tmp_path / "missing.duckdb") == []


def test_configs_come_back_from_json_as_the_pipelines_expect():
    from pipelines.augment import ParaphraserChoice

    augment = jobs.build_config("augment", {"sources": ["a", "b"], "paraphraser": "offline",
                                            "threshold": 1})
    assert (augment.sources, augment.paraphraser, augment.threshold) == (
        ("a", "b"), ParaphraserChoice.OFFLINE, 1.0)
    train = jobs.build_config(JobKind.TRAIN, {"student": "heads", "runs_dir": "/tmp/r",
                                              "student_config": {"epochs": 2}})
    assert (train.runs_dir, train.student_config) == (Path("/tmp/r"), {"epochs": 2})
    evaluate = jobs.build_config("evaluate", {"run_id": "2024", "version": None})
    assert (evaluate.run_id, evaluate.version) == ("2024", None)


def test_progress_is_throttled_per_stage_but_keeps_every_last_state(tmp_path):
    now = [0.0]
    path = tmp_path / jobs.PROGRESS_FILE
    progress = jobs._ProgressLog(path, interval_s=0.2, clock=lambda: now[0])
    for t, stage, done in [(0.0, "epoch", 1), (0.05, "epoch", 2), (0.1, "embed", 5),
                           (0.15, "epoch", 3), (0.25, "epoch", 4), (0.3, "epoch", 5),
                           (0.31, "embed", 6)]:
        now[0] = t
        progress(stage, done, 10 if stage == "epoch" else 6)
    now[0] = 0.32
    progress("epoch", 6, 10)              # held back, then written on close
    progress.close()
    written = [(e["stage"], e["done"]) for e in map(json.loads, path.read_text().splitlines())]
    # epoch 2 and 3 fall inside 0.2 s of epoch 1; embed 6 completes its stage.
    assert written == [("epoch", 1), ("embed", 5), ("epoch", 4), ("embed", 6), ("epoch", 6)]


def test_a_job_whose_process_vanished_is_recorded_as_failed(tmp_path):
    db = tmp_path / "w.duckdb"
    lost = write_job(db, "20240101-000000-train-aaaaaa", pid=dead_pid())
    never = write_job(db, "20240101-000001-train-bbbbbb", status="queued",
                      created_at=(datetime.now(UTC) - timedelta(minutes=5)).isoformat())
    reused = write_job(db, "20240101-000002-train-cccccc", pid=os.getpid(), proc_start="1")
    alive = write_job(db, "20240101-000003-train-dddddd", pid=os.getpid())

    listed = jobs.list_jobs(db)
    assert [job.id for job in listed] == [alive.name, reused.name, lost.name, never.name]
    assert [job.status for job in listed] == [JobStatus.RUNNING] + [JobStatus.FAILED] * 3
    assert listed[1].error == jobs.LOST_MESSAGE == listed[2].error  # [1]: a pid reused
    assert listed[3].error == "the job process was never started"
    on_disk = json.loads((lost / jobs.JOB_FILE).read_text())       # the correction is kept
    assert (on_disk["status"], on_disk["error"]) == ("failed", jobs.LOST_MESSAGE)
    assert on_disk["finished_at"] is not None

    assert jobs.load_job(db, "20240101-000003").id == alive.name     # a unique prefix
    with pytest.raises(WorkbenchError, match="matches 4 jobs"):
        jobs.load_job(db, "20240101")
    with pytest.raises(WorkbenchError, match="no job 'nope'"):
        jobs.load_job(db, "nope")


def test_a_job_cancelled_before_it_started_never_runs(tmp_path):
    db = tmp_path / "w.duckdb"
    folder = write_job(db, "20240101-000000-train-aaaaaa", status="queued")
    job = jobs.cancel(jobs.load_job(db, folder.name))
    assert (job.status, job.error) == (JobStatus.CANCELLED, "cancelled before it started")
    # The job process, had it started late, leaves the job alone.
    subprocess.run([sys.executable, "-m", "workbench.app.jobs", "run", str(folder),
                    "--db", str(db)],
                   check=True, capture_output=True)
    assert jobs.load_job(db, folder.name).status == JobStatus.CANCELLED
    assert jobs.cancel(job) == jobs.load_job(db, folder.name)         # nothing left to cancel


def test_a_job_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    stubborn = subprocess.Popen(
        [sys.executable, "-c", ("import signal, time; signal.signal(signal.SIGTERM, "
                                "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline() == "ready\n"
        db = tmp_path / "w.duckdb"
        folder = write_job(db, "20240101-000000-train-aaaaaa", pid=stubborn.pid,
                           pgid=stubborn.pid, proc_start=jobs._process_start(stubborn.pid))
        started = time.monotonic()
        job = jobs.cancel(jobs.load_job(db, folder.name), grace_s=0.5)
        assert 0.5 <= time.monotonic() - started < 5
        assert (job.status, job.error) == (JobStatus.CANCELLED,
                                           "cancelled (the job process was killed)")
        assert stubborn.wait(timeout=5) == -signal.SIGKILL
    finally:
        stubborn.kill()
        stubborn.wait()


# ---------------------------------------------------------------------------- job processes

def test_a_failing_job_records_its_error_and_leaves_nothing(world):
    job = jobs.submit(world.path, "train", {**RETRIEVAL, "version": 99})
    assert job.status == JobStatus.QUEUED and job.pid is not None
    job = finished(job, timeout_s=60)
    assert (job.status, job.error_type) == (JobStatus.FAILED, "VersionNotFoundError")
    assert "99" in job.error and job.result is None
    assert job.started_at is not None and job.finished_at is not None
    log = job.log_tail(100_000)
    assert "Traceback (most recent call last)" in log and "VersionNotFoundError" in log
    assert run_rows(world) == [] and run_folders(world) == []


@pytest.mark.slow
def test_two_training_jobs_at_once_both_succeed(world):
    first = jobs.submit(world.path, "train", {**RETRIEVAL, "note": "first"})
    second = jobs.submit(world.path, JobKind.TRAIN, {**RETRIEVAL, "note": "second"})
    assert [job.id for job in jobs.list_jobs(world.path)] == [second.id, first.id]
    done = [finished(first), finished(second)]

    assert [job.status for job in done] == [JobStatus.SUCCEEDED] * 2
    rows = {row["run_id"]: row for row in run_rows(world)}
    for job in done:
        assert job.result is not None and job.error is None
        assert job.result["run_id"] in rows and Path(job.result["artifact_path"]).is_dir()
        embed = job.progress()["embed"]
        assert (embed.done, embed.total, embed.fraction) == (15, 15, 1.0)
        assert "succeeded" in job.log_tail()
    assert sorted(r["note"] for r in world.query("SELECT note FROM runs")) == ["first", "second"]


@pytest.mark.slow
def test_a_training_job_cancelled_mid_training_leaves_no_run(world):
    job = jobs.submit(world.path, "train", ENDLESS_HEADS)
    wait_for(lambda: "epoch" in jobs.load_job(world.path, job.id).progress(), 120,
             "the job to start its epochs")
    started = time.monotonic()
    job = jobs.cancel(jobs.load_job(world.path, job.id))
    assert time.monotonic() - started < jobs.CANCEL_GRACE_S  # it stopped on SIGTERM
    assert (job.status, job.error, job.error_type) == (
        JobStatus.CANCELLED, "cancelled by SIGTERM", "Cancelled")
    assert job.cancel_requested_at is not None and "cancelled by SIGTERM" in job.log_tail()
    assert run_rows(world) == [] and run_folders(world) == []


def test_a_job_killed_outright_is_noticed_and_leaves_no_run(world, monkeypatch):
    monkeypatch.setenv("WORKBENCH_LOCK_TIMEOUT", "60")
    with world.session():   # the job waits for the database, cheaply, until it is killed
        job = jobs.submit(world.path, "train", RETRIEVAL)
        wait_for(lambda: jobs.load_job(world.path, job.id).status == JobStatus.RUNNING, 30,
                 "the job to start")
        assert job.pgid is not None
        os.killpg(job.pgid, signal.SIGKILL)   # as the kernel's OOM killer would
        job = wait_for(lambda: (j := jobs.load_job(world.path, job.id)).finished and j, 30,
                       "the killed job to be noticed")
    assert (job.status, job.error, job.error_type) == (JobStatus.FAILED, jobs.LOST_MESSAGE,
                                                       "JobLost")
    assert run_rows(world) == [] and run_folders(world) == []


# ---------------------------------------------------------------------------- duplicates

def test_an_identical_job_is_not_started_twice(world, monkeypatch):
    monkeypatch.setenv("WORKBENCH_LOCK_TIMEOUT", "60")
    with world.session():   # the jobs wait for the database, so they stay unfinished
        first = jobs.submit(world.path, "evaluate", {"run_id": "r1"})
        # The same settings once defaults are filled in: the same job.
        with pytest.raises(jobs.JobAlreadyRunningError) as refused:
            jobs.submit(world.path, JobKind.EVALUATE, {"run_id": "r1", "version": None})
        assert refused.value.job.id == first.id
        message = str(refused.value)
        assert "an identical evaluate job is already " in message and first.id in message
        assert f"workbench jobs cancel {first.id}" in message
        other = jobs.submit(world.path, "evaluate", {"run_id": "r2"})   # another input
        forced = jobs.submit(world.path, "evaluate", {"run_id": "r1"}, allow_duplicate=True)
        assert sorted(job.id for job in jobs.list_jobs(world.path)) == sorted(
            [first.id, other.id, forced.id])
        jobs.cancel(first, grace_s=1)
        jobs.cancel(forced, grace_s=1)
        # Once no identical job is unfinished, the same settings start again.
        again = jobs.submit(world.path, "evaluate", {"run_id": "r1"})
        assert again.id not in (first.id, forced.id)


def test_concurrent_identical_submits_start_one_job(world, monkeypatch):
    """The duplicate check and the new job's folder happen under one lock: two submits at the
    same moment (threads here; processes lock the same file) cannot both pass the check."""
    import threading

    monkeypatch.setenv("WORKBENCH_LOCK_TIMEOUT", "60")
    checked = jobs.running_duplicate

    def slow_check(*args: Any, **kwargs: Any) -> Job | None:
        found = checked(*args, **kwargs)
        time.sleep(0.3)           # widen the window between the check and the new folder
        return found
    monkeypatch.setattr(jobs, "running_duplicate", slow_check)
    outcomes: list[str] = []
    start = threading.Barrier(3)

    def submit() -> None:
        start.wait()
        try:
            outcomes.append(jobs.submit(world.path, "evaluate", {"run_id": "r1"}).id)
        except jobs.JobAlreadyRunningError as error:
            outcomes.append(f"refused: {error.job.id}")

    with world.session():
        threads = [threading.Thread(target=submit) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        [job] = jobs.list_jobs(world.path)
        assert sorted(outcomes) == [job.id] + [f"refused: {job.id}"] * 2


def test_the_latest_outcome_is_the_job_that_finished_last(tmp_path):
    db = tmp_path / "w.duckdb"
    now = datetime.now(UTC)
    write_job(db, "20240101-000000-train-aaaaaa", status="succeeded",
              finished_at=(now - timedelta(seconds=5)).isoformat(), result={"run_id": "a"})
    write_job(db, "20240101-000001-train-bbbbbb", status="failed", error="cache race",
              finished_at=(now - timedelta(seconds=60)).isoformat())
    write_job(db, "20240101-000002-train-cccccc", pid=os.getpid())          # still running
    listed = jobs.list_jobs(db)
    latest = jobs.latest_outcome(listed)
    assert latest is not None and latest.id == "20240101-000000-train-aaaaaa"
    assert jobs.latest_outcome([job for job in listed if not job.finished]) is None


def test_the_job_process_names_itself_to_the_store(tmp_path, monkeypatch):
    """What a page or command waiting for the file is told holds it: the job, not `python`."""
    db = tmp_path / "w.duckdb"
    folder = write_job(db, "20240101-000000-evaluate-aaaaaa", kind="evaluate", status="queued",
                       config={"run_id": "20240101-heads-1"})
    labels: list[str | None] = []

    def run(config: Any, store: Store, progress: Any) -> dict[str, Any]:
        labels.append(store.label)
        return {"evaluation_id": 1}
    monkeypatch.setitem(jobs.KINDS, JobKind.EVALUATE,
                        jobs._Kind(jobs._evaluate_config, run))
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert jobs.run_job(folder, db) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert labels == [("background job 20240101-000000-evaluate-aaaaaa (evaluate run "
                      "20240101-heads-1)")]
    assert jobs.load_job(db, folder.name).status == JobStatus.SUCCEEDED
