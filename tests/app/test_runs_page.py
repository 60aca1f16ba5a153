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


# ---------------------------------------------------------------------------- stale forms

def recording_submit(monkeypatch: pytest.MonkeyPatch, db: Path) -> list[tuple[str, dict]]:
    """jobs.submit replaced by one that validates the config as the job process would and
    leaves a running job folder (no process is started); returns the calls."""
    import json

    calls: list[tuple[str, dict]] = []

    def submit(db_path, kind, config):
        jobs.build_config(kind, json.loads(json.dumps(config)))
        calls.append((jobs.JobKind(kind).value, config))
        folder = write_job(db, f"20240101-00000{len(calls)}-{kind}-cccccc", kind=kind,
                           config=config)
        return jobs.load_job(db, folder.name)

    monkeypatch.setattr(jobs, "submit", submit)
    return calls


def test_the_version_default_follows_a_new_current_version(page, copied: Path) -> None:
    from pipelines import curate
    from workbench.store import Store

    at = page("runs", copied).run()
    assert at.selectbox(key="launch_version").value == 1
    curate.run(curate.CurateConfig(test_size=3, seed=1), Store(copied))    # version 2 appears
    at.run()                                        # the same session, the form drawn before
    assert not at.exception
    assert at.selectbox(key="launch_version").options == ["1", "2"]
    assert at.selectbox(key="launch_version").value == 2
    at.radio(key="launch_kind").set_value("evaluate").run()    # the form drawn again after
    at.radio(key="launch_kind").set_value("train").run()       # the other kind: still current
    assert at.selectbox(key="launch_version").value == 2


def test_the_note_does_not_carry_over_after_a_job_starts(page, copied: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls = recording_submit(monkeypatch, copied)
    at = page("runs", copied).run()
    at.text_input(key="launch_note").set_value("kept when nothing starts")
    at.text_area(key="launch_settings").set_value('{"epochs": ')
    at.button(key="launch_start").click().run()
    assert "not JSON" in at.error[0].body and not calls
    assert at.text_input(key="launch_note").value == "kept when nothing starts"

    at.text_area(key="launch_settings").set_value("{}")
    at.text_input(key="launch_note").set_value("first try, lr 1e-3")
    at.button(key="launch_start").click().run()
    assert not at.exception
    assert [(kind, config["note"]) for kind, config in calls] == [("train",
                                                                   "first try, lr 1e-3")]
    assert at.success[0].body.startswith("Started job ")
    assert at.text_input(key="launch_note").value == ""          # the next run starts blank


def test_after_a_reload_mid_job_the_page_says_a_job_runs_and_where(page, copied: Path) -> None:
    running = write_job(copied, "20240101-000000-train-aaaaaa", config=FORM_TRAIN)
    at = page("runs", copied).run()          # a new session: nothing in session state
    assert not at.exception
    [notice] = [info.body for info in at.info if running.name in info.body]
    assert "is running" in notice and "**Jobs** tab" in notice
    write_job(copied, "20240101-000001-train-bbbbbb", status="succeeded",
              finished_at="2024-01-01T00:01:00+00:00")            # finished: nothing to say
    write_job(copied, "20240101-000002-augment-cccccc", kind="augment",
              config={"run_id": "r"})                   # the Augmentation page's to report
    at = page("runs", copied).run()
    reported = [info.body for info in at.info if "job is" in info.body]
    assert len(reported) == 1 and running.name in reported[0]


# ---------------------------------------------------------------------------- comparison

@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory):
    """A small demo world (every tool used, so the overall is defined) with two retrieval
    runs, the first evaluated."""
    from pipelines import demo
    from workbench.store import Store

    store = Store(tmp_path_factory.mktemp("runs_compare") / "demo.duckdb")
    demo.run(demo.DemoRunConfig(requests=600, test_size=0.3), store)
    config = train.TrainConfig(student="retrieval", student_config={"runtime": "torch"})
    first, second = train.run(config, store), train.run(config, store)
    evaluate.evaluate_run(first.run_id, None, store)
    return store, first.run_id, second.run_id


def demo_copy(demo_runs, tmp_path: Path) -> Path:
    import shutil

    store, _, _ = demo_runs
    path = tmp_path / "demo.duckdb"
    shutil.copy(store.path, path)
    return path


def evaluate_as_the_floor(db: Path, run_id: str) -> int:
    """Store an evaluation of `run_id` whose answers are the floor's constant answer (a run far
    worse than retrieval); returns its id."""
    from workbench.store import Store
    from workbench.store.versions import Split, version_rows
    from workbench.tools import answer_from_json

    store = Store(db)
    with store.atomic() as session:
        constant = evaluate.constant_answer(version_rows(session, 1, Split.TRAIN))
        samples = [evaluate.Sample(row["intent_key"], row["intent_key"], row["request_count"],
                                   answer_from_json(row["adjust"], row["selective_adjust"],
                                                    row["filter"]), constant)
                   for row in version_rows(session, 1, Split.TEST)]
        return evaluate.evaluate_samples(session, samples, evaluate.EvaluationKind.RUN, run_id,
                                         1, Split.TEST).evaluation_id


def overall_chart(at) -> dict:
    import json

    [chart] = [c for c in at.get("plotly_chart") if "compare_overall" in c.proto.id]
    return json.loads(chart.proto.spec)


def test_new_runs_join_the_comparison_without_a_click(page, demo_runs, tmp_path: Path) -> None:
    _, first, second = demo_runs
    db = demo_copy(demo_runs, tmp_path)
    at = page("runs", db).run()
    assert at.multiselect(key="compare_runs").value == [first]
    evaluate_as_the_floor(db, second)                 # a run evaluated meanwhile
    at.run()
    assert not at.exception
    assert at.multiselect(key="compare_runs").value == [first, second]
    at.multiselect(key="compare_runs").unselect(first).run()     # a run hidden stays hidden
    at.run()
    assert at.multiselect(key="compare_runs").value == [second]


def test_the_baselines_button_runs_a_job_and_the_chart_draws_both_lines(page, demo_runs,
                                                                        tmp_path: Path) -> None:
    from workbench.store import Store
    from workbench.store.evaluations import latest_baselines

    db = demo_copy(demo_runs, tmp_path)
    at = page("runs", db).run()
    assert overall_chart(at)["layout"].get("shapes", []) == []
    assert any("No ceiling or floor yet" in info.body for info in at.info)
    at.button(key="compare_baselines").click().run()
    assert not at.exception
    assert at.success[0].body.startswith("Started job ")
    [job] = jobs.list_jobs(db)
    assert (job.kind, job.config) == (jobs.JobKind.BASELINES, {"version": 1})
    deadline = time.monotonic() + 120
    while not jobs.load_job(db, job.id).finished and time.monotonic() < deadline:
        time.sleep(0.3)
    done = jobs.load_job(db, job.id)
    assert done.status is jobs.JobStatus.SUCCEEDED, done.log_tail()
    with Store(db).session() as session:
        stored = latest_baselines(session, 1)
    expected = sorted(row["summary"]["subsets"][0]["overall"] for row in stored.values())
    assert done.result["ceiling_overall"] == stored["self_consistency"]["summary"][
        "subsets"][0]["overall"]
    at.run()
    lines = overall_chart(at)["layout"]["shapes"]
    assert sorted(line["y0"] for line in lines) == pytest.approx(expected)
    assert all(line["y0"] == line["y1"] and line["xref"] == "x domain" for line in lines)
    texts = [a["text"] for a in overall_chart(at)["layout"]["annotations"]]
    assert any(t.startswith("ceiling") for t in texts) and any(t.startswith("floor")
                                                               for t in texts)


def test_two_runs_differ_with_a_paired_bootstrap_interval(page, demo_runs,
                                                          tmp_path: Path) -> None:
    from pipelines.compare import run_difference
    from workbench.store import Store
    from workbench.store.evaluations import runs_with_latest_evaluation

    _, first, second = demo_runs
    db = demo_copy(demo_runs, tmp_path)
    floor = evaluate_as_the_floor(db, second)
    with Store(db).session() as session:
        [retrieval] = [r["evaluation_id"] for r in runs_with_latest_evaluation(session)
                       if r["run_id"] == first]
    at = page("runs", db).run()
    assert not at.exception
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == (
        second, first)                                   # the newest two, newest first
    at.selectbox(key="compare_a").set_value(first)
    at.selectbox(key="compare_b").set_value(second).run()
    expected = run_difference(Store(db), retrieval, floor).bootstrap
    [metric] = [m for m in at.metric if m.label == "Overall: A − B"]
    assert metric.value == f"{expected.observed:+.3f}"
    text = " ".join(m.value for m in at.markdown)
    assert f"[{expected.low:+.3f}, {expected.high:+.3f}]" in text
    assert expected.observed > 0                          # retrieval beats a constant answer
    assert ("A is better beyond the noise" if expected.excludes_zero
            else "the interval holds 0: no clear difference") in text
    assert "1,000 paired resamples (seed 0)" in " ".join(c.value for c in at.caption)
    at.selectbox(key="compare_b").set_value(first).run()
    assert any("Choose two different runs" in info.body for info in at.info)
