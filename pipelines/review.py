"""The review queue (SPEC 6, 7): list candidates, approve or reject them, and commit approvals
into a new dataset version whose parent is the version the candidates came from.

Dropped candidates stay visible with their reason but cannot be approved: a near-duplicate of a
test intent would leak into evaluation, and one of a training intent adds nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from workbench.datasets import DatasetRow, Origin, create_version, version_rows
from workbench.errors import WorkbenchError
from workbench.store import Session, Store


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


def list_candidates(store: Store, selection: ReviewFilter, limit: int = 100,
                    offset: int = 0) -> list[dict]:
    """Candidates with their source intent's text, newest round first, in generation order."""
    where, params = selection.where()
    with store.session() as session:
        return session.query(
            "SELECT c.candidate_id, c.augmentation_id, c.status, c.intent_text, "
            "coalesce(r.intent_text, c.source_intent_key) AS source_text, c.drop_reason, "
            "c.nearest_text, c.nearest_kind, c.nearest_similarity, c.reviewed_by, c.reviewed_at, "
            "c.committed_version_id, c.adjust, c.selective_adjust, c.filter "
            "FROM (SELECT * FROM candidates WHERE " + where + ") c "
            "JOIN augmentations a USING (augmentation_id) "
            "LEFT JOIN dataset_rows r ON r.version_id = a.version_id "
            "AND r.intent_key = c.source_intent_key "
            "ORDER BY c.augmentation_id DESC, c.candidate_id LIMIT ? OFFSET ?",
            [*params, limit, offset])


def count_candidates(store: Store, selection: ReviewFilter) -> dict[str, int]:
    where, params = selection.where()
    with store.session() as session:
        return {row["status"]: row["n"] for row in session.query(
            "SELECT status, count(*) AS n FROM candidates WHERE " + where + " GROUP BY status",
            params)}


def set_status(store: Store, selection: ReviewFilter, status: Status, by: str) -> int:
    """Approve, reject or reset to pending every reviewable candidate selected. Returns how many.

    Naming a dropped or already committed candidate by id is an error that names it."""
    if status not in REVIEWABLE:
        raise WorkbenchError(f"a candidate can be set to {', '.join(s.value for s in REVIEWABLE)}"
                             f", not {status.value}")
    if not by.strip():
        raise WorkbenchError("say who reviews (a name)")
    where, params = selection.where()
    with store.atomic() as session:
        if selection.candidate_ids:
            found = {row["candidate_id"]: row for row in session.query(
                "SELECT candidate_id, status, committed_version_id FROM candidates "
                "WHERE list_contains(?, candidate_id)", [list(selection.candidate_ids)])}
            missing = [i for i in selection.candidate_ids if i not in found]
            blocked = [f"{i} ({found[i]['status']}"
                       + (f", in version {found[i]['committed_version_id']}"
                          if found[i]["committed_version_id"] is not None else "") + ")"
                       for i in selection.candidate_ids if i in found
                       and (found[i]["status"] == Status.DROPPED.value
                            or found[i]["committed_version_id"] is not None)]
            if missing or blocked:
                problems = ([f"no candidate {', '.join(map(str, missing))}"] if missing else []) \
                    + ([f"cannot review {', '.join(blocked)}"] if blocked else [])
                raise WorkbenchError("; ".join(problems))
        return int(session.value(
            "WITH changed AS (UPDATE candidates SET status = ?, reviewed_by = ?, reviewed_at = ? "
            "WHERE " + where + " AND status != 'dropped' AND committed_version_id IS NULL "
            "RETURNING 1) SELECT count(*) FROM changed",
            [status.value, by.strip(), datetime.now(UTC), *params]))


def commit(store: Store, augmentation_id: int | None, by: str, note: str = "") -> int:
    """Create a new dataset version: the source version's rows plus every approved, uncommitted
    candidate (of one augmentation round, or of all rounds from the same version). The test split
    is carried over unchanged. Returns the new version id."""
    with store.atomic() as session:
        approved = _approved(session, augmentation_id)
        if not approved:
            raise WorkbenchError("there are no approved candidates to commit"
                                 + ("" if augmentation_id is None
                                    else f" in augmentation {augmentation_id}"))
        bases = sorted({row["base_version_id"] for row in approved})
        if len(bases) > 1:
            raise WorkbenchError(f"approved candidates come from versions {bases}; commit one "
                                 "augmentation round at a time (give its id)")
        base = bases[0]
        rows = [DatasetRow(**row) for row in version_rows(session, base)]
        existing = {row.intent_key for row in rows}
        twice = sorted(key for key, n in Counter(row["intent_key"] for row in approved).items()
                       if n > 1)
        if twice:
            raise WorkbenchError(f"approved candidates from different rounds say the same intent "
                                 f"({', '.join(map(repr, twice[:5]))}); reject all but one")
        clashes = [row["intent_text"] for row in approved if row["intent_key"] in existing]
        if clashes:
            raise WorkbenchError(f"{len(clashes)} approved candidate(s) are already intents of "
                                 f"version {base}: {', '.join(map(repr, clashes[:5]))}")
        rows += [DatasetRow(intent_key=row["intent_key"], intent_text=row["intent_text"],
                            split="train", request_count=0, adjust=row["adjust"],
                            selective_adjust=row["selective_adjust"], filter=row["filter"],
                            origin=Origin.AUGMENTATION.value,
                            source_intent_key=row["source_intent_key"]) for row in approved]
        rounds = sorted({row["augmentation_id"] for row in approved})
        version_id = create_version(
            session, rows, Origin.AUGMENTATION,
            note or f"{len(approved)} approved augmentation(s) from round(s) "
                    f"{', '.join(map(str, rounds))}",
            {"augmentations": rounds, "approved": len(approved), "committed_by": by},
            parent_id=base)
        session.execute("UPDATE candidates SET committed_version_id = ? "
                        "WHERE list_contains(?, candidate_id)",
                        [version_id, [row["candidate_id"] for row in approved]])
    return version_id


def _approved(session: Session, augmentation_id: int | None) -> list[dict]:
    return session.query(
        "SELECT c.candidate_id, c.augmentation_id, c.intent_key, c.intent_text, c.adjust, "
        "c.selective_adjust, c.filter, c.source_intent_key, a.version_id AS base_version_id "
        "FROM candidates c JOIN augmentations a USING (augmentation_id) "
        "WHERE c.status = 'approved' AND c.committed_version_id IS NULL "
        "AND (? IS NULL OR c.augmentation_id = ?) ORDER BY c.candidate_id",
        [augmentation_id, augmentation_id])
