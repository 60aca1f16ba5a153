"""The store: migrations, atomic rollback, and the one-writer-process rule."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.errors import StoreBusyError, StoreMissingError
from workbench.store import Store, migrations, schema_version


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
connection = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
connection.close()
"""


def _fresh_db(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    with Store(path).session(create=True):
        pass
    return path


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)],
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
