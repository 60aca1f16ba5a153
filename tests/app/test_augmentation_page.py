"""Augmentation page: empty databases, starting a generation job (selection or mining, the
leakage guard), the job panel, reviewing candidates, the dropped tab and committing a version.

The world is the Errors page's (tests/app/test_errors_page.py): a retrieval run, its evaluations,
and augmentation round 1 with three pending candidates and one dropped near a test intent."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from streamlit.proto.SelectWidgetFilterMode_pb2 import FILTER_MODE_PREFIX

from tests.app.conftest import write_job as write_app_job
from tests.app.test_errors_page import shared_world
from tests.conftest import curated_store
from workbench.app import jobs
from workbench.describe import describe_output
from workbench.store import Store

NEW = ["a sunny honey glow", "icy polar chill", "dusty old photograph"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return shared_world(tmp_path_factory)


@pytest.fixture
def db(world, tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    shutil.copy(world[0], path)
    return path


@pytest.fixture(autouse=True)
def no_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WORKBENCH_LLM_BASE_URL", "WORKBENCH_LLM_MODEL", "WORKBENCH_LLM_API_KEY",
                 "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def submitted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict]]:
    """jobs.submit replaced by a recorder that validates the config as the job process would."""
    calls: list[tuple[str, dict]] = []

    def submit(db_path: Any, kind: Any, config: dict) -> Any:
        jobs.build_config(kind, json.loads(json.dumps(config)))
        calls.append((jobs.JobKind(kind).value, config))

        class Started:
            id = "20240101-000000-augment-abcdef"
        return Started()

    monkeypatch.setattr(jobs, "submit", submit)
    return calls


def statuses(path: Path) -> dict[str, tuple[str, str | None]]:
    rows = Store(path).query("SELECT intent_text, status, reviewed_by FROM candidates")
    return {row["intent_text"]: (row["status"], row["reviewed_by"]) for row in rows}


def table(at: Any, column: str) -> Any:
    """The first table on the page with this column (plain tables carry no key in AppTest)."""
    return next(frame.value for frame in at.dataframe if column in frame.value)


def bodies(at: Any) -> str:
    elements = [*at.markdown, *at.caption, *at.info, *at.success, *at.warning, *at.error,
                *at.text, *at.code]
    return "\n".join(str(getattr(e, "body", None) or e.value) for e in elements)


# ---------------------------------------------------------------------------- empty databases

def test_without_a_database_it_says_how_to_make_one(page, tmp_path: Path) -> None:
    at = page("augmentation", tmp_path / "none.duckdb").run()
    assert not at.exception
    assert "workbench demo" in at.info[0].body


def test_without_runs_or_rounds_it_says_what_to_run(page, tmp_path: Path) -> None:
    store = curated_store(tmp_path)
    at = page("augmentation", store.path).run()
    assert not at.exception
    infos = [info.body for info in at.info]
    assert any("No training run yet" in body and "workbench train" in body for body in infos)
    assert any("No augmentation round yet" in body for body in infos)
    assert any("No LLM endpoint is configured" in body for body in infos)
    assert at.button(key="aug_start").disabled
    at.radio(key="aug_mode").set_value("selection").run()
    assert any("No intents selected" in info.body for info in at.info)


# ---------------------------------------------------------------------------- generation

def test_test_intents_are_refused(page, db: Path, world, submitted) -> None:
    test_key = world[1]["test"][0]["intent_key"]
    train_key = world[1]["train"][3]["intent_key"]
    at = page("augmentation", db)
    at.session_state["augmentation_sources"] = [test_key, train_key]
    at.session_state["augmentation_sources_version"] = 1
    at.run()
    assert not at.exception
    assert at.radio(key="aug_mode").value == "selection"
    assert "1 are test intents of version 1" in at.error[0].body
    assert "leak" in at.error[0].body
    assert at.button(key="aug_start").disabled
    at.button(key="aug_keep_train").click().run()
    assert at.session_state["augmentation_sources"] == [train_key]
    assert not at.error and not at.button(key="aug_start").disabled
    assert submitted == []


def test_a_selection_of_training_intents_starts_a_job(page, db: Path, world,
                                                     submitted) -> None:
    keys = [row["intent_key"] for row in world[1]["train"][2:4]]
    at = page("augmentation", db)
    at.session_state["augmentation_sources"] = keys
    at.session_state["augmentation_sources_version"] = 1
    at.run()
    assert list(table(at, "split")["split"]) == ["train", "train"]
    at.number_input(key="aug_n").set_value(3)
    at.number_input(key="aug_threshold").set_value(0.85)
    at.selectbox(key="aug_paraphraser").set_value("offline")
    at.button(key="aug_start").click().run()
    assert not at.exception
    assert submitted == [("augment", {"sources": keys, "version": 1, "n": 3,
                                      "threshold": 0.85, "paraphraser": "offline",
                                      "limit": None})]
    assert at.session_state["augmentation_job"] == "20240101-000000-augment-abcdef"
    assert "runs in the background" in at.success[0].body


def test_mining_a_run_starts_a_job(page, db: Path, world, submitted) -> None:
    at = page("augmentation", db).run()
    assert at.radio(key="aug_mode").value == "mining"
    assert at.selectbox(key="aug_run").value == world[1]["run_id"]
    at.number_input(key="aug_limit").set_value(20)
    at.button(key="aug_start").click().run()
    assert not at.exception
    assert submitted == [("augment", {"run_id": world[1]["run_id"],
                                      "mining": {"strategy": "mean"}, "n": 5, "threshold": 0.9,
                                      "paraphraser": "auto", "limit": 20})]


@pytest.mark.parametrize("strategy,widgets,mining", [
    ("margin", {"aug_margin": 0.25}, {"strategy": "margin", "margin": 0.25}),
    ("worst", {"aug_worst_percent": 12.5}, {"strategy": "worst", "worst_percent": 12.5}),
    ("slices", {"aug_clusters": 4, "aug_slice_gap": 0.1},
     {"strategy": "slices", "clusters": 4, "slice_gap": 0.1}),
    ("slices", {}, {"strategy": "slices", "clusters": None, "slice_gap": 0.05}),
])
def test_a_mining_strategy_and_its_parameter_go_to_the_job(page, db: Path, submitted,
                                                          strategy: str, widgets: dict,
                                                          mining: dict) -> None:
    at = page("augmentation", db).run()
    strategies = at.radio(key="aug_strategy")
    assert strategies.value == "mean"
    assert strategies.options == ["mean: the paper's rule", "margin: below the mean by a margin",
                                  "worst: the worst k %", "slices: weak slices"]
    strategies.set_value(strategy).run()
    for key, value in widgets.items():
        at.number_input(key=key).set_value(value)
    at.button(key="aug_start").click().run()
    assert not at.exception
    assert submitted[0][1]["mining"] == mining


def test_a_strategy_setting_the_job_refuses_is_said(page, db: Path, submitted) -> None:
    at = page("augmentation", db).run()
    at.radio(key="aug_strategy").set_value("slices").run()
    at.number_input(key="aug_clusters").set_value(1)
    at.button(key="aug_start").click().run()
    assert not at.exception
    assert submitted == []
    assert "at least 2 clusters" in at.error[0].body


def test_the_llm_paraphraser_needs_an_endpoint(page, db: Path, submitted) -> None:
    at = page("augmentation", db).run()
    at.selectbox(key="aug_paraphraser").set_value("llm")
    at.button(key="aug_start").click().run()
    assert "needs an endpoint" in at.error[0].body
    assert submitted == []


def test_a_configured_endpoint_is_named_but_its_key_never_shown(page, db: Path,
                                                                monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_LLM_BASE_URL", "https://llm.example.com/v1")
    monkeypatch.setenv("WORKBENCH_LLM_MODEL", "tiny-model")
    monkeypatch.setenv("WORKBENCH_LLM_API_KEY", "sk-QZXW-987654")
    at = page("augmentation", db).run()
    assert not at.exception
    shown = bodies(at)
    assert "tiny\\-model" in at.success[0].body and "API key set" in at.success[0].body
    assert "QZXW" not in shown and "987654" not in shown


def write_job(db: Path, job_id: str, **fields: Any) -> Path:
    """An augment job's folder as the job process leaves it."""
    return write_app_job(db, job_id, "augment", **{"config": {"run_id": None}, **fields})


def test_the_job_panel_shows_progress_then_the_outcome(page, db: Path) -> None:
    folder = write_job(db, "20240101-000000-augment-aaaaaa")
    (folder / jobs.PROGRESS_FILE).write_text(
        json.dumps({"t": 1.0, "stage": "paraphrase", "done": 3, "total": 12}) + "\n")
    at = page("augmentation", db).run()
    assert not at.exception
    [bar] = at.get("progress")
    assert bar.value == 25 and "paraphrase: 3 / 12" in bar.proto.text

    finished = write_job(db, "20240102-000000-augment-bbbbbb", status="succeeded",
                         finished_at=datetime.now(UTC).isoformat(),
                         result={"augmentation_id": 1, "n_sources": 2, "n_generated": 9,
                                 "n_kept": 6, "dropped": {"near_train": 3}, "n_failed": 0})
    at.session_state["augmentation_job"] = finished.name
    at.run()
    assert not at.exception
    assert any("Round 1: 2 source intent(s), 9 candidate(s) generated, 6 kept" in s.body
               and "3 near train" in s.body for s in at.success)

    write_job(db, "20240103-000000-augment-cccccc", status="failed",
              finished_at=datetime.now(UTC).isoformat(), error="no LLM endpoint **here**")
    at.session_state["augmentation_job"] = "20240103-000000-augment-cccccc"
    at.run()
    assert "no LLM endpoint \\*\\*here\\*\\*" in at.error[0].body


# ---------------------------------------------------------------------------- review

def test_the_queue_lists_pending_candidates_and_the_reviewer_defaults_to_user(
        page, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "ana")
    at = page("augmentation", db).run()
    assert not at.exception
    assert at.text_input(key="reviewer").value == "ana"
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Pending"], metrics["Dropped"], metrics["Approved"]) == ("3", "1", "0")
    queue = at.dataframe(key="aug_queue_table_0").value
    assert list(queue["candidate"]) == NEW
    assert "status" not in queue                # one status shown: the filter above says it
    assert list(at.multiselect(key="aug_selected").options) == [
        f"#{i} · {text}" for i, text in zip(queue["id"], NEW, strict=True)]


def test_approving_and_rejecting_selected_candidates(page, db: Path) -> None:
    at = page("augmentation", db).run()
    ids = list(at.dataframe(key="aug_queue_table_0").value["id"])
    at.text_input(key="reviewer").set_value("ben")
    at.multiselect(key="aug_selected").set_value(ids[:2]).run()
    at.button(key="aug_approve").click().run()
    assert not at.exception
    assert "Approve 2 candidates?" in at.warning[0].body
    at.button(key="aug_confirm").click().run()
    assert "Approved 2 candidate(s) as ben" in at.success[0].body
    assert at.multiselect(key="aug_selected").value == []
    at.multiselect(key="aug_selected").set_value([ids[2]]).run()
    at.button(key="aug_reject").click().run()
    assert "Reject 1 candidate?" in at.warning[0].body
    at.button(key="aug_confirm").click().run()
    assert "Rejected 1 candidate(s)" in at.success[0].body
    assert statuses(db) == {NEW[0]: ("approved", "ben"), NEW[1]: ("approved", "ben"),
                            NEW[2]: ("rejected", "ben"),
                            next(t for t in statuses(db) if t.endswith("!")): ("dropped", None)}
    assert any("No pending candidate in round 1" in info.body for info in at.info)
    at.selectbox(key="aug_status").set_value("approved").run()
    assert list(at.dataframe(key="aug_queue_table_2").value["candidate"]) == NEW[:2]


def test_approving_without_a_selection_changes_nothing(page, db: Path) -> None:
    at = page("augmentation", db).run()
    for key in ("aug_approve", "aug_reject", "aug_pending_selected"):
        assert at.button(key=key).disabled
    assert at.button(key="aug_approve").proto.label == "Approve selected (0)"
    assert {status for status, _ in statuses(db).values()} == {"pending", "dropped"}


def test_approve_all_pending_then_commit_a_new_version(page, db: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "ana")
    at = page("augmentation", db).run()
    assert at.button(key="aug_commit").disabled      # nothing approved yet
    at.button(key="aug_approve_all").click().run()
    assert "Approve 3 pending candidates?" in at.warning[0].body
    at.button(key="aug_confirm").click().run()
    assert "Approved 3 candidate(s) as ana" in at.success[0].body
    assert not at.button(key="aug_commit").disabled
    at.text_input(key="aug_commit_note").set_value("three good ones")
    at.button(key="aug_commit").click().run()
    assert not at.exception
    assert "Created dataset version 2 from round 1" in at.success[0].body
    assert at.session_state["augmentation_committed_version"] == 2
    version = Store(db).query("SELECT parent_id, created_by, note, n_train FROM "
                              "dataset_versions WHERE version_id = 2")
    assert version == [{"parent_id": 1, "created_by": "augmentation", "note": "three good ones",
                        "n_train": 18}]
    committed = Store(db).query("SELECT count(*) AS n FROM candidates "
                                "WHERE committed_version_id = 2")
    assert committed == [{"n": 3}]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Committed"] == "3"
    assert any("already committed into a version are hidden" in i.body for i in at.info)


def test_dropped_candidates_show_reason_and_nearest_neighbour(page, db: Path, world) -> None:
    at = page("augmentation", db).run()
    dropped = next(frame.value for frame in at.dataframe
                   if "drop reason" in frame.value and "status" not in frame.value)
    test_text = world[1]["test"][0]["intent_text"]
    assert list(dropped["candidate"]) == [test_text + "!"]
    row = dropped.iloc[0]
    assert (row["drop reason"], row["kind"], row["nearest neighbour"]) == (
        "near_test", "test", test_text)
    assert row["similarity"] >= 0.9


def test_a_selection_from_a_missing_version_or_unknown_intents_is_refused(page, db: Path,
                                                                          world) -> None:
    at = page("augmentation", db)
    at.session_state["augmentation_sources"] = [world[1]["train"][0]["intent_key"]]
    at.session_state["augmentation_sources_version"] = 99
    at.run()
    assert "dataset version 99, which this database does not have" in at.error[0].body
    at.session_state["augmentation_sources"] = ["never seen"]
    at.session_state["augmentation_sources_version"] = 1
    at.run()
    assert "1 are not intents of version 1" in at.error[0].body
    assert at.button(key="aug_start").disabled
    at.button(key="aug_clear_sources").click().run()
    assert at.session_state["augmentation_sources"] == []
    assert any("No intents selected" in info.body for info in at.info)


@pytest.mark.slow
def test_a_real_generation_job_ends_in_a_new_round_to_review(page, db: Path, world) -> None:
    import time

    keys = [row["intent_key"] for row in world[1]["train"][5:7]]
    at = page("augmentation", db)
    at.session_state["augmentation_sources"] = keys
    at.session_state["augmentation_sources_version"] = 1
    at.run()
    at.number_input(key="aug_n").set_value(2)
    at.selectbox(key="aug_paraphraser").set_value("offline")
    at.button(key="aug_start").click().run()
    job_id = at.session_state["augmentation_job"]
    deadline = time.monotonic() + 180
    while not (job := jobs.load_job(db, job_id)).finished:
        assert time.monotonic() < deadline, job.log_tail()
        time.sleep(0.5)
    assert job.status is jobs.JobStatus.SUCCEEDED, job.log_tail()
    at.run()
    assert not at.exception
    assert any("Round 2: 2 source intent(s)" in s.body for s in at.success)
    assert at.selectbox(key="aug_round").value == 2
    assert job.result is not None
    made = Store(db).query("SELECT count(*) AS n FROM candidates WHERE augmentation_id = 2")
    assert made == [{"n": job.result["n_generated"]}]


# ---------------------------------------------------------------------------- one job at a time

MINING = {"n": 5, "threshold": 0.9, "paraphraser": "auto", "limit": None}


def test_the_latest_outcome_is_shown_not_an_earlier_failure(page, db: Path) -> None:
    """The issue: a duplicate job failed, the first one then succeeded, and the page kept the
    failure (the job this session started last) in red."""
    now = datetime.now(UTC)
    write_job(db, "20240101-000000-augment-aaaaaa", status="succeeded",
              finished_at=now.isoformat(),
              result={"augmentation_id": 1, "n_sources": 2, "n_generated": 9, "n_kept": 6,
                      "dropped": {}, "n_failed": 0})
    write_job(db, "20240101-000002-augment-bbbbbb", status="failed",
              finished_at=(now - timedelta(seconds=30)).isoformat(), error="cache race")
    at = page("augmentation", db)
    at.session_state["augmentation_job"] = "20240101-000002-augment-bbbbbb"
    at.run()
    assert not at.exception
    assert any("`20240101-000000-augment-aaaaaa` succeeded" in s.body and "Round 1" in s.body
               for s in at.success)
    assert not [e.body for e in at.error if "cache race" in e.body]
    assert not at.button(key="aug_start").disabled            # nothing of this session runs


def test_start_is_disabled_while_this_sessions_job_runs(page, db: Path, world,
                                                        submitted) -> None:
    running = write_job(db, "20240101-000000-augment-aaaaaa",
                        config={"run_id": world[1]["run_id"], **MINING})
    at = page("augmentation", db)
    at.session_state["augmentation_job"] = running.name
    at.run()
    assert not at.exception
    assert at.button(key="aug_start").disabled
    assert any("Your generation job 20240101\\-000000\\-augment\\-aaaaaa is running" in c.body
               for c in at.caption)
    assert submitted == []


def test_a_second_identical_job_is_refused_and_the_page_follows_the_first(page, db: Path,
                                                                          world) -> None:
    """Another browser session (or a reload) started the same generation: Start is refused by
    `jobs.submit`, which names the running job; the page then follows it."""
    running = write_job(db, "20240101-000000-augment-aaaaaa",
                        config={"run_id": world[1]["run_id"], **MINING})
    at = page("augmentation", db).run()
    assert not at.button(key="aug_start").disabled
    at.button(key="aug_start").click().run()
    assert not at.exception
    assert any("an identical augment job is already running: 20240101-000000-augment-aaaaaa"
               in w.body.replace("\\", "") for w in at.warning)
    assert at.session_state["augmentation_job"] == running.name
    assert at.button(key="aug_start").disabled
    assert [job.id for job in jobs.list_jobs(db)] == [running.name]   # no second job


def test_enter_in_a_field_does_not_start_a_job(page, db: Path) -> None:
    at = page("augmentation", db).run()
    [form] = [f for f in at.get("form") if f.proto.form.form_id == "aug_generate_form"]
    assert form.proto.form.enter_to_submit is False


def test_a_second_commit_from_a_round_builds_on_the_current_version(page, db: Path) -> None:
    at = page("augmentation", db).run()
    ids = list(at.dataframe(key="aug_queue_table_0").value["id"])
    at.multiselect(key="aug_selected").set_value(ids[:1]).run()
    at.button(key="aug_approve").click().run()
    at.button(key="aug_confirm").click().run()
    at.button(key="aug_commit").click().run()
    assert "Created dataset version 2 from round 1" in at.success[0].body
    at.button(key="aug_approve_all").click().run()
    at.button(key="aug_confirm").click().run()
    assert any("The round came from version 1, but version 2 is current now" in m.value
               for m in at.markdown)
    assert at.checkbox(key="aug_commit_rebase").value is True
    at.button(key="aug_commit").click().run()
    assert not at.exception
    assert "Created dataset version 3 from round 1" in at.success[0].body
    assert "builds on version 2, which was current (rebased)" in at.success[0].body
    assert Store(db).query("SELECT version_id, parent_id, n_train FROM dataset_versions "
                           "ORDER BY version_id") == [
        {"version_id": 1, "parent_id": None, "n_train": 15},
        {"version_id": 2, "parent_id": 1, "n_train": 16},
        {"version_id": 3, "parent_id": 2, "n_train": 18}]


def test_without_rebasing_a_stale_commit_is_refused_on_the_page(page, db: Path) -> None:
    at = page("augmentation", db).run()
    ids = list(at.dataframe(key="aug_queue_table_0").value["id"])
    at.multiselect(key="aug_selected").set_value(ids[:1]).run()
    at.button(key="aug_approve").click().run()
    at.button(key="aug_confirm").click().run()
    at.button(key="aug_commit").click().run()
    at.button(key="aug_approve_all").click().run()
    at.button(key="aug_confirm").click().run()
    at.checkbox(key="aug_commit_rebase").uncheck()
    at.button(key="aug_commit").click().run()
    assert not at.exception
    assert "the current version is now 2" in at.error[0].body
    assert Store(db).query("SELECT max(version_id) AS v FROM dataset_versions") == [{"v": 2}]


# ---------------------------------------------------------------------------- edited labels

def test_a_candidate_is_approved_with_an_edited_label(page, db: Path, world) -> None:
    """Issue 13: in the review queue a candidate can be approved with an edited label instead of
    its source's; the commit takes it."""
    source = world[1]["source"]
    at = page("augmentation", db)
    at.session_state["reviewer"] = "ben"
    at.run()
    ids = list(at.dataframe(key="aug_queue_table_0").value["id"])
    at.number_input(key="aug_candidate").set_value(ids[1]).run()
    assert at.selectbox(key="aug_editor.start").options[0] == \
        f"its source's label ({source['intent_text']})"
    inherited = json.loads(source["adjust"])
    assert at.slider(key="aug_editor.adjust.temperature").value == inherited["temperature"]
    edited = inherited["temperature"] // 2 - 10              # cooler, whatever the source says
    at.slider(key="aug_editor.adjust.temperature").set_value(edited)
    at.text_input(key="aug_editor.note").input("weaker than its source").run()
    at.button(key="aug_editor.save").click().run()
    assert not at.exception
    assert statuses(db)[NEW[1]] == ("approved", "ben")
    at.selectbox(key="aug_status").set_value("all").run()
    queue = at.dataframe(key="aug_queue_table_1").value.set_index("candidate")
    assert queue.loc[NEW[1], "label"] == "edited: curator:ben"
    assert queue.loc[NEW[0], "label"] == "inherited"
    at.number_input(key="aug_candidate").set_value(ids[1]).run()
    facts = "\n".join(m.value for m in at.markdown)
    assert "an edited label (curator:ben), not its source's" in facts.replace("\\", "")
    labels = table(at, "source's label").set_index("tool")
    assert labels.loc["Adjust", "goes in with"] == describe_output("adjust", json.dumps(
        {**inherited, "temperature": edited}, separators=(",", ":")))
    assert labels.loc["Filter", "goes in with"] == describe_output("filter", source["filter"])
    captions = [c for image in at.image for c in image.captions]
    assert "goes in with: curator:ben" in captions
    at.button(key="aug_approve_all").click().run()
    at.button(key="aug_confirm").click().run()
    at.button(key="aug_commit").click().run()
    assert not at.exception
    [row] = Store(db).query(
        "SELECT d.adjust, l.source FROM dataset_rows d JOIN dataset_row_labels k "
        "USING (version_id, intent_key) JOIN labels l USING (label_id) "
        "WHERE d.version_id = 2 AND d.intent_text = ?", [NEW[1]])
    assert json.loads(row["adjust"])["temperature"] == edited
    assert row["source"] == "curator:ben"


# ---------------------------------------------------------------------------- issue 14

def add_candidates(db: Path, texts: list[str]) -> list[int]:
    """More pending candidates in round 1, from the round's source (as a round stores them)."""
    with Store(db).atomic() as session:
        source = session.first("SELECT source_intent_key, adjust, selective_adjust, filter "
                               "FROM candidates WHERE status = 'pending' LIMIT 1")
        for text in texts:
            session.execute(
                "INSERT INTO candidates (augmentation_id, source_intent_key, intent_key, "
                "intent_text, adjust, selective_adjust, filter, status, nearest_text, "
                "nearest_kind, nearest_similarity) VALUES (1, ?, ?, ?, ?, ?, ?, 'pending', "
                "'a sunny honey glow', 'candidate', 0.5)",
                [source["source_intent_key"], text, text, source["adjust"],
                 source["selective_adjust"], source["filter"]])
        rows = session.query("SELECT candidate_id FROM candidates WHERE list_contains(?, "
                             "intent_text) ORDER BY candidate_id", [texts])
    return [row["candidate_id"] for row in rows]


def test_picking_by_typing_never_selects_all_matches(page, db: Path) -> None:
    """The bulk-select trap: typing "#6" and Enter in the selection box chose "Select 9
    matches". The box now offers no select-all, matches by prefix, and the one candidate
    typed by id is exact."""
    add_candidates(db, [f"warm variant {n}" for n in range(10)])
    at = page("augmentation", db).run()
    box = at.multiselect(key="aug_selected")
    assert box.proto.select_all == 0                          # no "Select N matches"
    assert box.proto.filter_mode == FILTER_MODE_PREFIX
    ids = list(at.dataframe(key="aug_queue_table_0").value["id"])
    at.number_input(key="aug_candidate").set_value(ids[5]).run()
    assert not at.exception
    assert any(f"Candidate #{ids[5]} · pending" in m.value for m in at.markdown)
    at.button(key="aug_one_reject").click().run()
    assert f"Candidate #{ids[5]} rejected as" in at.success[0].body
    rejected = Store(db).query("SELECT candidate_id FROM candidates WHERE status = 'rejected'")
    assert rejected == [{"candidate_id": ids[5]}]              # exactly one


def test_a_bulk_action_says_how_many_and_asks_once(page, db: Path) -> None:
    add_candidates(db, [f"cold variant {n}" for n in range(7)])
    at = page("augmentation", db).run()
    ids = list(at.dataframe(key="aug_queue_table_0").value["id"])
    assert len(ids) == 10
    at.multiselect(key="aug_selected").set_value(ids).run()
    assert at.button(key="aug_reject").proto.label == "Reject selected (10)"
    at.button(key="aug_reject").click().run()
    assert not at.exception
    question = at.warning[0].body
    assert "Reject 10 candidates?" in question and f"#{ids[0]}" in question
    assert "and 0 more" not in question
    assert at.button(key="aug_confirm").proto.label == "Yes: reject 10 candidates"
    assert {status for status, _ in statuses(db).values()} == {"pending", "dropped"}  # asked
    at.button(key="aug_cancel").click().run()
    assert not [w for w in at.warning if "Reject 10" in w.body]
    assert {status for status, _ in statuses(db).values()} == {"pending", "dropped"}
    at.multiselect(key="aug_selected").set_value(ids[:3]).run()
    at.button(key="aug_reject").click().run()
    # The selection changing after the question does not widen what the confirmation does.
    at.multiselect(key="aug_selected").set_value(ids).run()
    at.button(key="aug_confirm").click().run()
    assert "Rejected 3 candidate(s)" in at.success[0].body
    assert sorted(r["candidate_id"] for r in Store(db).query(
        "SELECT candidate_id FROM candidates WHERE status = 'rejected'")) == sorted(ids[:3])


def test_rejected_candidates_go_back_to_pending(page, db: Path) -> None:
    at = page("augmentation", db)
    at.session_state["reviewer"] = "ben"
    at.run()
    ids = list(at.dataframe(key="aug_queue_table_0").value["id"])
    at.multiselect(key="aug_selected").set_value(ids).run()
    at.button(key="aug_reject").click().run()
    at.button(key="aug_confirm").click().run()
    assert {statuses(db)[text] for text in NEW} == {("rejected", "ben")}
    at.selectbox(key="aug_status").set_value("rejected").run()
    at.number_input(key="aug_candidate").set_value(ids[0]).run()
    assert at.button(key="aug_one_reject").disabled
    at.button(key="aug_one_pending").click().run()
    assert not at.exception
    assert f"Candidate #{ids[0]} set back to pending" in at.success[0].body
    assert statuses(db)[NEW[0]] == ("pending", None)
    table = next(d for d in at.dataframe if d.key and d.key.startswith("aug_queue_table"))
    at.multiselect(key="aug_selected").set_value(list(table.value["id"])).run()
    at.button(key="aug_pending_selected").click().run()
    assert "Set 2 candidates back to pending?" in at.warning[0].body
    at.button(key="aug_confirm").click().run()
    assert "Set 2 candidate(s) back to pending." in at.success[0].body
    assert {statuses(db)[text] for text in NEW} == {("pending", None)}


def test_the_detail_shows_source_label_render_and_nearest_neighbour(page, db: Path,
                                                                    world) -> None:
    source = world[1]["source"]
    at = page("augmentation", db).run()
    ids = list(at.dataframe(key="aug_queue_table_0").value["id"])
    queue = at.dataframe(key="aug_queue_table_0").value.set_index("candidate")
    assert set(queue["source intent"]) == {source["intent_text"]}
    assert set(queue["label"]) == {"inherited"}
    assert queue["nearest neighbour"].notna().all() and queue["similarity"].notna().all()
    assert at.number_input(key="aug_candidate").value == ids[0]    # the first row by default
    facts = "\n".join(m.value for m in at.markdown)
    assert f"**Candidate:** {NEW[0]}" in facts.replace("\\", "")
    assert f"**Source intent:** {source['intent_text']}" in facts.replace("\\", "")
    nearest = queue.loc[NEW[0]]
    assert f"{nearest['nearest neighbour']} ({nearest['kind']}, cosine " \
           f"{nearest['similarity']:.3f})" in facts.replace("\\", "")
    assert "its source intent's label (inherited)" in facts
    labels = table(at, "source's label")
    assert list(labels["source's label"]) == list(labels["goes in with"])
    captions = [c for image in at.image for c in image.captions]
    assert captions[:3] == ["as it is", "source's label", "goes in with: inherited (the same)"]
