"""Committing approved candidates (issue 11, item 12): a commit onto a version that is no longer
current is rebased onto the current one (or refused with --no-rebase), never forks the lineage
and never drops the current version's rows; candidates that no longer fit are reported.

The review round is written straight into the tiny curated world (no encoder, no paraphraser):
ten candidates, two from each of five training intents."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines import curate, review
from tests.conftest import curated_store
from workbench.errors import WorkbenchError
from workbench.log_records import intent_key
from workbench.store import Store
from workbench.store.versions import current_version_id, diff_versions, version_rows


def make_round(store: Store, version_id: int, per_source: int = 2,
               sources: int = 5) -> list[int]:
    """A round of pending candidates from `sources` training intents of `version_id`, each
    labelled with its source's ground truth; returns the candidate ids in order."""
    with store.atomic() as session:
        train = [row for row in version_rows(session, version_id) if row["split"] == "train"]
        round_id = session.value(
            "INSERT INTO augmentations (created_at, run_id, version_id, mining_evaluation_id, "
            "paraphraser, config, summary) VALUES (?, NULL, ?, NULL, 'offline', '{}', '{}') "
            "RETURNING augmentation_id", [datetime.now(UTC), version_id])
        for row in train[:sources]:
            for n in range(per_source):
                text = f"{row['intent_text']} variant {n}"
                session.execute(
                    "INSERT INTO candidates (augmentation_id, source_intent_key, intent_key, "
                    "intent_text, adjust, selective_adjust, filter, status) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                    [round_id, row["intent_key"], intent_key(text), text, row["adjust"],
                     row["selective_adjust"], row["filter"]])
        return [row["candidate_id"] for row in session.query(
            "SELECT candidate_id FROM candidates WHERE augmentation_id = ? "
            "ORDER BY candidate_id", [round_id])]


def approve(store: Store, ids: list[int]) -> None:
    review.set_status(store, review.ReviewFilter(candidate_ids=tuple(ids)),
                      review.Status.APPROVED, by="ana")


def keys(store: Store, version_id: int, split: str = "train") -> set[str]:
    with store.session(read_only=True) as session:
        return {row["intent_key"] for row in version_rows(session, version_id)
                if row["split"] == split}


def version(store: Store, version_id: int) -> dict:
    [row] = store.query("SELECT parent_id, note, config, n_train, n_test FROM dataset_versions "
                        "WHERE version_id = ?", [version_id])
    return {**row, "config": json.loads(row["config"])}


@pytest.fixture
def world(tmp_path: Path) -> Store:
    return curated_store(tmp_path)          # version 1: 15 training intents, 3 test intents


def test_a_second_commit_from_the_same_round_builds_on_the_current_version(world) -> None:
    """The issue's scenario: v2 from 6 approvals of a round of v1; a second commit from the same
    round made v3 with parent v1, and v2's rows were gone from the new current version."""
    store = world
    ids = make_round(store, 1)
    approve(store, ids[:6])
    first = review.commit(store, 1, by="ana")
    assert (first.version_id, first.parent_id, first.rebased, first.committed) == (2, 1, False, 6)
    approve(store, ids[6:])
    second = review.commit(store, 1, by="ana")

    assert (second.version_id, second.parent_id, second.source_version_id) == (3, 2, 1)
    assert second.rebased and second.committed == 4 and second.skipped == ()
    v1, v2, v3 = keys(store, 1), keys(store, 2), keys(store, 3)
    assert len(v2) == len(v1) + 6 and v2 <= v3 and len(v3) == len(v1) + 10
    assert keys(store, 3, "test") == keys(store, 1, "test")
    with store.session(read_only=True) as session:
        assert current_version_id(session) == 3
        diff = diff_versions(session, 2, 3)
    assert (diff.added, diff.removed) == ({"train": 4, "test": 0}, {"train": 0, "test": 0})
    made = version(store, 3)
    assert made["parent_id"] == 2 and made["n_train"] == len(v1) + 10
    assert (made["config"]["source_version"], made["config"]["rebased_from"]) == (1, 1)
    assert "rebased from version 1 onto version 2" in made["note"]
    committed = store.query("SELECT committed_version_id AS v, count(*) AS n FROM candidates "
                            "GROUP BY ALL ORDER BY v")
    assert committed == [{"v": 2, "n": 6}, {"v": 3, "n": 4}]


def test_without_rebase_a_stale_commit_stops_and_changes_nothing(world) -> None:
    store = world
    ids = make_round(store, 1)
    approve(store, ids[:6])
    review.commit(store, 1, by="ana")
    approve(store, ids[6:])
    with pytest.raises(WorkbenchError, match="came from dataset version 1, but the current "
                                             "version is now 2.*fork the lineage"):
        review.commit(store, 1, by="ana", rebase=False)
    assert store.query("SELECT max(version_id) AS v FROM dataset_versions") == [{"v": 2}]
    assert store.query("SELECT count(*) AS n FROM candidates WHERE status = 'approved' "
                       "AND committed_version_id IS NULL") == [{"n": 4}]


def test_candidates_that_no_longer_fit_the_current_version_are_reported(world) -> None:
    store = world
    ids = make_round(store, 1, per_source=1, sources=15)
    approve(store, ids)
    # A new curation with another seed moves some training intents to the test split: their
    # paraphrases must not be trained on (they would leak), and they are not dropped silently.
    curate.run(curate.CurateConfig(test_size=3, seed=2), store)
    moved = keys(store, 1) & keys(store, 2, "test")
    assert moved
    result = review.commit(store, 1, by="ana")
    assert (result.parent_id, result.source_version_id) == (2, 1)
    sources = {row["candidate_id"]: row["source_intent_key"] for row in store.query(
        "SELECT candidate_id, source_intent_key FROM candidates")}
    assert sorted(s.candidate_id for s in result.skipped) == sorted(
        i for i in ids if sources[i] in moved)
    assert all("test split" in s.reason and "leak" in s.reason for s in result.skipped)
    assert result.committed == len(ids) - len(moved)
    assert keys(store, 3) == keys(store, 2) | {intent_key(t["intent_text"]) for t in store.query(
        "SELECT intent_text FROM candidates WHERE committed_version_id = 3")}
    # The skipped ones stay approved and uncommitted, and the lineage says what was left out.
    left = store.query("SELECT candidate_id FROM candidates WHERE status = 'approved' AND "
                       "committed_version_id IS NULL ORDER BY candidate_id")
    assert [row["candidate_id"] for row in left] == sorted(s.candidate_id for s in result.skipped)
    assert [s["candidate_id"] for s in version(store, 3)["config"]["skipped"]] == [
        s.candidate_id for s in result.skipped]
    lines = review.describe_commit(result)
    assert f"{len(moved)} approved candidate(s) were left out" in "\n".join(lines)
    # Committing only those again: nothing fits, and the error says why and what to do.
    with pytest.raises(WorkbenchError, match="none of the .* fits dataset version 3.*reject"):
        review.commit(store, 1, by="ana")


def test_a_candidate_already_in_the_current_version_is_reported(world) -> None:
    store = world
    ids = make_round(store, 1, per_source=1, sources=2)
    approve(store, ids[:1])
    review.commit(store, 1, by="ana")                    # version 2 has candidate 1's text
    second = make_round(store, 1, per_source=1, sources=2)   # round 2 says the same two texts
    approve(store, second)
    result = review.commit(store, 2, by="ana")
    assert [(s.candidate_id, s.reason) for s in result.skipped] == [
        (second[0], "is already a train intent of version 2")]
    assert (result.committed, result.parent_id) == (1, 2)


def test_the_cli_commit_says_it_rebased_and_no_rebase_stops(world, capsys) -> None:
    from workbench.cli import main

    store = world
    ids = make_round(store, 1)
    approve(store, ids[:6])
    assert main(["review", "commit", "--augmentation", "1", "--db", str(store.path)]) == 0
    approve(store, ids[6:])
    capsys.readouterr()
    assert main(["review", "commit", "--no-rebase", "--db", str(store.path)]) == 2
    assert "the current version is now 2" in capsys.readouterr().err
    assert main(["review", "commit", "--db", str(store.path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "committed the approved candidates as dataset version 3 (now the current version)",
        ("the round came from version 1, but version 2 was current: version 3 builds on version "
        "2 (rebased)")]


# ------------------------------------------------------------------ an augmentation's own label

def test_a_candidate_approved_with_an_edited_label_goes_in_with_it(world) -> None:
    """Issue 13: "slightly cooler morning" deserves a weaker temperature than its source. The
    edited answer is a curator label of the candidate's text, and the commit takes it (and
    records it); the other candidates keep their source's answer and label."""
    from pipelines import labels
    from workbench.store.labels import version_row_labels

    store = world
    ids = make_round(store, 1, per_source=1, sources=2)
    [first, second] = review.list_candidates(store, review.ReviewFilter(candidate_ids=tuple(ids)))
    edited = {"adjust": {"temperature": -15}}
    label = review.approve_with_label(store, ids[0], edited, by="ana", note="weaker")
    assert (label.source, label.intent_text, label.note) == ("curator:ana",
                                                             first["intent_text"], "weaker")
    with store.session(read_only=True) as session:
        source_row = version_row_labels(session, 1, [first["source_intent_key"]])
    assert label.edited_from == source_row[first["source_intent_key"]]["label_id"] is not None
    approve(store, [ids[1]])                                       # with its source's label
    listed = {row["candidate_id"]: row for row in review.list_candidates(
        store, review.ReviewFilter(candidate_ids=tuple(ids)))}
    assert listed[ids[0]]["status"] == "approved"
    assert (listed[ids[0]]["edited_label"], listed[ids[1]]["edited_label"]) == ("curator:ana",
                                                                                None)
    result = review.commit(store, None, by="ana")
    assert (result.committed, result.edited) == (2, 1)
    assert any("1 of the 2 candidate(s) with a curator's edited label" in line
               for line in review.describe_commit(result))
    with store.session(read_only=True) as session:
        rows = version_row_labels(session, result.version_id,
                                  [first["intent_key"], second["intent_key"]])
        source_label = version_row_labels(session, 1, [second["source_intent_key"]])
    assert json.loads(rows[first["intent_key"]]["adjust"])["temperature"] == -15
    assert rows[first["intent_key"]]["label_id"] == label.label_id
    assert rows[first["intent_key"]]["source"] == "curator:ana"
    assert rows[second["intent_key"]]["adjust"] == second["adjust"]          # the source's
    assert rows[second["intent_key"]]["label_id"] == \
        source_label[second["source_intent_key"]]["label_id"]
    assert labels.current_answer(store, first["intent_text"]).source == "curator:ana"


def test_an_edited_label_that_breaks_the_schema_saves_nothing(world) -> None:
    store = world
    ids = make_round(store, 1, per_source=1, sources=1)
    with pytest.raises(WorkbenchError, match=r"adjust\.temperature.*-140"):
        review.approve_with_label(store, ids[0], {"adjust": {"temperature": -140}}, by="ana")
    with pytest.raises(WorkbenchError, match=r"filter\.name.*sepia_Dream"):
        review.approve_with_label(store, ids[0], {"filter": {"name": "sepia_Dream",
                                                             "intensity": 50}}, by="ana")
    assert store.query("SELECT count(*) AS n FROM labels WHERE kind = 'curator'") == [{"n": 0}]
    assert store.query("SELECT status FROM candidates") == [{"status": "pending"}]


def test_a_dropped_or_committed_candidate_cannot_get_an_edited_label(world) -> None:
    store = world
    ids = make_round(store, 1, per_source=1, sources=2)
    with store.atomic() as session:
        session.execute("UPDATE candidates SET status = 'dropped' WHERE candidate_id = ?",
                        [ids[0]])
    with pytest.raises(WorkbenchError, match=f"cannot review {ids[0]} \\(dropped\\)"):
        review.approve_with_label(store, ids[0], {"adjust": {"temperature": 5}}, by="ana")
    approve(store, [ids[1]])
    version_id = review.commit(store, None, by="ana").version_id
    with pytest.raises(WorkbenchError, match=f"in version {version_id}"):
        review.approve_with_label(store, ids[1], {"adjust": {"temperature": 5}}, by="ana")
    with pytest.raises(WorkbenchError, match="no candidate 999"):
        review.approve_with_label(store, 999, {"adjust": {"temperature": 5}}, by="ana")
    assert store.query("SELECT count(*) AS n FROM labels WHERE kind = 'curator'") == [{"n": 0}]


# ------------------------------------------------------------------ taking a decision back

def statuses(store: Store, ids: list[int]) -> list[tuple[str, str | None]]:
    found = {row["candidate_id"]: (row["status"], row["reviewed_by"]) for row in store.query(
        "SELECT candidate_id, status, reviewed_by FROM candidates")}
    return [found[i] for i in ids]


def test_an_approved_or_rejected_candidate_goes_back_to_pending(world) -> None:
    """Issue 14: a decision made by mistake (ten rejected instead of one) can be taken back,
    one candidate at a time, by exact id."""
    store = world
    ids = make_round(store, 1, per_source=1, sources=4)
    approve(store, ids[:1])
    review.set_status(store, review.ReviewFilter(candidate_ids=tuple(ids[1:3])),
                      review.Status.REJECTED, by="ben")
    assert review.set_pending(store, [ids[0], ids[1], ids[3]]) == 2   # ids[3] was pending
    assert statuses(store, ids) == [("pending", None), ("pending", None), ("rejected", "ben"),
                                    ("pending", None)]
    assert review.set_pending(store, [ids[0]]) == 0                   # already pending
    with pytest.raises(WorkbenchError, match="name the candidates"):
        review.set_pending(store, [])


def test_back_to_pending_refuses_dropped_committed_and_unknown_ids(world) -> None:
    store = world
    ids = make_round(store, 1, per_source=1, sources=3)
    approve(store, ids[:1])
    version_id = review.commit(store, None, by="ana").version_id
    with store.atomic() as session:
        session.execute("UPDATE candidates SET status = 'dropped' WHERE candidate_id = ?",
                        [ids[1]])
    review.set_status(store, review.ReviewFilter(candidate_ids=(ids[2],)),
                      review.Status.REJECTED, by="ana")
    with pytest.raises(WorkbenchError, match=f"cannot review {ids[0]} \\(approved, in version "
                                             f"{version_id}\\), {ids[1]} \\(dropped\\)"):
        review.set_pending(store, [ids[2], ids[0], ids[1]])
    with pytest.raises(WorkbenchError, match="no candidate 999"):
        review.set_pending(store, [ids[2], 999])
    assert statuses(store, ids) == [("approved", "ana"), ("dropped", None), ("rejected", "ana")]


def test_an_edited_label_survives_going_back_to_pending(world) -> None:
    """The curator label a candidate was approved with stays (labels are never deleted): the
    detail says the candidate goes in with it, and approving it again commits it."""
    store = world
    ids = make_round(store, 1, per_source=1, sources=2)
    review.approve_with_label(store, ids[0], {"adjust": {"temperature": -15}}, by="ana")
    assert review.set_pending(store, [ids[0]]) == 1
    detail = review.candidate_detail(store, ids[0])
    assert detail is not None and (detail.status, detail.label_source) == ("pending",
                                                                          "curator:ana")
    assert detail.edited and detail.label.adjust is not None
    assert detail.label.adjust["temperature"] == -15 and detail.label != detail.inherited
    plain = review.candidate_detail(store, ids[1])
    assert plain is not None and not plain.edited and plain.label == plain.inherited
    assert review.candidate_detail(store, 999) is None
    approve(store, ids)
    result = review.commit(store, None, by="ana")
    assert (result.committed, result.edited) == (2, 1)


def test_the_cli_sets_candidates_back_to_pending(world, capsys) -> None:
    from workbench.cli import main

    store = world
    ids = make_round(store, 1, per_source=1, sources=3)
    db = ["--db", str(store.path)]
    assert main(["review", "reject", str(ids[0]), str(ids[1]), "--by", "ben", *db]) == 0
    capsys.readouterr()
    assert main(["review", "pending", str(ids[0]), str(ids[2]), *db]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "set 1 candidate(s) back to pending (1 already pending)"]
    assert statuses(store, ids) == [("pending", None), ("rejected", "ben"), ("pending", None)]
    assert main(["review", "pending", "999", *db]) == 2
    assert "no candidate 999" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:        # ids are required: no "all" form
        main(["review", "pending", *db])
    assert exit_info.value.code == 2
    assert statuses(store, ids)[1] == ("rejected", "ben")
