"""Dataset versions (SPEC 7): the tables `dataset_versions`, `dataset_rows`,
`ground_truth_choices` and the current-version pointer in `settings`.

A dataset version is immutable: its rows, its split, its parent version, who or what made it,
when, and a note. It is written once, by `create_version`, inside the caller's transaction, and
never updated. The current dataset version is a pointer in `settings` (the only use of that
table); making a new version moves it. This module also reads a version's rows and numbers, the
lineage tree, and the diff between two versions.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from workbench.errors import VersionNotFoundError, WorkbenchError
from workbench.store import candidates, labels
from workbench.store.connection import Session
from workbench.tools import TOOLS

CURRENT_VERSION_KEY = "current_version"
SPLITS = ("train", "test")


class Split(str, Enum):
    TRAIN = "train"
    TEST = "test"
    ALL = "all"


class Origin(str, Enum):
    CURATION = "curation"
    AUGMENTATION = "augmentation"
    SUBSAMPLE = "subsample"      # a seeded share of another version's training split
    LABELS = "labels"            # a commit of labels by precedence (pipelines.labels)


@dataclass(frozen=True)
class DatasetRow:
    """One intent of a dataset version, with its split and its ground truth per tool."""

    intent_key: str
    intent_text: str
    split: str
    request_count: int
    adjust: str | None            # canonical JSON, None = tool not used
    selective_adjust: str | None
    filter: str | None
    origin: str = "logs"
    source_intent_key: str | None = None


# ------------------------------------------------------------------------------ writing

def rows_table(rows: list[DatasetRow]) -> Any:
    """Rows as a pyarrow Table with `dataset_rows`' columns. A long step builds it before it
    opens the database for writing, so its write holds the file only for the insert."""
    import pyarrow as pa

    return pa.table({name: pa.array([getattr(row, name) for row in rows], type=pa.string())
                     if name != "request_count" else
                     pa.array([row.request_count for row in rows], type=pa.int64())
                     for name in DatasetRow.__dataclass_fields__})


def create_version(session: Session, rows: list[DatasetRow] | Any, created_by: Origin, note: str,
                   config: dict[str, Any], parent_id: int | None = None,
                   row_labels: Mapping[str, int] | None = None) -> int:
    """Write a new immutable dataset version and make it current. Returns its id.

    `rows` is a list of `DatasetRow` or a table from `rows_table`. Which label each row came
    from: `row_labels` ({intent key: label id}) for the rows it names; every other row copied
    unchanged from the parent version (or, for an augmentation, with its source's answer) keeps
    the parent row's label."""
    table = rows if not isinstance(rows, list) else rows_table(rows) if rows else None
    if table is None or table.num_rows == 0:
        raise WorkbenchError("a dataset version needs at least one row")
    version_id = int(session.value("SELECT coalesce(max(version_id), 0) + 1 FROM dataset_versions"))
    n_test = table["split"].to_pylist().count(Split.TEST.value)
    session.execute(
        "INSERT INTO dataset_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [version_id, parent_id, created_by.value, datetime.now(UTC), note,
         json.dumps(config, sort_keys=True, default=str), table.num_rows - n_test, n_test])
    session.insert("dataset_rows", {name: table[name] for name in DatasetRow.__dataclass_fields__},
                   extra={"version_id": version_id})
    labels.link_rows(session, version_id, row_labels or {})
    if parent_id is not None:
        labels.carry_row_labels(session, parent_id, version_id)
    _point_current_at(session, version_id)
    return version_id


def record_ground_truth_choices(session: Session, version_id: int, choices: Any) -> None:
    """Why each ground truth of a curated version won: an Arrow table with intent_key, tool,
    output, exports, n_requests, export_rate, n_candidates."""
    session.insert("ground_truth_choices", {name: choices[name] for name in choices.column_names},
                   extra={"version_id": version_id})


def subsample_version(session: Session, version_id: int, fraction: float, seed: int,
                      note: str = "") -> int:
    """A new dataset version with a seeded share of `version_id`'s training rows and all of its
    test rows (RQ2's low-data regime). Its parent is `version_id`."""
    if not 0 < fraction <= 1:
        raise WorkbenchError(f"the fraction must be in (0, 1], got {fraction}")
    rows = [DatasetRow(**row) for row in version_rows(session, version_id)]
    train = [row for row in rows if row.split == Split.TRAIN.value]
    keep = max(1, round(fraction * len(train)))
    chosen = set(random.Random(seed).sample(range(len(train)), keep))
    subset = [row for i, row in enumerate(train) if i in chosen]
    return create_version(
        session, [row for row in rows if row.split == Split.TEST.value] + subset,
        Origin.SUBSAMPLE, note or f"{fraction:.1%} of version {version_id}'s training split",
        {"fraction": fraction, "seed": seed, "of": len(train)}, parent_id=version_id)


def _point_current_at(session: Session, version_id: int) -> None:
    session.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)",
                    [CURRENT_VERSION_KEY, str(version_id)])


def set_current_version(session: Session, version_id: int) -> None:
    """Point `current` at an existing dataset version (what training and browsing use by
    default)."""
    resolve_version(session, version_id)
    _point_current_at(session, version_id)


# ------------------------------------------------------------------------------ reading

def current_version_id(session: Session) -> int | None:
    value = session.value("SELECT value FROM settings WHERE key = ?", [CURRENT_VERSION_KEY])
    return None if value is None else int(value)


def version_exists(session: Session, version_id: int | None) -> bool:
    return version_id is not None and session.value(
        "SELECT count(*) FROM dataset_versions WHERE version_id = ?", [version_id]) > 0


def resolve_version(session: Session, version_id: int | None) -> int:
    """The given dataset version if it exists, else the current one; a clear error when there
    is none."""
    if version_id is None:
        version_id = current_version_id(session)
        if version_id is None:
            raise VersionNotFoundError(
                "there is no dataset version yet. Run `workbench curate` (or `workbench demo`).")
        return version_id
    if not version_exists(session, version_id):
        known = [row["version_id"] for row in session.query(
            "SELECT version_id FROM dataset_versions ORDER BY version_id")]
        raise VersionNotFoundError(
            f"dataset version {version_id} does not exist; known versions: "
            f"{', '.join(map(str, known)) or 'none'}")
    return version_id


def version_rows(session: Session, version_id: int, split: Split = Split.ALL) -> list[dict]:
    """A dataset version's rows, test first then train, each sorted by intent."""
    return session.query(
        "SELECT intent_key, intent_text, split, request_count, adjust, selective_adjust, filter, "
        "origin, source_intent_key FROM dataset_rows WHERE version_id = ? "
        "AND (? = 'all' OR split = ?) ORDER BY split = 'train', intent_key",
        [version_id, split.value, split.value])


def ground_truth_rows(session: Session, version_id: int, keys: Sequence[str]) -> list[dict]:
    """intent_key, adjust, selective_adjust, filter of the given intents found in the version
    (any split)."""
    return session.query(
        "SELECT intent_key, adjust, selective_adjust, filter FROM dataset_rows "
        "WHERE version_id = ? AND list_contains(?, intent_key)", [version_id, list(keys)])


def intent_texts(session: Session, version_id: int, keys: Sequence[str]) -> dict[str, str]:
    """{intent key: display text} for the keys found in a dataset version."""
    return {row["intent_key"]: row["intent_text"] for row in session.query(
        "SELECT intent_key, intent_text FROM dataset_rows WHERE version_id = ? "
        "AND list_contains(?, intent_key)", [version_id, list(keys)])}


def intents_by_split(session: Session, version_id: int,
                     keys: Sequence[str]) -> dict[str, list[str]]:
    """Intent keys by where they are in a dataset version: 'train', 'test', or 'unknown' (not in
    the version at all). Order is kept; only training intents may be paraphrased."""
    found = {row["intent_key"]: row["split"] for row in session.query(
        "SELECT intent_key, split FROM dataset_rows WHERE version_id = ? "
        "AND list_contains(?, intent_key)", [version_id, list(keys)])}
    result: dict[str, list[str]] = {"train": [], "test": [], "unknown": []}
    for key in dict.fromkeys(keys):
        result[found.get(key, "unknown")].append(key)
    return result


def count_test_intents_trained_on(session: Session, test_version: int, train_version: int) -> int:
    """How many test intents of `test_version` are in the training split of `train_version`
    (evaluating a run of `train_version` there would report training data as test results)."""
    return int(session.value(
        "SELECT count(*) FROM dataset_rows t JOIN dataset_rows r USING (intent_key) "
        "WHERE t.version_id = ? AND t.split = 'test' AND r.version_id = ? "
        "AND r.split = 'train'", [test_version, train_version]))


def tool_usage(session: Session, version_id: int) -> dict[str, float]:
    """Share of the dataset version's intents whose ground truth uses each tool."""
    row = session.first(
        "SELECT count(*) AS n, count(adjust) AS adjust, count(selective_adjust) AS "
        "selective_adjust, count(filter) AS filter FROM dataset_rows WHERE version_id = ?",
        [version_id])
    if row is None or not row["n"]:
        return {tool: 0.0 for tool in TOOLS}
    return {tool: row[tool] / row["n"] for tool in TOOLS}


def list_versions(session: Session) -> list[dict]:
    return session.query("SELECT * FROM dataset_versions ORDER BY version_id")


def count_versions(session: Session) -> int:
    return int(session.value("SELECT count(*) FROM dataset_versions"))


def version_summary(session: Session, version_id: int) -> dict[str, Any] | None:
    """A dataset version's row (created_at as ISO text) with its test subsets' sizes
    (`test_r_3`, `test_r_5`: test intents with at least 3 and 5 requests), or None."""
    version = session.first(
        "SELECT version_id, parent_id, created_by, created_at, note, n_train, n_test "
        "FROM dataset_versions WHERE version_id = ?", [version_id])
    if version is None:
        return None
    subsets = session.query(
        "SELECT count(*) FILTER (WHERE request_count >= 3) AS r_3, "
        "count(*) FILTER (WHERE request_count >= 5) AS r_5 "
        "FROM dataset_rows WHERE version_id = ? AND split = 'test'", [version_id])[0]
    version["created_at"] = version["created_at"].isoformat()
    return {**version, "test_r_3": subsets["r_3"], "test_r_5": subsets["r_5"]}


def ground_truth_choices(session: Session, intent_key: str, version_id: int) -> dict[str, Any]:
    """Why the dataset version's ground truth for the intent is what it is: the numbers
    recorded when it was chosen, per tool (output, exports, n_requests, export_rate,
    n_candidates).

    Curation records them; subsampled and augmented versions copy their parent's rows, so the
    record is looked up in the version, then its parent, and so on up the lineage.
    `recorded_in` is the version that holds it (None, and no tools, when none does)."""
    rows = session.query(
        "WITH RECURSIVE lineage(version_id, parent_id, depth) AS ("
        " SELECT version_id, parent_id, 0 FROM dataset_versions WHERE version_id = ?"
        " UNION ALL SELECT v.version_id, v.parent_id, l.depth + 1 FROM dataset_versions v"
        " JOIN lineage l ON v.version_id = l.parent_id WHERE l.depth < 1000) "
        "SELECT g.version_id, g.tool, g.output, g.exports, g.n_requests, g.export_rate, "
        "g.n_candidates, l.depth FROM ground_truth_choices g JOIN lineage l USING (version_id) "
        "WHERE g.intent_key = ? ORDER BY l.depth", [version_id, intent_key])
    if not rows:
        return {"recorded_in": None, "tools": {}}
    nearest = rows[0]["depth"]
    tools = {row["tool"]: {k: row[k] for k in ("output", "exports", "n_requests", "export_rate",
                                               "n_candidates")}
             for row in rows if row["depth"] == nearest}
    return {"recorded_in": rows[0]["version_id"], "tools": tools}


# ------------------------------------------------------------------------------ lineage

def version_lineage(session: Session) -> list[dict]:
    """Every dataset version (oldest first) with its lineage: parent, created_by, created_at,
    note, n_train, n_test; `depth` (0 for a root, parent's + 1 below); and, from the candidates
    committed into it, `candidates` (how many) and `rounds` ([(augmentation_id, candidates)])."""
    versions = session.query(
        "SELECT version_id, parent_id, created_by, created_at, note, n_train, n_test "
        "FROM dataset_versions ORDER BY version_id")
    committed = candidates.committed_rounds(session)
    depth: dict[int, int] = {}
    for version in versions:  # a parent is always older, so it has its depth already
        parent = version["parent_id"]
        depth[version["version_id"]] = depth.get(parent, -1) + 1 if parent is not None else 0
        rounds = committed.get(version["version_id"], [])
        version.update(depth=depth[version["version_id"]], rounds=rounds,
                       candidates=sum(n for _, n in rounds))
    return versions


def lineage_order(versions: list[dict]) -> list[dict]:
    """The dataset versions in tree order (each parent followed by its children, oldest first),
    for an indented tree; a version whose parent is missing is shown as a root."""
    known = {version["version_id"] for version in versions}
    children: dict[int | None, list[dict]] = {}
    for version in versions:
        parent = version["parent_id"] if version["parent_id"] in known else None
        children.setdefault(parent, []).append(version)
    ordered: list[dict] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        version = stack.pop()
        ordered.append(version)
        stack.extend(reversed(children.get(version["version_id"], [])))
    return ordered


# ------------------------------------------------------------------------------ diff

@dataclass(frozen=True)
class VersionDiff:
    old: int
    new: int
    added: dict[str, int]       # split -> intents in the new version's split, not the old one's
    removed: dict[str, int]     # split -> intents in the old version's split, not the new one's
    changed: dict[str, int]     # tool -> intents in both whose ground truth differs
    moved: int                  # intents in both, in a different split (also in added/removed)
    sample: list[dict[str, Any]]  # change, split, tool, intent, old, new (a few of each kind)

    @property
    def unchanged(self) -> bool:
        return not (any(self.added.values()) or any(self.removed.values())
                    or any(self.changed.values()))


# Both versions' rows side by side, one row per intent in either (a = old, b = new). Tool
# columns are named from TOOLS, never from input.
_JOINED = ("WITH a AS (SELECT * FROM dataset_rows WHERE version_id = ?), "
           "b AS (SELECT * FROM dataset_rows WHERE version_id = ?), "
           "j AS (SELECT intent_key, coalesce(b.intent_text, a.intent_text) AS intent, "
           "a.split AS old_split, b.split AS new_split, "
           + ", ".join(f"a.{tool} AS old_{tool}, b.{tool} AS new_{tool}" for tool in TOOLS)
           + " FROM a FULL OUTER JOIN b USING (intent_key)) ")
_ADDED = "new_split IS NOT NULL AND old_split IS DISTINCT FROM new_split"
_REMOVED = "old_split IS NOT NULL AND new_split IS DISTINCT FROM old_split"
_BOTH = "old_split IS NOT NULL AND new_split IS NOT NULL"


def diff_versions(session: Session, old: int, new: int, sample_size: int = 20) -> VersionDiff:
    """What changed from dataset version `old` to version `new`: intents added and removed per
    split, intents whose ground truth changed per tool, and up to `sample_size` rows of each
    kind. Two queries (the counts, the sample), each one pass over both versions' rows."""
    old, new = resolve_version(session, old), resolve_version(session, new)
    counts = session.first(
        _JOINED + "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {_ADDED} AND new_split = '{split}') AS added_{split}, "
                    f"count(*) FILTER (WHERE {_REMOVED} AND old_split = '{split}') "
                    f"AS removed_{split}" for split in SPLITS)
        + f", count(*) FILTER (WHERE {_BOTH} AND old_split != new_split) AS moved, "
        + ", ".join(f"count(*) FILTER (WHERE {_BOTH} AND old_{tool} IS DISTINCT FROM "
                    f"new_{tool}) AS changed_{tool}" for tool in TOOLS)
        + " FROM j", [old, new]) or {}
    kinds = [(f"SELECT 0 AS kind, 'added' AS change, new_split AS split, NULL AS tool, intent, "
              f"NULL AS old, NULL AS new, intent_key FROM j WHERE {_ADDED}"),
             (f"SELECT 1, 'removed', old_split, NULL, intent, NULL, NULL, intent_key FROM j "
              f"WHERE {_REMOVED}")]
    kinds += [f"SELECT {2 + i}, 'ground truth changed', new_split, '{tool}', intent, old_{tool}, "
              f"new_{tool}, intent_key FROM j WHERE {_BOTH} AND old_{tool} IS DISTINCT FROM "
              f"new_{tool}" for i, tool in enumerate(TOOLS)]
    sample = session.query(
        _JOINED + ", kinds AS (" + " UNION ALL ".join(kinds) + ") "
        "SELECT change, split, tool, intent, old, new FROM kinds "
        "QUALIFY row_number() OVER (PARTITION BY kind ORDER BY intent_key) <= ? "
        "ORDER BY kind, intent_key", [old, new, sample_size])
    return VersionDiff(
        old=old, new=new,
        added={split: int(counts.get(f"added_{split}") or 0) for split in SPLITS},
        removed={split: int(counts.get(f"removed_{split}") or 0) for split in SPLITS},
        changed={tool: int(counts.get(f"changed_{tool}") or 0) for tool in TOOLS},
        moved=int(counts.get("moved") or 0), sample=sample)
