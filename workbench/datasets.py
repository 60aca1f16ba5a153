"""Dataset versions (SPEC 7): immutable rows + split + lineage, and the queries that read them.

A version is written once, by `create_version`, inside the caller's transaction, and never
updated. The "current" version is a pointer in `settings`; making a new version moves it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from workbench.errors import VersionNotFoundError, WorkbenchError
from workbench.store import Session, Store

CURRENT_VERSION_KEY = "current_version"


class Split(str, Enum):
    TRAIN = "train"
    TEST = "test"
    ALL = "all"


class Origin(str, Enum):
    CURATION = "curation"
    AUGMENTATION = "augmentation"
    SUBSAMPLE = "subsample"      # a seeded share of another version's training split


@dataclass(frozen=True)
class DatasetRow:
    intent_key: str
    intent_text: str
    split: str
    request_count: int
    adjust: str | None            # canonical JSON, None = tool not used
    selective_adjust: str | None
    filter: str | None
    origin: str = "logs"
    source_intent_key: str | None = None


def rows_table(rows: list[DatasetRow]) -> Any:
    """Rows as a pyarrow Table with `dataset_rows`' columns. A long step builds it before it
    opens the database for writing, so its write holds the file only for the insert."""
    import pyarrow as pa

    return pa.table({name: pa.array([getattr(row, name) for row in rows], type=pa.string())
                     if name != "request_count" else
                     pa.array([row.request_count for row in rows], type=pa.int64())
                     for name in DatasetRow.__dataclass_fields__})


def create_version(session: Session, rows: list[DatasetRow] | Any, created_by: Origin, note: str,
                   config: dict[str, Any], parent_id: int | None = None) -> int:
    """Write a new immutable version and make it current. Returns its id.

    `rows` is a list of `DatasetRow` or a table from `rows_table`."""
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
    session.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)",
                    [CURRENT_VERSION_KEY, str(version_id)])
    return version_id


def subsample_version(session: Session, version_id: int, fraction: float, seed: int,
                      note: str = "") -> int:
    """A new version with a seeded share of `version_id`'s training rows and all of its test
    rows (RQ2's low-data regime). Its parent is `version_id`."""
    import random

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


def current_version_id(session: Session) -> int | None:
    value = session.value("SELECT value FROM settings WHERE key = ?", [CURRENT_VERSION_KEY])
    return None if value is None else int(value)


def set_current_version(session: Session, version_id: int) -> None:
    """Point `current` at an existing version (what training and browsing use by default)."""
    resolve_version(session, version_id)
    session.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)",
                    [CURRENT_VERSION_KEY, str(version_id)])


def resolve_version(session: Session, version_id: int | None) -> int:
    """The given version if it exists, else the current one; a clear error when there is none."""
    if version_id is None:
        version_id = current_version_id(session)
        if version_id is None:
            raise VersionNotFoundError(
                "there is no dataset version yet. Run `workbench curate` (or `workbench demo`).")
        return version_id
    if session.value("SELECT 1 FROM dataset_versions WHERE version_id = ?", [version_id]) is None:
        known = [row["version_id"] for row in session.query(
            "SELECT version_id FROM dataset_versions ORDER BY version_id")]
        raise VersionNotFoundError(
            f"dataset version {version_id} does not exist; known versions: "
            f"{', '.join(map(str, known)) or 'none'}")
    return version_id


def version_rows(session: Session, version_id: int, split: Split = Split.ALL) -> list[dict]:
    """A version's rows, test first then train, each sorted by intent."""
    return session.query(
        "SELECT intent_key, intent_text, split, request_count, adjust, selective_adjust, filter, "
        "origin, source_intent_key FROM dataset_rows WHERE version_id = ? "
        "AND (? = 'all' OR split = ?) ORDER BY split = 'train', intent_key",
        [version_id, split.value, split.value])


def list_versions(session: Session) -> list[dict]:
    return session.query("SELECT * FROM dataset_versions ORDER BY version_id")


def status_counts(store: Store) -> dict[str, Any]:
    """What `workbench status` prints: store counts and the current version's split sizes."""
    with store.session(read_only=True) as session:
        counts: dict[str, Any] = {
            "database": str(store.path),
            "requests": session.value("SELECT count(*) FROM requests"),
            "intents": session.value("SELECT count(*) FROM intents"),
            "quarantined": session.value("SELECT count(*) FROM quarantine"),
            "ingests": session.value("SELECT count(*) FROM ingests"),
            "dataset_versions": session.value("SELECT count(*) FROM dataset_versions"),
            "current_version": None,
        }
        version_id = current_version_id(session)
        version = None if version_id is None else session.first(
                "SELECT version_id, parent_id, created_by, created_at, note, n_train, n_test "
                "FROM dataset_versions WHERE version_id = ?", [version_id])
        if version is not None:
            subsets = session.query(
                "SELECT count(*) FILTER (WHERE request_count >= 3) AS r_3, "
                "count(*) FILTER (WHERE request_count >= 5) AS r_5 "
                "FROM dataset_rows WHERE version_id = ? AND split = 'test'", [version_id])[0]
            version["created_at"] = version["created_at"].isoformat()
            counts["current_version"] = {**version, "test_r_3": subsets["r_3"],
                                         "test_r_5": subsets["r_5"]}
    return counts
