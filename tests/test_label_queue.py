"""The label queue (issue 13): which intents need a person and in what order, worked out by hand
on a four-intent world; one intent per curator at a time (claims); Accept; and the commit
preview agreeing with the commit it previews."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipelines import curate, ingest, labels
from pipelines import label_queue as queue
from pipelines.label_queue import QueueConfig, QueueError, QueueOrder, QueueReason
from tests.conftest import make_record
from workbench.store import Store
from workbench.store.evaluations import intent_disagreement, record_evaluation
from workbench.store.labels import LabelKind

GOLDEN = {"name": "warm_Golden", "intensity": 40}
MORNING = {"name": "cool_Morning", "intensity": 40}
NOIR = {"name": "mono_Noir", "intensity": 50}


def _request(rid: str, intent: str, adjust: dict | None, filter_: dict | None,
             exported: bool, selective: dict | None = None) -> dict[str, Any]:
    return make_record(request_id=rid, intent=intent,
                       teacher={"adjust": adjust, "selective_adjust": selective,
                                "filter": filter_},
                       exports={"adjust": int(exported and adjust is not None),
                                "selective_adjust": int(exported and selective is not None),
                                "filter": int(exported and filter_ is not None)})


RECORDS = [
    # single: 1 request, exported (rate 1.0); one output
    _request("s1", "single", {"temperature": 20}, None, True),
    # opposite look: 2 requests, one exported (rate 0.5). Adjust cosine -1 (signed, as SPEC 5
    # counts it), selective unused by both (1), filters differ (0): agreement 0, need 1.
    _request("o1", "opposite look", {"temperature": 50}, GOLDEN, True),
    _request("o2", "opposite look", {"temperature": -50}, MORNING, False),
    # golden hour: 2 requests, both exported (rate 1.0). Same direction, same filter: agreement 1,
    # so not a teacher disagreement.
    _request("g1", "golden hour", {"temperature": 30}, GOLDEN, True),
    _request("g2", "golden hour", {"temperature": 60}, GOLDEN, True),
    # three way: 3 requests, one exported (rate 1/3). Pairs: (1, 2) adjust 1, selective 0, filter
    # 1 = 2/3; (1, 3) adjust 0 (orthogonal), selective 1, filter 0 = 1/3; (2, 3) 0, 0, 0 = 0.
    # The least alike pair agrees 0: need 1.
    _request("t1", "three way", {"temperature": 40}, None, True),
    _request("t2", "three way", {"temperature": 40}, None, False, {"red": {"saturation": 50}}),
    _request("t3", "three way", {"contrast": 40}, NOIR, False),
]


def queue_world(folder: Path) -> Store:
    """The four intents above, ingested and curated into version 1."""
    logs = folder / "logs.jsonl"
    logs.write_text("".join(json.dumps(record) + "\n" for record in RECORDS))
    store = Store(folder / "queue.duckdb", lock_timeout=2.0)
    ingest.ingest_file(logs, store)
    curate.run(curate.CurateConfig(test_size=1, seed=0), store)
    return store


@pytest.fixture
def world(tmp_path: Path) -> Store:
    return queue_world(tmp_path)


def keys(store: Store, reason: QueueReason, order: QueueOrder = QueueOrder.NEED) -> list[str]:
    return [e.intent_key for e in queue.select(store, QueueConfig(reason, order)).entries]


def test_teacher_disagreement_by_the_least_alike_pair(world: Store) -> None:
    entries = queue.select(world, QueueConfig(QueueReason.TEACHER_DISAGREEMENT)).entries
    # Both need 1 (opposite look's cosine -1 cancels its unused selective's 1; clamped to 0 it
    # needed only 2/3); at the same need the most requested first: three way (3), then 2.
    assert [e.intent_key for e in entries] == ["three way", "opposite look"]
    assert [e.need for e in entries] == pytest.approx([1.0, 1.0])
    assert entries[1].why == ("2 different teacher outputs; the least alike two agree 0.00; "
                              "filters: cool_Morning, warm_Golden")
    assert entries[0].request_count == 3


def test_few_requests_and_low_export_rate(world: Store) -> None:
    # At most 2 requests, fewest first, then the lower export rate: single (1), opposite look
    # (2, rate 0.5), golden hour (2, rate 1.0). Three way has 3 requests.
    assert keys(world, QueueReason.FEW_REQUESTS) == ["single", "opposite look", "golden hour"]
    # Below 0.5: only three way (1/3); opposite look's 0.5 is not low.
    assert keys(world, QueueReason.LOW_EXPORT_RATE) == ["three way"]
    why = queue.select(world, QueueConfig(QueueReason.LOW_EXPORT_RATE)).entries[0].why
    assert why == "3 requests, export rate 0.33"


def test_the_curator_picks_the_order(world: Store) -> None:
    reason = QueueReason.FEW_REQUESTS
    assert keys(world, reason, QueueOrder.ALPHABETICAL) == ["golden hour", "opposite look",
                                                            "single"]
    # Most requested first (2, 2, 1); ties by need: opposite look's lower rate first.
    assert keys(world, reason, QueueOrder.MOST_REQUESTED) == ["opposite look", "golden hour",
                                                              "single"]


def _evaluation(store: Store, kind: str, source: str, overall: float,
                scores: list[tuple[str, str, bool, bool, float | None, float | None, bool]]
                ) -> int:
    """One hand-made evaluation of version 1: scores are (intent, tool, teacher used, student
    used, similarity, cosine, flagged)."""
    intents = sorted({row[0] for row in scores})
    with store.atomic() as session:
        return record_evaluation(
            session, created_at=datetime.now(UTC), version_id=1,
            split="test" if kind == "run" else "train", kind=kind, source=source,
            predictions_sha=source, summary={"subsets": [{"name": "All", "overall": overall}]},
            predictions={"sample_id": intents, "intent_key": intents,
                         **{tool: [None] * len(intents) for tool in
                            ("adjust", "selective_adjust", "filter")}},
            scores={"sample_id": [r[0] for r in scores], "intent_key": [r[0] for r in scores],
                    "tool": [r[1] for r in scores], "teacher_used": [r[2] for r in scores],
                    "student_used": [r[3] for r in scores], "similarity": [r[4] for r in scores],
                    "cosine": [r[5] for r in scores], "cosine_gap": [None] * len(scores),
                    "intensity_error": [None] * len(scores), "flagged": [r[6] for r in scores]})


def test_the_best_student_and_strong_disagreement(world: Store) -> None:
    with pytest.raises(QueueError, match="no student has been evaluated on version 1"):
        queue.select(world, QueueConfig(QueueReason.STUDENT_DISAGREEMENT))
    # golden hour: adjust 1 - 0.2, selective 1 - 1, a wrong filter 1 = 1.8.
    # single: adjust 1 - 0.9 = 0.1, filter unused by both 0: below 0.5, left out.
    best = _evaluation(world, "run", "run-b", 0.6, [
        ("golden hour", "adjust", True, True, 0.2, 0.2, True),
        ("golden hour", "selective_adjust", False, False, None, 1.0, False),
        ("golden hour", "filter", True, True, 0.0, None, True),
        ("single", "adjust", True, True, 0.9, 0.9, False),
        ("single", "selective_adjust", False, False, None, 1.0, False),
        ("single", "filter", False, False, None, None, False)])
    _evaluation(world, "run", "run-a", 0.4, [          # worse overall: not the best student
        ("single", "adjust", True, False, None, 0.0, True),
        ("single", "selective_adjust", False, False, None, 1.0, False),
        ("single", "filter", False, True, None, None, True)])
    with world.session() as session:
        found = {row["intent_key"]: row["disagreement"]
                 for row in intent_disagreement(session, best)}
    assert found == pytest.approx({"golden hour": 1.8, "single": 0.1})
    selection = queue.select(world, QueueConfig(QueueReason.STUDENT_DISAGREEMENT))
    assert selection.evaluation_id == best and "run run-b" in selection.source
    assert [e.intent_key for e in selection.entries] == ["golden hour"]
    assert selection.entries[0].need == pytest.approx(1.8)
    # The other evaluation, chosen by hand: single disagrees 1 + 0 + 1 = 2.
    chosen = queue.select(world, QueueConfig(QueueReason.STUDENT_DISAGREEMENT,
                                             evaluation_id=best + 1))
    assert [e.intent_key for e in chosen.entries] == ["single"]


def test_an_opposite_student_answer_disagrees_more_than_an_unrelated_one(world: Store) -> None:
    # Signed cosines (issue 15): 1 - (-1) = 2 for an opposite adjust, 1 - 0 = 1 for an unrelated
    # one. golden hour: 2 + 0 (selective unused by both, cosine 1) + 0 (right filter) = 2;
    # single: 1 + 0 + 0 = 1.
    best = _evaluation(world, "run", "run-c", 0.5, [
        ("golden hour", "adjust", True, True, -1.0, -1.0, True),
        ("golden hour", "selective_adjust", False, False, None, 1.0, False),
        ("golden hour", "filter", True, True, 1.0, None, False),
        ("single", "adjust", True, True, 0.0, 0.0, True),
        ("single", "selective_adjust", False, False, None, 1.0, False),
        ("single", "filter", False, False, None, None, False)])
    with world.session() as session:
        found = {row["intent_key"]: row["disagreement"]
                 for row in intent_disagreement(session, best)}
    assert found == pytest.approx({"golden hour": 2.0, "single": 1.0})
    entries = queue.select(world, QueueConfig(QueueReason.STUDENT_DISAGREEMENT)).entries
    assert [e.intent_key for e in entries] == ["golden hour", "single"]
    assert entries[0].why.startswith("student vs ground truth: disagreement 2.00 of 5")


def test_mining_flags(world: Store) -> None:
    with pytest.raises(QueueError, match="no mining evaluation"):
        queue.select(world, QueueConfig(QueueReason.MINING_FLAGS))
    _evaluation(world, "mining", "run-a", 0.5, [
        ("opposite look", "adjust", True, True, 0.1, 0.1, True),
        ("opposite look", "filter", True, True, 0.0, None, True),
        ("golden hour", "adjust", True, True, 0.95, 0.95, False),
        ("three way", "adjust", True, True, 0.3, 0.3, True)])
    assert keys(world, QueueReason.MINING_FLAGS) == ["opposite look", "three way"]


def test_two_curators_never_hold_the_same_intent(world: Store) -> None:
    config = QueueConfig(QueueReason.FEW_REQUESTS)
    ana = queue.next_in_queue(world, config, "ana")
    bob = queue.next_in_queue(world, config, "bob")
    assert ana is not None and bob is not None
    assert (ana.entry.intent_key, bob.entry.intent_key) == ("single", "opposite look")
    assert (ana.remaining, bob.remaining, bob.held_by_others) == (3, 2, 1)
    # Asking again gives each their own intent back (the claim is renewed, not taken).
    assert queue.next_in_queue(world, config, "ana").entry.intent_key == "single"
    # Ana skips hers: she gets the next free one; bob's stays his.
    skipped = queue.next_in_queue(world, config, "ana", skip={"single"})
    assert skipped.entry.intent_key == "golden hour"
    queue.release(world, "single", "ana")
    assert queue.next_in_queue(world, config, "carl").entry.intent_key == "single"
    # A lapsed claim is free again.
    lapsed = QueueConfig(QueueReason.FEW_REQUESTS, claim_expiry_s=0.0)
    assert queue.next_in_queue(world, lapsed, "dana").entry.intent_key == "single"


def test_accept_saves_the_ground_truth_as_the_curators_label(world: Store) -> None:
    config = QueueConfig(QueueReason.FEW_REQUESTS)
    item = queue.next_in_queue(world, config, "ana")
    current = labels.current_answer(world, item.entry.intent_text)
    label = queue.accept(world, item.entry.intent_text, "ana")
    assert (label.kind, label.source, label.answer) == (LabelKind.CURATOR, "curator:ana",
                                                        current.answer)
    assert label.edited_from == current.label_id is not None
    # Labelled by a curator: out of every queue, and bob now gets the next one.
    assert "single" not in keys(world, QueueReason.FEW_REQUESTS)
    assert queue.next_in_queue(world, config, "bob").entry.intent_key == "opposite look"
    # An edit leaves the queue the same way.
    queue.save_edit(world, "opposite look", labels.validate_answer(
        {"adjust": {"temperature": 10}}), "bob", "milder")
    assert keys(world, QueueReason.FEW_REQUESTS) == ["golden hour"]


def test_the_commit_preview_says_what_the_commit_does(world: Store) -> None:
    preview = queue.commit_preview(world)
    assert (preview.changed, preview.relinked, preview.makes_a_version) == (0, 0, False)
    queue.accept(world, "single", "ana")                            # same answer, new label
    labels.set_label(world, "golden hour", {"adjust": {"temperature": -40}}, "curator", "bob")
    labels.set_label(world, "a new look", {"filter": NOIR}, "curator", "bob")   # not in v1
    labels.set_label(world, "three way", {"adjust": {"contrast": 5}}, "teacher", "gpt")
    preview = queue.commit_preview(world)
    assert (preview.changed, preview.relinked, preview.new_intents) == (1, 1, 1)
    assert preview.from_level == {"curator": 2, "curation": 2}
    # With the teacher level the teacher's relabel counts too.
    assert queue.commit_preview(world, "curator,teacher,curation").changed == 2
    result = labels.commit(labels.CommitConfig(), world)
    assert result.changed == preview.changed
    after = queue.commit_preview(world)
    assert (after.changed, after.relinked, after.makes_a_version) == (0, 0, False)
