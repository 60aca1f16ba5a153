"""Ingest log files into the store (SPEC 3): validate, quarantine, deduplicate, one transaction per file.

Each file is read and validated first, with the store closed; valid rows are staged to a Parquet
file on disk in chunks (bounded memory at any size). Then one short transaction writes the file's
requests, new intents, quarantined records and the ingest summary together, so a crash or a bad
file leaves the store as it was.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.errors import IngestError
from workbench.logfiles import LogFormat, RawRecord, detect_format, read_records
from workbench.logs import LogRecord, RecordError, parse_record
from workbench.store import Session, Store

STAGE_CHUNK_ROWS = 50_000

_STAGE_COLUMNS = (
    "seq", "request_id", "intent_key", "intent_text", "created_at", "adjust", "selective_adjust",
    "filter", "filter_name", "exports_adjust", "exports_selective_adjust", "exports_filter",
    "teacher_model", "latency_ms", "cost_usd", "session_id", "content_hash", "source_location",
    "raw",
)


@dataclass(frozen=True)
class IngestConfig:
    paths: tuple[Path, ...]


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

    def to_dict(self) -> dict[str, Any]:
        return {"files": [asdict(f) for f in self.files], "totals": self.totals}


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
        self.count = 0
        self._writer: Any = None

    def add(self, record: LogRecord, content_hash: str, raw: RawRecord) -> None:
        answer = record.teacher
        self.rows.append((
            self.count, record.request_id, record.intent_key, record.intent, record.created_at,
            answer.tool_json("adjust"), answer.tool_json("selective_adjust"),
            answer.tool_json("filter"), answer.filter.name if answer.filter else None,
            record.exports["adjust"], record.exports["selective_adjust"],
            record.exports["filter"], record.teacher_model, record.latency_ms, record.cost_usd,
            record.session_id, content_hash, raw.location, raw.raw,
        ))
        self.count += 1
        if len(self.rows) >= STAGE_CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.rows:
            return
        columns = list(zip(*self.rows))
        table = pa.table({name: pa.array(values, type=self.schema.field(name).type)
                          for name, values in zip(_STAGE_COLUMNS, columns)}, schema=self.schema)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema)
        self._writer.write_table(table)
        self.rows = []

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()


def _stage_file(path: Path, fmt: LogFormat, folder: Path,
                progress: Callable[[int], None] | None) -> tuple[_Stager, list[dict], int, int]:
    """Read and validate; returns the stager, quarantine rows, records read, in-file duplicates."""
    stager = _Stager(folder)
    quarantine: list[dict] = []
    seen: dict[str, tuple[str, str]] = {}  # request_id -> (content hash, location)
    read = duplicates = 0
    for raw in read_records(path, fmt):
        read += 1
        if progress is not None and read % 10_000 == 0:
            progress(read)
        if raw.problem is not None or raw.record is None:
            quarantine.append({"location": raw.location, "reason": raw.problem, "raw": raw.raw})
            continue
        try:
            record = parse_record(raw.record)
        except RecordError as error:
            quarantine.append({"location": raw.location, "reason": str(error), "raw": raw.raw})
            continue
        content_hash = record.content_hash()
        earlier = seen.get(record.request_id)
        if earlier is not None:
            if earlier[0] == content_hash:
                duplicates += 1
            else:
                quarantine.append({
                    "location": raw.location, "raw": raw.raw,
                    "reason": f"request_id {record.request_id!r} appears again (first at "
                              f"{earlier[1]}) with different content"})
            continue
        seen[record.request_id] = (content_hash, raw.location)
        stager.add(record, content_hash, raw)
    stager.close()
    if progress is not None:
        progress(read)
    return stager, quarantine, read, duplicates


def _write(session: Session, summary: FileSummary, stager: _Stager, quarantine: list[dict],
           started_at: datetime) -> None:
    """Everything for one file, inside the caller's transaction."""
    ingest_id = int(session.value("SELECT nextval('ingest_id_seq')"))
    summary.ingest_id = ingest_id
    now = datetime.now(UTC)
    if stager.count:
        # A view, not a table: the stage is read from disk by each statement instead of being
        # held in memory for the whole transaction. DDL takes no parameters; the path is our
        # own temporary file, quoted.
        literal = "'" + str(stager.path).replace("'", "''") + "'"
        session.execute(f"CREATE TEMP VIEW staged AS SELECT * FROM read_parquet({literal})")
        # Same id already in the store: identical content is a no-op, different is a conflict.
        summary.duplicates += int(session.value(
            "SELECT count(*) FROM staged s JOIN requests r USING (request_id) "
            "WHERE s.content_hash = r.content_hash"))
        conflicts = session.query(
            "SELECT s.source_location, s.raw, s.request_id, r.ingest_id FROM staged s "
            "JOIN requests r USING (request_id) WHERE s.content_hash <> r.content_hash "
            "ORDER BY s.seq")
        quarantine.extend({
            "location": row["source_location"], "raw": row["raw"],
            "reason": f"request_id {row['request_id']!r} was already ingested (ingest "
                      f"{row['ingest_id']}) with different content"} for row in conflicts)
        session.execute(
            "INSERT INTO intents SELECT s.intent_key, arg_min(s.intent_text, s.seq), "
            "arg_min(s.created_at, s.seq), ? FROM staged s "
            "WHERE s.request_id NOT IN (SELECT request_id FROM requests) "
            "AND s.intent_key NOT IN (SELECT intent_key FROM intents) GROUP BY s.intent_key",
            [ingest_id])
        inserted_before = int(session.value("SELECT count(*) FROM requests"))
        session.execute(
            "INSERT INTO requests SELECT request_id, intent_key, intent_text, created_at, adjust, "
            "selective_adjust, filter, filter_name, exports_adjust, exports_selective_adjust, "
            "exports_filter, teacher_model, latency_ms, cost_usd, session_id, content_hash, ?, ?, "
            "source_location FROM staged WHERE request_id NOT IN (SELECT request_id FROM requests) "
            "ORDER BY seq", [ingest_id, summary.source_file])
        summary.ingested = int(session.value("SELECT count(*) FROM requests")) - inserted_before
        _refresh_intent_stats(session)
        session.execute("DROP VIEW staged")
    summary.quarantined = len(quarantine)
    _quarantine(session, ingest_id, summary.source_file, quarantine, now)
    session.execute(
        "INSERT INTO ingests (ingest_id, source_file, format, started_at, finished_at, n_read, "
        "n_ingested, n_duplicates, n_quarantined, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [ingest_id, summary.source_file, summary.format, started_at, now, summary.read,
         summary.ingested, summary.duplicates, summary.quarantined, summary.error])


def _refresh_intent_stats(session: Session) -> None:
    """Recompute the browse numbers of the intents the staged file touched."""
    session.execute("CREATE TEMP TABLE touched AS SELECT DISTINCT intent_key FROM staged")
    session.execute("DELETE FROM intent_stats WHERE intent_key IN (SELECT intent_key FROM touched)")
    session.execute(
        "INSERT INTO intent_stats SELECT r.intent_key, count(*), "
        "count(*) FILTER (WHERE exports_adjust + exports_selective_adjust + exports_filter > 0), "
        "count(*) FILTER (WHERE exports_adjust + exports_selective_adjust + exports_filter > 0)"
        " / count(*), count(DISTINCT content_output), max(created_at) "
        "FROM (SELECT *, concat_ws('|', coalesce(adjust, '-'), coalesce(selective_adjust, '-'), "
        "coalesce(filter, '-')) AS content_output FROM requests "
        "WHERE intent_key IN (SELECT intent_key FROM touched)) r GROUP BY r.intent_key")
    session.execute("DROP TABLE touched")


def _quarantine(session: Session, ingest_id: int, source_file: str, records: list[dict],
                now: datetime) -> None:
    """Store bad records; one already quarantined from the same file and place is not repeated,
    so re-ingesting a file is a no-op for its bad records as for its good ones."""
    import pyarrow as pa

    if not records:
        return
    session.register("bad", pa.table({name: pa.array([r[name] for r in records], pa.string())
                                      for name in ("location", "reason", "raw")}))
    session.execute(
        "INSERT INTO quarantine (ingest_id, source_file, location, reason, raw, quarantined_at) "
        "SELECT ?, ?, b.location, b.reason, b.raw, ? FROM bad b WHERE NOT EXISTS ("
        " SELECT 1 FROM quarantine q WHERE q.source_file = ? AND q.location = b.location"
        " AND q.reason = b.reason AND q.raw IS NOT DISTINCT FROM b.raw)",
        [ingest_id, source_file, now, source_file])
    session.unregister("bad")


def ingest_file(path: Path, store: Store,
                progress: Callable[[int], None] | None = None) -> FileSummary:
    """Ingest one file in one transaction. A file that cannot be read at all raises IngestError
    after its failure is recorded in the ingest history."""
    path = Path(path)
    fmt = detect_format(path)
    summary = FileSummary(source_file=str(path), format=fmt.value)
    started_at = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="workbench-ingest-") as folder:
        try:
            stager, quarantine, read, duplicates = _stage_file(path, fmt, Path(folder), progress)
        except IngestError as error:
            summary.error = str(error)
            if path.exists():  # record what happened to a real file; a missing path has no trace
                with store.atomic(create=True) as session:
                    _write(session, summary, _Stager(Path(folder)), [
                        {"location": "file", "reason": str(error), "raw": None}], started_at)
            raise
        summary.read, summary.duplicates = read, duplicates
        if read == 0:
            summary.error = f"{path}: the file holds no records"
        with store.atomic(create=True) as session:
            _write(session, summary, stager, quarantine, started_at)
    return summary


def run(config: IngestConfig, store: Store,
        progress: Callable[[Path, int], None] | None = None) -> IngestResult:
    """Ingest every file in order; a file that fails does not stop the others."""
    result = IngestResult()
    for path in config.paths:
        path = Path(path)
        file_progress = None if progress is None else functools.partial(progress, path)
        try:
            summary = ingest_file(path, store, file_progress)
        except IngestError as error:
            summary = FileSummary(source_file=str(path), format=path.suffix.lstrip(".") or "?",
                                  error=str(error))
        result.files.append(summary)
    return result


def quarantine_page(store: Store, limit: int = 50, offset: int = 0) -> list[dict]:
    return store.query("SELECT quarantine_id, ingest_id, source_file, location, reason, raw "
                       "FROM quarantine ORDER BY quarantine_id LIMIT ? OFFSET ?", [limit, offset])

