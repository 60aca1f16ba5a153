"""Validate and stage one log file in DuckDB (`workbench ingest --validator sql`).

The records are loaded into a private DuckDB database in the ingest's staging folder and the
log contract (SPEC 3) is checked there in SQL (`workbench.store.ingest_sql`, which lists what SQL
decides and what it hands back). The records SQL cannot decide with certainty are validated here
by the Python validator (`pipelines.ingest._validate`, the reference), so every record gets the
same verdict, reason, location and raw text as with `--validator python`, and every good record
the same stored values. Duplicates within the file are found in SQL over both kinds of good
rows. The result is the staged Parquet file and the file's intents that
`pipelines.ingest._write` writes in one transaction, exactly as for the Python validator.

Reading: JSONL lines are read by Python in 16 MB blocks straight into Arrow (DuckDB's JSON
reader can give neither the physical line number nor the exact text of a line it rejects);
blank-line skipping, the trailing CR and the byte-order mark are applied in SQL. CSV and Parquet
are read by the reference readers of `workbench.log_readers` (the CSV location is the physical
line a record starts on, which may span lines; the raw text of both is what those readers write)
and each record goes to DuckDB as JSON text. The spool ingest (`pipelines.ingest_spool`) and
`fold_served` keep the Python validator: their records arrive one by one as Python objects.

Speed (`benchmarks/ingest_benchmark.py`, 1M synthetic requests): on quiet cores 100 s against
155 s for Python, peak RSS 1.4 and 1.3 GB; with other work on the cores the order flipped (345 s
against 185 s), because at 1M the parsed table (every JSON path's type and value as lists)
outgrows the 1 GB memory limit and spills. Classifying in blocks of ~100K records, and
evaluating the classification's CASE trees on plain columns instead of list elements, are the
next steps. Python stays the default meanwhile, also because an unforeseen error here fails
the whole file where the Python path quarantines the one record that caused it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench.log_readers import LogFormat, RawRecord, _clip, parse_json, read_records
from workbench.progress import Progress
from workbench.store.ingest_sql import SqlStage

BLOCK_BYTES = 16 * 2**20      # JSONL read size
RECORD_BATCH = 50_000         # CSV and Parquet records per insert


@dataclass
class SqlStaged:
    """What `pipelines.ingest._write` needs of a staged file."""

    path: Path
    count: int
    file_intents_table: Any
    rejected: list[dict] = field(default_factory=list)


def _jsonl_problem(location: str, line: bytes) -> RawRecord | None:
    """The reader's record for a line that is not UTF-8 (None: it is, or it is blank)."""
    if not line.strip():
        return None
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as error:
        return RawRecord(location, _clip(line.decode("utf-8", "backslashreplace").rstrip()),
                         None, f"not valid UTF-8 (byte {error.start})")
    return None


def _load_jsonl(path: Path, stage: SqlStage, bad: list[tuple[int, dict]],
                progress: Progress | None, name: str) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    read = 0
    number = 1        # physical line number of the block's first line
    rest = b""
    with path.open("rb") as handle:
        while True:
            block = handle.read(BLOCK_BYTES)
            if block:
                # Split in Arrow; the last piece is a whole line only once the next block came.
                pieces = pc.split_pattern(pa.array([rest + block], pa.binary()), b"\n").flatten()
                rest = pieces[len(pieces) - 1].as_py()
                lines = pieces.slice(0, len(pieces) - 1)
            else:
                lines, rest = pa.array([rest] if rest else [], pa.binary()), b""
            if not len(lines):
                if not block:
                    break
                continue
            try:
                texts = lines.cast(pa.string())
            except pa.ArrowInvalid:   # some line is not UTF-8: those are quarantined here
                kept: list[str] = []
                for offset, line in enumerate(lines.to_pylist()):
                    problem = _jsonl_problem(f"line {number + offset}", line)
                    if problem is not None:
                        bad.append((number + offset, _entry(problem, problem.problem or "")))
                        read += 1
                        kept.append("")          # a blank line: skipped by add_lines
                    else:
                        kept.append(line.decode("utf-8"))
                texts = pa.array(kept, pa.string())
            read += stage.add_lines(texts, number)
            number += len(lines)
            if progress is not None:
                progress(name, read, None)
            if not block:
                break
    return read


def _plain(value: Any) -> bool:
    """Whether JSON text round-trips the value exactly (so Python can decide it from the text)."""
    if value is None or isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    return False


def _doc(record: dict[str, Any]) -> str | None:
    """The record as JSON text, or None when only the record itself can say what it holds (a
    value JSON cannot carry: Python decides it from the record)."""
    values = dict(record)
    created_at = values.get("created_at")
    if isinstance(created_at, datetime):
        # A Parquet timestamp: its ISO text is validated to the same instant.
        values["created_at"] = created_at.isoformat()
    if not _plain(values):
        return None
    text = json.dumps(values, ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:   # a lone surrogate from a JSON escape: keep it escaped
            text = json.dumps(values)
    return text


def _load_records(records: Iterator[RawRecord], stage: SqlStage, bad: list[tuple[int, dict]],
                  kept: dict[int, RawRecord], progress: Progress | None, name: str) -> int:
    """CSV and Parquet through the reference reader; returns the records read."""
    seqs: list[int] = []
    locations: list[str] = []
    raws: list[str] = []
    docs: list[str | None] = []
    read = 0

    def flush() -> None:
        stage.add_records(seqs, locations, raws, docs)
        seqs.clear()
        locations.clear()
        raws.clear()
        docs.clear()
        if progress is not None:
            progress(name, read, None)

    for raw in records:
        read += 1
        if raw.problem is not None or raw.record is None:
            bad.append((read, _entry(raw, raw.problem or "the record could not be read")))
            continue
        doc = _doc(raw.record)
        if doc is None:
            kept[read] = raw
        seqs.append(read)
        locations.append(raw.location)
        raws.append(raw.raw)
        docs.append(doc)
        if len(seqs) >= RECORD_BATCH:
            flush()
    flush()
    return read


def _entry(raw: RawRecord, reason: str) -> dict[str, str | None]:
    return {"location": raw.location, "reason": reason, "raw": raw.raw}


def _jsonl_record(location: str, doc: str) -> RawRecord:
    """What `workbench.log_readers` makes of a (decoded, trimmed) JSONL line."""
    value, problem = parse_json(doc)
    if problem is not None:
        return RawRecord(location, _clip(doc), None, problem)
    if not isinstance(value, dict):
        return RawRecord(location, _clip(doc), None,
                         f"a record must be a JSON object, got {type(value).__name__}")
    return RawRecord(location, _clip(doc), value)


def _deferred(stage: SqlStage, fmt: LogFormat, kept: dict[int, RawRecord],
              bad: list[tuple[int, dict]], reference: Reference) -> None:
    """Validate in Python the records SQL handed back; stage the good ones."""
    for batch in stage.deferred():
        rows = []
        for item in batch:
            seq = item["seq"]
            if fmt is LogFormat.JSONL:
                raw = _jsonl_record(item["location"], item["doc"])
            elif seq in kept:
                raw = kept.pop(seq)
            else:
                raw = RawRecord(item["location"], item["raw"], json.loads(item["doc"]))
            record, content_hash, problem = reference.validate(raw)
            if record is None or content_hash is None:
                bad.append((seq, _entry(raw, problem or "invalid")))
            else:
                rows.append(reference.stage_row(seq, record, content_hash, raw))
        stage.add_good(rows)


@dataclass(frozen=True)
class Reference:
    """The Python validator's two steps the SQL path reuses for the records it hands back
    (`pipelines.ingest` passes its own: passed in, not imported, so the modules form no cycle).
    """
    validate: Callable[[RawRecord], tuple[Any, str | None, str | None]]
    stage_row: Callable[[int, Any, str, RawRecord], Any]


def stage_file(path: Path, fmt: LogFormat, folder: Path, progress: Progress | None,
               name: str, reference: Reference) -> tuple[SqlStaged, list[dict], int, int]:
    """Validate and stage one file in `folder`: (the staged file, quarantine rows in file
    order, records read, duplicates within the file). Raises IngestError when the file as a
    whole cannot be read, OSError when the disk fails."""
    records = read_records(path, fmt)      # the file-level checks, as for the Python validator
    stage = SqlStage(folder)
    bad: list[tuple[int, dict]] = []
    kept: dict[int, RawRecord] = {}
    try:
        if fmt is LogFormat.JSONL:
            read = _load_jsonl(path, stage, bad, progress, name)
        else:
            read = _load_records(records, stage, bad, kept, progress, name)
        stage.classify()
        bad.extend((row["seq"], {"location": row["location"], "reason": row["reason"],
                                 "raw": row["raw"]}) for row in stage.bad())
        _deferred(stage, fmt, kept, bad, reference)
        duplicates, conflicts = stage.repeats()
        bad.extend((row["seq"], {
            "location": row["location"], "raw": row["raw"],
            "reason": f"request_id {row['request_id']!r} appears again (first at "
                      f"{row['first_location']}) with different content"}) for row in conflicts)
        staged_path = folder / "staged.parquet"
        count, intents = stage.write(staged_path)
        if progress is not None:   # once more, with the stage written (as the Python stager)
            progress(name, read, None)
    finally:
        stage.close()
    bad.sort(key=lambda item: item[0])
    return SqlStaged(staged_path, count, intents), [entry for _, entry in bad], read, duplicates
