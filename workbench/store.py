"""The DuckDB store: the only module that imports duckdb.

DuckDB lets one process at a time hold a database file open for writing (and, while it does, no
other process may open it at all). So every operation here opens the file, does its work, and
closes it again: nobody holds the file between operations. A long job (ingesting a big file,
training) prepares its results first and writes them in one short transaction at the end. When
another process has the file, opening retries with backoff for `lock_timeout` seconds and then
raises `StoreBusyError` with a message saying who holds it.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from workbench.errors import StoreBusyError, StoreMissingError, WorkbenchError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = PROJECT_ROOT / "db"
DEFAULT_DB_PATH = PROJECT_ROOT / "data" / "workbench.duckdb"
DEFAULT_LOCK_TIMEOUT_S = 30.0


def default_db_path() -> Path:
    """`WORKBENCH_DB` if set, else data/workbench.duckdb in the project folder."""
    return Path(os.environ.get("WORKBENCH_DB") or DEFAULT_DB_PATH)


def _lock_timeout() -> float:
    text = os.environ.get("WORKBENCH_LOCK_TIMEOUT")
    if not text:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        return max(0.0, float(text))
    except ValueError:
        raise WorkbenchError(f"WORKBENCH_LOCK_TIMEOUT must be a number of seconds, got {text!r}") \
            from None


def _is_lock_conflict(error: duckdb.Error) -> bool:
    return "lock" in str(error).lower()


class Session:
    """One open connection: bound-parameter queries that return dict rows."""

    def __init__(self, connection: duckdb.DuckDBPyConnection):
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> None:
        self._connection.execute(sql, params or [])

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[dict]:
        cursor = self._connection.execute(sql, params or [])
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def first(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> dict | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def value(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        # fetchall, not fetchone: a half-read result blocks the connection's next register().
        rows = self._connection.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    def arrow(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        """The result as a pyarrow Table (for large or vector-valued results)."""
        # A relation, not a cursor: DB-API results copy the rows once more on the way to Arrow.
        return self._connection.sql(sql, params=params or None).to_arrow_table()

    def insert(self, table: str, columns: dict[str, Any], extra: dict[str, Any] | None = None) -> int:
        """Bulk-insert columns (lists or Arrow arrays) into `table` (names are ours, values are
        bound via Arrow).

        `extra` gives constant values for further columns. Returns the number of rows.
        """
        import pyarrow as pa

        rows = len(next(iter(columns.values()), []))
        if rows == 0:
            return 0
        extra = extra or {}
        self._connection.register("_insert_rows", pa.table(columns))
        try:
            names = [*columns, *extra]
            select = [*columns, *("?" for _ in extra)]
            self._connection.execute(
                f"INSERT INTO {table} ({', '.join(names)}) "
                f"SELECT {', '.join(select)} FROM _insert_rows", list(extra.values()))
        finally:
            self._connection.unregister("_insert_rows")
        return rows

    def register(self, name: str, table: Any) -> None:
        """Expose an Arrow table or DataFrame to SQL under `name` for this session."""
        self._connection.register(name, table)

    def unregister(self, name: str) -> None:
        self._connection.unregister(name)


@dataclass(frozen=True)
class Store:
    """A DuckDB file. Cheap to construct; opens the file only inside `session()`/`atomic()`."""

    path: Path
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))  # accept str paths too

    @classmethod
    def at(cls, path: str | Path | None = None) -> Store:
        return cls(Path(path) if path else default_db_path(), _lock_timeout())

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def _open(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.IOException as error:
                if not _is_lock_conflict(error):
                    raise WorkbenchError(f"cannot open the database {self.path}: {error}") from None
                if time.monotonic() >= deadline:
                    holder = re.search(r"PID (\d+)", str(error))
                    who = f"process {holder.group(1)}" if holder else "another process"
                    raise StoreBusyError(
                        f"the database {self.path} is in use by {who} and stayed busy for "
                        f"{self.lock_timeout:.0f} s. Wait for that command or job to finish, or "
                        "set WORKBENCH_LOCK_TIMEOUT to wait longer.") from None
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)

    @contextmanager
    def session(self, create: bool = False) -> Iterator[Session]:
        """Open the file for the duration of the block (autocommit)."""
        if not create and not self.path.exists():
            raise StoreMissingError(
                f"no database at {self.path}. Build the demo with `workbench demo`, or ingest "
                "logs with `workbench ingest FILE`, or point --db / WORKBENCH_DB at one.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = self._open()
        try:
            # No terminal progress bar from inside the library; bounded memory for big writes.
            connection.execute("SET enable_progress_bar = false")
            connection.execute("SET preserve_insertion_order = false")
            _migrate(connection)
            yield Session(connection)
        finally:
            connection.close()

    @contextmanager
    def atomic(self, create: bool = False) -> Iterator[Session]:
        """One transaction: everything in the block commits together or not at all."""
        with self.session(create=create) as session:
            session.execute("BEGIN TRANSACTION")
            try:
                yield session
            except BaseException:
                session.execute("ROLLBACK")
                raise
            session.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[dict]:
        with self.session() as session:
            return session.query(sql, params)


def migrations() -> list[tuple[int, str, Path]]:
    """(version, name, path) of every db/NNN_name.sql file, in order."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = re.fullmatch(r"(\d+)_(\w+)\.sql", path.name)
        if match is None:
            raise WorkbenchError(f"migration file name must look like 001_name.sql: {path}")
        found.append((int(match.group(1)), match.group(2), path))
    return found


def _migrate(connection: duckdb.DuckDBPyConnection) -> None:
    """Apply pending migrations, each in one transaction together with its version record."""
    pending = migrations()
    # The usual case, read-only and cheap: everything is applied already.
    exists = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_migrations'").fetchall()
    if exists[0][0]:
        applied = {row[0] for row in
                   connection.execute("SELECT version FROM schema_migrations").fetchall()}
        if all(version in applied for version, _, _ in pending):
            return
    connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
    applied = {row[0] for row in connection.execute("SELECT version FROM schema_migrations").fetchall()}
    for version, name, path in pending:
        if version in applied:
            continue
        connection.execute("BEGIN TRANSACTION")
        try:
            connection.execute(path.read_text())
            connection.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                               [version, name, datetime.now(UTC)])
        except duckdb.Error:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


def schema_version(store: Store) -> int:
    with store.session() as session:
        return int(session.value("SELECT max(version) FROM schema_migrations") or 0)
