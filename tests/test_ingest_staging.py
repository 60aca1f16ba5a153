"""Staging beside the database, and what a killed ingest leaves (issue 11, item 9).

An ingest stages valid rows in `<database>.staging/<pid>-*/`; when its process is killed the
folder stays, and the next ingest removes it (its process no longer runs) and says so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipelines import ingest
from pipelines.ingest import IngestConfig, ingest_file, staging_root
from tests.conftest import make_record
from workbench.cli.data import ingest_lines
from workbench.store import Store

ROOT = Path(__file__).resolve().parent.parent


def write_jsonl(path: Path, prefix: str, n: int) -> Path:
    path.write_text("".join(json.dumps(make_record(request_id=f"{prefix}{i}",
                                                   intent=f"look {i % 50}")) + "\n"
                            for i in range(n)))
    return path


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def snapshot(store: Store) -> dict[str, list[dict]]:
    with store.session() as session:
        return {table: session.query(f"SELECT * FROM {table} ORDER BY ALL")
                for table in ("requests", "intents", "intent_stats", "ingests", "quarantine")}


def test_rows_are_staged_beside_the_database_and_cleaned_up(tmp_path: Path) -> None:
    store = Store(tmp_path / "db" / "w.duckdb", lock_timeout=2.0)
    seen: list[list[Path]] = []
    before = set(Path(tempfile.gettempdir()).glob("workbench-ingest-*"))

    # Called as records are read, and once more when staging has closed its file.
    def progress(stage: str, read: int, total: int | None) -> None:
        seen.append(sorted(staging_root(store).glob(f"{os.getpid()}-*/staged.parquet")))

    result = ingest.run(IngestConfig((write_jsonl(tmp_path / "a.jsonl", "r", 3),)), store,
                        progress)
    assert result.files[0].ingested == 3
    assert seen and len(seen[-1]) == 1  # the stage was there, beside the database
    assert staging_root(store) == tmp_path / "db" / "w.duckdb.staging"
    assert not staging_root(store).exists()  # and is gone afterwards
    assert set(Path(tempfile.gettempdir()).glob("workbench-ingest-*")) == before
    assert result.leftovers_note is None


def test_a_leftover_of_a_dead_process_is_removed_and_reported(tmp_path: Path,
                                                               store: Store) -> None:
    root = staging_root(store)
    orphan = root / f"{dead_pid()}-k1ll3d"
    orphan.mkdir(parents=True)
    (orphan / "staged.parquet").write_bytes(b"x" * 2_500_000)
    (orphan / "more").write_bytes(b"y" * 500)
    live = root / f"{os.getpid()}-running"   # an ingest at work in a live process
    live.mkdir()
    other = root / "notes"                   # not a name ingest gives: never touched
    other.mkdir()

    result = ingest.run(IngestConfig((write_jsonl(tmp_path / "a.jsonl", "r", 2),)), store)
    [summary] = result.files
    assert (summary.ingested, summary.leftovers_removed, summary.leftover_bytes) == \
        (2, 1, 2_500_500)
    assert not orphan.exists() and live.exists() and other.exists()
    assert result.leftovers_note == \
        "removed 1 leftover staging folder from an interrupted ingest (3 MB)"
    assert result.to_dict()["leftovers"] == result.leftovers_note
    assert ingest_lines(result)[0] == result.leftovers_note

    # Nothing left to remove the next time.
    again = ingest.run(IngestConfig((write_jsonl(tmp_path / "b.jsonl", "s", 1),)), store)
    assert again.files[0].leftovers_removed == 0 and again.leftovers_note is None


# The child ingests the big file with small stage chunks; when it has read 10,000 records (the
# stage is on disk by then), it says so in a marker file and waits to be killed.
CHILD = """
import sys, time
from pathlib import Path
from pipelines import ingest
from workbench.store import Store

def progress(stage, read, total):
    Path(sys.argv[3]).write_text(str(read))
    time.sleep(120)

ingest.STAGE_CHUNK_ROWS = 1_000
ingest.ingest_file(Path(sys.argv[1]), Store(Path(sys.argv[2])), progress)
"""


def test_an_ingest_killed_while_staging_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.duckdb", lock_timeout=10.0)
    ingest_file(write_jsonl(tmp_path / "first.jsonl", "a", 5), store)
    before = snapshot(store)
    big = write_jsonl(tmp_path / "big.jsonl", "big", 12_000)
    marker = tmp_path / "staging-started"

    child = subprocess.Popen([sys.executable, "-c", CHILD, str(big), str(store.path),
                              str(marker)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, "the ingest ended before it was killed"
            assert time.monotonic() < deadline, "the ingest never got to staging"
            time.sleep(0.05)
        [leftover] = staging_root(store).glob(f"{child.pid}-*")
        assert (leftover / "staged.parquet").stat().st_size > 0
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    size = sum(p.stat().st_size for p in leftover.rglob("*"))
    assert leftover.exists() and snapshot(store) == before

    summary = ingest_file(write_jsonl(tmp_path / "next.jsonl", "n", 2), store)
    assert (summary.leftovers_removed, summary.leftover_bytes) == (1, size)
    assert not staging_root(store).exists()
    after = snapshot(store)
    assert [r["request_id"] for r in after["requests"]] == \
        sorted([f"a{i}" for i in range(5)] + ["n0", "n1"])
    assert after["quarantine"] == before["quarantine"] == []
