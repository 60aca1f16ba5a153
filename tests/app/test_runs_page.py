"""Runs page: empty database, launching a real training job, its progress, and run comparison."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipelines import evaluate, train
from tests.conftest import curated_store
from workbench.app import jobs


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory):
    store = curated_store(tmp_path_factory.mktemp("runs_page"))
    run = train.run(train.TrainConfig(student="retrieval", student_config={"runtime": "torch"}),
                    store)
    evaluation = evaluate.evaluate_run(run.run_id, None, store)
    return store, run, evaluation


def frame_with(at, column: str):
    """The first dataframe on the page that has `column`."""
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def test_without_a_database_it_says_how_to_make_one(page, tmp_path: Path) -> None:
    at = page("runs", tmp_path / "none.duckdb").run()
    assert not at.exception
    assert "workbench demo" in at.info[0].body


def test_evaluated_runs_are_compared_on_the_papers_metrics(page, evaluated) -> None:
    store, run, evaluation = evaluated
    at = page("runs", store.path).run()
    assert not at.exception
    assert at.multiselect(key="compare_runs").value == [run.run_id]
    table = frame_with(at, "Overall")
    assert list(table["test"]) == ["All", "r_3", "r_5"]
    shown = [table["Filter"][0], table["Adjust"][0]]
    stored = [evaluation.subsets[0].tools[tool].final for tool in ("filter", "adjust")]
    assert shown == pytest.approx(stored)
    # The tiny world never uses selective_adjust: its final score, and so Overall, is undefined.
    assert table["Overall"].isna()[0] and table["Selective Adjust"].isna()[0]


def test_a_training_job_is_launched_in_the_background_and_finishes(page, evaluated) -> None:
    store, _, _ = evaluated
    at = page("runs", store.path).run()
    at.selectbox(key="launch_student").set_value("retrieval")
    at.text_area(key="launch_settings").set_value('{"runtime": "torch"}')
    at.text_input(key="launch_note").set_value("from the app test")
    at.button[0].click().run()  # the form's Start button
    assert not at.exception
    assert at.success and at.success[0].body.startswith("Started job ")
    [job] = jobs.list_jobs(store.path)
    assert (job.kind, job.config["student"]) == ("train", "retrieval")
    deadline = time.monotonic() + 120
    while not jobs.load_job(store.path, job.id).finished and time.monotonic() < deadline:
        time.sleep(0.5)
    done = jobs.load_job(store.path, job.id)
    assert done.status is jobs.JobStatus.SUCCEEDED, done.log_tail()
    with store.session() as session:
        assert session.value("SELECT count(*) FROM runs WHERE note = 'from the app test'") == 1
    at = page("runs", store.path).run()
    jobs_table = frame_with(at, "status")
    assert list(jobs_table["status"]) == ["succeeded"]


def test_bad_settings_are_refused_with_the_reason(page, evaluated) -> None:
    store, _, _ = evaluated
    at = page("runs", store.path).run()
    at.text_area(key="launch_settings").set_value('{"epochs": ')
    at.button[0].click().run()
    assert "not JSON" in at.error[0].body
    at.text_area(key="launch_settings").set_value('{"no_such_setting": 1}')
    at.button[0].click().run()
    assert "no_such_setting" in at.error[0].body


def test_the_jobs_command_lists_and_shows_the_apps_jobs(evaluated, capsys) -> None:
    from workbench.cli import main

    store, _, _ = evaluated
    job = jobs.submit(store.path, "evaluate", {"run_id": "no-such-run"})
    deadline = time.monotonic() + 60
    while not jobs.load_job(store.path, job.id).finished and time.monotonic() < deadline:
        time.sleep(0.3)
    assert main(["jobs", "list", "--db", str(store.path)]) == 0
    listed = capsys.readouterr().out
    assert job.id in listed and "failed" in listed and "no-such-run" in listed
    assert main(["jobs", "show", job.id[:20], "--db", str(store.path)]) == 0
    assert "evaluate, failed" in capsys.readouterr().out


# ---------------------------------------------------------------------------- one job at a time

@pytest.fixture
def copied(evaluated, tmp_path: Path) -> Path:
    """A copy of the evaluated world, so hand-written jobs stay out of the other tests."""
    import shutil

    store, _, _ = evaluated
    path = tmp_path / "w.duckdb"
    shutil.copy(store.path, path)
    return path


def write_job(db: Path, job_id: str, **fields) -> Path:
    """A job folder as the job process leaves it (running, by this process, unless told)."""
    import json
    import os
    from datetime import UTC, datetime

    folder = jobs.jobs_dir(db) / job_id
    folder.mkdir(parents=True)
    data = {"id": job_id, "kind": "train", "config": {"student": "heads"}, "db": str(db),
            "status": "running", "created_at": datetime.now(UTC).isoformat(),
            "started_at": datetime.now(UTC).isoformat(), "finished_at": None,
            "pid": os.getpid(), "pgid": None, "proc_start": None, "result": None, "error": None,
            "error_type": None, **fields}
    (folder / jobs.JOB_FILE).write_text(json.dumps(data))
    return folder


FORM_TRAIN = {"student": "heads", "version": 1, "student_config": {}, "note": ""}


def test_an_identical_job_is_refused_and_start_waits_for_it(page, copied: Path) -> None:
    running = write_job(copied, "20240101-000000-train-aaaaaa", config=FORM_TRAIN)
    at = page("runs", copied).run()
    assert not at.button(key="launch_start").disabled
    at.button(key="launch_start").click().run()              # the form's defaults: the same job
    assert not at.exception
    assert any(f"an identical train job is already running: {running.name}" in w.body
               for w in at.warning)
    assert [job.id for job in jobs.list_jobs(copied)] == [running.name]
    assert at.session_state["runs_job"] == running.name
    assert at.button(key="launch_start").disabled
    assert any(f"Your train job {running.name} is running" in c.value for c in at.caption)


def test_the_jobs_tab_shows_the_latest_outcome_first(page, copied: Path) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    write_job(copied, "20240101-000000-train-aaaaaa", status="succeeded",
              finished_at=now.isoformat(), result={"run_id": "20240101-heads-1"})
    write_job(copied, "20240101-000002-train-bbbbbb", status="failed", error="cache race",
              finished_at=(now - timedelta(seconds=30)).isoformat())
    at = page("runs", copied).run()
    assert not at.exception
    [latest] = [s.body for s in at.success if "Latest finished job" in s.body]
    assert "`20240101-000000-train-aaaaaa` succeeded" in latest and "20240101-heads-1" in latest
    assert not [e.body for e in at.error if "Latest finished job" in e.body]
