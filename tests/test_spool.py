"""The spool (workbench.serving.spool): rotation, thread-safety, restarts, and what a killed
writer leaves behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.serving.spool import Spool, closed_segments, is_spool_folder, segment_name

ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    """Seconds since the epoch that only move when the test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_records_are_json_lines_in_an_open_segment_renamed_on_close(tmp_path: Path) -> None:
    clock = FakeClock(1_800_000_000.25)   # 2027-01-15T08:00:00.250000Z
    spool = Spool(tmp_path / "spool", clock=clock)
    spool.append({"kind": "request", "request_id": "req_1", "intent": "café au lait \n x"})
    spool.append({"kind": "feedback", "request_id": "req_1"})
    open_path = spool.current_segment
    assert open_path is not None
    assert open_path.name == f"spool-20270115T080000250000-{os.getpid()}-000000.jsonl.open"
    # Flushed to the OS per record: readable before the segment is closed.
    assert [json.loads(line)["kind"] for line in lines_of(open_path)] == ["request", "feedback"]
    assert "café" in open_path.read_text(encoding="utf-8")     # ensure_ascii=False
    spool.close()
    spool.close()   # idempotent
    closed = tmp_path / "spool" / open_path.name.removesuffix(".open")
    assert not open_path.exists()
    assert json.loads(lines_of(closed)[0])["intent"] == "café au lait \n x"
    with pytest.raises(WorkbenchError, match="closed"):
        spool.append({"kind": "request"})


def test_rotates_by_size(tmp_path: Path) -> None:
    record = {"kind": "request", "request_id": "req_" + "a" * 32}
    # `{"kind": "request", ` 20 bytes, `"request_id": ` 14, `"req_<32 a>"}` 39, and "\n"
    line_bytes = len(json.dumps(record).encode()) + 1
    assert line_bytes == 74
    # Room for two lines (148 bytes) but not three: five records make segments of 2, 2, 1.
    with Spool(tmp_path, max_bytes=160, clock=FakeClock()) as spool:
        for _ in range(5):
            spool.append(record)
    segments = closed_segments(tmp_path)
    assert [len(lines_of(s)) for s in segments] == [2, 2, 1]
    assert [s.name.split("-")[-1] for s in segments] == [
        "000000.jsonl", "000001.jsonl", "000002.jsonl"]
    assert [s.stat().st_size for s in segments] == [148, 148, 74]


def test_a_line_bigger_than_max_bytes_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=20, clock=FakeClock()) as spool:
        spool.append({"x": "a" * 50})
        spool.append({"x": "b" * 50})
    assert [len(lines_of(s)) for s in closed_segments(tmp_path)] == [1, 1]


def test_rotates_by_age_and_names_segments_by_clock(tmp_path: Path) -> None:
    clock = FakeClock(1_800_000_000.0)
    with Spool(tmp_path, max_age_s=300.0, clock=clock) as spool:
        spool.append({"n": 1})
        clock.now += 299.0
        spool.append({"n": 2})           # 299 s old: same segment
        clock.now += 1.0
        spool.append({"n": 3})           # 300 s old: rotated first
    segments = closed_segments(tmp_path)
    assert [[json.loads(x)["n"] for x in lines_of(s)] for s in segments] == [[1, 2], [3]]
    assert segments[0].name.startswith("spool-20270115T080000000000-")
    assert segments[1].name.startswith("spool-20270115T080500000000-")   # + 300 s


def test_an_idle_segment_is_closed_by_the_background_rotator(tmp_path: Path) -> None:
    clock = FakeClock()
    spool = Spool(tmp_path, max_age_s=0.2, clock=clock)
    try:
        spool.append({"n": 1})
        clock.now += 1.0
        deadline = time.monotonic() + 5.0
        while spool.current_segment is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert spool.current_segment is None
        assert len(closed_segments(tmp_path)) == 1
        assert not list(tmp_path.glob("*.open"))
    finally:
        spool.close()


def test_many_threads_append_whole_lines(tmp_path: Path) -> None:
    threads, per_thread = 16, 200
    spool = Spool(tmp_path, max_bytes=4096)   # small: many rotations while threads write
    # Lines of very different lengths so that interleaved writes would show.
    def work(t: int) -> None:
        for i in range(per_thread):
            spool.append({"thread": t, "i": i, "pad": "é" * ((t * 37 + i) % 300)})
    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    spool.close()
    seen: dict[int, list[int]] = {t: [] for t in range(threads)}
    for segment in closed_segments(tmp_path):
        for line in lines_of(segment):
            record = json.loads(line)
            assert record["pad"] == "é" * ((record["thread"] * 37 + record["i"]) % 300)
            seen[record["thread"]].append(record["i"])
    # Every record once, and each thread's records in the order it appended them.
    assert seen == {t: list(range(per_thread)) for t in range(threads)}


def test_a_restarted_spool_starts_a_new_segment(tmp_path: Path) -> None:
    clock = FakeClock()   # same clock value and pid: the names would collide without O_EXCL
    with Spool(tmp_path, clock=clock) as first:
        first.append({"n": 1})
    with Spool(tmp_path, clock=clock) as second:
        second.append({"n": 2})
    segments = closed_segments(tmp_path)
    assert [[json.loads(x)["n"] for x in lines_of(s)] for s in segments] == [[1], [2]]


def test_a_spool_that_never_appended_leaves_no_file(tmp_path: Path) -> None:
    with Spool(tmp_path / "new" / "spool"):
        pass
    assert list((tmp_path / "new" / "spool").iterdir()) == []


def test_a_folder_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(WorkbenchError, match=f"spool folder {tmp_path / 'f'} .*not a directory"):
        Spool(tmp_path / "f")
    with pytest.raises(WorkbenchError, match="does not exist"):
        closed_segments(tmp_path / "missing")


def test_unserialisable_records_are_refused_before_writing(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool, pytest.raises(WorkbenchError, match="'req_x' is not JSON"):
        spool.append({"request_id": "req_x", "latency_ms": float("nan")})
    assert list(tmp_path.iterdir()) == []


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_closed_segments_order_and_open_segments(tmp_path: Path) -> None:
    me = os.getpid()
    gone = dead_pid()
    t = datetime(2026, 11, 29, 22, 0, 0, tzinfo=UTC)
    later = datetime(2026, 11, 29, 22, 0, 1, tzinfo=UTC)
    files = {
        "b": segment_name(later, me, 0, open_=False),
        "a": segment_name(t, 99, 3, open_=False),
        "live": segment_name(datetime.now(UTC), me, 1),          # this process: alive
        "dead": segment_name(t, gone, 0),                         # writer gone: counts as closed
    }
    for name in files.values():
        (tmp_path / name).write_text("{}\n")
    (tmp_path / "notes.txt").write_text("not a segment")
    names = [p.name for p in closed_segments(tmp_path)]
    # Ordered by name without `.open`: the timestamp, then pid, then seq.
    assert names == sorted([files["a"], files["dead"], files["b"]],
                           key=lambda n: n.removesuffix(".open"))
    assert files["live"] not in names
    with_open = [p.name for p in closed_segments(tmp_path, include_open=True)]
    assert with_open == names + [files["live"]]
    assert is_spool_folder(tmp_path)
    assert not is_spool_folder(tmp_path / "notes.txt")


def test_a_reused_pid_does_not_keep_an_old_segment_open(tmp_path: Path) -> None:
    # This process started after 2001, so a segment "created" then by our pid is a dead
    # writer's whose pid we happen to reuse.
    old = segment_name(datetime(2001, 1, 1, tzinfo=UTC), os.getpid(), 0)
    (tmp_path / old).write_text("{}\n")
    if not Path(f"/proc/{os.getpid()}/stat").exists():
        pytest.skip("process start times need /proc")
    assert [p.name for p in closed_segments(tmp_path)] == [old]


WRITER = """
import sys
from workbench.serving.spool import Spool
spool = Spool(sys.argv[1])
i = 0
while True:
    spool.append({"kind": "request", "request_id": f"req_{i:032x}", "pad": "x" * (i % 500)})
    print(i, flush=True)   # reported only after append returned
    i += 1
"""


def test_a_killed_writer_loses_nothing_it_reported(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    reported: list[int] = []
    try:
        assert writer.stdout is not None
        deadline = time.monotonic() + 30.0
        while len(reported) < 2000 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                break
            reported.append(int(line))
        assert len(reported) >= 2000, "the writer stopped or was too slow"
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
    # Drain what it printed before the kill: also reported.
    assert writer.stdout is not None
    reported.extend(int(x) for x in writer.stdout.read().split())
    segments = closed_segments(folder)
    assert len(segments) == 1 and segments[0].name.endswith(".jsonl.open")   # dead: closed
    raw = segments[0].read_bytes().split(b"\n")
    whole = [json.loads(x) for x in raw[:-1]]   # every newline-terminated line parses
    ids = [int(r["request_id"][4:], 16) for r in whole]
    assert ids == list(range(len(ids)))
    assert set(reported) <= set(ids)          # nothing the writer reported is lost or torn
    assert len(ids) - len(reported) <= 1      # at most the record in flight was not reported
    # raw[-1] is the torn tail (possibly empty); it never holds a reported record.
