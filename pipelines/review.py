"""The review queue (SPEC 6, 7): list candidates, approve or reject them, and commit approvals
into a new dataset version.

A commit builds on the current version. A round is generated from the version that was current
then; when another version has become current since (an earlier commit from the same round, a
new curation), the commit is rebased onto the current version by default, and the new version
records the round's source version (`rebased_from` in its config, and its note). With
`rebase=False` it stops instead: building on the round's source would fork the lineage and leave
the current version's rows out of the new current version. Approved candidates that no longer
fit the version they go onto (their source intent is not in its training split, or their text
is already one of its intents) are left out and reported, never dropped silently; they stay
approved and uncommitted.

Dropped candidates stay visible with their reason but cannot be approved: a near-duplicate of a
test intent would leak into evaluation, and one of a training intent adds nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from workbench.datasets import (
    DatasetRow,
    Origin,
    Split,
    create_version,
    current_version_id,
    version_rows,
)
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
    with store.session(read_only=True) as session:
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
    with store.session(read_only=True) as session:
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


@dataclass(frozen=True)
class SkippedCandidate:
    """An approved candidate a commit left out, and why (it stays approved, uncommitted)."""

    candidate_id: int
    intent_text: str
    reason: str


@dataclass(frozen=True)
class CommitResult:
    version_id: int                  # the new version (now current)
    parent_id: int                   # the version it builds on
    source_version_id: int           # the version the round(s) were generated from
    committed: int                   # candidates in the new version
    skipped: tuple[SkippedCandidate, ...] = ()

    @property
    def rebased(self) -> bool:
        return self.parent_id != self.source_version_id

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rebased": self.rebased}


def commit(store: Store, augmentation_id: int | None, by: str, note: str = "",
           rebase: bool = True) -> CommitResult:
    """Create a new dataset version: the current version's rows plus every approved, uncommitted
    candidate (of one augmentation round, or of all rounds from the same version) that fits it.
    The test split is carried over unchanged.

    When the round's source version is no longer current, the commit is rebased onto the
    current version (recorded in the new version's note and config), or with `rebase=False`
    refused with a message that says so. Candidates whose source intent is not in the training
    split of the version they go onto, or whose text is already one of its intents, are left
    out and returned in `skipped`."""
    with store.atomic() as session:
        approved = _approved(session, augmentation_id)
        if not approved:
            raise WorkbenchError("there are no approved candidates to commit"
                                 + ("" if augmentation_id is None
                                    else f" in augmentation {augmentation_id}"))
        rounds = sorted({row["augmentation_id"] for row in approved})
        bases = sorted({row["base_version_id"] for row in approved})
        if len(bases) > 1:
            raise WorkbenchError(f"approved candidates come from versions {bases}; commit one "
                                 "augmentation round at a time (give its id)")
        base = bases[0]
        twice = sorted(key for key, n in Counter(row["intent_key"] for row in approved).items()
                       if n > 1)
        if twice:
            raise WorkbenchError(f"approved candidates from different rounds say the same intent "
                                 f"({', '.join(map(repr, twice[:5]))}); reject all but one")
        current = current_version_id(session)
        parent = base if current is None else current
        if parent != base and not rebase:
            raise WorkbenchError(
                f"round(s) {', '.join(map(str, rounds))} came from dataset version {base}, but "
                f"the current version is now {parent}. Committing onto version {base} would "
                f"fork the lineage and leave version {parent}'s rows out of the new current "
                f"version. Commit with rebasing (the default) to build on version {parent}.")
        rows = [DatasetRow(**row) for row in version_rows(session, parent)]
        splits = {row.intent_key: row.split for row in rows}
        kept, skipped = [], []
        for row in approved:
            reason = _misfit(row, splits, parent)
            if reason is None:
                kept.append(row)
            else:
                skipped.append(SkippedCandidate(row["candidate_id"], row["intent_text"], reason))
        if not kept:
            raise WorkbenchError(
                f"none of the {len(approved)} approved candidate(s) fits dataset version "
                f"{parent}: " + "; ".join(f"#{s.candidate_id} {s.intent_text!r} {s.reason}"
                                          for s in skipped[:5])
                + ("; ..." if len(skipped) > 5 else "")
                + ". Reject them (`workbench review reject IDS`) to clear them from the queue.")
        rows += [DatasetRow(intent_key=row["intent_key"], intent_text=row["intent_text"],
                            split=Split.TRAIN.value, request_count=0, adjust=row["adjust"],
                            selective_adjust=row["selective_adjust"], filter=row["filter"],
                            origin=Origin.AUGMENTATION.value,
                            source_intent_key=row["source_intent_key"]) for row in kept]
        rebased = f"rebased from version {base} onto version {parent}" if parent != base else ""
        text = note or (f"{len(kept)} approved augmentation(s) from round(s) "
                        f"{', '.join(map(str, rounds))}")
        text += f" ({rebased})" if rebased else ""
        version_id = create_version(
            session, rows, Origin.AUGMENTATION, text,
            {"augmentations": rounds, "approved": len(kept), "committed_by": by,
             "source_version": base, "rebased_from": base if rebased else None,
             "skipped": [{"candidate_id": s.candidate_id, "reason": s.reason}
                         for s in skipped]},
            parent_id=parent)
        session.execute("UPDATE candidates SET committed_version_id = ? "
                        "WHERE list_contains(?, candidate_id)",
                        [version_id, [row["candidate_id"] for row in kept]])
    return CommitResult(version_id, parent, base, len(kept), tuple(skipped))


def _misfit(candidate: dict, splits: dict[str, str], version_id: int) -> str | None:
    """Why an approved candidate cannot go into `version_id` (intent key -> split), or None."""
    if candidate["intent_key"] in splits:
        return (f"is already a {splits[candidate['intent_key']]} intent of version "
                f"{version_id}")
    source = splits.get(candidate["source_intent_key"])
    if source is None:
        return f"comes from an intent that version {version_id} no longer has"
    if source != Split.TRAIN.value:
        return (f"comes from an intent in version {version_id}'s {source} split (adding it "
                "would leak that test intent into training)")
    return None


def describe_commit(result: CommitResult) -> list[str]:
    """What a commit did, in lines for the CLI and the app: the version, a rebase, and every
    approved candidate it left out."""
    lines = [(f"committed the approved candidates as dataset version {result.version_id} "
             "(now the current version)")]
    if result.rebased:
        lines.append(f"the round came from version {result.source_version_id}, but version "
                     f"{result.parent_id} was current: version {result.version_id} builds on "
                     f"version {result.parent_id} (rebased)")
    if result.skipped:
        lines.append(f"{len(result.skipped)} approved candidate(s) were left out (they stay "
                     "approved; reject them to clear them from the queue):")
        lines += [f"  #{s.candidate_id} {s.intent_text!r} {s.reason}" for s in result.skipped]
    return lines


def _approved(session: Session, augmentation_id: int | None) -> list[dict]:
    return session.query(
        "SELECT c.candidate_id, c.augmentation_id, c.intent_key, c.intent_text, c.adjust, "
        "c.selective_adjust, c.filter, c.source_intent_key, a.version_id AS base_version_id "
        "FROM candidates c JOIN augmentations a USING (augmentation_id) "
        "WHERE c.status = 'approved' AND c.committed_version_id IS NULL "
        "AND (? IS NULL OR c.augmentation_id = ?) ORDER BY c.candidate_id",
        [augmentation_id, augmentation_id])
