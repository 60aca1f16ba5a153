"""Ingest a spool folder (what `workbench serve` logged) into the store, one segment at a time.

Reads the segments ingest may read (`closed_segments`: closed ones, those of a writer that is
gone, and with `include_open` the live ones up to their last whole line), each in one
transaction: its served requests, its export feedback, its bad lines quarantined exactly as
`pipelines.ingest` quarantines them (file, line, reason, raw text), and how far it was read.
Re-ingesting is a no-op: a segment is known by its name (`.open` or not) and the SHA-256 of the
bytes read so far, so only new lines are read, and ids make a record read twice a duplicate.

Feedback whose request is not stored yet is quarantined ("feedback for unknown request id
<id>"): its request may sit in a segment not ingested yet (another worker's, or one still
open). Every ingest then releases the quarantined feedback whose request has arrived into
`served_feedback`, so early feedback is never lost.

Served requests stay out of `requests` here: `workbench ingest SPOOL_FOLDER` then runs
`pipelines.fold_served`, which folds the teacher's answers whose feedback window has closed
into the logs, with their exports, in a transaction of its own (closing the loop, SPEC 12).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.errors import IngestError, WorkbenchError
from workbench.log_readers import RAW_TEXT_LIMIT, parse_json
from workbench.log_records import RecordError
from workbench.progress import Progress
from workbench.serving.spool import OPEN_SUFFIX, closed_segments, writer_alive
from workbench.serving.spool_records import Feedback, ServedRequest, parse_spool_record
from workbench.store import Session, Store, requests, serving
from workbench.store.serving import UNKNOWN_REQUEST

FORMAT = "spool"               # the ingest history's format for a spool segment
_READ_CHUNK = 1 << 20
_ATTEMPTS = 3                  # re-reads when another ingest moved a segment on meanwhile


@dataclass(frozen=True)
class SpoolIngestConfig:
    folders: tuple[Path, ...]
    include_open: bool = False   # also read segments still being written (up to a whole line)


@dataclass
class SegmentSummary:
    source_file: str
    read: int = 0                # lines read this time (blank ones not counted)
    requests: int = 0            # new served requests
    feedback: int = 0            # new feedback
    duplicates: int = 0          # records already stored with the same content
    quarantined: int = 0
    released: int = 0            # earlier quarantined feedback whose request came with this one
    unchanged: bool = False      # nothing new since the last ingest: not read again
    open: bool = False           # still being written: read up to its last whole line
    ingest_id: int | None = None
    error: str | None = None


@dataclass
class SpoolIngestResult:
    folders: list[str] = field(default_factory=list)
    segments: list[SegmentSummary] = field(default_factory=list)
    open_left: int = 0           # live segments not read (no --include-open)

    @property
    def totals(self) -> dict[str, int]:
        keys = ("read", "requests", "feedback", "duplicates", "quarantined", "released")
        return {key: sum(getattr(s, key) for s in self.segments) for key in keys}

    @property
    def failed(self) -> bool:
        return any(s.error is not None for s in self.segments)

    def to_dict(self) -> dict[str, Any]:
        return {"folders": self.folders, "segments": [asdict(s) for s in self.segments],
                "totals": self.totals, "open_left": self.open_left}


# --------------------------------------------------------------------------- reading a segment

@dataclass(frozen=True)
class _Line:
    location: str
    raw: str
    record: dict[str, Any] | None
    problem: str | None


@dataclass
class _Read:
    """What one pass over a segment found, and where it stopped."""

    lines: list[_Line]
    bytes_read: int
    lines_read: int
    sha256: str
    size_bytes: int
    mtime_ns: int
    unchanged: bool = False


def _clip(text: str) -> str:
    if len(text) <= RAW_TEXT_LIMIT:
        return text
    return text[:RAW_TEXT_LIMIT] + f"... [{len(text) - RAW_TEXT_LIMIT} more characters not kept]"


def _line(number: int, data: bytes, torn: bool) -> _Line:
    """One line's record, or why it cannot be one (as `workbench.log_readers` says it)."""
    location = f"line {number}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return _Line(location, _clip(data.decode("utf-8", "backslashreplace")), None,
                     f"not valid UTF-8 (byte {error.start})")
    text = text.rstrip("\r\n")
    value, problem = parse_json(text)
    if problem is None and not isinstance(value, dict):
        problem = f"a record must be a JSON object, got {type(value).__name__}"
    if problem is not None and torn:
        problem = ("the last line is incomplete: its writer stopped in the middle of it "
                   f"({problem})")
    return _Line(location, _clip(text), value if problem is None else None, problem)


def _hash_prefix(path: Path, length: int) -> Any:
    """A SHA-256 object fed the file's first `length` bytes (fewer when the file is shorter)."""
    digest = hashlib.sha256()
    left = length
    with path.open("rb") as handle:
        while left:
            chunk = handle.read(min(left, _READ_CHUNK))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    return digest


def _read_segment(path: Path, known: dict | None, finished: bool) -> _Read:
    """The segment's lines after those already ingested (`known`: its spool_segments row).

    A finished segment (closed, or its writer gone) is read to the end, a last line without
    its newline included (torn, unless it happens to parse); a live one only to its last
    newline, since the rest is being written."""
    info = path.stat()
    if known is not None and known["finished"] and known["size_bytes"] == info.st_size \
            and known["mtime_ns"] == info.st_mtime_ns:
        return _Read([], known["bytes_read"], known["lines_read"], known["sha256"],
                     info.st_size, info.st_mtime_ns, unchanged=True)
    start, number = 0, 0
    digest = hashlib.sha256()
    if known is not None and info.st_size >= known["bytes_read"]:
        prefix = _hash_prefix(path, known["bytes_read"])
        if prefix.hexdigest() == known["sha256"]:
            # Continue after the bytes already read, the hash carried on over the new ones.
            start, number, digest = known["bytes_read"], known["lines_read"], prefix
    # Otherwise (unknown, or changed under us: a spool segment is append-only, so that is
    # someone's edit) it is read from the start; ids keep records already stored duplicates.
    lines: list[_Line] = []
    consumed = start
    with path.open("rb") as handle:
        handle.seek(start)
        for data in handle:
            torn = not data.endswith(b"\n")
            if torn and not finished:
                break            # in flight: read it once it is whole
            number += 1
            consumed += len(data)
            digest.update(data)
            if data.strip():
                lines.append(_line(number, data, torn))
    unchanged = consumed == start and known is not None and bool(known["finished"]) == finished
    return _Read(lines, consumed, number, digest.hexdigest(), info.st_size, info.st_mtime_ns,
                 unchanged=unchanged)


# --------------------------------------------------------------------------- validating


@dataclass
class _Sorted:
    requests: list[dict] = field(default_factory=list)
    feedback: list[dict] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)
    duplicates: int = 0


def _bad(line: _Line, reason: str) -> dict[str, str | None]:
    return {"location": line.location, "reason": reason, "raw": line.raw}


def _validate(line: _Line) -> ServedRequest | Feedback | str:
    """The record, or why it is quarantined; never raises for one line."""
    if line.record is None:
        return line.problem or "the line could not be read"
    try:
        return parse_spool_record(line.record)
    except RecordError as error:
        return str(error)
    except RecursionError:
        return "the record is nested too deeply to validate"
    except Exception as error:  # noqa: BLE001 - one line must never sink the segment
        return (f"validation failed unexpectedly ({type(error).__name__}: {error}); "
                "this is a bug in the workbench, please report it")


def _sort(lines: list[_Line]) -> _Sorted:
    """Validate every line; ids repeated within the segment are duplicates or conflicts."""
    out = _Sorted()
    seen: dict[str, tuple[Any, str]] = {}    # id -> (the validated record, its location)
    for line in lines:
        parsed = _validate(line)
        if isinstance(parsed, str):
            out.quarantine.append(_bad(line, parsed))
            continue
        key = parsed.request_id if isinstance(parsed, ServedRequest) else parsed.feedback_id
        earlier = seen.get(key)
        if earlier is not None:
            if earlier[0] == parsed:
                out.duplicates += 1
            else:
                out.quarantine.append(_bad(line, f"{key!r} appears again (first at "
                                                 f"{earlier[1]}) with different content"))
            continue
        seen[key] = (parsed, line.location)
        row = {**asdict(parsed), "source_location": line.location, "raw": line.raw}
        (out.requests if isinstance(parsed, ServedRequest) else out.feedback).append(row)
    return out


def _released(session: Session) -> list[dict]:
    """Quarantined feedback whose request is stored now, validated again from its raw text
    (rows ready for `serving.release_feedback`); any that no longer validates stays."""
    ready = []
    for row in serving.feedback_awaiting_release(session):
        value, problem = parse_json(row["raw"] or "")
        if problem is not None or not isinstance(value, dict):
            continue
        try:
            parsed = parse_spool_record(value)
        except RecordError:
            continue
        if not isinstance(parsed, Feedback) or parsed.request_id != row["request_id"]:
            continue
        ready.append({**asdict(parsed), "source_location": row["location"],
                      "source_file": row["source_file"], "quarantine_id": row["quarantine_id"],
                      "quarantined_ingest_id": row["ingest_id"]})
    return ready


# --------------------------------------------------------------------------- the transaction


def _write(session: Session, summary: SegmentSummary, segment: str, read: _Read,
           sorted_: _Sorted, finished: bool) -> None:
    """Everything for one segment, inside the caller's transaction."""
    ingest_id = requests.next_ingest_id(session)
    summary.ingest_id = ingest_id
    now = datetime.now(UTC)
    source = summary.source_file
    quarantine = list(sorted_.quarantine)
    duplicates = sorted_.duplicates
    written = serving.write_served_requests(session, sorted_.requests, ingest_id, source)
    raws = {row["source_location"]: row["raw"] for row in sorted_.requests + sorted_.feedback}
    quarantine.extend({"location": c["source_location"], "raw": raws[c["source_location"]],
                       "reason": f"request_id {c['id']!r} was already ingested (ingest "
                                 f"{c['ingest_id']}) with different content"}
                      for c in written.conflicts)
    known = serving.known_request_ids(session, (row["request_id"] for row in sorted_.feedback))
    joined = [row for row in sorted_.feedback if row["request_id"] in known]
    quarantine.extend({"location": row["source_location"], "raw": row["raw"],
                       "reason": UNKNOWN_REQUEST + row["request_id"]}
                      for row in sorted_.feedback if row["request_id"] not in known)
    fed = serving.write_served_feedback(session, joined, ingest_id, source)
    quarantine.extend({"location": c["source_location"], "raw": raws[c["source_location"]],
                       "reason": f"feedback_id {c['id']!r} was already ingested (ingest "
                                 f"{c['ingest_id']}) with different content"}
                      for c in fed.conflicts)
    quarantine.sort(key=lambda bad: int(str(bad["location"]).split()[-1]))
    requests.quarantine_records(session, ingest_id, source, quarantine, now)
    # After this segment's requests are in: feedback quarantined earlier (from any segment,
    # this one's included) whose request has arrived.
    summary.released = serving.release_feedback(session, _released(session), ingest_id, now)
    summary.requests, summary.feedback = written.inserted, fed.inserted
    summary.duplicates = duplicates + written.duplicates + fed.duplicates
    summary.quarantined = len(quarantine)
    requests.record_ingest(
        session, ingest_id=ingest_id, source_file=source, format=FORMAT, started_at=now,
        finished_at=datetime.now(UTC), n_read=summary.read,
        n_ingested=summary.requests + summary.feedback, n_duplicates=summary.duplicates,
        n_quarantined=summary.quarantined, error=None)
    serving.record_segment(
        session, segment=segment, source_file=source, bytes_read=read.bytes_read,
        lines_read=read.lines_read, sha256=read.sha256, size_bytes=read.size_bytes,
        mtime_ns=read.mtime_ns, finished=finished, ingest_id=ingest_id)


def _progress(store: Store) -> dict[str, dict]:
    """What the store knows about spool segments (nothing when there is no database yet)."""
    if not store.exists:
        return {}
    with store.session() as session:    # read-write: applies the serving migration if pending
        return serving.segment_progress(session)


def ingest_segment(path: Path, store: Store, known: dict | None,
                   finished: bool) -> SegmentSummary:
    """Read one segment from where the last ingest stopped and write it in one transaction.

    `known` is the segment's spool_segments row as read before; when another ingest moved the
    segment on in between, it is read again from the new place."""
    segment = path.name.removesuffix(OPEN_SUFFIX)
    summary = SegmentSummary(source_file=str(path), open=not finished)
    for _ in range(_ATTEMPTS):
        try:
            read = _read_segment(path, known, finished)
        except FileNotFoundError:
            closed = path.with_name(segment)
            if path == closed or not closed.exists():
                raise IngestError(f"{path}: no such file (removed while ingest ran)") from None
            # Its writer closed it since the folder was listed: read it under its new name.
            path, finished = closed, True
            summary.source_file, summary.open = str(path), False
            continue
        except OSError as error:
            raise IngestError(f"{path}: cannot be read ({error.strerror or error})") from None
        if read.unchanged:
            summary.unchanged = True
            return summary
        sorted_ = _sort(read.lines)
        summary.read = len(read.lines)
        with store.atomic(create=True) as session:
            now_known = serving.segment_progress(session).get(segment)
            if now_known == known:
                _write(session, summary, segment, read, sorted_, finished)
                return summary
        known = now_known
    raise IngestError(f"{path}: other ingests kept reading this segment at the same time; "
                      "run the ingest again")


def segments_to_read(folder: Path, include_open: bool) -> tuple[list[tuple[Path, bool]], int]:
    """[(segment, finished)] oldest first, and how many live segments are left unread."""
    every = closed_segments(folder, include_open=True)
    chosen: list[tuple[Path, bool]] = []
    left = 0
    for path in every:
        live = path.name.endswith(OPEN_SUFFIX) and writer_alive(path)
        if live and not include_open:
            left += 1
            continue
        chosen.append((path, not live))
    return chosen, left


def _each_segment(config: SpoolIngestConfig,
                  result: SpoolIngestResult) -> Iterator[tuple[Path, bool]]:
    for folder in config.folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise WorkbenchError(f"{folder}: not a spool folder (no such directory)")
        result.folders.append(str(folder))
        chosen, left = segments_to_read(folder, config.include_open)
        result.open_left += left
        yield from chosen


def run(config: SpoolIngestConfig, store: Store,
        progress: Progress | None = None) -> SpoolIngestResult:
    """Ingest every readable segment of every folder, oldest first; a segment that cannot be
    read is reported and the others go on."""
    result = SpoolIngestResult()
    known = _progress(store)
    for path, finished in list(_each_segment(config, result)):
        try:
            summary = ingest_segment(path, store, known.get(path.name.removesuffix(OPEN_SUFFIX)),
                                     finished)
        except IngestError as error:
            summary = SegmentSummary(source_file=str(path), open=not finished, error=str(error))
        result.segments.append(summary)
        if progress is not None:
            progress("spool segments", len(result.segments), None)
    return result
