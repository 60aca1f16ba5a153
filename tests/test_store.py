"""The store: migrations, atomic rollback, and the one-writer-process rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from workbench.errors import (
    SchemaTooNewError,
    StoreBusyError,
    StoreMissingError,
    StoreReadOnlyError,
    WorkbenchError,
)
from workbench.store import (
    Store,
    holder_path,
    migrations,
    read_holder,
    schema_version,
    waiting_path,
)


def test_migrations_are_applied_once_and_recorded(store: Store):
    with store.session(create=True):
        pass
    with store.session():
        pass
    versions = [row["version"] for row in store.query("SELECT version FROM schema_migrations")]
    assert versions == [number for number, _, _ in migrations()]
    assert schema_version(store) == max(versions)


def test_atomic_rolls_back_on_error(store: Store):
    with pytest.raises(RuntimeError), store.atomic(create=True) as session:
        session.execute("INSERT INTO settings VALUES ('k', 'v')")
        raise RuntimeError("boom")
    assert store.query("SELECT * FROM settings") == []


def test_missing_database_is_a_clear_error(tmp_path: Path):
    with pytest.raises(StoreMissingError, match="workbench demo"):
        Store(tmp_path / "nope.duckdb").query("SELECT 1")


HOLD = """
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1], read_only=sys.argv[3] == "ro")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
connection.close()
"""


def _fresh_db(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    with Store(path).session(create=True):
        pass
    return path


def _hold(path: Path, seconds: float, read_only: bool = False) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds),
                               "ro" if read_only else "rw"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def test_busy_file_fails_clearly_after_the_timeout(tmp_path: Path):
    path = _fresh_db(tmp_path)
    holder = _hold(path, 10)
    try:
        started = time.monotonic()
        with pytest.raises(StoreBusyError, match=f"process {holder.pid}"):
            Store(path, lock_timeout=0.5).query("SELECT 1")
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()


def test_busy_file_is_waited_for(tmp_path: Path):
    path = _fresh_db(tmp_path)
    holder = _hold(path, 1.0)
    try:
        assert Store(path, lock_timeout=20).query("SELECT 42 AS x") == [{"x": 42}]
    finally:
        holder.wait()


# -- read-only sessions ------------------------------------------------------------------------
def test_read_only_session_reads_and_refuses_writes(tmp_path: Path):
    path = _fresh_db(tmp_path)
    with Store(path).atomic() as session:
        session.execute("INSERT INTO settings VALUES ('k', 'v')")
    with Store(path).session(read_only=True) as session:
        assert session.query("SELECT * FROM settings") == [{"key": "k", "value": "v"}]
        with pytest.raises(duckdb.Error, match="read-only"):
            session.execute("INSERT INTO settings VALUES ('k2', 'v')")
    # A read-only store opens every session read-only, and query() always does.
    with Store(path, read_only=True).session() as session, \
            pytest.raises(duckdb.Error, match="read-only"):
        session.execute("DELETE FROM settings")
    assert Store(path).query("SELECT count(*) AS n FROM settings") == [{"n": 1}]


def test_read_only_session_cannot_create(tmp_path: Path):
    with pytest.raises(StoreMissingError), Store(tmp_path / "none.duckdb").session(read_only=True):
        pass
    assert not (tmp_path / "none.duckdb").exists()


def test_readers_share_the_file_with_another_reading_process(tmp_path: Path):
    path = _fresh_db(tmp_path)
    reader = _hold(path, 10, read_only=True)
    try:
        assert Store(path, lock_timeout=0.5).query("SELECT 7 AS x") == [{"x": 7}]
        # ...but a writer still has to wait for the reader.
        with pytest.raises(StoreBusyError, match=f"process {reader.pid}"), Store(path, lock_timeout=0.3).session():
            pass
    finally:
        reader.kill()
        reader.wait()


def test_read_only_session_inside_a_write_session_of_the_same_process(tmp_path: Path):
    path = _fresh_db(tmp_path)
    with Store(path).atomic() as session:
        session.execute("INSERT INTO settings VALUES ('k', 'v')")
        assert Store(path, lock_timeout=0.5).query("SELECT count(*) AS n FROM settings")


@pytest.mark.parametrize("read_only_store", [False, True])
def test_read_only_session_applies_pending_migrations_first(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             read_only_store: bool):
    """Also through a read-only store (a reading command such as `workbench runs` on a
    database of the previous release), which once recursed until Python gave up."""
    import workbench.store.connection as store_module

    known = migrations()
    monkeypatch.setattr(store_module, "migrations", lambda: known[:-1])  # an older workbench
    path = _fresh_db(tmp_path)
    monkeypatch.setattr(store_module, "migrations", lambda: known)
    last = known[-1][0]
    with duckdb.connect(str(path), read_only=True) as connection:
        assert connection.execute("SELECT max(version) FROM schema_migrations").fetchall() == \
            [(known[-2][0],)]
    assert schema_version(Store(path, read_only=read_only_store)) == last
    assert not holder_path(path).exists()


@pytest.mark.parametrize("read_only", [False, True])
def test_a_schema_newer_than_the_code_is_refused(tmp_path: Path, read_only: bool):
    path = _fresh_db(tmp_path)
    future = max(number for number, _, _ in migrations()) + 1
    with duckdb.connect(str(path)) as connection:
        connection.execute("INSERT INTO schema_migrations VALUES (?, 'from_the_future', now())",
                           [future])
    with pytest.raises(SchemaTooNewError, match=f"schema version {future}, newer"), Store(path).session(read_only=read_only):
        pass


# -- who holds the file ------------------------------------------------------------------------
HOLD_WITH_STORE = """
import sys, time
from workbench.store import Store
with Store(sys.argv[1], label="workbench ingest big.jsonl").session():
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_busy_error_names_the_holder_from_its_note(tmp_path: Path):
    path = _fresh_db(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WITH_STORE, str(path), "20"],
                              stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        note = json.loads(holder_path(path).read_text())
        assert note["pid"] == holder.pid and note["label"] == "workbench ingest big.jsonl"
        time.sleep(1.1)
        with pytest.raises(StoreBusyError) as caught:
            Store(path, lock_timeout=0.3).query("SELECT 1")
        error = caught.value
        assert error.holder is not None
        assert error.holder.startswith(f"`workbench ingest big.jsonl` (process {holder.pid}, for ")
        assert 0.3 <= error.waited_s < 5
        assert f"in use by `workbench ingest big.jsonl` (process {holder.pid}, for " in str(error)
        held = float(str(error).split(", for ")[1].split(" s)")[0])
        assert held >= 1
    finally:
        holder.kill()
        holder.wait()


def test_the_note_is_removed_on_close_and_a_stale_one_ignored(tmp_path: Path):
    path = _fresh_db(tmp_path)
    store = Store(path, label="test writer")
    with store.session():
        assert json.loads(holder_path(path).read_text())["label"] == "test writer"
        with store.session():   # nested in the same process: one note, kept until the last
            pass
        assert holder_path(path).exists()
    assert not holder_path(path).exists()
    # A note left by a dead process (kill -9) describes nobody.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    holder_path(path).write_text(json.dumps({"pid": int(dead.stdout), "label": "gone",
                                             "since": time.time()}))
    assert read_holder(path) is None
    holder = _hold(path, 10)
    try:
        with pytest.raises(StoreBusyError) as caught:
            Store(path, lock_timeout=0.2).query("SELECT 1")
        assert caught.value.holder is None and "gone" not in str(caught.value)
        assert f"process {holder.pid}" in str(caught.value)
    finally:
        holder.kill()
        holder.wait()


# -- writability ---------------------------------------------------------------------------------
def test_check_writable_names_the_read_only_file_or_folder(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    path = _fresh_db(tmp_path)
    Store(path).check_writable()
    real_access = os.access

    def no_write(target: Any, mode: int, **kwargs: Any) -> bool:
        if Path(target) == blocked and mode & os.W_OK:
            return False
        return real_access(target, mode, **kwargs)

    monkeypatch.setattr(os, "access", no_write)
    blocked = path
    with pytest.raises(StoreReadOnlyError, match=f"{path} is not writable"):
        Store(path).check_writable()
    blocked = tmp_path
    with pytest.raises(StoreReadOnlyError, match=f"the folder {tmp_path} is not writable"):
        Store(path).check_writable()
    with pytest.raises(StoreReadOnlyError, match=f"the folder {tmp_path} is not writable"):
        Store(tmp_path / "new" / "w.duckdb").check_writable()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores file permissions")
def test_a_read_only_database_file_can_be_read(tmp_path: Path):
    path = _fresh_db(tmp_path)
    path.chmod(0o444)
    try:
        assert Store(path).query("SELECT 1 AS x") == [{"x": 1}]
        with pytest.raises(StoreReadOnlyError):
            Store(path).check_writable()
    finally:
        path.chmod(0o644)


def test_db_under_an_existing_file_is_a_clear_error(tmp_path: Path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(WorkbenchError, match="is a file|in the way"), Store(tmp_path / "file.txt" / "w.duckdb").session(create=True):
        pass


READ_NON_STOP = """
import sys, threading, time
import workbench.store.connection as store_module
from workbench.store import Store
store_module.READER_GIVE_WAY_S = float(sys.argv[2])
store = Store(sys.argv[1], lock_timeout=60)
def read():
    while True:
        store.query("SELECT count(*) FROM range(3000000)")
for _ in range(3):   # overlapping readers: the process almost never has the file closed
    threading.Thread(target=read, daemon=True).start()
print("reading", flush=True)
time.sleep(60)
"""


def _writer_gets_in(path: Path, give_way_s: float) -> bool:
    readers = subprocess.Popen([sys.executable, "-c", READ_NON_STOP, str(path), str(give_way_s)],
                               stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parent.parent)
    try:
        assert readers.stdout is not None and readers.stdout.readline().strip() == "reading"
        time.sleep(0.5)
        try:
            with Store(path, lock_timeout=6).atomic() as session:
                session.execute("INSERT INTO settings VALUES ('written', 'yes')")
        except StoreBusyError:
            return False
        return True
    finally:
        readers.kill()
        readers.wait()


def test_readers_give_way_to_a_waiting_writer(tmp_path: Path):
    path = _fresh_db(tmp_path)
    assert _writer_gets_in(path, give_way_s=5.0)
    assert not waiting_path(path).exists()   # the writer withdrew its note once in


def test_a_reader_holds_back_only_while_a_live_writer_waits(tmp_path: Path):
    # The mechanism behind the test above, without its timing: a waiting note of a live process
    # makes a reader hold back (up to its limit); no note, or a dead writer's note, does not.
    from workbench.store import connection

    path = _fresh_db(tmp_path)
    started = time.monotonic()
    connection._give_way(path, limit_s=0.5)
    assert time.monotonic() - started < 0.1
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        waiting_path(path).write_text(str(writer.pid))
        started = time.monotonic()
        connection._give_way(path, limit_s=0.5)
        assert 0.5 <= time.monotonic() - started < 2
    finally:
        writer.kill()
        writer.wait()
    started = time.monotonic()
    connection._give_way(path, limit_s=0.5)   # the note of a dead process is ignored
    assert time.monotonic() - started < 0.1
