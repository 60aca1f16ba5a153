"""The DuckDB connection: open, lock, migrate (the store package alone imports duckdb).

DuckDB lets one process at a time hold a database file open for writing (and, while it does, no
other process may open it at all). So every operation here opens the file, does its work, and
closes it again: nobody holds the file between operations. A long job (ingesting a big file,
training) prepares its results first and writes them in one short transaction at the end. When
another process has the file, opening retries with backoff for `lock_timeout` seconds and then
raises `StoreBusyError` with a message saying who holds it.

One exception to "nobody holds the file": a long-lived reader (the app) may share one read-only
connection among its threads (`Store(shared=True)`, see `_SharedReader`), because opening a big
file costs tens of milliseconds per query. It lets go as soon as a writer announces itself, when
a write starts in its own process, when the file changed on disk, and after a quiet minute.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import duckdb

from workbench.errors import (
    SchemaTooNewError,
    StoreBusyError,
    StoreMissingError,
    StoreReadOnlyError,
    WorkbenchError,
)
from workbench.outputs import writable_problem
from workbench.package_files import migrations_folder, source_checkout
from workbench.processes import pid_alive

DEFAULT_DB_PATH = Path("data") / "workbench.duckdb"   # under the checkout or the current folder
DEFAULT_LOCK_TIMEOUT_S = 30.0
HOLDER_SUFFIX = ".holder.json"   # `<db>.holder.json`: who has the file open for writing
WAITING_SUFFIX = ".writer-waiting"  # `<db>.writer-waiting`: a writer is waiting for readers to go
# A reader gives way to a waiting writer for at most this long (then reads anyway): readers are
# short, so the writer gets in as soon as the current ones close, and no reader starves.
READER_GIVE_WAY_S = 5.0
SHARED_WATCH_S = 0.1     # a shared reader looks for a waiting writer this often ...
SHARED_IDLE_S = 60.0     # ... and closes after this long without a read


def default_db_path() -> Path:
    """`WORKBENCH_DB` if set; else data/workbench.duckdb in the source checkout the workbench
    runs from, or under the current folder when it is installed (never inside site-packages)."""
    if os.environ.get("WORKBENCH_DB"):
        return Path(os.environ["WORKBENCH_DB"])
    return (source_checkout() or Path.cwd()) / DEFAULT_DB_PATH


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


def _is_config_conflict(error: BaseException) -> bool:
    # This process already has the file open in the other mode (read-only vs read-write).
    return "different configuration" in str(error).lower()


def default_label() -> str:
    """A short form of this process's command line, e.g. `workbench ingest big.jsonl`."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if program in ("__main__.py", "-c", "-m", "cli.py"):
        program = "workbench" if "workbench" in sys.argv[0] else "python"
    text = " ".join([program, *sys.argv[1:]])
    return text if len(text) <= 80 else text[:77] + "..."


# -- who holds the file ----------------------------------------------------------------------
# DuckDB names only the pid of the process that holds a file; a writer leaves a note beside the
# database saying what it is doing, so a waiting command can tell the user. Writes within one
# process share one DuckDB instance, so the note is counted per process: the first writer
# writes it, the last one to close removes it.
_holder_lock = threading.Lock()
_holder_counts: dict[Path, int] = {}


def holder_path(db: Path) -> Path:
    return db.with_name(db.name + HOLDER_SUFFIX)


def waiting_path(db: Path) -> Path:
    return db.with_name(db.name + WAITING_SUFFIX)


def _announce_waiting(db: Path) -> None:
    """A writer found the file busy: ask new readers to give way (see `_give_way`)."""
    note = waiting_path(db)
    try:
        note.write_text(str(os.getpid()), encoding="utf-8")
    except OSError:
        return  # best effort: without the note readers simply do not give way


def _withdraw_waiting(db: Path) -> None:
    note = waiting_path(db)
    try:
        if note.read_text(encoding="utf-8").strip() == str(os.getpid()):
            note.unlink(missing_ok=True)
    except (OSError, ValueError):
        return


def _waiting_writer(db: Path) -> int | None:
    """The pid of another live process waiting to write, if any."""
    try:
        pid = int(waiting_path(db).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return pid if pid != os.getpid() and pid_alive(pid) else None


def _give_way(db: Path, limit_s: float) -> None:
    """Before a read-only open: while another process waits to write, hold back (bounded), so a
    page that reads non-stop cannot keep a writer out for long."""
    deadline = time.monotonic() + limit_s
    while _waiting_writer(db) is not None and time.monotonic() < deadline:
        time.sleep(0.05)


@dataclass(frozen=True)
class Holder:
    """The note a writing process leaves beside the database."""

    pid: int
    label: str
    since: float          # time.time() when it opened the file

    def describe(self) -> str:
        held = max(0.0, time.time() - self.since)
        return f"`{self.label}` (process {self.pid}, for {held:.0f} s)"


def read_holder(db: Path) -> Holder | None:
    """The live writer's note, or None (no note, an unreadable one, or one of a dead process)."""
    try:
        data = json.loads(holder_path(db).read_text(encoding="utf-8"))
        holder = Holder(int(data["pid"]), str(data["label"]), float(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return holder if pid_alive(holder.pid) else None


def _write_holder(db: Path, label: str) -> None:
    note = holder_path(db)
    temporary = note.with_name(f"{note.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps({"pid": os.getpid(), "label": label,
                                         "since": time.time()}), encoding="utf-8")
        os.replace(temporary, note)
    except OSError:
        # Best effort: the note only improves a busy message; a folder we cannot write to is
        # reported by the write that needs it.
        temporary.unlink(missing_ok=True)


def _remove_holder(db: Path) -> None:
    note = holder_path(db)
    try:
        data = json.loads(note.read_text(encoding="utf-8"))
        if int(data.get("pid", -1)) == os.getpid():
            note.unlink(missing_ok=True)
    except (OSError, ValueError, TypeError, AttributeError):
        return  # no note, or not ours to remove


def _hold(db: Path, label: str) -> None:
    db = Path(os.path.abspath(db))   # one count per file, however the path was spelled
    with _holder_lock:
        count = _holder_counts.get(db, 0)
        _holder_counts[db] = count + 1
        if count == 0:
            _write_holder(db, label)


def _release(db: Path) -> None:
    db = Path(os.path.abspath(db))
    with _holder_lock:
        count = _holder_counts.get(db, 1) - 1
        if count > 0:
            _holder_counts[db] = count
            return
        _holder_counts.pop(db, None)
        _remove_holder(db)


def _busy_error(path: Path, error: Exception | None, waited_s: float) -> StoreBusyError:
    found = re.search(r"PID (\d+)", str(error)) if error is not None else None
    pid = int(found.group(1)) if found else None
    note = read_holder(path)
    holder: str | None = None
    if note is not None and (pid is None or pid == note.pid):
        holder = note.describe()
        who = holder
    elif pid == os.getpid() or (error is not None and _is_config_conflict(error)):
        who = f"this process ({os.getpid()}, another open session)"
    elif pid is not None:
        who = f"process {pid}"
    else:
        who = "another process"
    return StoreBusyError(
        f"the database {path} is in use by {who} and stayed busy for {waited_s:.0f} s. Wait "
        "for that command or job to finish, or set WORKBENCH_LOCK_TIMEOUT to wait longer.",
        holder=holder, waited_s=waited_s)


# -- one read-only connection shared by a process's threads (the app) -------------------------
# Opening a big file read-only costs tens of milliseconds (its catalog, the migration check), a
# cursor on an open connection a fraction of one. While the shared connection is open no other
# process can write the file, so it is closed whenever someone wants to: a writer in another
# process announces itself (`_announce_waiting`) and a watcher thread closes the connection
# once the reads in flight end; a write in this process closes it first (`_writing`). Every
# write therefore happens while it is closed, and the next read opens the file afresh and sees
# it. The file's identity, size and time are compared on every read as well, in case the file
# was replaced (deleted and rebuilt) under the open connection.

def _file_stamp(db: Path) -> tuple[tuple[int, int, int] | None, ...]:
    """What changes when the file (or its write-ahead log) is written or replaced."""
    stamps: list[tuple[int, int, int] | None] = []
    for path in (db, db.with_name(db.name + ".wal")):
        try:
            found = path.stat()
        except OSError:
            stamps.append(None)
            continue
        stamps.append((found.st_ino, found.st_mtime_ns, found.st_size))
    return tuple(stamps)


class _SharedReader:
    """The read-only connection this process shares for one file: each read takes its own
    cursor (a DuckDB connection is not thread-safe; its cursors are). Closed while a writer waits
    or writes, when the file changed, and after `SHARED_IDLE_S` without reads; reopened by the
    next read. `opens` counts the times it opened the file."""

    def __init__(self, path: Path):
        self.path = path
        self.opens = 0
        self._changed = threading.Condition()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._stamp: tuple[tuple[int, int, int] | None, ...] = ()
        self._reading = 0        # cursors handed out and not yet given back
        self._writing = 0        # writes of this process waiting or under way
        self._used = 0.0         # time.monotonic() of the last read
        self._local = threading.local()   # .reading: this thread's cursors

    def acquire(self, store: Store) -> duckdb.DuckDBPyConnection | None:
        """A cursor of the shared connection, opening it when closed; None when this read must
        open the file on its own: a write of this process is under way or waiting (it holds
        the file), a writer of another process waits (the caller gives way), or the schema
        needs upgrading."""
        with self._changed:
            if self._writing:
                return None
            if self._connection is not None and (_waiting_writer(self.path) is not None
                                                 or _file_stamp(self.path) != self._stamp):
                if self._reading:
                    return None
                self._close()
            if self._connection is not None:
                return self._hand_out(self._connection)
            if _waiting_writer(self.path) is not None:
                return None
            connection = store._connect(read_only=True)
            try:
                if _pending(connection, self.path):
                    connection.close()
                    return None
                connection.execute("SET preserve_insertion_order = false")
            except BaseException:
                connection.close()
                raise
            self._connection, self._stamp = connection, _file_stamp(self.path)
            self.opens += 1
            threading.Thread(target=self._watch, args=(connection,), daemon=True,
                             name=f"shared reader of {self.path.name}").start()
            return self._hand_out(connection)

    def _hand_out(self, connection: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        cursor = connection.cursor()
        self._reading += 1
        self._local.reading = getattr(self._local, "reading", 0) + 1
        return cursor

    def release(self, cursor: duckdb.DuckDBPyConnection) -> None:
        with self._changed:
            cursor.close()
            self._reading -= 1
            self._local.reading -= 1
            self._used = time.monotonic()
            self._changed.notify_all()

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _watch(self, connection: duckdb.DuckDBPyConnection) -> None:
        """While `connection` is the open one: close it, once no read is in flight, when a writer
        of another process waits or nothing has read for `SHARED_IDLE_S`."""
        while True:
            time.sleep(SHARED_WATCH_S)
            with self._changed:
                if self._connection is not connection:
                    return              # closed (and maybe reopened, with its own watcher)
                if self._reading:
                    continue
                if (_waiting_writer(self.path) is not None
                        or time.monotonic() - self._used >= SHARED_IDLE_S):
                    self._close()
                    return

    @contextmanager
    def writing(self, timeout_s: float) -> Iterator[None]:
        """Around a write of this process: new reads open the file on their own meanwhile, and
        the shared connection is closed once the reads in flight end (at most `timeout_s`, then
        `StoreBusyError`), so the write can open the file."""
        started = time.monotonic()
        with self._changed:
            if getattr(self._local, "reading", 0):
                raise StoreBusyError(
                    f"cannot write to the database {self.path} while this thread still reads "
                    "it: finish the read session before the write (a bug in the caller).")
            self._writing += 1
            try:
                while self._reading and self._connection is not None:
                    left = timeout_s - (time.monotonic() - started)
                    if left <= 0:
                        raise StoreBusyError(
                            f"the database {self.path} is being read by this process "
                            f"({os.getpid()}, another open session) and stayed busy for "
                            f"{time.monotonic() - started:.0f} s. Wait for the page to load, "
                            "or set WORKBENCH_LOCK_TIMEOUT to wait longer.",
                            waited_s=time.monotonic() - started)
                    self._changed.wait(left)
                self._close()
            except BaseException:
                self._writing -= 1
                raise
        try:
            yield
        finally:
            with self._changed:
                self._writing -= 1
                self._changed.notify_all()


_shared_lock = threading.Lock()
_shared: dict[Path, _SharedReader] = {}


def shared_reader(db: Path) -> _SharedReader:
    """This process's shared reader of `db` (created closed: it opens on the first read)."""
    db = Path(os.path.abspath(db))
    with _shared_lock:
        found = _shared.get(db)
        if found is None:
            found = _shared[db] = _SharedReader(db)
        return found


@contextmanager
def _writing(db: Path, timeout_s: float) -> Iterator[None]:
    """Around every read-write open: first closes this process's shared reader of `db`."""
    with _shared_lock:
        found = _shared.get(Path(os.path.abspath(db)))
    if found is None:
        yield
        return
    with found.writing(timeout_s):
        yield


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

    def batches(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None,
                rows: int = 100_000) -> Any:
        """The result as a pyarrow RecordBatchReader of batches of at most `rows` rows, for a
        result too large to hold at once: DuckDB makes each batch as it is read. Read it to the
        end before the session's next query."""
        return self._connection.sql(sql, params=params or None).to_arrow_reader(rows)

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
    """A DuckDB file. Cheap to construct; opens the file only inside `session()`/`atomic()`.

    `label` says what this process is doing, for the holder note a writer leaves beside the
    file (default: the command line). A `read_only` store opens every session read-only. A
    `shared` store's read-only sessions take a cursor of this process's one shared read-only
    connection instead of opening the file (for the app: see `_SharedReader`)."""

    path: Path
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S
    label: str | None = None
    read_only: bool = False
    shared: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))  # accept str paths too

    @classmethod
    def at(cls, path: str | Path | None = None, label: str | None = None,
           read_only: bool = False, shared: bool = False) -> Store:
        return cls(Path(path) if path else default_db_path(), _lock_timeout(), label, read_only,
                   shared)

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def check_writable(self) -> None:
        """Raise `StoreReadOnlyError` unless a write to the database can succeed: the file (if
        it exists), its folder (DuckDB writes a `.wal` beside it) and an existing `.wal`.

        Commands that write call this before their slow part, so they fail at once."""
        checks = [self.path]
        if self.path.exists():   # then its folder must take the .wal, and a .wal must be writable
            wal = self.path.with_name(self.path.name + ".wal")
            checks += [self.path.parent / f".{self.path.name}.probe", wal]
        problems = [problem for problem in map(writable_problem, checks) if problem]
        if problems:
            raise StoreReadOnlyError(
                f"cannot write to the database {self.path}: {problems[0]} (DuckDB needs to write "
                "the file and a .wal file beside it). Fix the permissions, or copy the database "
                "to a writable folder and point --db at the copy; commands that only read "
                "(status, versions, runs, export...) work on it as it is.")

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """Connect, retrying while another process (or this one, in the other mode) holds the
        file; `StoreBusyError` after `lock_timeout`."""
        started = time.monotonic()
        if read_only:
            _give_way(self.path, min(READER_GIVE_WAY_S, self.lock_timeout))
        delay = 0.05
        announced = False
        try:
            while True:
                try:
                    return duckdb.connect(str(self.path), read_only=read_only)
                except duckdb.ConnectionException as error:
                    if not _is_config_conflict(error):
                        raise WorkbenchError(f"cannot open the database {self.path}: {error}") \
                            from None
                    if read_only:
                        # This process has it open for writing already: share that instance.
                        return duckdb.connect(str(self.path))
                    last_error: Exception = error
                except duckdb.IOException as error:
                    if not _is_lock_conflict(error):
                        raise _open_error(self.path, error, read_only) from None
                    last_error = error
                if not read_only and not announced:
                    _announce_waiting(self.path)
                    announced = True
                waited = time.monotonic() - started
                if waited >= self.lock_timeout:
                    raise _busy_error(self.path, last_error, waited) from None
                time.sleep(delay * (1 + random.random()))
                # A waiting writer retries often: readers give way only for a few seconds.
                delay = min(delay * 2, 0.25 if announced else 1.0)
        finally:
            if announced:
                _withdraw_waiting(self.path)

    @contextmanager
    def session(self, create: bool = False, read_only: bool = False) -> Iterator[Session]:
        """Open the file for the duration of the block (autocommit).

        `read_only` (or a read-only store) opens it read-only: several reading processes can
        share the file, and a read-only file can be read. Pending migrations are applied first in
        one short read-write open; a schema newer than this code is refused in both modes."""
        read_only = read_only or self.read_only
        if read_only and create:
            raise ValueError("a read-only session cannot create the database")
        if not create and not self.path.exists():
            raise StoreMissingError(
                f"no database at {self.path}. Build the demo with `workbench demo`, or ingest "
                "logs with `workbench ingest FILE`, or point --db / WORKBENCH_DB at one.")
        if create:
            _make_folder(self.path.parent)
        if read_only and self.shared:
            reader = shared_reader(self.path)
            cursor = reader.acquire(self)
            if cursor is not None:
                try:
                    cursor.execute("SET enable_progress_bar = false")
                    yield Session(cursor)
                finally:
                    reader.release(cursor)
                return
        if read_only:
            connection = self._connect(read_only=True)
            try:
                pending = _pending(connection, self.path)
            except BaseException:
                connection.close()
                raise
            if pending:
                connection.close()
                try:
                    self._upgrade()
                except StoreReadOnlyError:
                    raise StoreReadOnlyError(
                        f"the database {self.path} needs its schema upgraded to version "
                        f"{pending[-1][0]} before this workbench can read it, and it cannot be "
                        "written: make it writable once (any command upgrades it), or use a "
                        "workbench of its version.") from None
                connection = self._connect(read_only=True)
            yield from self._serve(connection, migrate=False)
            return
        with _writing(self.path, self.lock_timeout):
            connection = self._connect(read_only=False)
            _hold(self.path, self.label or default_label())
            try:
                yield from self._serve(connection, migrate=True)
            finally:
                _release(self.path)

    def _upgrade(self) -> None:
        """Apply pending migrations in one short read-write open, holding the file meanwhile;
        a read-only store too (`workbench runs`, `serve`), since reading needs today's schema
        (through `session()` it would ask for a read-only session again, and again)."""
        with _writing(self.path, self.lock_timeout):
            connection = self._connect(read_only=False)
            _hold(self.path, self.label or default_label())
            try:
                for _ in self._serve(connection, migrate=True):
                    pass
            finally:
                _release(self.path)

    def _serve(self, connection: duckdb.DuckDBPyConnection, migrate: bool) -> Iterator[Session]:
        try:
            # No terminal progress bar from inside the library; bounded memory for big writes.
            connection.execute("SET enable_progress_bar = false")
            connection.execute("SET preserve_insertion_order = false")
            if migrate:
                _migrate(connection, self.path)
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
        """Rows of one read-only query."""
        with self.session(read_only=True) as session:
            return session.query(sql, params)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise WorkbenchError(f"cannot create the database folder {folder}: a file of that name "
                             "(or above it) is in the way; choose another --db path") from None
    except NotADirectoryError:
        raise WorkbenchError(f"cannot create the database folder {folder}: a path above it is a "
                             "file, not a folder; choose another --db path") from None
    except OSError as error:
        raise WorkbenchError(f"cannot create the database folder {folder}: "
                             f"{error.strerror or error}") from None


def _open_error(path: Path, error: duckdb.Error, read_only: bool) -> WorkbenchError:
    text = str(error)
    if not read_only and ("permission" in text.lower() or "read-only" in text.lower()):
        return StoreReadOnlyError(
            f"cannot open the database {path} for writing: {text}. Fix the permissions, or copy "
            "it to a writable folder and point --db at the copy.")
    return WorkbenchError(f"cannot open the database {path}: {text}")


def migrations() -> list[tuple[int, str, Traversable]]:
    """(version, name, file) of every db/NNN_name.sql file, in order (shipped in the wheel as
    `workbench.migrations`, see `workbench.package_files`)."""
    found = []
    for path in sorted(migrations_folder().iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".sql"):
            continue
        match = re.fullmatch(r"(\d+)_(\w+)\.sql", path.name)
        if match is None:
            raise WorkbenchError(f"migration file name must look like 001_name.sql: {path}")
        found.append((int(match.group(1)), match.group(2), path))
    return found


def _applied(connection: duckdb.DuckDBPyConnection) -> set[int] | None:
    """Applied migration versions, or None when the schema table does not exist yet."""
    exists = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_migrations'").fetchall()
    if not exists[0][0]:
        return None
    return {row[0] for row in connection.execute("SELECT version FROM schema_migrations").fetchall()}


def _pending(connection: duckdb.DuckDBPyConnection,
             path: Path) -> list[tuple[int, str, Traversable]]:
    """Migrations not yet applied; `SchemaTooNewError` when the file has ones we do not know."""
    known = migrations()
    applied = _applied(connection) or set()
    unknown = sorted(applied - {version for version, _, _ in known})
    if unknown:
        newest = max(version for version, _, _ in known) if known else 0
        raise SchemaTooNewError(
            f"the database {path} has schema version {max(unknown)}, newer than this workbench "
            f"knows (up to {newest}): a newer workbench wrote it. Upgrade the workbench to use "
            "it, or point --db at another database.")
    return [migration for migration in known if migration[0] not in applied]


def _migrate(connection: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Apply pending migrations, each in one transaction together with its version record."""
    # The usual case, read-only and cheap: everything is applied already.
    pending = _pending(connection, path)
    if not pending:
        return
    connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
    for version, name, migration in pending:
        connection.execute("BEGIN TRANSACTION")
        try:
            connection.execute(migration.read_text(encoding="utf-8"))
            connection.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                               [version, name, datetime.now(UTC)])
        except duckdb.Error:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")


def schema_version(store: Store) -> int:
    with store.session(read_only=True) as session:
        return int(session.value("SELECT max(version) FROM schema_migrations") or 0)
