"""Augmentation rounds and their candidates (SPEC 6): the tables `augmentations`, `candidates`
and `paraphrase_failures`.

A round is written in one go (`record_round`); afterwards only a candidate's review status and
the dataset version it was committed into change. Every WHERE clause takes bound parameters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from workbench.store.connection import Session


class Status(str, Enum):
    DROPPED = "dropped"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


REVIEWABLE = (Status.PENDING, Status.APPROVED, Status.REJECTED)


@dataclass(frozen=True)
class ReviewFilter:
    augmentation_id: int | None = None
    status: Status | None = None
    candidate_ids: tuple[int, ...] = ()
    uncommitted: bool = True           # leave out candidates already in a version

    def where(self) -> tuple[str, list]:
        """A WHERE clause of bound parameters (no values are spliced into the SQL)."""
        clauses: list[str] = ["TRUE"]
        params: list[Any] = []
        if self.augmentation_id is not None:
            clauses.append("augmentation_id = ?")
            params.append(self.augmentation_id)
        if self.status is not None:
            clauses.append("status = ?")
            params.append(self.status.value)
        if self.candidate_ids:
            clauses.append("list_contains(?, candidate_id)")
            params.append(list(self.candidate_ids))
        if self.uncommitted:
            clauses.append("committed_version_id IS NULL")
        return " AND ".join(clauses), params


# ------------------------------------------------------------------------------ a round

@dataclass(frozen=True)
class NewCandidate:
    """A candidate as a round stores it: kept ones wait as 'pending', the others are
    'dropped' with their reason and nearest neighbour."""

    source_intent_key: str
    intent_key: str
    intent_text: str
    adjust: str | None               # the source intent's ground truth (canonical JSON)
    selective_adjust: str | None
    filter: str | None
    kept: bool
    drop_reason: str | None
    nearest_text: str | None
    nearest_kind: str | None
    nearest_similarity: float | None


def record_round(session: Session, created_at: datetime, run_id: str | None, version_id: int,
                 mining_evaluation_id: int | None, paraphraser: str, config: str,
                 summary: dict[str, Any], candidates: Sequence[NewCandidate],
                 failures: Sequence[tuple[str, str]]) -> int:
    """Store one augmentation round with its candidates and paraphraser failures
    ((source intent key, error)), inside the caller's transaction. Returns its id."""
    augmentation_id = int(session.value(
        "INSERT INTO augmentations (created_at, run_id, version_id, mining_evaluation_id, "
        "paraphraser, config, summary) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "RETURNING augmentation_id",
        [created_at, run_id, version_id, mining_evaluation_id, paraphraser, config,
         json.dumps(summary)]))
    columns = [name for name in NewCandidate.__dataclass_fields__ if name != "kept"]
    session.insert("candidates", {
        **{name: [getattr(c, name) for c in candidates] for name in columns},
        "status": [Status.PENDING.value if c.kept else Status.DROPPED.value for c in candidates],
    }, extra={"augmentation_id": augmentation_id})
    session.insert("paraphrase_failures", {
        "source_intent_key": [key for key, _ in failures],
        "error": [error for _, error in failures]}, extra={"augmentation_id": augmentation_id})
    return augmentation_id


def decided_candidates(session: Session, keys: Sequence[str]) -> dict[str, dict]:
    """Per intent key among `keys`, the earlier candidate that decides it should not be proposed
    again: one in a dataset version first, then rejected, approved, pending; the latest of each.
    Dropped candidates decide nothing (dedup judges them afresh)."""
    import pyarrow as pa

    if not keys:
        return {}
    session.register("new_keys", pa.table({"intent_key": list(dict.fromkeys(keys))}))
    try:
        rows = session.query(
            "SELECT c.intent_key, c.candidate_id, c.intent_text, c.status, "
            "c.committed_version_id FROM candidates c JOIN new_keys USING (intent_key) "
            "WHERE c.status IN ('rejected', 'approved', 'pending') "
            "QUALIFY row_number() OVER (PARTITION BY c.intent_key ORDER BY "
            "c.committed_version_id IS NOT NULL DESC, "
            "CASE c.status WHEN 'rejected' THEN 0 WHEN 'approved' THEN 1 ELSE 2 END, "
            "c.candidate_id DESC) = 1")
    finally:
        session.unregister("new_keys")
    return {row["intent_key"]: row for row in rows}


# ------------------------------------------------------------------------------ review

def list_candidates(session: Session, selection: ReviewFilter, limit: int = 100,
                    offset: int = 0) -> list[dict]:
    """Candidates with their source intent's text, newest round first, in generation order."""
    where, params = selection.where()
    return session.query(
        "SELECT c.candidate_id, c.augmentation_id, c.status, c.intent_key, c.intent_text, "
        "c.source_intent_key, coalesce(r.intent_text, c.source_intent_key) AS source_text, "
        "c.drop_reason, "
        "c.nearest_text, c.nearest_kind, c.nearest_similarity, c.reviewed_by, c.reviewed_at, "
        "c.committed_version_id, c.adjust, c.selective_adjust, c.filter "
        "FROM (SELECT * FROM candidates WHERE " + where + ") c "
        "JOIN augmentations a USING (augmentation_id) "
        "LEFT JOIN dataset_rows r ON r.version_id = a.version_id "
        "AND r.intent_key = c.source_intent_key "
        "ORDER BY c.augmentation_id DESC, c.candidate_id LIMIT ? OFFSET ?",
        [*params, limit, offset])


def count_candidates(session: Session, selection: ReviewFilter) -> dict[str, int]:
    """{status: candidates} of the selection."""
    where, params = selection.where()
    return {row["status"]: row["n"] for row in session.query(
        "SELECT status, count(*) AS n FROM candidates WHERE " + where + " GROUP BY status",
        params)}


def candidate_row(session: Session, candidate_id: int) -> dict | None:
    """One candidate: its columns plus the dataset version its round came from
    (`base_version_id`); None when there is no such candidate."""
    return session.first(
        "SELECT c.*, a.version_id AS base_version_id FROM candidates c "
        "JOIN augmentations a USING (augmentation_id) WHERE c.candidate_id = ?", [candidate_id])


def candidate_states(session: Session, candidate_ids: Sequence[int]) -> dict[int, dict]:
    """{candidate id: candidate_id, status, committed_version_id} of the ids that exist."""
    return {row["candidate_id"]: row for row in session.query(
        "SELECT candidate_id, status, committed_version_id FROM candidates "
        "WHERE list_contains(?, candidate_id)", [list(candidate_ids)])}


def set_status(session: Session, selection: ReviewFilter, status: Status, by: str,
               at: datetime) -> int:
    """Set the status of every selected candidate that is neither dropped nor committed.
    Back to pending means undecided again: the reviewer and the time are cleared, and only
    approved or rejected candidates change. Returns how many changed."""
    where, params = selection.where()
    if status is Status.PENDING:
        return int(session.value(
            "WITH changed AS (UPDATE candidates SET status = 'pending', reviewed_by = NULL, "
            "reviewed_at = NULL WHERE " + where + " AND status IN ('approved', 'rejected') "
            "AND committed_version_id IS NULL RETURNING 1) SELECT count(*) FROM changed",
            params))
    return int(session.value(
        "WITH changed AS (UPDATE candidates SET status = ?, reviewed_by = ?, reviewed_at = ? "
        "WHERE " + where + " AND status != 'dropped' AND committed_version_id IS NULL "
        "RETURNING 1) SELECT count(*) FROM changed",
        [status.value, by, at, *params]))


def approved_uncommitted(session: Session, augmentation_id: int | None) -> list[dict]:
    """Approved candidates not in a dataset version yet (of one round, or of all), with the
    version their round came from (`base_version_id`)."""
    return session.query(
        "SELECT c.candidate_id, c.augmentation_id, c.intent_key, c.intent_text, c.adjust, "
        "c.selective_adjust, c.filter, c.source_intent_key, a.version_id AS base_version_id "
        "FROM candidates c JOIN augmentations a USING (augmentation_id) "
        "WHERE c.status = 'approved' AND c.committed_version_id IS NULL "
        "AND (? IS NULL OR c.augmentation_id = ?) ORDER BY c.candidate_id",
        [augmentation_id, augmentation_id])


def mark_committed(session: Session, candidate_ids: Sequence[int], version_id: int) -> None:
    session.execute("UPDATE candidates SET committed_version_id = ? "
                    "WHERE list_contains(?, candidate_id)", [version_id, list(candidate_ids)])


# ------------------------------------------------------------------------------ history

def committed_into(session: Session, version_id: int) -> list[dict]:
    """The candidates that made a dataset version (approved and committed into it)."""
    return session.query(
        "SELECT candidate_id, augmentation_id, source_intent_key, intent_text, reviewed_by, "
        "reviewed_at FROM candidates WHERE committed_version_id = ? ORDER BY candidate_id",
        [version_id])


def committed_rounds(session: Session) -> dict[int, list[tuple[int, int]]]:
    """{dataset version id: [(augmentation id, candidates committed into it)]}."""
    committed: dict[int, list[tuple[int, int]]] = {}
    for row in session.query(
            "SELECT committed_version_id AS version_id, augmentation_id, count(*) AS n "
            "FROM candidates WHERE committed_version_id IS NOT NULL "
            "GROUP BY ALL ORDER BY version_id, augmentation_id"):
        committed.setdefault(row["version_id"], []).append((row["augmentation_id"], row["n"]))
    return committed


def augmentation_rounds(session: Session) -> list[dict[str, Any]]:
    """Augmentation rounds, newest first, with the summary parsed and the candidates counted by
    status: pending, approved, rejected, dropped (all, committed or not), and committed (in a
    version already) and approved_uncommitted (what a commit would add)."""
    rows = session.query(
        "SELECT a.augmentation_id, a.created_at, a.run_id, a.version_id, a.paraphraser, "
        "a.summary, "
        "count(c.candidate_id) FILTER (WHERE c.status = 'pending') AS pending, "
        "count(c.candidate_id) FILTER (WHERE c.status = 'approved') AS approved, "
        "count(c.candidate_id) FILTER (WHERE c.status = 'rejected') AS rejected, "
        "count(c.candidate_id) FILTER (WHERE c.status = 'dropped') AS dropped, "
        "count(c.candidate_id) FILTER (WHERE c.committed_version_id IS NOT NULL) AS committed, "
        "count(c.candidate_id) FILTER (WHERE c.status = 'approved' "
        "AND c.committed_version_id IS NULL) AS approved_uncommitted "
        "FROM augmentations a LEFT JOIN candidates c USING (augmentation_id) "
        "GROUP BY ALL ORDER BY a.created_at DESC, a.augmentation_id DESC")
    for row in rows:
        row["summary"] = json.loads(row["summary"])
    return rows
