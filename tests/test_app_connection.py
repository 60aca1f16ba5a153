"""The app's shared read-only connection (issue 17): one open per process, reused by every read
and thread; closed for a writer of another process (within its usual wait) and for a write of
this process; the next read sees what was written; a killed writer leaves nothing stuck."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from workbench.errors import StoreBusyError
from workbench.store import Store
from workbench.store import connection as store_connection

ROOT = Path(__file__).resolve().parents[1]
INSERT = "INSERT INTO settings VALUES (?, 'x')"
COUNT = "SELECT count(*) FROM settings"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A migrated database whose settings table holds two rows."""
    path = tmp_path / "w.duckdb"
    with Store(path).atomic(create=True) as session:
        session.execute(INSERT, ["a"])
        session.execute(INSERT, ["b"])
    return path


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Every duckdb.connect the store makes, as its read_only flag."""
    seen: list[bool] = []
    real = duckdb.connect

    def counting(database: str, read_only: bool = False, **kwargs: object) -> object:
        seen.append(read_only)
        return real(database, read_only=read_only, **kwargs)

    monkeypatch.setattr(store_connection.duckdb, "connect", counting)
    yield seen


def reader(db: Path, lock_timeout: float = 5.0) -> Store:
    return Store(db, lock_timeout=lock_timeout, read_only=True, shared=True)


def count(db: Path) -> int:
    with reader(db).session() as session:
        return int(session.value(COUNT))


def run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, check=False)


def test_reads_reuse_one_connection_across_calls_and_threads(db: Path, opens: list[bool]):
    assert count(db) == 2 and count(db) == 2
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(count(db))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [2] * 8
    assert opens == [True]                      # one read-only open for all ten reads
    # An unshared store (the CLI's) still opens the file per session.
    with Store(db, read_only=True).session() as session:
        session.value(COUNT)
    assert opens == [True, True]


WRITE = ("import sys, time\n"
         "from workbench.store import Store\n"
         "started = time.monotonic()\n"
         "with Store(sys.argv[1], lock_timeout=30).atomic() as session:\n"
         "    waited = time.monotonic() - started\n"
         "    session.execute(\"INSERT INTO settings VALUES ('from another process', 'x')\")\n"
         "print(f'{waited:.2f}')\n")


def test_a_writer_of_another_process_gets_the_file_and_the_next_read_sees_its_rows(
        db: Path, opens: list[bool]):
    assert count(db) == 2                        # the shared connection is open, and idle
    done = run_python(WRITE, str(db))
    assert done.returncode == 0, done.stderr
    # It announced itself and the reader closed within its watch period: far inside the
    # writer's 30 s (a reader holding on would have made it wait all of them and fail).
    assert float(done.stdout) < 3.0
    assert count(db) == 3
    assert opens == [True, True]                 # reopened once, after the write


def test_a_write_of_this_process_closes_the_shared_reader_first(db: Path, opens: list[bool]):
    assert count(db) == 2
    started = time.monotonic()
    with Store(db, lock_timeout=5).atomic() as session:
        session.execute(INSERT, ["c"])
    assert time.monotonic() - started < 2.0      # no wait for the lock timeout
    assert count(db) == 3
    assert opens == [True, False, True]


def test_a_write_waits_for_the_reads_in_flight(db: Path):
    holding, release = threading.Event(), threading.Event()

    def slow_read() -> None:
        with reader(db).session() as session:
            session.value(COUNT)
            holding.set()
            release.wait(5)
    thread = threading.Thread(target=slow_read)
    thread.start()
    assert holding.wait(5)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    with Store(db, lock_timeout=5).atomic() as session:
        session.execute(INSERT, ["c"])
    waited = time.monotonic() - started
    thread.join()
    assert 0.25 <= waited < 3.0
    assert count(db) == 3


def test_a_read_while_this_process_writes_opens_the_file_on_its_own(db: Path):
    with Store(db, lock_timeout=5).atomic() as session:
        session.execute(INSERT, ["c"])
        # Another thread reads meanwhile: it shares the writer's instance, as before.
        seen: list[int] = []
        thread = threading.Thread(target=lambda: seen.append(count(db)))
        thread.start()
        thread.join(10)
        assert seen and seen[0] in (2, 3)
    assert count(db) == 3


def test_writing_inside_a_read_of_the_same_thread_fails_at_once(db: Path):
    started = time.monotonic()
    with reader(db).session() as session:
        session.value(COUNT)
        with pytest.raises(StoreBusyError, match="still reads it"), \
                Store(db, lock_timeout=5).atomic():
            pass
    assert time.monotonic() - started < 2.0


ANNOUNCE_AND_WAIT = ("import sys, time\n"
                     "from workbench.store.connection import _announce_waiting\n"
                     "from pathlib import Path\n"
                     "_announce_waiting(Path(sys.argv[1]))\n"
                     "print('waiting', flush=True)\n"
                     "time.sleep(60)\n")


def test_a_killed_waiting_writer_does_not_stall_reads(db: Path, opens: list[bool]):
    writer = subprocess.Popen([sys.executable, "-c", ANNOUNCE_AND_WAIT, str(db)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "waiting\n"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    assert store_connection.waiting_path(db).exists()     # its note outlived it
    started = time.monotonic()
    assert count(db) == 2 and count(db) == 2
    assert time.monotonic() - started < 2.0    # no give-way for a dead writer (it is 5 s)
    assert opens == [True]


HOLD = ("import sys\n"
        "from workbench.store import Store\n"
        "with Store(sys.argv[1]).atomic() as session:\n"
        "    session.execute(\"INSERT INTO settings VALUES ('uncommitted', 'x')\")\n"
        "    print('holding', flush=True)\n"
        "    sys.stdin.readline()\n")


def test_a_writer_killed_while_holding_the_file_leaves_it_readable(db: Path):
    writer = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "holding\n"
        with pytest.raises(StoreBusyError), reader(db, lock_timeout=0.5).session():
            pass
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    assert count(db) == 2                         # its transaction never committed


def test_a_replaced_file_is_reopened(db: Path, tmp_path: Path):
    assert count(db) == 2
    other = tmp_path / "other.duckdb"
    with Store(other).atomic(create=True) as session:
        for key in "pqrst":
            session.execute(INSERT, [key])
    os.replace(other, db)              # e.g. a demo rebuilt under the app
    assert count(db) == 5


def test_an_idle_reader_lets_go_of_the_file(db: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(store_connection, "SHARED_IDLE_S", 0.2)
    assert count(db) == 2
    time.sleep(0.6)
    # A plain DuckDB writer (no announcement, no wait) can open it: nothing holds the file.
    done = run_python("import sys, duckdb; duckdb.connect(sys.argv[1]).close()", str(db))
    assert done.returncode == 0, done.stderr


def _intents_page() -> None:  # runs inside AppTest: imports must be local
    from workbench.app import state
    from workbench.app.views import intents

    state.run_page(intents.render)


def test_the_app_opens_the_file_once_for_many_page_runs(tmp_path: Path, opens: list[bool],
                                                         monkeypatch: pytest.MonkeyPatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import curated_store

    db = curated_store(tmp_path).path
    monkeypatch.setenv("WORKBENCH_DB", str(db))
    opens.clear()                                  # the fixture's writes
    first = AppTest.from_function(_intents_page, default_timeout=60).run()
    second = AppTest.from_function(_intents_page, default_timeout=60).run()   # another browser
    first.run()
    for page in (first, second):
        assert not page.exception and page.dataframe
    assert opens == [True]          # three page runs, two sessions, each several reads: one open


def test_intent_pages_bounded_by_the_sort_match_a_plain_sort(tmp_path: Path):
    """`intents_page` bounds each page by its sort's leading columns and picks the version's rows
    inside an aggregate (issue 17's speed-ups): every page, sort and direction equals the same
    order worked out in Python, ties included, with the chosen version's split and tools."""
    from datetime import UTC, datetime, timedelta

    from workbench.store.requests import IntentFilter, IntentSort, intents_page

    n = 60
    keys = [f"intent {i:02d}" for i in range(n)]
    requests_ = [1 + (i * 7) % 5 for i in range(n)]             # many ties
    exported = [min(r, (i * 3) % 4) for i, r in enumerate(requests_)]
    rates = [e / r for e, r in zip(exported, requests_, strict=True)]
    seen = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=(i * 5) % 7) for i in range(n)]
    path = tmp_path / "w.duckdb"
    with Store(path).atomic(create=True) as session:
        session.insert("intent_stats", {"intent_key": keys, "request_count": requests_,
                                        "exported_count": exported, "export_rate": rates,
                                        "output_count": [1] * n, "last_seen_at": seen})
        session.insert("intents", {"intent_key": keys, "intent_text": [k.upper() for k in keys],
                                   "first_seen_at": seen}, extra={"ingest_id": 1})
        for version in (1, 2):    # version 2 holds every other intent, with the other split
            chosen = [k for i, k in enumerate(keys) if version == 1 or i % 2 == 0]
            session.insert("dataset_rows", {
                "intent_key": chosen, "intent_text": chosen,
                "split": [("test" if (int(k[-2:]) % 3 == 0) == (version == 1) else "train")
                          for k in chosen],
                "request_count": [1] * len(chosen),
                "filter": [None if int(k[-2:]) % 4 else '{"name": "x"}' for k in chosen]},
                extra={"version_id": version, "origin": "logs"})
    by_key = dict(zip(keys, zip(requests_, rates, seen, strict=True), strict=True))
    orders = {IntentSort.REQUESTS: lambda k: (-by_key[k][0], k),
              IntentSort.EXPORT_RATE: lambda k: (-by_key[k][1], -by_key[k][0], k),
              IntentSort.LAST_SEEN: lambda k: (-by_key[k][2].timestamp(), k),
              IntentSort.INTENT: lambda k: k}
    with Store(path, read_only=True).session() as session:
        for sort, key in orders.items():
            for reverse in (False, True):
                expected = sorted(keys, key=key, reverse=False)
                expected = expected[::-1] if reverse else expected
                for size in (7, 25):
                    got: list[str] = []
                    for offset in range(0, n + size, size):
                        got += [row["intent_key"] for row in intents_page(
                            session, IntentFilter(version_id=2), sort, size, offset, reverse)]
                    assert got == expected, (sort, reverse, size)
        rows = intents_page(session, IntentFilter(version_id=2), IntentSort.INTENT, n, 0)
    for row in rows:
        i = int(row["intent_key"][-2:])
        if i % 2:                                    # not in version 2
            assert row["split"] is None and row["uses_filter"] is None
        else:
            assert row["split"] == ("train" if i % 3 == 0 else "test")
            assert row["uses_filter"] is (i % 4 == 0) and row["uses_adjust"] is False


def test_the_benchmark_grows_a_copy_of_the_logs_and_labels_it_synthetic(tmp_path: Path):
    """`app_benchmark.py --grow`: the copy holds the logs three times over (18 requests -> 54,
    asked for 50), each intent three times, the copies' intents in the training split, the
    test split as it was; the source is untouched."""
    import importlib.util

    from tests.conftest import curated_store
    from workbench.store.requests import has_synthetic_demo_ingest, log_counts

    spec = importlib.util.spec_from_file_location("app_benchmark",
                                                  ROOT / "benchmarks" / "app_benchmark.py")
    assert spec is not None and spec.loader is not None
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    source = curated_store(tmp_path).path
    splits = "SELECT split, count(*) AS n FROM dataset_rows GROUP BY split"
    with Store(source, read_only=True).session() as session:
        before = log_counts(session)
        before_rows = {row["split"]: row["n"] for row in session.query(splits)}
    assert before["requests"] == 18 and before_rows["test"] == 3
    grown = benchmark.grow(source, 50)
    assert benchmark.grow(source, 50) == grown                 # made once, then reused
    with Store(source, read_only=True).session() as session:
        assert log_counts(session) == before and not has_synthetic_demo_ingest(session)
    with Store(grown, read_only=True).session() as session:
        counts = log_counts(session)
        assert has_synthetic_demo_ingest(session)
        rows = {row["split"]: row["n"] for row in session.query(splits)}
        version = session.first("SELECT n_train, n_test FROM dataset_versions")
    assert (counts["requests"], counts["intents"], counts["ingests"]) == \
        (54, 3 * before["intents"], before["ingests"] + 1)
    train = before_rows["train"] + 2 * (before_rows["train"] + 3)
    assert rows == {"test": 3, "train": train}
    assert version == {"n_train": train, "n_test": 3}
