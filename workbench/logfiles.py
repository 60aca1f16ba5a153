"""Read log files (JSONL, CSV, Parquet) into raw records, each with where it came from.

Readers never validate the contract (that is `workbench.logs.parse_record`); they only turn bytes
into mappings. A record they cannot even read (bad UTF-8, malformed JSON, a CSV row of the wrong
width) comes out as a `RawRecord` with `problem` set, so it can be quarantined with its raw text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from workbench.errors import IngestError
from workbench.logs import OPTIONAL_FIELDS, REQUIRED_FIELDS

RAW_TEXT_LIMIT = 100_000  # characters of a bad record kept in quarantine


class LogFormat(str, Enum):
    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"


_EXTENSIONS = {".jsonl": LogFormat.JSONL, ".ndjson": LogFormat.JSONL, ".csv": LogFormat.CSV,
               ".parquet": LogFormat.PARQUET, ".pq": LogFormat.PARQUET}


@dataclass(frozen=True)
class RawRecord:
    location: str                  # 'line 12' (JSONL, CSV) or 'row 12' (Parquet)
    raw: str                       # the record's text as found, for quarantine
    record: dict[str, Any] | None  # None when `problem` is set
    problem: str | None = None


def detect_format(path: Path) -> LogFormat:
    try:
        return _EXTENSIONS[path.suffix.lower()]
    except KeyError:
        raise IngestError(f"{path}: unknown log format '{path.suffix}'; use one of "
                          f"{', '.join(sorted(_EXTENSIONS))}") from None


def _clip(text: str) -> str:
    if len(text) <= RAW_TEXT_LIMIT:
        return text
    return text[:RAW_TEXT_LIMIT] + f"... [{len(text) - RAW_TEXT_LIMIT} more characters not kept]"


def read_records(path: Path, fmt: LogFormat) -> Iterator[RawRecord]:
    """Yield every record of the file. Raises IngestError when the file as a whole is unreadable."""
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if not path.is_file():
        raise IngestError(f"{path}: not a file")
    if fmt is LogFormat.JSONL:
        return _read_jsonl(path)
    if fmt is LogFormat.CSV:
        return _read_csv(path)
    return _read_parquet(path)


def _read_jsonl(path: Path) -> Iterator[RawRecord]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            location = f"line {number}"
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as error:
                yield RawRecord(location, _clip(line.decode("utf-8", "backslashreplace").rstrip()),
                                None, f"not valid UTF-8 (byte {error.start})")
                continue
            text = text.rstrip("\r\n")
            if number == 1:
                text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                yield RawRecord(location, _clip(text), None, f"malformed JSON: {error.msg} "
                                f"at character {error.pos}")
                continue
            if not isinstance(value, dict):
                yield RawRecord(location, _clip(text), None,
                                f"a record must be a JSON object, got {type(value).__name__}")
                continue
            yield RawRecord(location, _clip(text), value)


_CSV_JSON_COLUMNS = ("teacher", "exports")


def _read_csv(path: Path) -> Iterator[RawRecord]:
    # surrogateescape keeps undecodable bytes visible, so one bad row does not sink the file.
    with path.open("r", encoding="utf-8", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise IngestError(f"{path}: the CSV header cannot be read: {error}") from None
        header = [name.strip().lstrip("\ufeff") for name in header]
        missing = [name for name in REQUIRED_FIELDS if name not in header]
        while True:
            start_line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield RawRecord(f"line {start_line}", "", None, f"unreadable CSV row: {error}")
                continue
            if not any(cell.strip() for cell in row):
                continue
            location = f"line {start_line}"
            raw = _clip(_csv_line(row))
            if any(_has_surrogates(cell) for cell in row):
                yield RawRecord(location, raw, None, "not valid UTF-8")
                continue
            if missing:
                yield RawRecord(location, raw, None,
                                f"the CSV header lacks the column(s) {', '.join(missing)}")
                continue
            if len(row) != len(header):
                yield RawRecord(location, raw, None,
                                f"row has {len(row)} fields, the header has {len(header)}")
                continue
            record: dict[str, Any] = {}
            problem = None
            for name, cell in zip(header, row):
                if name in _CSV_JSON_COLUMNS:
                    try:
                        record[name] = json.loads(cell) if cell.strip() else None
                    except json.JSONDecodeError as error:
                        problem = f"{name}: not valid JSON text ({error.msg}) (got {cell[:60]!r})"
                        break
                elif name in OPTIONAL_FIELDS:
                    if cell.strip():
                        record[name] = cell
                else:
                    record[name] = cell
            yield RawRecord(location, raw, None if problem else record, problem)


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in text)


def _csv_line(row: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    return buffer.getvalue().encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _drop_nulls_inside(value: Any) -> Any:
    """Parquet structs carry every key of the column, with nulls where a record had none."""
    if isinstance(value, dict):
        return {key: _drop_nulls_inside(item) for key, item in value.items() if item is not None}
    return value


def _read_parquet(path: Path) -> Iterator[RawRecord]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise IngestError(f"{path}: not a readable Parquet file ({error})") from None
    return _parquet_rows(parquet, path)


def _parquet_rows(parquet: Any, path: Path) -> Iterator[RawRecord]:
    import pyarrow as pa

    number = 0
    try:
        batches = parquet.iter_batches(batch_size=10_000)
        for batch in batches:
            for row in batch.to_pylist():
                number += 1
                record = dict(row)
                for name in ("teacher", "exports"):
                    value = record.get(name)
                    if isinstance(value, str):
                        try:
                            record[name] = json.loads(value)
                        except json.JSONDecodeError:
                            pass  # left as text; validation names the field
                    elif isinstance(value, dict):
                        record[name] = (
                            {tool: _drop_nulls_inside(params) for tool, params in value.items()}
                            if name == "teacher" else _drop_nulls_inside(value))
                yield RawRecord(f"row {number}", _clip(json.dumps(row, default=str)), record)
    except (pa.ArrowException, OSError) as error:
        raise IngestError(f"{path}: Parquet data unreadable after row {number} ({error})") from None
