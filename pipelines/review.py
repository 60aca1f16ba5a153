"""The review queue (SPEC 6, 7): list candidates, approve or reject them (or take a decision
back: `set_pending`), and commit approvals into a new dataset version.

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

A candidate carries its source's label. A curator can approve it with an edited one instead
(`approve_with_label`: "slightly cooler morning" deserves a weaker temperature than its source):
that is a `curator:<name>` label of the candidate's text, and a commit takes, for every
candidate, the newest curator label of its text when there is one (the version row records that
label), else the source's answer (the row keeps the source row's label).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pipelines.labels import Label, new_label
from workbench.errors import WorkbenchError
from workbench.store import Session, Store, candidates
from workbench.store import labels as label_store
from workbench.store.candidates import REVIEWABLE, ReviewFilter, Status
from workbench.store.labels import LabelKind
from workbench.store.versions import (
    DatasetRow,
    Origin,
    Split,
    create_version,
    current_version_id,
    version_rows,
)
from workbench.tools import TOOLS, Answer, answer_from_json


def list_candidates(store: Store, selection: ReviewFilter, limit: int = 100,
                    offset: int = 0) -> list[dict]:
    """Candidates with their source intent's text, newest round first, in generation order.
    `edited_label` is the source of the newest curator label of the candidate's text (the
    label a commit takes instead of the source's), else None; `label_adjust`,
    `label_selective_adjust` and `label_filter` are the answer a commit takes (that label's,
    else the source's, which the candidate's own `adjust`, ... columns hold)."""
    with store.session(read_only=True) as session:
        rows = candidates.list_candidates(session, selection, limit, offset)
        edited = label_store.latest_labels(session, kinds=[LabelKind.CURATOR.value],
                                           keys=[row["intent_key"] for row in rows])
    for row in rows:
        found = edited.get(row["intent_key"])
        row["edited_label"] = None if found is None else found["source"]
        for tool in TOOLS:
            row[f"label_{tool}"] = (row if found is None else found)[tool]
    return rows


@dataclass(frozen=True)
class CandidateDetail:
    """One candidate as a reviewer judges it: where it came from, the answer it inherits from
    its source, the answer a commit would give it (an edited label's, else the inherited one)
    and its nearest neighbour at generation time."""

    candidate_id: int
    augmentation_id: int
    status: str
    intent_text: str
    source_text: str
    inherited: Answer                # the source intent's ground truth when the round ran
    label: Answer                    # what a commit takes
    label_source: str | None         # 'curator:<name>' when edited, None when inherited
    nearest_text: str | None
    nearest_kind: str | None         # 'train', 'test' or 'candidate'
    nearest_similarity: float | None
    drop_reason: str | None
    reviewed_by: str | None
    committed_version_id: int | None

    @property
    def edited(self) -> bool:
        return self.label_source is not None


def candidate_detail(store: Store, candidate_id: int) -> CandidateDetail | None:
    """One candidate with its inherited and its commit-time label, or None when there is no
    such candidate (committed and dropped ones included)."""
    rows = list_candidates(store, ReviewFilter(candidate_ids=(candidate_id,), uncommitted=False),
                           limit=1)
    if not rows:
        return None
    row = rows[0]
    return CandidateDetail(
        row["candidate_id"], row["augmentation_id"], row["status"], row["intent_text"],
        row["source_text"], answer_from_json(row["adjust"], row["selective_adjust"],
                                             row["filter"]),
        answer_from_json(*(row[f"label_{tool}"] for tool in TOOLS)), row["edited_label"],
        row["nearest_text"], row["nearest_kind"], row["nearest_similarity"],
        row["drop_reason"], row["reviewed_by"], row["committed_version_id"])


def count_candidates(store: Store, selection: ReviewFilter) -> dict[str, int]:
    with store.session(read_only=True) as session:
        return candidates.count_candidates(session, selection)


def set_status(store: Store, selection: ReviewFilter, status: Status, by: str) -> int:
    """Approve, reject or set back to pending every reviewable candidate selected. Returns how
    many changed. Back to pending (`set_pending`) takes a decision back: only approved or
    rejected candidates change, and they lose their reviewer (undecided again).

    Naming a dropped or already committed candidate by id is an error that names it."""
    if status not in REVIEWABLE:
        raise WorkbenchError(f"a candidate can be set to {', '.join(s.value for s in REVIEWABLE)}"
                             f", not {status.value}")
    if not by.strip():
        raise WorkbenchError("say who reviews (a name)")
    with store.atomic() as session:
        if selection.candidate_ids:
            _check_reviewable(session, selection.candidate_ids)
        return candidates.set_status(session, selection, status, by.strip(), datetime.now(UTC))


def set_pending(store: Store, candidate_ids: Sequence[int]) -> int:
    """Take decisions back: the named approved or rejected candidates go back to pending, with
    no reviewer. One already pending stays as it is and is not counted. Exact ids only (never
    'every approved one'); an unknown, dropped or committed id is an error naming it, and then
    nothing changes. A curator label a candidate was approved with stays (labels are never
    deleted), so approving it again takes that label again. Returns how many went back."""
    if not candidate_ids:
        raise WorkbenchError("name the candidates to set back to pending (their ids)")
    ids = tuple(dict.fromkeys(candidate_ids))
    with store.atomic() as session:
        _check_reviewable(session, ids)
        return candidates.set_status(session, ReviewFilter(candidate_ids=ids), Status.PENDING,
                                     "", datetime.now(UTC))


def _check_reviewable(session: Session, candidate_ids: Sequence[int]) -> None:
    """Raise naming every id that is not a candidate, or is dropped or already committed."""
    found = candidates.candidate_states(session, candidate_ids)
    missing = [i for i in candidate_ids if i not in found]
    blocked = [f"{i} ({found[i]['status']}"
               + (f", in version {found[i]['committed_version_id']}"
                  if found[i]["committed_version_id"] is not None else "") + ")"
               for i in candidate_ids if i in found
               and (found[i]["status"] == Status.DROPPED.value
                    or found[i]["committed_version_id"] is not None)]
    if missing or blocked:
        problems = ([f"no candidate {', '.join(map(str, missing))}"] if missing else []) \
            + ([f"cannot review {', '.join(blocked)}"] if blocked else [])
        raise WorkbenchError("; ".join(problems))


def approve_with_label(store: Store, candidate_id: int,
                       answer: Answer | Mapping[str, Any] | str, by: str,
                       note: str = "") -> Label:
    """Approve one candidate with an edited answer: a `curator:<by>` label of the candidate's
    text (edited from the label of its source's row when there is one) and the approval, in one
    transaction. An answer that breaks the tool schema, or a candidate that is dropped, already
    in a version or unknown, raises and saves nothing."""
    if not by.strip():
        raise WorkbenchError("say who reviews (a name)")
    store.check_writable()
    now = datetime.now(UTC)
    with store.atomic() as session:
        row = candidates.candidate_row(session, candidate_id)
        if row is None:
            raise WorkbenchError(f"no candidate {candidate_id}")
        if row["status"] == Status.DROPPED.value or row["committed_version_id"] is not None:
            where = (f", in version {row['committed_version_id']}"
                     if row["committed_version_id"] is not None else "")
            raise WorkbenchError(f"cannot review {candidate_id} ({row['status']}{where})")
        source = label_store.version_row_labels(session, row["base_version_id"],
                                                [row["source_intent_key"]]).get(
            row["source_intent_key"])
        label = new_label(row["intent_text"], answer, LabelKind.CURATOR, by, note,
                          None if source is None else source["label_id"])
        label_id = label_store.add_label(session, label, now)
        candidates.set_status(session, ReviewFilter(candidate_ids=(candidate_id,)),
                              Status.APPROVED, by.strip(), now)
    return Label(label_id, label.intent_key, label.intent_text, label.kind, label.author,
                 label.source, answer_from_json(label.adjust, label.selective_adjust,
                                                label.filter),
                 label.edited_from, label.note, now, None)


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
    edited: int = 0                  # of them, with a curator's label of their own

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
        approved = candidates.approved_uncommitted(session, augmentation_id)
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
        # A candidate approved with an edited label: the newest curator label of its text.
        edited = label_store.latest_labels(session, kinds=[LabelKind.CURATOR.value],
                                           keys=[row["intent_key"] for row in kept])
        rows += [DatasetRow(intent_key=row["intent_key"], intent_text=row["intent_text"],
                            split=Split.TRAIN.value, request_count=0,
                            origin=Origin.AUGMENTATION.value,
                            source_intent_key=row["source_intent_key"],
                            **{tool: edited.get(row["intent_key"], row)[tool] for tool in TOOLS})
                 for row in kept]
        rebased = f"rebased from version {base} onto version {parent}" if parent != base else ""
        text = note or (f"{len(kept)} approved augmentation(s) from round(s) "
                        f"{', '.join(map(str, rounds))}")
        text += f" ({rebased})" if rebased else ""
        version_id = create_version(
            session, rows, Origin.AUGMENTATION, text,
            {"augmentations": rounds, "approved": len(kept), "committed_by": by,
             "source_version": base, "rebased_from": base if rebased else None,
             "skipped": [{"candidate_id": s.candidate_id, "reason": s.reason}
                         for s in skipped], "edited_labels": len(edited)},
            parent_id=parent,
            row_labels={key: int(label["label_id"]) for key, label in edited.items()})
        candidates.mark_committed(session, [row["candidate_id"] for row in kept], version_id)
    return CommitResult(version_id, parent, base, len(kept), tuple(skipped), len(edited))


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
    if result.edited:
        lines.append(f"{result.edited} of the {result.committed} candidate(s) with a curator's "
                     "edited label, the rest with their source's")
    if result.rebased:
        lines.append(f"the round came from version {result.source_version_id}, but version "
                     f"{result.parent_id} was current: version {result.version_id} builds on "
                     f"version {result.parent_id} (rebased)")
    if result.skipped:
        lines.append(f"{len(result.skipped)} approved candidate(s) were left out (they stay "
                     "approved; reject them to clear them from the queue):")
        lines += [f"  #{s.candidate_id} {s.intent_text!r} {s.reason}" for s in result.skipped]
    return lines

