"""The spool: a crash-safe, append-only folder of JSONL segments that a server logs into.

The server never writes the DuckDB file (the CLI and the app own it); it appends one JSON line
per served request or feedback here, and `workbench ingest SPOOL_FOLDER` brings the closed
segments into the store later. Each line is handed to the operating system with one `write`
before `append` returns, so a killed server (kill -9) loses only what was in flight: at most
the last line of its open segment is torn, and ingest quarantines it.

Segments are named `spool-<UTC %Y%m%dT%H%M%S%f>-<pid>-<seq>.jsonl.open` while written and lose
the `.open` suffix when closed (by rotation or `close`). A closed segment is never written
again, a new `Spool` always starts a new segment, and an `.open` segment whose writer process
is gone counts as closed for ingest.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from workbench.errors import WorkbenchError
from workbench.processes import pid_alive

DEFAULT_MAX_BYTES = 64 * 2**20
DEFAULT_MAX_AGE_S = 300.0
OPEN_SUFFIX = ".open"
SEGMENT_RE = re.compile(
    r"^spool-(?P<stamp>\d{8}T\d{12})-(?P<pid>\d+)-(?P<seq>\d{6})\.jsonl(?P<open>\.open)?$")
STAMP_FORMAT = "%Y%m%dT%H%M%S%f"
# A process that started this long after a segment was created cannot be its writer: the pid
# was reused. The slack covers the whole-second boot time that Linux reports.
PID_REUSE_SLACK_S = 2.0


def segment_name(created: datetime, pid: int, seq: int, *, open_: bool = True) -> str:
    """The file name of a segment created at `created` (UTC) by process `pid`."""
    name = f"spool-{created.astimezone(UTC).strftime(STAMP_FORMAT)}-{pid}-{seq:06d}.jsonl"
    return name + OPEN_SUFFIX if open_ else name


def _spool_folder(folder: str | Path, *, create: bool) -> Path:
    """The folder as a Path; created when asked and missing; an error when it is not a folder."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise WorkbenchError(f"spool folder {path} exists but is not a directory")
    if not path.exists():
        if not create:
            raise WorkbenchError(f"spool folder {path} does not exist")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkbenchError(f"cannot create spool folder {path}: {exc.strerror}") from exc
    return path


class Spool:
    """Appends records as JSON lines to rotating segments in `folder` (thread-safe).

    A segment is opened at the first append and closed (renamed without `.open`) when the next
    line would take it over `max_bytes`, when it is older than `max_age_s` (checked at each
    append and by a background thread, so an idle server still closes its segment on time),
    or at `close()`. `clock` (seconds since the epoch) is injectable for tests; it names the
    segments and ages them."""

    def __init__(self, folder: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_age_s: float = DEFAULT_MAX_AGE_S,
                 clock: Callable[[], float] = time.time) -> None:
        if max_bytes <= 0:
            raise WorkbenchError(f"spool max_bytes must be positive, got {max_bytes}")
        if not max_age_s > 0:
            raise WorkbenchError(f"spool max_age_s must be positive, got {max_age_s}")
        self.folder = _spool_folder(folder, create=True)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None      # the open segment, with its .open suffix
        self._opened_at = 0.0                # clock() when the open segment was created
        self._size = 0                       # bytes written to the open segment
        self._seq = 0
        self._closed = False
        self._stop = threading.Event()
        # Wake often enough that a segment closes within a quarter of its age limit (at most
        # every 5 s): cheap, and it needs no call from the server.
        self._tick_s = max(0.05, min(max_age_s / 4, 5.0))
        self._rotator = threading.Thread(target=self._rotate_when_due, name="spool-rotator",
                                         daemon=True)
        self._rotator.start()

    # -- writing ------------------------------------------------------------------------------

    def append(self, record: Mapping[str, Any]) -> None:
        """Write `record` as one JSON line and hand it to the OS before returning.

        Rotates first when the open segment is too old or the line would take it over
        `max_bytes` (a single line larger than that gets a segment of its own)."""
        if not isinstance(record, Mapping):
            raise WorkbenchError(f"a spool record must be a mapping, got {type(record).__name__}")
        try:
            text = json.dumps(dict(record), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise WorkbenchError(
                f"spool record {record.get('request_id') or record.get('feedback_id')!r} "
                f"is not JSON: {exc}") from exc
        line = (text + "\n").encode("utf-8")   # json.dumps escapes newlines: one record, one line
        with self._lock:
            if self._closed:
                raise WorkbenchError(f"spool {self.folder} is closed; no more records can be added")
            if self._fd is not None and (
                    self._clock() - self._opened_at >= self.max_age_s
                    or (self._size > 0 and self._size + len(line) > self.max_bytes)):
                self._close_segment()
            fd = self._fd if self._fd is not None else self._open_segment()
            self._write_all(fd, line)
            self._size += len(line)

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        """One `write` in the normal case; loops only on a short write."""
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def _open_segment(self) -> int:
        """Create a new `.open` segment (never an existing file: O_EXCL); its descriptor."""
        while True:
            now = self._clock()
            created = datetime.fromtimestamp(now, UTC)
            path = self.folder / segment_name(created, os.getpid(), self._seq)
            self._seq += 1
            if path.with_name(path.name.removesuffix(OPEN_SUFFIX)).exists():
                continue   # a closed segment of this name: never reopened nor overwritten
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            except FileExistsError:
                continue   # same clock tick and pid as an earlier segment: take the next seq
            except OSError as exc:
                raise WorkbenchError(
                    f"cannot create spool segment {path}: {exc.strerror}") from exc
            self._fd, self._path, self._opened_at, self._size = fd, path, now, 0
            return fd

    def _close_segment(self) -> None:
        """Sync, close and rename the open segment to its closed name (lock held)."""
        if self._fd is None or self._path is None:
            return
        fd, path = self._fd, self._path
        self._fd, self._path, self._size = None, None, 0
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(path, path.with_name(path.name.removesuffix(OPEN_SUFFIX)))

    def rotate_if_due(self) -> bool:
        """Close the open segment when it is older than `max_age_s`; whether it did."""
        with self._lock:
            if self._fd is not None and self._clock() - self._opened_at >= self.max_age_s:
                self._close_segment()
                return True
            return False

    def _rotate_when_due(self) -> None:
        while not self._stop.wait(self._tick_s):
            self.rotate_if_due()

    @property
    def current_segment(self) -> Path | None:
        """The segment being written (with `.open`), or None between segments."""
        with self._lock:
            return self._path

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the open segment and stop the rotator; calling it again does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_segment()
        self._stop.set()
        if self._rotator is not threading.current_thread():
            self._rotator.join(timeout=5.0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# -- reading (ingest) ---------------------------------------------------------------------------

def _boot_time() -> float | None:
    """Seconds since the epoch at which this (Linux) machine booted, or None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _process_started(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), where /proc tells; else None."""
    boot = _boot_time()
    if boot is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # Field 22 (starttime, clock ticks after boot); the command name (field 2) may hold spaces
    # and parentheses, so count from the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    try:
        ticks = int(fields[19])
    except (IndexError, ValueError):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def writer_alive(segment: Path) -> bool:
    """Whether the process that writes this `.open` segment is still running.

    The pid in the name must exist and (where /proc tells) must have started before the
    segment was created: a pid reused by a later process does not keep a dead writer's
    segment open forever."""
    match = SEGMENT_RE.match(segment.name)
    if match is None:
        return False
    pid = int(match["pid"])
    if not pid_alive(pid):
        return False
    started = _process_started(pid)
    if started is None:
        return True
    created = datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=UTC).timestamp()
    return started <= created + PID_REUSE_SLACK_S


def _order(path: Path) -> str:
    return path.name.removesuffix(OPEN_SUFFIX)


def closed_segments(folder: str | Path, include_open: bool = False) -> list[Path]:
    """The segments of a spool folder that ingest may read, oldest first (by name).

    Closed segments always; an `.open` segment when its writer is gone (its last line may be
    torn) or, with `include_open`, every `.open` segment (a live one may end mid-line)."""
    path = _spool_folder(folder, create=False)
    found: list[Path] = []
    for entry in path.iterdir():
        match = SEGMENT_RE.match(entry.name)
        if match is None or not entry.is_file():
            continue
        if match["open"] and not include_open and writer_alive(entry):
            continue
        found.append(entry)
    return sorted(found, key=_order)


def is_spool_folder(folder: str | Path) -> bool:
    """Whether `folder` is a directory holding at least one spool segment (open or closed)."""
    path = Path(folder)
    return path.is_dir() and any(SEGMENT_RE.match(e.name) for e in path.iterdir())
