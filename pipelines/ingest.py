"""Ingest log files into the store (SPEC 3): validate, quarantine, deduplicate, one transaction per file.

Each file is read and validated first, with the store closed; valid rows are staged to a Parquet
file in chunks (bounded memory at any size), in a folder beside the database
(`<database>.staging/<pid>-*/`), so a killed ingest's leftovers are found and removed by the next
one. Then one short transaction writes the file's requests, new intents, browse statistics,
quarantined records and the ingest summary together, so a crash or a bad file leaves the store
as it was. Inside it, every statement reads only the staged file and what it touches: duplicates
and conflicts by a join on the request id, intents and statistics from the file's own rows,
merged into the stored ones (no recomputation over the whole table).

No single record can sink a file: whatever goes wrong with one record (including a failure
nobody foresaw) quarantines that record with a reason, and the rest of the file lands.

Records that do not come from a file take the same path through `stage_records` and
`write_staged`: the teacher's served answers that `pipelines.fold_served` folds into the logs
are validated, staged, deduplicated, quarantined and counted exactly like a file's, so a folded
request cannot be told from an ingested one.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from workbench.errors import IngestError, WorkbenchError
from workbench.log_readers import RawRecord, detect_format, read_records
from workbench.log_records import LogRecord, RecordError, parse_record
from workbench.processes import pid_alive
from workbench.progress import Progress
from workbench.store import Session, Store, requests

STAGE_CHUNK_ROWS = 50_000
STAGING_SUFFIX = ".staging"   # <database>.staging/ holds one folder per running ingest

_STAGE_COLUMNS = (
    "seq", "request_id", "intent_key", "intent_text", "created_at", "adjust", "selective_adjust",
    "filter", "filter_name", "exports_adjust", "exports_selective_adjust", "exports_filter",
    "teacher_model", "latency_ms", "cost_usd", "session_id", "content_hash", "source_location",
    "raw",
)


class Validator(str, Enum):
    """Who checks the log contract: DuckDB (`pipelines.ingest_sql`: the records it cannot decide
    go to Python) or Python alone (the reference, and the default: see the module docstring of
    ingest_sql for why and how fast each is)."""

    SQL = "sql"
    PYTHON = "python"


@dataclass(frozen=True)
class IngestConfig:
    paths: tuple[Path, ...]
    validator: Validator = Validator.PYTHON


@dataclass
class FileSummary:
    source_file: str
    format: str
    read: int = 0
    ingested: int = 0
    duplicates: int = 0
    quarantined: int = 0
    error: str | None = None
    ingest_id: int | None = None
    hold_s: float | None = None   # seconds the database was open for this file's write
    leftovers_removed: int = 0    # staging folders of interrupted ingests removed before this one
    leftover_bytes: int = 0

    @property
    def failed(self) -> bool:
        """Nothing could be ingested and this was not a harmless re-ingest."""
        return self.error is not None or self.ingested + self.duplicates == 0


@dataclass
class IngestResult:
    files: list[FileSummary] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        keys = ("read", "ingested", "duplicates", "quarantined")
        return {key: sum(getattr(f, key) for f in self.files) for key in keys}

    @property
    def failed(self) -> bool:
        return any(summary.failed for summary in self.files)

    @property
    def leftovers_note(self) -> str | None:
        """A line for the user when leftovers of an interrupted ingest were removed."""
        count = sum(f.leftovers_removed for f in self.files)
        if not count:
            return None
        size = _human_size(sum(f.leftover_bytes for f in self.files))
        folders = "folder" if count == 1 else "folders"
        return f"removed {count} leftover staging {folders} from an interrupted ingest ({size})"

    def to_dict(self) -> dict[str, Any]:
        return {"files": [asdict(f) for f in self.files], "totals": self.totals,
                "leftovers": self.leftovers_note}


def _human_size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.0f} {unit}"
    return f"{n} bytes"


# --------------------------------------------------------------------------- staging folders


def staging_root(store: Store) -> Path:
    """`<database>.staging/`: beside the database, on the same disk, found again after a kill."""
    return store.path.with_name(store.path.name + STAGING_SUFFIX)


_STAGING_NAME = re.compile(r"(\d+)-.*")


def _tree_size(folder: Path) -> int:
    """Bytes in the files under `folder`."""
    total = 0
    for path in folder.rglob("*"):
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode):
            total += info.st_size
    return total


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError as error:
        # Another ingest is staging there, or one removed it first: both are fine.
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
            raise


def remove_leftover_staging(store: Store) -> tuple[int, int]:
    """Remove the staging folders of ingests whose process is gone (killed mid-way).

    Returns (folders removed, bytes freed). A folder whose process still runs is another
    ingest at work and is left alone; names that are not ours are never touched."""
    root = staging_root(store)
    try:
        entries = list(root.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return 0, 0
    removed = freed = 0
    for entry in entries:
        match = _STAGING_NAME.fullmatch(entry.name)
        if match is None or not entry.is_dir() or pid_alive(int(match.group(1))):
            continue
        size = _tree_size(entry)
        shutil.rmtree(entry)
        removed, freed = removed + 1, freed + size
    _remove_if_empty(root)
    return removed, freed


@contextmanager
def staging_folder(store: Store) -> Iterator[Path]:
    """A fresh folder `<database>.staging/<pid>-XXXX/`, removed afterwards."""
    root = staging_root(store)
    for attempt in range(3):
        try:
            root.mkdir(parents=True, exist_ok=True)
            folder = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))
            break
        except FileNotFoundError:
            if attempt == 2:  # another ingest kept removing the (empty) root under us
                raise
        except OSError as error:
            raise IngestError(f"cannot create the staging folder {root} beside the database "
                              f"({error.strerror}); the database's folder must be writable") \
                from None
    try:
        yield folder
    finally:
        # A folder that cannot be removed now is removed by the next ingest, as a leftover
        # of a process that no longer runs.
        shutil.rmtree(folder, ignore_errors=True)
        _remove_if_empty(root)


# --------------------------------------------------------------------------- staging rows


def _storable(text: str | None) -> str | None:
    """Text the store can hold: lone surrogates (from JSON escapes such as \\ud800) escaped."""
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _bad(raw: RawRecord, reason: str) -> dict[str, str | None]:
    return {"location": raw.location, "reason": reason, "raw": raw.raw}


def stage_row(seq: int, record: LogRecord, content_hash: str, raw: RawRecord) -> tuple:
    """A valid record as a staged row (the columns of `_STAGE_COLUMNS`)."""
    answer, exports = record.teacher, record.exports
    adjust, selective, filter_ = record.teacher_json
    return (seq, record.request_id, record.intent_key, record.intent, record.created_at, adjust,
            selective, filter_, answer.filter.name if answer.filter else None, exports["adjust"],
            exports["selective_adjust"], exports["filter"], record.teacher_model,
            record.latency_ms, record.cost_usd, record.session_id, content_hash, raw.location,
            raw.raw)


class Staged(Protocol):
    """What the write step needs of a staged file, from either validator."""

    path: Path
    count: int
    file_intents_table: Any
    rejected: list[dict]


class _Stager:
    """Buffers valid rows and spills them to a Parquet file in chunks."""

    def __init__(self, folder: Path):
        import pyarrow as pa

        self.path = folder / "staged.parquet"
        self.schema = pa.schema([
            ("seq", pa.int64()), ("request_id", pa.string()), ("intent_key", pa.string()),
            ("intent_text", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")),
            ("adjust", pa.string()), ("selective_adjust", pa.string()), ("filter", pa.string()),
            ("filter_name", pa.string()), ("exports_adjust", pa.int64()),
            ("exports_selective_adjust", pa.int64()), ("exports_filter", pa.int64()),
            ("teacher_model", pa.string()), ("latency_ms", pa.float64()),
            ("cost_usd", pa.float64()), ("session_id", pa.string()),
            ("content_hash", pa.string()), ("source_location", pa.string()), ("raw", pa.string()),
        ])
        self.rows: list[tuple] = []
        self.count = 0                       # rows written to the stage
        self.rejected: list[dict] = []       # rows Arrow could not take (quarantined instead)
        self._writer: Any = None
        # The file's share of `intents` and `intent_stats`, built here so that the transaction
        # does not have to: intent_key -> [first spelling, first created_at, requests,
        # exported requests, last created_at, distinct outputs].
        self.intents: dict[str, list] = {}
        self._outputs: set[int] = set()      # hash((intent_key, output)) seen so far
        self.file_intents_table: Any = None  # the same as an Arrow table, once closed

    def add(self, record: LogRecord, content_hash: str, raw: RawRecord) -> None:
        row = stage_row(0, record, content_hash, raw)
        key, created_at, exports = row[2], row[4], record.exports
        adjust, selective, filter_ = row[5:8]
        exported = 1 if exports["adjust"] or exports["selective_adjust"] or exports["filter"] else 0
        # A 64-bit hash stands for the output (a collision would undercount one intent's
        # distinct outputs by one, about once in 10^7 files of a million requests).
        output = hash((key, adjust, selective, filter_))
        self.rows.append(row)
        new_output = output not in self._outputs
        if new_output:
            self._outputs.add(output)
        stats = self.intents.get(key)
        if stats is None:
            self.intents[key] = [record.intent, created_at, 1, exported, created_at, 1]
        else:
            stats[2] += 1
            stats[3] += exported
            stats[4] = max(stats[4], created_at)
            stats[5] += new_output
        if len(self.rows) >= STAGE_CHUNK_ROWS:
            self.flush()

    def file_intents(self) -> Any:
        """The file's intents as an Arrow table: first spelling and time, and its numbers."""
        import pyarrow as pa

        columns = list(zip(*self.intents.values())) or [()] * 6
        timestamp = pa.timestamp("us", tz="UTC")
        return pa.table({
            "intent_key": pa.array(list(self.intents), pa.string()),
            "intent_text": pa.array(columns[0], pa.string()),
            "first_seen_at": pa.array(columns[1], timestamp),
            "n": pa.array(columns[2], pa.int64()), "exported": pa.array(columns[3], pa.int64()),
            "last_seen": pa.array(columns[4], timestamp),
            "outputs": pa.array(columns[5], pa.int64())})

    def _table(self, rows: list[tuple], first_seq: int) -> Any:
        import pyarrow as pa

        columns = list(zip(*rows))
        columns[0] = tuple(range(first_seq, first_seq + len(rows)))
        return pa.table({name: pa.array(values, type=self.schema.field(name).type)
                         for name, values in zip(_STAGE_COLUMNS, columns)}, schema=self.schema)

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.rows:
            return
        arrow_errors = (pa.ArrowException, OverflowError, ValueError, TypeError)
        try:
            tables = [self._table(self.rows, self.count)]
        except arrow_errors:
            # Validation lets nothing through that Arrow cannot hold; should something pass
            # anyway, find it row by row and quarantine it rather than lose the chunk.
            tables = []
            for row in self.rows:
                try:
                    tables.append(self._table([row], self.count + len(tables)))
                except arrow_errors as error:
                    self.rejected.append({
                        "location": row[-2], "raw": row[-1],
                        "reason": f"could not be staged ({type(error).__name__}: {error}); "
                                  "this is a bug in the workbench, please report it"})
        for table in tables:
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.path, self.schema)
            self._writer.write_table(table)
            self.count += table.num_rows
        self.rows = []

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
        # Built now, before the store is opened; the Python structures are no longer needed.
        self.file_intents_table = self.file_intents()
        self.intents, self._outputs = {}, set()


def _validate(raw: RawRecord) -> tuple[LogRecord | None, str | None, str | None]:
    """(record, content hash, None) or (None, None, why it is quarantined). Never raises for a
    record: a failure nobody foresaw quarantines the record with a reason that says so."""
    if raw.problem is not None or raw.record is None:
        return None, None, raw.problem or "the record could not be read"
    try:
        record = parse_record(raw.record)
        return record, record.content_hash(), None
    except RecordError as error:
        return None, None, str(error)
    except RecursionError:
        return None, None, "the record is nested too deeply to validate"
    except Exception as error:  # noqa: BLE001 - one record must never sink the file
        return None, None, (f"validation failed unexpectedly ({type(error).__name__}: {error}); "
                            "this is a bug in the workbench, please report it")


def _stage_file(records: Iterator[RawRecord], folder: Path,
                progress: Progress | None, stage: str) -> tuple[_Stager, list[dict], int, int]:
    """Validate and stage; returns the stager, quarantine rows, records read, in-file duplicates."""
    stager = _Stager(folder)
    quarantine: list[dict] = []
    seen: dict[str, tuple[str, str]] = {}  # request_id -> (content hash, location)
    read = duplicates = 0
    for raw in records:
        read += 1
        if progress is not None and read % 10_000 == 0:
            progress(stage, read, None)
        record, content_hash, problem = _validate(raw)
        if record is None or content_hash is None:
            quarantine.append(_bad(raw, problem or "invalid"))
            continue
        earlier = seen.get(record.request_id)
        if earlier is not None:
            if earlier[0] == content_hash:
                duplicates += 1
            else:
                quarantine.append(_bad(raw, f"request_id {record.request_id!r} appears again "
                                            f"(first at {earlier[1]}) with different content"))
            continue
        seen[record.request_id] = (content_hash, raw.location)
        stager.add(record, content_hash, raw)
    stager.close()
    quarantine.extend(stager.rejected)
    if progress is not None:
        progress(stage, read, None)
    return stager, quarantine, read, duplicates


# --------------------------------------------------------------------------- the transaction


def _write(session: Session, summary: FileSummary, stager: Staged | None,
           quarantine: list[dict], started_at: datetime) -> None:
    """Everything for one file, inside the caller's transaction."""
    ingest_id = requests.next_ingest_id(session)
    summary.ingest_id = ingest_id
    now = datetime.now(UTC)
    if stager is not None and stager.count:
        written = requests.write_staged_requests(
            session, stager.path, stager.file_intents_table, not stager.rejected, ingest_id,
            summary.source_file)
        summary.duplicates += written.duplicates
        quarantine.extend({
            "location": row["source_location"], "raw": row["raw"],
            "reason": f"request_id {row['request_id']!r} was already ingested (ingest "
                      f"{row['ingest_id']}) with different content"} for row in written.conflicts)
        summary.ingested = written.ingested
    summary.quarantined = len(quarantine)
    requests.quarantine_records(session, ingest_id, summary.source_file, [
        {name: _storable(record[name]) for name in ("location", "reason", "raw")}
        for record in quarantine], now)
    requests.record_ingest(
        session, ingest_id=ingest_id, source_file=summary.source_file, format=summary.format,
        started_at=started_at, finished_at=now, n_read=summary.read, n_ingested=summary.ingested,
        n_duplicates=summary.duplicates, n_quarantined=summary.quarantined, error=summary.error)


@dataclass
class StagedRecords:
    """One source's records validated and staged by `stage_records`, for `write_staged`."""

    summary: FileSummary
    stager: _Stager
    quarantine: list[dict]
    started_at: datetime


def stage_records(records: Iterable[RawRecord], source_file: str, format: str,
                  folder: Path) -> StagedRecords:
    """Validate and stage records that were not read from a log file (the served teacher
    requests of `pipelines.fold_served`) exactly as a file's records are: the log contract,
    quarantine reasons, duplicates within the source. `folder` is an existing folder of their
    own inside a `staging_folder`; `source_file` and each record's location are what the
    requests and the quarantine will say they came from, `format` what the ingest history says."""
    started_at = datetime.now(UTC)
    stager, quarantine, read, duplicates = _stage_file(iter(records), folder, None, source_file)
    summary = FileSummary(source_file=_storable(source_file) or "", format=format, read=read,
                          duplicates=duplicates)
    return StagedRecords(summary, stager, quarantine, started_at)


def write_staged(session: Session, staged: StagedRecords) -> FileSummary:
    """Write staged records inside the caller's transaction, as `ingest_file` writes a file:
    new requests, their intents and browse statistics, conflicts and bad records quarantined,
    one ingest history row. Returns the summary (its quarantine list grows by the conflicts)."""
    _write(session, staged.summary, staged.stager, staged.quarantine, staged.started_at)
    return staged.summary


@contextmanager
def _held(store: Store, summary: FileSummary) -> Iterator[Session]:
    """The file's one transaction; `summary.hold_s` gets the time from the open to the close."""
    opened: float | None = None
    try:
        with store.atomic(create=True) as session:
            opened = time.perf_counter()
            yield session
    finally:
        if opened is not None:
            summary.hold_s = round(time.perf_counter() - opened, 3)


def ingest_file(path: Path, store: Store, progress: Progress | None = None,
                validator: Validator = Validator.PYTHON) -> FileSummary:
    """Ingest one file in one transaction. A file that cannot be read at all raises IngestError
    after its failure is recorded in the ingest history. `progress` gets (the file's name,
    records read, None) as it reads. `validator` says who checks the records; both give the
    same result (tests/test_ingest_sql.py)."""
    path = Path(path)
    removed, freed = remove_leftover_staging(store)
    fmt = detect_format(path)
    summary = FileSummary(source_file=_storable(str(path)) or "", format=fmt.value,
                          leftovers_removed=removed, leftover_bytes=freed)
    started_at = datetime.now(UTC)
    try:
        records = read_records(path, fmt)  # a missing or unreadable file raises here
        with staging_folder(store) as folder:
            try:
                stager: Staged
                if Validator(validator) is Validator.SQL:
                    from pipelines import ingest_sql

                    stager, quarantine, read, duplicates = ingest_sql.stage_file(
                        path, fmt, folder, progress, path.name,
                        ingest_sql.Reference(_validate, stage_row))
                else:
                    stager, quarantine, read, duplicates = _stage_file(records, folder, progress,
                                                                       path.name)
            except OSError as error:  # the disk, not a record: e.g. no space left for the stage
                raise IngestError(f"{summary.source_file}: reading or staging it in {folder} "
                                  f"failed ({error.strerror or error})") from None
            summary.read, summary.duplicates = read, duplicates
            if read == 0:
                summary.error = f"{summary.source_file}: the file holds no records"
            with _held(store, summary) as session:
                _write(session, summary, stager, quarantine, started_at)
    except IngestError as error:
        summary.error = _storable(str(error))
        if path.exists():  # record what happened to a real file; a missing path has no trace
            with _held(store, summary) as session:
                _write(session, summary, None, [
                    {"location": "file", "reason": summary.error, "raw": None}], started_at)
        raise
    return summary


def run(config: IngestConfig, store: Store,
        progress: Progress | None = None) -> IngestResult:
    """Ingest every file in order; a file that fails does not stop the others."""
    result = IngestResult()
    for path in config.paths:
        path = Path(path)
        try:
            summary = ingest_file(path, store, progress, config.validator)
        except IngestError as error:
            summary = FileSummary(source_file=str(path), format=path.suffix.lstrip(".") or "?",
                                  error=str(error))
        except WorkbenchError:
            raise  # the store is busy, missing or read-only: every other file would fail too
        except Exception as error:  # noqa: BLE001 - one file's unforeseen failure must not stop the others
            summary = FileSummary(
                source_file=str(path), format=path.suffix.lstrip(".") or "?",
                error=f"{path}: ingest failed unexpectedly ({type(error).__name__}: {error}); "
                      "nothing from this file was stored. This is a bug in the workbench, "
                      "please report it")
        result.files.append(summary)
    return result

