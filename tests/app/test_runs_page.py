"""Runs page: empty database, launching a real training job, its progress, and run comparison."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipelines import evaluate, train
from tests.conftest import curated_store
from workbench import jobs


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
