"""Read log files (JSONL, CSV, Parquet) into raw records, each with where it came from.

Readers never validate the contract (that is `workbench.log_records.parse_record`); they only
turn bytes into mappings. A record they cannot even read (bad UTF-8, malformed or ambiguous JSON,
a CSV row of the wrong width, a Parquet value Python cannot hold) comes out as a `RawRecord` with
`problem` set, so it can be quarantined with its raw text. A file that cannot be read at all
(missing, a symlink loop, no permission, UTF-16 text) raises `IngestError`.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from workbench.errors import IngestError
from workbench.log_records import OPTIONAL_FIELDS, REQUIRED_FIELDS

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


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return record


# A duplicate key is ambiguous (the plain decoder would silently keep the last value).
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def parse_json(text: str) -> tuple[Any, str | None]:
    """(value, None), or (None, why the text is not one unambiguous JSON value)."""
    try:
        return _DECODER.decode(text), None
    except _DuplicateKeyError as error:
        return None, (f"ambiguous JSON: the key {error.key!r} appears more than once in one "
                      "object")
    except json.JSONDecodeError as error:
        return None, f"malformed JSON: {error.msg} at character {error.pos}"
    except RecursionError:
        return None, "malformed JSON: nested too deeply"
    except ValueError as error:  # e.g. an integer of more than 4,300 digits
        return None, f"malformed JSON: {error}"


# Byte-order marks of encodings other than UTF-8, longest first (UTF-32-LE starts like UTF-16-LE).
_OTHER_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
               (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
               (b"\xff\xfe", "UTF-16 (little-endian)"), (b"\xfe\xff", "UTF-16 (big-endian)"))


def _other_encoding(head: bytes) -> str | None:
    """The encoding a text file's first bytes show, when it is not UTF-8."""
    for bom, name in _OTHER_BOMS:
        if head.startswith(bom):
            return f"{name}, by its byte-order mark"
    # No mark, but ASCII text in UTF-16 puts a NUL byte beside every character.
    if len(head) >= 4 and head[1] == head[3] == 0 and head[0] and head[2]:
        return "UTF-16 (little-endian), by the NUL bytes between its first characters"
    if len(head) >= 4 and head[0] == head[2] == 0 and head[1] and head[3]:
        return "UTF-16 (big-endian), by the NUL bytes between its first characters"
    return None


def _open_problem(path: Path, error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return f"{path}: a symlink loop (the link leads back to itself); point to the real file"
    if isinstance(error, PermissionError):
        return f"{path}: permission denied; make the file readable (chmod) or copy it"
    if isinstance(error, FileNotFoundError):
        if path.is_symlink():
            return f"{path}: no such file (a symlink to {path.readlink()}, which does not exist)"
        return f"{path}: no such file"
    return f"{path}: cannot be read ({error.strerror or error})"


def read_records(path: Path, fmt: LogFormat) -> Iterator[RawRecord]:
    """Yield every record of the file. Raises IngestError when the file as a whole is unreadable."""
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise IngestError(f"{path}: not a file")
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as error:
        raise IngestError(_open_problem(path, error)) from None
    if fmt is not LogFormat.PARQUET:
        encoding = _other_encoding(head)
        if encoding is not None:
            raise IngestError(
                f"{path}: the file is {encoding}; ingest reads UTF-8 text. Convert it first, "
                f"e.g. `iconv -f {encoding.split()[0]} -t UTF-8 {path.name} > utf8-{path.name}`")
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
            value, problem = parse_json(text)
            if problem is not None:
                yield RawRecord(location, _clip(text), None, problem)
                continue
            if not isinstance(value, dict):
                yield RawRecord(location, _clip(text), None,
                                f"a record must be a JSON object, got {type(value).__name__}")
                continue
            yield RawRecord(location, _clip(text), value)


_CSV_JSON_COLUMNS = ("teacher", "exports")
_CONTRACT_COLUMNS = (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)


def _repeated(names: list[str]) -> list[str]:
    """Contract fields named more than once (the reader would silently keep the last one)."""
    return [name for name in _CONTRACT_COLUMNS if names.count(name) > 1]


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
        repeated = _repeated(header)
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
            if repeated:
                yield RawRecord(location, raw, None,
                                f"ambiguous: the CSV header names the column(s) "
                                f"{', '.join(repeated)} more than once")
                continue
            if len(row) != len(header):
                yield RawRecord(location, raw, None,
                                f"row has {len(row)} fields, the header has {len(header)}")
                continue
            record: dict[str, Any] = {}
            problem = None
            for name, cell in zip(header, row):
                if name in _CSV_JSON_COLUMNS:
                    value, why = parse_json(cell) if cell.strip() else (None, None)
                    if why is not None:
                        problem = f"{name}: not valid JSON text ({why}) (got {cell[:60]!r})"
                        break
                    record[name] = value
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

    repeated = _repeated(list(parquet.schema_arrow.names))
    number = 0
    try:
        batches = parquet.iter_batches(batch_size=10_000)
        for batch in batches:
            try:
                rows: list[dict[str, Any]] | None = batch.to_pylist()
            except (pa.ArrowException, ValueError, OverflowError):
                rows = None  # some value has no Python form: convert row by row to find it
            for index in range(batch.num_rows):
                number += 1
                location = f"row {number}"
                if rows is not None:
                    row, problem = rows[index], None
                else:
                    row, problem = _parquet_row(batch, index)
                raw = _parquet_raw(row)
                if problem is None and repeated:
                    problem = (f"ambiguous: the Parquet schema names the column(s) "
                               f"{', '.join(repeated)} more than once")
                if problem is not None:
                    yield RawRecord(location, raw, None, problem)
                    continue
                record, problem = _parquet_record(row)
                yield RawRecord(location, raw, None if problem else record, problem)
    except (pa.ArrowException, OSError) as error:
        raise IngestError(f"{path}: Parquet data unreadable after row {number} ({error})") from None


def _parquet_raw(row: dict[str, Any]) -> str:
    try:
        return _clip(json.dumps(row, default=str))
    except (TypeError, ValueError, RecursionError):  # keys that are not text, say
        return _clip(repr(row))


def _parquet_row(batch: Any, index: int) -> tuple[dict[str, Any], str | None]:
    """One row, column by column; a value Python cannot hold (a timestamp after the year 9999,
    a struct with repeated field names) is named in the problem."""
    import pyarrow as pa

    row: dict[str, Any] = {}
    problems = []
    for name, column in zip(batch.schema.names, batch.columns):
        try:
            row[name] = column[index].as_py()
        except (pa.ArrowException, ValueError, OverflowError) as error:
            row[name] = f"<unreadable: {error}>"
            if pa.types.is_timestamp(column.type):
                ticks = column.slice(index, 1).cast(pa.int64())[0].as_py()
                problems.append(f"{name}: a timestamp outside the years 1 to 9999 ({ticks} "
                                f"{column.type.unit} since 1970-01-01)")
            else:
                problems.append(f"{name}: the value cannot be read ({error})")
    return row, "; ".join(problems) or None


def _parquet_record(row: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    record = dict(row)
    for name in ("teacher", "exports"):
        value = record.get(name)
        if isinstance(value, str):
            parsed, why = parse_json(value)
            if why is not None:
                return record, f"{name}: not valid JSON text ({why}) (got {value[:60]!r})"
            record[name] = parsed
        elif isinstance(value, dict):
            record[name] = (
                {tool: _drop_nulls_inside(params) for tool, params in value.items()}
                if name == "teacher" else _drop_nulls_inside(value))
    return record, None
