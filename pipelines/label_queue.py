"""The label queue (SPEC 11): the intents of the current dataset version that most need a person,
one at a time, for curators who may work the same queue together.

A queue is a reason and an order (`QueueConfig`):
- `teacher_disagreement`: the logs answered the intent in different ways; the score is 1 minus
  the agreement of its least alike pair of teacher outputs (agreement per pair: the mean over the
  three tools of the signed cosine and the filter name match, in [-2/3, 1]; SPEC 5's
  conventions, so opposite outputs need a person more than unrelated ones), and outputs that
  agree fully in those terms (only their strength differs) are left out;
- `few_requests`: a ground truth chosen from few requests (at most `FEW_REQUESTS`, so not in the
  r_3 subset; fewest first, then the lowest export rate);
- `low_export_rate`: a ground truth whose intent's requests were rarely exported (below
  `LOW_EXPORT_RATE`; lowest first, then the most requests: a low rate over many says more);
- `student_disagreement`: the best student (the highest overall on the version's test split)
  and the ground truth disagree strongly: summed over the tools, 1 - cosine (signed, so up to 2)
  and the filter mismatch at least `STRONG_DISAGREEMENT`;
- `mining_flags`: the intents the newest mining evaluation flags for augmentation;
- `selected`: intents a curator picked by hand (`QueueConfig.selection`, e.g. a region lassoed
  on the Intents page's map), in the order picked.
Orders: the reason's own (most needing first; ties: the most requested first), the most
requested first, or A to Z.

An intent leaves the queue once a curator labelled it (any `curator:` label). Two curators never
get the same intent at once: `next_in_queue` claims the intent it hands out
(`pipelines.labels.claim`, one row per intent that lapses after the expiry) and skips intents
another curator holds; Accept, Save and Skip give the claim back.

`commit_preview` says how many ground truths a labels commit would change before it is made.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import numpy as np

from pipelines import labels as label_pipeline
from pipelines.labels import DEFAULT_CLAIM_EXPIRY_S, DEFAULT_PRECEDENCE, Label, LabelError
from workbench.errors import WorkbenchError
from workbench.store import Store, evaluations, requests
from workbench.store import labels as label_store
from workbench.store.labels import KINDS, LabelKind
from workbench.store.versions import current_version_id, resolve_version
from workbench.tools import ADJUST_KEYS, COLOURS, FILTER_NAMES, Answer

STRONG_DISAGREEMENT = 0.5      # student vs ground truth, summed over tools (a wrong filter is 1)
FEW_REQUESTS = 2               # at most this many requests: not in the r_3 subset (SPEC 4)
LOW_EXPORT_RATE = 0.5          # an export rate below this is low


class QueueError(WorkbenchError):
    """A label queue that cannot be built (no dataset version, no evaluation for the reason)."""


class QueueReason(str, Enum):
    TEACHER_DISAGREEMENT = "teacher_disagreement"
    FEW_REQUESTS = "few_requests"
    LOW_EXPORT_RATE = "low_export_rate"
    STUDENT_DISAGREEMENT = "student_disagreement"
    MINING_FLAGS = "mining_flags"
    SELECTED = "selected"


REASON_TITLES = {
    QueueReason.TEACHER_DISAGREEMENT: "teacher outputs that disagree with each other",
    QueueReason.FEW_REQUESTS: "a ground truth chosen from few requests",
    QueueReason.LOW_EXPORT_RATE: "a ground truth with a low export rate",
    QueueReason.STUDENT_DISAGREEMENT: "the best student and the ground truth disagree strongly",
    QueueReason.MINING_FLAGS: "flagged by mining (the student gets it wrong in training)",
    QueueReason.SELECTED: "selected on the map (the Intents page)",
}


class QueueOrder(str, Enum):
    NEED = "need"                       # the reason's own order: most needing a person first
    MOST_REQUESTED = "most_requested"   # popular intents first: fixing them matters most
    ALPHABETICAL = "alphabetical"


ORDER_TITLES = {QueueOrder.NEED: "most needing a person first",
                QueueOrder.MOST_REQUESTED: "most requested first",
                QueueOrder.ALPHABETICAL: "A to Z"}


@dataclass(frozen=True)
class QueueConfig:
    reason: QueueReason = QueueReason.TEACHER_DISAGREEMENT
    order: QueueOrder = QueueOrder.NEED
    version: int | None = None               # the dataset version (default: the current one)
    evaluation_id: int | None = None         # student_disagreement / mining_flags: which one
    claim_expiry_s: float = DEFAULT_CLAIM_EXPIRY_S
    selection: tuple[str, ...] = ()          # selected: the intent keys, in the order picked


@dataclass(frozen=True)
class QueueEntry:
    """One intent of a queue: `need` orders the reason (higher: needs a person more), `why`
    says it in words."""

    intent_key: str
    intent_text: str
    split: str
    request_count: int
    need: float
    why: str


@dataclass(frozen=True)
class QueueSelection:
    """A whole queue: the version and evaluation it was built from, and its entries in order
    (intents a curator already labelled left out)."""

    version_id: int
    evaluation_id: int | None
    source: str                  # where the reason's numbers come from, in words
    entries: tuple[QueueEntry, ...]


@dataclass(frozen=True)
class QueueItem:
    """The intent handed to a curator: claimed for them until they accept, save or skip it (or
    the claim lapses). `remaining` counts it and every entry after it that nobody else holds."""

    entry: QueueEntry
    version_id: int
    remaining: int
    held_by_others: int
    source: str
    labels: tuple[Label, ...] = field(default=())     # the intent's labels, newest first


# ------------------------------------------------------------------------------ selection

def select(store: Store, config: QueueConfig) -> QueueSelection:
    """The queue for a reason and an order, over the dataset version's intents."""
    reason, order = QueueReason(config.reason), QueueOrder(config.order)
    with store.session(read_only=True) as session:
        if config.version is None and current_version_id(session) is None:
            raise QueueError("there is no dataset version yet, so no ground truth to review: "
                             "run `workbench curate` (or `workbench demo`) first")
        version_id = resolve_version(session, config.version)
        intents = {row["intent_key"]: row for row in
                   requests.version_intent_stats(session, version_id)}
        evaluation_id: int | None = None
        if reason is QueueReason.TEACHER_DISAGREEMENT:
            found = _teacher_disagreement(requests.several_teacher_outputs(session, version_id))
            source = f"the logs' teacher outputs of version {version_id}'s intents"
        elif reason is QueueReason.SELECTED:
            found = _selected(config.selection)
            source = f"{len(found):,} intent(s) selected on the Intents page's map"
        elif reason in (QueueReason.FEW_REQUESTS, QueueReason.LOW_EXPORT_RATE):
            found = _thin_evidence(reason, intents.values())
            source = f"the logs' requests and exports of version {version_id}'s intents"
        else:
            evaluation_id, source = _evaluation(session, reason, version_id, config.evaluation_id)
            found = _student_disagreement(session, reason, evaluation_id)
        labelled = set(label_store.latest_labels(session, kinds=[LabelKind.CURATOR.value],
                                                 keys=list(found)))
    entries = [QueueEntry(key, intents[key]["intent_text"], intents[key]["split"],
                          int(intents[key]["request_count"] or 0), need, why)
               for key, (need, why) in found.items() if key in intents and key not in labelled]
    return QueueSelection(version_id, evaluation_id, source, tuple(_ordered(entries, order)))


def _ordered(entries: list[QueueEntry], order: QueueOrder) -> list[QueueEntry]:
    if order is QueueOrder.ALPHABETICAL:
        return sorted(entries, key=lambda e: (e.intent_text.casefold(), e.intent_key))
    if order is QueueOrder.MOST_REQUESTED:
        return sorted(entries, key=lambda e: (-e.request_count, -e.need, e.intent_key))
    return sorted(entries, key=lambda e: (-e.need, -e.request_count, e.intent_key))


def _cosines(vectors: np.ndarray) -> np.ndarray:
    """(n, m, m) cosines of every pair of an intent's m vectors, (n, m, d) in, with SPEC 5's
    conventions: two zero vectors 1, one zero vector and another 0."""
    norms = np.linalg.norm(vectors, axis=2)                                   # (n, m)
    zero = norms == 0
    safe = np.where(zero, 1.0, norms)
    result = np.clip(np.einsum("nid,njd->nij", vectors, vectors)
                     / (safe[:, :, None] * safe[:, None, :]), -1.0, 1.0)
    result[zero[:, :, None] ^ zero[:, None, :]] = 0.0
    result[zero[:, :, None] & zero[:, None, :]] = 1.0
    return result


def lowest_agreement(adjust: np.ndarray, selective: np.ndarray, filters: np.ndarray,
                     valid: np.ndarray) -> np.ndarray:
    """Per intent, the agreement of its least alike pair of answers: (n,) from adjust vectors
    (n, m, 14), selective vectors (n, m, 12), filter codes (n, m; -1 = no filter) and which of
    the m slots hold an answer (n, m). A pair's agreement is the mean over the three tools of
    the cosines (signed, as the paper's quality counts them: an opposite pair agrees less than
    an unrelated one) and the filter name match (two answers without a filter match), so it
    lies in [-2/3, 1]."""
    agreement = (_cosines(adjust) + _cosines(selective)
                 + (filters[:, :, None] == filters[:, None, :])) / 3
    pairs = valid[:, :, None] & valid[:, None, :]
    return np.where(pairs, agreement, np.inf).min(axis=(1, 2))


def _teacher_disagreement(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[float, str]]:
    """need = 1 - the lowest agreement among the intent's distinct teacher outputs. The tool
    columns are the store's canonical JSON (all keys, canonical order), read as vectors."""
    slots: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        slots.setdefault(row["intent_key"], []).append(row)
    if not slots:
        return {}
    keys = list(slots)
    width = max(len(outputs) for outputs in slots.values())
    adjust = np.zeros((len(keys), width, len(ADJUST_KEYS)))
    selective = np.zeros((len(keys), width, 2 * len(COLOURS)))
    filters = np.full((len(keys), width), -1)
    valid = np.zeros((len(keys), width), dtype=bool)
    codes = {name: i for i, name in enumerate(FILTER_NAMES)}
    names: dict[str, set[str]] = {}
    for i, key in enumerate(keys):
        for j, output in enumerate(slots[key]):
            valid[i, j] = True
            if output["adjust"] is not None:
                adjust[i, j] = list(json.loads(output["adjust"]).values())
            if output["selective_adjust"] is not None:
                selective[i, j] = [value for channels in
                                   json.loads(output["selective_adjust"]).values()
                                   for value in channels.values()]
            name = None if output["filter"] is None else json.loads(output["filter"])["name"]
            filters[i, j] = -1 if name is None else codes[name]
            names.setdefault(key, set()).add(name or "no filter")
    lowest = lowest_agreement(adjust, selective, filters, valid)
    found = {}
    for i, key in enumerate(keys):
        if lowest[i] >= 1.0:            # the outputs agree in the paper's terms (scale aside)
            continue
        shown = sorted(names[key])
        filters_text = f"; filters: {', '.join(shown)}" if len(shown) > 1 else ""
        why = (f"{len(slots[key])} different teacher outputs; the least alike two agree "
               f"{lowest[i]:.2f}{filters_text}")
        found[key] = (1.0 - float(lowest[i]), why)
    return found


def _selected(keys: Sequence[str]) -> dict[str, tuple[float, str]]:
    """A curator's selection, first picked first (the need counts down)."""
    unique = list(dict.fromkeys(keys))
    if not unique:
        raise QueueError("no intents are selected: lasso a region of the map on the Intents "
                         "page (search by meaning) and press Send to the label queue")
    return {key: (float(len(unique) - i), "selected on the map")
            for i, key in enumerate(unique)}


def _thin_evidence(reason: QueueReason,
                   intents: Collection[dict[str, Any]]) -> dict[str, tuple[float, str]]:
    found = {}
    for row in intents:
        if row["export_rate"] is None:      # no logs (an augmentation): no evidence to weigh
            continue
        n, rate = int(row["request_count"]), float(row["export_rate"])
        if (n > FEW_REQUESTS if reason is QueueReason.FEW_REQUESTS else rate >= LOW_EXPORT_RATE):
            continue
        text = f"{n} request{'s' if n != 1 else ''}, export rate {rate:.2f}"
        # Higher need first: fewest requests (then the lowest rate), or the lowest rate (then
        # the most requests); the tie-breaker is a fraction below one step of the main key.
        need = (1.0 / n + (1.0 - rate) * 1e-3 if reason is QueueReason.FEW_REQUESTS
                else (1.0 - rate) + min(n, 10_000) * 1e-8)
        found[row["intent_key"]] = (need, text)
    return found


def _evaluation(session: Any, reason: QueueReason, version_id: int,
                chosen: int | None) -> tuple[int, str]:
    """The evaluation a student-based reason reads: the one chosen, else the best student on
    the version's test split (student_disagreement) or the newest mining one (mining_flags)."""
    kind = "run" if reason is QueueReason.STUDENT_DISAGREEMENT else "mining"
    found = evaluations.student_evaluations(session, kind)
    if chosen is not None:
        match = [e for e in found if e["evaluation_id"] == chosen]
        if not match:
            raise QueueError(f"evaluation {chosen} is not a {'test' if kind == 'run' else 'mining'}"
                             " evaluation of a student run; pick one from the list")
        pick = match[0]
    elif kind == "run":
        on_version = [e for e in found if e["version_id"] == version_id]
        if not on_version:
            raise QueueError(f"no student has been evaluated on version {version_id}'s test split "
                             "yet: train one (`workbench train --student heads`) and score it "
                             "(`workbench evaluate --run RUN`)")
        pick = max(on_version, key=lambda e: (_overall(e["summary"]), e["evaluation_id"]))
    else:
        if not found:
            raise QueueError("no mining evaluation yet: an augmentation round mines a run's "
                             "training split (`workbench augment --run RUN`)")
        pick = found[0]                     # newest first
    what = "best student" if kind == "run" and chosen is None else "student"
    overall = _overall(pick["summary"])
    score = "" if overall is None else f", overall {overall:.2f}"
    return int(pick["evaluation_id"]), (
        f"the {what}: run {pick['run_id']} ({pick['student'] or 'unknown student'}{score}), "
        f"evaluation #{pick['evaluation_id']} of version {pick['version_id']} "
        f"{pick['split']} split")


def _overall(summary: dict[str, Any]) -> float | None:
    for subset in summary.get("subsets", []):
        if subset.get("name") == "All":
            value = subset.get("overall")
            return None if value is None else float(value)
    return None


def _student_disagreement(session: Any, reason: QueueReason,
                          evaluation_id: int) -> dict[str, tuple[float, str]]:
    found = {}
    for row in evaluations.intent_disagreement(session, evaluation_id):
        value, flagged = float(row["disagreement"]), int(row["n_flagged"])
        if reason is QueueReason.STUDENT_DISAGREEMENT and value >= STRONG_DISAGREEMENT:
            why = (f"student vs ground truth: disagreement {value:.2f} of 5 (1 - cosine per "
                   "vector tool, 2 for an opposite answer; 1 for a wrong filter)")
            found[row["intent_key"]] = (value, why)
        elif reason is QueueReason.MINING_FLAGS and flagged:
            why = (f"flagged on {flagged} tool{'s' if flagged != 1 else ''}; disagreement "
                   f"{value:.2f} of 5")
            found[row["intent_key"]] = (flagged + value / 10, why)
    return found


# ------------------------------------------------------------------------------ one at a time

def next_in_queue(store: Store, config: QueueConfig, curator: str,
                  skip: Collection[str] = ()) -> QueueItem | None:
    """The first intent of the queue that this curator has not skipped (`skip`: intent keys),
    that nobody labelled as a curator and that no other curator holds, claimed for `curator`;
    None when the queue is empty for them."""
    selection = select(store, config)
    name = curator.strip()
    if not name:
        raise LabelError("say who is labelling (the curator's name)")
    skipped = set(skip)
    with store.session(read_only=True) as session:
        others = label_store.claimed_by_others(session, name, datetime.now(UTC),
                                               config.claim_expiry_s)
    open_entries = [e for e in selection.entries if e.intent_key not in skipped]
    held = sum(1 for e in open_entries if e.intent_key in others)
    candidates = [e for e in open_entries if e.intent_key not in others]
    for position, entry in enumerate(candidates):
        holder = label_pipeline.claim(store, entry.intent_text, name, config.claim_expiry_s)
        if holder is None:
            return QueueItem(entry, selection.version_id, len(candidates) - position, held,
                             selection.source,
                             tuple(label_pipeline.labels_of(store, entry.intent_text,
                                                            selection.version_id)))
        held += 1                       # claimed by another curator a moment ago
    return None


def release(store: Store, intent: str, curator: str) -> None:
    """Give the claim back (Skip, or done with the intent)."""
    label_pipeline.release(store, intent, curator)


def accept(store: Store, intent: str, curator: str, version: int | None = None,
           note: str = "") -> Label:
    """The curator confirms the ground truth the version holds: a `curator:` label with the
    same answer, edited from the label the row came from; the claim is given back."""
    current = label_pipeline.current_answer(store, intent, version)
    if current is None:
        raise LabelError(f"{intent!r} is not in dataset version "
                         f"{version if version is not None else '(the current one)'}; "
                         "nothing was saved")
    label = label_pipeline.set_label(store, current.intent_text, current.answer,
                                     LabelKind.CURATOR, curator,
                                     note or "accepted the ground truth in the label queue",
                                     current.label_id)
    release(store, intent, curator)
    return label


def save_edit(store: Store, intent: str, answer: Answer, curator: str, note: str = "",
              edited_from: int | None = None) -> Label:
    """The curator's edited answer as a `curator:` label; the claim is given back."""
    label = label_pipeline.set_label(store, intent, answer, LabelKind.CURATOR, curator, note,
                                     edited_from)
    release(store, intent, curator)
    return label


# ------------------------------------------------------------------------------ commit preview

@dataclass(frozen=True)
class CommitPreview:
    """What `pipelines.labels.commit` with this precedence would do to the current version now:
    how many of its ground truths change, rows per winning level, labelled intents not in it."""

    parent_id: int
    precedence: tuple[str, ...]
    changed: int                 # rows whose answer changes
    relinked: int                # rows that keep their answer but take another label
    from_level: dict[str, int]
    new_intents: int             # labelled intents not in the version (added only if asked)

    @property
    def makes_a_version(self) -> bool:
        """False when the commit would refuse: no row takes another label."""
        return bool(self.changed or self.relinked)


def commit_preview(store: Store, precedence: Sequence[str] | str = DEFAULT_PRECEDENCE
                   ) -> CommitPreview:
    """The commit's outcome without making it (read-only), by its rule: per intent of the
    current version, the newest label of the first precedence level that has one, `curation`
    keeping the row as it is."""
    levels = label_pipeline.parse_precedence(precedence)
    with store.session(read_only=True) as session:
        parent = current_version_id(session)
        if parent is None:
            raise QueueError("there is no dataset version to commit labels onto: run "
                             "`workbench curate` (or `workbench demo`) first")
        rows = label_store.version_row_labels(session, parent)
        by_level = {level: label_store.latest_labels(
            session, kinds=[level] if level in KINDS else [],
            sources=[] if level in KINDS else [level])
            for level in levels if level != LabelKind.CURATION.value}
    tools = ("adjust", "selective_adjust", "filter")
    changed = relinked = 0
    counts = dict.fromkeys(levels, 0)
    for key, row in rows.items():
        level, label = next(((level, by_level[level][key]) for level in levels
                             if level != LabelKind.CURATION.value and key in by_level[level]),
                            (LabelKind.CURATION.value, row))
        counts[level] += 1
        if any(label[tool] != row[tool] for tool in tools):
            changed += 1
        elif label["label_id"] is not None and label["label_id"] != row["label_id"]:
            relinked += 1
    new = {key for found in by_level.values() for key in found} - set(rows)
    return CommitPreview(parent, levels, changed, relinked,
                         {level: n for level, n in counts.items() if n}, len(new))
