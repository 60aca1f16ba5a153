"""Labels (SPEC 11): the tables `labels`, `dataset_row_labels`, `label_failures` and
`label_claims`.

A label is one answer an intent was given, with its source (`curation`, `teacher:<model>`,
`student:<run>`, `curator:<name>`); it is written once and never updated or deleted. Each row of
a dataset version made since labels exist names the label it came from in `dataset_row_labels`
(written with the version, never changed). Teacher-labelling calls that gave no label are kept
in `label_failures` with the raw reply; `label_claims` says which curator works on which intent
of the label queue right now. Rows come back as dicts with the tables' column names; tool
columns are canonical JSON (None = tool not used).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import duckdb

from workbench.store.connection import Session, Store
from workbench.tools import ADJUST_KEYS, COLOUR_CHANNELS, COLOURS, TOOLS


class LabelKind(str, Enum):
    CURATION = "curation"     # the export-rate choice of curation (SPEC 4)
    TEACHER = "teacher"       # a teacher labelling call; author = the model
    STUDENT = "student"       # a student's suggestion; author = the run id
    CURATOR = "curator"       # a person's edit; author = their name


KINDS: tuple[str, ...] = tuple(kind.value for kind in LabelKind)
COLUMNS = ("label_id, intent_key, intent_text, kind, author, source, adjust, selective_adjust, "
           "filter, edited_from, note, created_at, version_id")
_NEWEST_FIRST = "created_at DESC, label_id DESC"
# Two answers are the same when all three tool columns are (NULL = unused matches NULL).
_SAME_ANSWER = " AND ".join(f"{{a}}.{tool} IS NOT DISTINCT FROM {{b}}.{tool}" for tool in TOOLS)


def _same(a: str, b: str) -> str:
    return _SAME_ANSWER.format(a=a, b=b)


def source_of(kind: LabelKind | str, author: str) -> str:
    """The source as people see it: `curation`, or `<kind>:<author>`."""
    kind = LabelKind(kind)
    return kind.value if kind is LabelKind.CURATION else f"{kind.value}:{author}"


# ------------------------------------------------------------------------------ labels

@dataclass(frozen=True)
class NewLabel:
    """A label to store: the answer already validated into canonical JSON per tool."""

    intent_key: str
    intent_text: str
    kind: LabelKind
    author: str
    adjust: str | None
    selective_adjust: str | None
    filter: str | None
    note: str = ""
    edited_from: int | None = None
    version_id: int | None = None     # curation labels: the version whose curation chose it

    @property
    def source(self) -> str:
        return source_of(self.kind, self.author)


def add_label(session: Session, label: NewLabel, created_at: datetime) -> int:
    """Store one label inside the caller's transaction. Returns its id."""
    return int(session.value(
        "INSERT INTO labels (intent_key, intent_text, kind, author, source, adjust, "
        "selective_adjust, filter, edited_from, note, created_at, version_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING label_id",
        [label.intent_key, label.intent_text, LabelKind(label.kind).value, label.author,
         label.source, label.adjust, label.selective_adjust, label.filter, label.edited_from,
         label.note, created_at, label.version_id]))


def add_labels(session: Session, labels: Sequence[NewLabel], created_at: datetime) -> list[int]:
    """Store several labels (in order) inside the caller's transaction. Returns their ids."""
    return [add_label(session, label, created_at) for label in labels]


def label_by_id(session: Session, label_id: int) -> dict | None:
    return session.first(f"SELECT {COLUMNS} FROM labels WHERE label_id = ?", [label_id])


def labels_by_id(session: Session, label_ids: Sequence[int]) -> dict[int, dict]:
    return {row["label_id"]: row for row in session.query(
        f"SELECT {COLUMNS} FROM labels WHERE list_contains(?, label_id)", [list(label_ids)])}


def intent_labels(session: Session, intent_key: str) -> list[dict]:
    """Every label of the intent, newest first."""
    return session.query(f"SELECT {COLUMNS} FROM labels WHERE intent_key = ? "
                         f"ORDER BY {_NEWEST_FIRST}", [intent_key])


@dataclass(frozen=True)
class LabelFilter:
    """Which labels a listing shows: any of `kinds` (all when empty), one author, intents whose
    text contains `search` (case-insensitive), one intent."""

    kinds: tuple[LabelKind, ...] = ()
    author: str | None = None
    search: str | None = None
    intent_key: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """A WHERE clause of bound parameters."""
        clauses: list[str] = ["TRUE"]
        params: list[Any] = []
        if self.kinds:
            clauses.append("list_contains(?, kind)")
            params.append([LabelKind(kind).value for kind in self.kinds])
        if self.author is not None:
            clauses.append("author = ?")
            params.append(self.author)
        if self.search:
            clauses.append("(contains(lower(intent_text), lower(?)) OR contains(intent_key, "
                           "lower(?)))")
            params += [self.search, self.search]
        if self.intent_key is not None:
            clauses.append("intent_key = ?")
            params.append(self.intent_key)
        return " AND ".join(clauses), params


def labels_page(session: Session, filters: LabelFilter, limit: int = 50,
                offset: int = 0) -> list[dict]:
    """A page of labels, newest first."""
    where, params = filters.where()
    return session.query(f"SELECT {COLUMNS} FROM labels WHERE {where} "
                         f"ORDER BY {_NEWEST_FIRST} LIMIT ? OFFSET ?", [*params, limit, offset])


def count_labels(session: Session, filters: LabelFilter) -> int:
    where, params = filters.where()
    return int(session.value(f"SELECT count(*) FROM labels WHERE {where}", params))


def all_labels(session: Session, filters: LabelFilter) -> list[dict]:
    """Every label the filters select, oldest first (for an export)."""
    where, params = filters.where()
    return session.query(f"SELECT {COLUMNS} FROM labels WHERE {where} ORDER BY label_id", params)


def latest_labels(session: Session, kinds: Sequence[str] = (), sources: Sequence[str] = (),
                  keys: Sequence[str] | None = None) -> dict[str, dict]:
    """{intent key: its newest label} among the labels of any of `kinds` or any of `sources`
    (e.g. 'teacher:gpt-4o'), for the given intents (every labelled intent when None)."""
    params: list[Any] = [list(kinds), list(sources)]
    where = "(list_contains(?, kind) OR list_contains(?, source))"
    if keys is not None:
        where += " AND list_contains(?, intent_key)"
        params.append(list(keys))
    return {row["intent_key"]: row for row in session.query(
        f"SELECT {COLUMNS} FROM labels WHERE {where} QUALIFY row_number() OVER "
        f"(PARTITION BY intent_key ORDER BY {_NEWEST_FIRST}) = 1", params)}


def newest_per_source(session: Session, min_sources: int = 2,
                      kinds: Sequence[str] = KINDS) -> list[dict]:
    """The newest label of each (intent, source), for the intents labelled by at least
    `min_sources` sources of the given kinds; by intent, then source."""
    return session.query(
        f"WITH newest AS (SELECT {COLUMNS} FROM labels WHERE list_contains(?, kind) "
        f"QUALIFY row_number() OVER (PARTITION BY intent_key, source ORDER BY "
        f"{_NEWEST_FIRST}) = 1), shared AS (SELECT intent_key FROM newest GROUP BY intent_key "
        "HAVING count(*) >= ?) SELECT n.* FROM newest n JOIN shared USING (intent_key) "
        "ORDER BY n.intent_key, n.source", [list(kinds), min_sources])


def count_labelled_intents(session: Session) -> int:
    return int(session.value("SELECT count(DISTINCT intent_key) FROM labels"))


def label_counts(session: Session) -> list[dict]:
    """Per source: kind, author, labels, intents, newest; most labels first."""
    return session.query(
        "SELECT source, kind, author, count(*) AS labels, count(DISTINCT intent_key) AS intents, "
        "max(created_at) AS newest FROM labels GROUP BY source, kind, author "
        "ORDER BY labels DESC, source")


# ------------------------------------------------------------------------------ version rows

def link_rows(session: Session, version_id: int, links: Mapping[str, int]) -> None:
    """Record which label each of the given rows of a new version came from."""
    if links:
        session.insert("dataset_row_labels", {"intent_key": list(links),
                                              "label_id": list(links.values())},
                       extra={"version_id": version_id})


def carry_row_labels(session: Session, parent_id: int, version_id: int) -> int:
    """Give each row of `version_id` that has no label yet the label of the parent version's
    row it was copied from: the same intent with the same answer, or for an augmentation the
    source intent's row with the same answer. Returns how many rows got one."""
    unlinked = ("NOT EXISTS (SELECT 1 FROM dataset_row_labels k2 WHERE k2.version_id = "
                "c.version_id AND k2.intent_key = c.intent_key)")
    carried = 0
    for join, extra in (("p.intent_key = c.intent_key", ""),
                        ("p.intent_key = c.source_intent_key", " AND c.origin = 'augmentation'")):
        carried += int(session.value(
            "WITH added AS (INSERT INTO dataset_row_labels (version_id, intent_key, label_id) "
            "SELECT c.version_id, c.intent_key, k.label_id FROM dataset_rows c "
            f"JOIN dataset_rows p ON p.version_id = ? AND {join} "
            "JOIN dataset_row_labels k ON k.version_id = p.version_id "
            "AND k.intent_key = p.intent_key "
            f"WHERE c.version_id = ? AND {_same('c', 'p')} AND {unlinked}{extra} "
            "RETURNING 1) SELECT count(*) FROM added", [parent_id, version_id]) or 0)
    return carried


def record_curation_labels(session: Session, version_id: int, chosen_in: int,
                           created_at: datetime, note: str = "") -> int:
    """Give each row of `version_id` that has no label yet a `curation` label: an existing
    curation label of that intent with the same answer, else a new one saying it was chosen by
    the curation of version `chosen_in`. Returns how many labels were created."""
    unlinked = ("(SELECT d.* FROM dataset_rows d WHERE d.version_id = ? AND NOT EXISTS (SELECT 1 "
                "FROM dataset_row_labels k WHERE k.version_id = d.version_id "
                "AND k.intent_key = d.intent_key))")
    curation = "(SELECT * FROM labels WHERE kind = 'curation')"
    created = int(session.value(
        "WITH added AS (INSERT INTO labels (intent_key, intent_text, kind, author, source, "
        "adjust, selective_adjust, filter, edited_from, note, created_at, version_id) "
        "SELECT r.intent_key, r.intent_text, 'curation', 'curation', 'curation', r.adjust, "
        f"r.selective_adjust, r.filter, NULL, ?, ?, ? FROM {unlinked} r "
        f"ANTI JOIN {curation} l ON l.intent_key = r.intent_key AND {_same('l', 'r')} "
        "RETURNING 1) SELECT count(*) FROM added",
        [note, created_at, chosen_in, version_id]) or 0)
    session.execute(
        "INSERT INTO dataset_row_labels (version_id, intent_key, label_id) "
        f"SELECT ?, r.intent_key, max(l.label_id) FROM {unlinked} r "
        f"JOIN {curation} l ON l.intent_key = r.intent_key AND {_same('l', 'r')} "
        "GROUP BY r.intent_key", [version_id, version_id])
    return created


def version_row_labels(session: Session, version_id: int,
                       keys: Sequence[str] | None = None) -> dict[str, dict]:
    """{intent key: the version's row} for the given intents (all when None): intent_text,
    split, request_count, adjust, selective_adjust, filter, origin, source_intent_key, and the
    label it came from: label_id, source, kind, author (None for rows of versions made before
    labels existed)."""
    params: list[Any] = [version_id]
    where = "d.version_id = ?"
    if keys is not None:
        where += " AND list_contains(?, d.intent_key)"
        params.append(list(keys))
    return {row["intent_key"]: row for row in session.query(
        "SELECT d.intent_key, d.intent_text, d.split, d.request_count, d.adjust, "
        "d.selective_adjust, d.filter, d.origin, d.source_intent_key, k.label_id, l.source, "
        "l.kind, l.author FROM dataset_rows d LEFT JOIN dataset_row_labels k "
        "ON k.version_id = d.version_id AND k.intent_key = d.intent_key "
        f"LEFT JOIN labels l ON l.label_id = k.label_id WHERE {where}", params)}


def _answer_structure(tool: str) -> str:
    """A tool's answer as DuckDB's `json_transform` structure: every field of the tool schema."""
    if tool == "adjust":
        fields: dict[str, Any] = dict.fromkeys(ADJUST_KEYS, "BIGINT")
    elif tool == "selective_adjust":
        fields = dict.fromkeys(COLOURS, dict.fromkeys(COLOUR_CHANNELS, "BIGINT"))
    else:
        fields = {"name": "VARCHAR", "intensity": "BIGINT"}
    return json.dumps(fields)


def version_row_label_batches(session: Session, version_id: int, split: str, unlabelled: str,
                              rows: int) -> Any:
    """A dataset version's rows of one split with their labels, as a pyarrow RecordBatchReader
    of batches of at most `rows` rows (`Session.batches`), for exports too big to hold: intent,
    request_count, adjust, selective_adjust, filter (each a struct with every field of its
    tool's schema, None when the tool is unused), origin, source_intent, label_id and
    label_source (`unlabelled` for a row without a label).

    In no particular order: sorting would hold the whole split in DuckDB's memory before the
    first batch (2.6 GB at 5M rows, against 0.76 GB streamed)."""
    answers = ", ".join(f"json_transform(d.{tool}, ?) AS {tool}" for tool in TOOLS)
    return session.batches(
        f"SELECT d.intent_text AS intent, d.request_count, {answers}, d.origin, "
        "d.source_intent_key AS source_intent, k.label_id, "
        "CASE WHEN k.label_id IS NULL THEN ? ELSE l.source END AS label_source "
        "FROM dataset_rows d LEFT JOIN dataset_row_labels k "
        "ON k.version_id = d.version_id AND k.intent_key = d.intent_key "
        "LEFT JOIN labels l ON l.label_id = k.label_id "
        "WHERE d.version_id = ? AND d.split = ?",
        [*(_answer_structure(tool) for tool in TOOLS), unlabelled, version_id, split], rows)


def versions_holding(session: Session, label_ids: Sequence[int]) -> dict[int, list[int]]:
    """{label id: the dataset versions whose rows came from it, oldest first}."""
    found: dict[int, list[int]] = {}
    for row in session.query(
            "SELECT label_id, list(version_id ORDER BY version_id) AS versions "
            "FROM dataset_row_labels WHERE list_contains(?, label_id) GROUP BY label_id",
            [list(label_ids)]):
        found[row["label_id"]] = list(row["versions"])
    return found


# ------------------------------------------------------------------------------ failures

def add_failure(session: Session, intent_key: str, intent_text: str, model: str, reason: str,
                raw: str | None, created_at: datetime) -> int:
    """Record a teacher-labelling call that gave no label. Returns its id."""
    return int(session.value(
        "INSERT INTO label_failures (intent_key, intent_text, model, reason, raw, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) RETURNING failure_id",
        [intent_key, intent_text, model, reason, raw, created_at]))


def failures(session: Session, model: str | None = None, limit: int = 100,
             offset: int = 0) -> list[dict]:
    """Teacher-labelling failures, newest first (of one model when given)."""
    return session.query(
        "SELECT failure_id, intent_key, intent_text, model, reason, raw, created_at "
        "FROM label_failures WHERE (? IS NULL OR model = ?) "
        "ORDER BY created_at DESC, failure_id DESC LIMIT ? OFFSET ?",
        [model, model, limit, offset])


def count_failures(session: Session, model: str | None = None) -> int:
    return int(session.value("SELECT count(*) FROM label_failures WHERE (? IS NULL OR model = ?)",
                             [model, model]))


# ------------------------------------------------------------------------------ queue claims

def _claim_once(session: Session, intent_key: str, curator: str, now: datetime,
                expiry_s: float) -> str:
    stale = now - timedelta(seconds=expiry_s)
    session.execute(
        "INSERT INTO label_claims VALUES (?, ?, ?) ON CONFLICT (intent_key) DO UPDATE SET "
        "curator = excluded.curator, claimed_at = excluded.claimed_at "
        "WHERE label_claims.curator = excluded.curator OR label_claims.claimed_at < ?",
        [intent_key, curator, now, stale])
    return str(session.value("SELECT curator FROM label_claims WHERE intent_key = ?",
                             [intent_key]))


def claim(store: Store, intent_key: str, curator: str, now: datetime,
          expiry_s: float) -> str | None:
    """Claim the intent for `curator` (renewing their own claim) unless another curator holds a
    claim younger than `expiry_s`. Returns None when claimed, else the other curator's name.

    Opens its own transaction: two sessions of one process claiming the same intent at once
    conflict in DuckDB, and the loser reads who won."""
    for _ in range(3):
        try:
            with store.atomic() as session:
                holder = _claim_once(session, intent_key, curator, now, expiry_s)
        except (duckdb.TransactionException, duckdb.ConstraintException):
            continue                       # a concurrent claim of the same intent: look again
        return None if holder == curator else holder
    with store.session(read_only=True) as session:
        holder = session.value("SELECT curator FROM label_claims WHERE intent_key = ?",
                               [intent_key])
    return None if holder == curator else str(holder)


def release(session: Session, intent_key: str, curator: str) -> None:
    """Drop the curator's claim on the intent (another curator's claim stays)."""
    session.execute("DELETE FROM label_claims WHERE intent_key = ? AND curator = ?",
                    [intent_key, curator])


def expire_claims(session: Session, now: datetime, expiry_s: float) -> int:
    """Drop every claim older than `expiry_s`. Returns how many."""
    return int(session.value(
        "WITH gone AS (DELETE FROM label_claims WHERE claimed_at < ? RETURNING 1) "
        "SELECT count(*) FROM gone", [now - timedelta(seconds=expiry_s)]) or 0)


def claimed_by_others(session: Session, curator: str, now: datetime,
                      expiry_s: float) -> dict[str, str]:
    """{intent key: curator} of the live claims held by other curators (for the queue to skip)."""
    return {row["intent_key"]: row["curator"] for row in session.query(
        "SELECT intent_key, curator FROM label_claims WHERE curator != ? AND claimed_at >= ?",
        [curator, now - timedelta(seconds=expiry_s)])}
