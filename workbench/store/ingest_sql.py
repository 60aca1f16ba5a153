"""The log contract (SPEC 3) checked in DuckDB: a private staging database per ingested file.

`pipelines.ingest_sql` reads a log file into the table `src` (seq, location, raw, doc: the
record as JSON text) and calls `classify`, which decides every record in SQL as one of

- good: every check of `workbench.log_records.parse_record` passes; the row gets exactly the
  values the Python path stores (stripped text, intent key, UTC timestamp, canonical tool JSON,
  exports, the content hash of `LogRecord.content_hash`);
- bad: a check fails whose reason SQL can write exactly as the Python validator does (missing
  required fields, text over its length limit, a slider, intensity, export count or latency or
  cost out of range given as an integer, an unknown filter, a null teacher or exports);
- deferred: anything SQL cannot decide with certainty, handed to the Python validator (the
  reference) by the caller: JSON that Python's decoder and DuckDB's may read differently
  (malformed lines, trailing commas, NaN and Infinity, escaped surrogates, records over 4,000
  bytes), repeated keys, nested values where none are expected, control characters in text,
  timestamps other than `YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]][Z|+HH:MM]` between the years 1000 and
  9998, non-integral or non-finite numbers, values of the wrong type (their reason shows the
  value as Python's `json.dumps` writes it), and every reason that shows such a value.

Deciding "good" is strict on purpose: a record SQL cannot prove good is deferred, never guessed.
The intent key and content hash of records with non-ASCII text are computed by Python functions
(`key_udf`, `hash_udf`) called from SQL only for those rows, because NFKC normalisation and
Python's `repr` of non-ASCII text have no SQL equivalent.

Every value from the file is data in a table, never SQL text; the SQL here is built once from
the tool schema's constants (slider names, colours, limits, catalogue).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
from duckdb.func import FunctionNullHandling, PythonUDFType

from workbench.log_records import (
    COST_USD_MAX,
    EXPORTS_MAX,
    ID_MAX_CHARS,
    INTENT_MAX_CHARS,
    LATENCY_MS_MAX,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    intent_key,
)
from workbench.tools import (
    ADJUST_KEYS,
    COLOUR_CHANNELS,
    COLOURS,
    FILTER_NAMES,
    INTENSITY_MAX,
    INTENSITY_MIN,
    SLIDER_MAX,
    SLIDER_MIN,
    TOOLS,
)

DEFER = "\x01defer"          # the classification's marker for "let Python decide"
DOC_MAX_BYTES = 4_000        # longer records are deferred (Python clips their raw text)
FIELDS: tuple[str, ...] = (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)

STAGE_COLUMNS: tuple[str, ...] = (
    "seq", "request_id", "intent_key", "intent_text", "created_at", "adjust", "selective_adjust",
    "filter", "filter_name", "exports_adjust", "exports_selective_adjust", "exports_filter",
    "teacher_model", "latency_ms", "cost_usd", "session_id", "content_hash", "source_location",
    "raw",
)
_STAGE_TYPES = (
    "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR", "TIMESTAMPTZ", "VARCHAR", "VARCHAR", "VARCHAR",
    "VARCHAR", "BIGINT", "BIGINT", "BIGINT", "VARCHAR", "DOUBLE", "DOUBLE", "VARCHAR", "VARCHAR",
    "VARCHAR", "VARCHAR")

# What pydantic's str_strip_whitespace strips (Rust's char::is_whitespace): RE2 character class.
_WHITESPACE = (r"[\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}"
               r"\x{202F}\x{205F}\x{3000}]")
# Python's decoder and DuckDB's (yyjson) disagree on these; such records go to Python.
_UNSURE_JSON = (r"\\u[dD][89abAB]|,\s*[}\]]|[:\[,]\s*-?(?i:nan|inf)")
_ISO = (r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d"
        r"(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?")
_CONTROL = r"[\x00-\x1f\x7f]"


def _q(text: str) -> str:
    """A SQL string literal of one of our own constants."""
    return "'" + text.replace("'", "''") + "'"


# --------------------------------------------------------------------------- JSON paths

_SELECTIVE = "$.teacher.selective_adjust"
PATHS: tuple[str, ...] = (
    *(f"$.{name}" for name in FIELDS),
    "$.teacher.adjust", _SELECTIVE, "$.teacher.filter",
    *(f"$.teacher.adjust.{key}" for key in ADJUST_KEYS),
    *(f"{_SELECTIVE}.{colour}" for colour in COLOURS),
    *(f"{_SELECTIVE}.{colour}.{channel}" for colour in COLOURS for channel in COLOUR_CHANNELS),
    "$.teacher.filter.name", "$.teacher.filter.intensity",
    *(f"$.exports.{tool}" for tool in TOOLS),
)
_STRINGS: tuple[str, ...] = ("$.request_id", "$.intent", "$.created_at", "$.teacher_model",
                             "$.session_id", "$.teacher.filter.name")
_OBJECTS: tuple[str, ...] = ("$", "$.teacher", "$.teacher.adjust", _SELECTIVE,
                             *(f"{_SELECTIVE}.{colour}" for colour in COLOURS),
                             "$.teacher.filter", "$.exports")


def _t(path: str) -> str:
    return f"t[{PATHS.index(path) + 1}]"


def _v(path: str) -> str:
    return f"v[{PATHS.index(path) + 1}]"


def _s(path: str) -> str:
    return f"s[{_STRINGS.index(path) + 1}]"


def _k(path: str) -> str:
    return f"k[{_OBJECTS.index(path) + 1}]"


def _keys_ok(path: str, allowed: Sequence[str]) -> str:
    """The object's keys are distinct and each one allowed."""
    keys = _k(path)
    names = ", ".join(_q(name) for name in allowed)
    return (f"(len({keys}) = len(list_distinct({keys})) AND "
            f"list_has_all([{names}], {keys}))")


def _integer(path: str, label: str, low: int, high: int, message: str) -> tuple[str, str]:
    """(value, error) of an integer leaf: absent is 0; an integer out of range gets `message`
    with the value; anything else that is not an integral number is deferred."""
    t, v = _t(path), _v(path)
    number = f"TRY_CAST({v} AS DOUBLE)"
    value = (f"(CASE WHEN {t} IS NULL THEN 0 WHEN {t} IN ('BIGINT', 'UBIGINT') "
             f"THEN TRY_CAST({v} AS BIGINT) ELSE TRY_CAST({number} AS BIGINT) END)")
    error = (f"(CASE WHEN {t} IS NULL THEN NULL "
             f"WHEN {t} IN ('BIGINT', 'UBIGINT') THEN (CASE WHEN TRY_CAST({v} AS HUGEINT) "
             f"BETWEEN {low} AND {high} THEN NULL ELSE {_q(label + ': ' + message + ' (got ')} "
             f"|| {v} || ')' END) "
             f"WHEN {t} = 'DOUBLE' AND isfinite({number}) AND {number} = floor({number}) "
             f"AND {number} BETWEEN {low} AND {high} THEN NULL ELSE {_q(DEFER)} END)")
    return value, error


def _slider(path: str, label: str) -> tuple[str, str]:
    return _integer(path, label, SLIDER_MIN, SLIDER_MAX, f"must be in [{SLIDER_MIN}, {SLIDER_MAX}]")


def _object_error(path: str, label: str, allowed: Sequence[str], inner: Sequence[str],
                  absent_ok: bool = True) -> str:
    """The first error of an optional object (null or absent: unused) and its contents."""
    t = _t(path)
    unused = f"{t} IS NULL OR {t} = 'NULL'" if absent_ok else "false"
    return (f"(CASE WHEN {unused} THEN NULL WHEN {t} <> 'OBJECT' THEN {_q(DEFER)} "
            f"WHEN NOT {_keys_ok(path, allowed)} THEN {_q(DEFER)} "
            f"ELSE coalesce({', '.join(inner) or 'NULL'}) END)")


def _tool_sql() -> tuple[dict[str, str], str]:
    """The canonical JSON text of each tool (as `Answer.tool_json` writes it) and the first
    error of `parse_answer(teacher, path="teacher")`."""
    adjust_values, adjust_errors = [], []
    for key in ADJUST_KEYS:
        value, error = _slider(f"$.teacher.adjust.{key}", f"teacher.adjust.{key}")
        adjust_values.append(f"'\"{key}\":' || {value}")
        adjust_errors.append(error)
    adjust_json = "'{' || " + " || ',' || ".join(adjust_values) + " || '}'"
    adjust_error = _object_error("$.teacher.adjust", "teacher.adjust", ADJUST_KEYS, adjust_errors)

    colour_parts, selective_errors = [], []
    for colour in COLOURS:
        path = f"{_SELECTIVE}.{colour}"
        values = []
        errors = []
        for channel in COLOUR_CHANNELS:
            value, error = _slider(f"{path}.{channel}", f"teacher.selective_adjust.{colour}.{channel}")
            values.append(f"'\"{channel}\":' || {value}")
            errors.append(error)
        colour_parts.append(f"'\"{colour}\":{{' || " + " || ',' || ".join(values) + " || '}'")
        t = _t(path)
        # Absent: {} (all zero); null or anything but an object: Python names it, with the value.
        selective_errors.append(
            f"(CASE WHEN {t} IS NULL THEN coalesce({', '.join(errors)}) "
            f"WHEN {t} <> 'OBJECT' OR NOT {_keys_ok(path, COLOUR_CHANNELS)} THEN {_q(DEFER)} "
            f"ELSE coalesce({', '.join(errors)}) END)")
    selective_json = "'{' || " + " || ',' || ".join(colour_parts) + " || '}'"
    selective_error = _object_error(_SELECTIVE, "teacher.selective_adjust", COLOURS,
                                    selective_errors)

    name_t, name = _t("$.teacher.filter.name"), _s("$.teacher.filter.name")
    catalogue = ", ".join(_q(look) for look in FILTER_NAMES)
    # _show() writes the name as JSON, cut at 80 characters: plain short names are written here.
    name_error = (
        f"(CASE WHEN {name_t} IS NULL THEN 'teacher.filter.name: is required (got null)' "
        f"WHEN {name_t} <> 'VARCHAR' THEN {_q(DEFER)} WHEN {name} IN ({catalogue}) THEN NULL "
        f"WHEN regexp_full_match({name}, '[ !#-\\[\\]-~]{{0,78}}') THEN "
        f"'teacher.filter.name: is not in the filter catalogue (got \"' || {name} || '\")' "
        f"ELSE {_q(DEFER)} END)")
    intensity_value, intensity_error = _integer(
        "$.teacher.filter.intensity", "teacher.filter.intensity", INTENSITY_MIN, INTENSITY_MAX,
        f"must be in [{INTENSITY_MIN}, {INTENSITY_MAX}]")
    intensity_t = _t("$.teacher.filter.intensity")
    intensity_error = (f"(CASE WHEN {intensity_t} IS NULL THEN "
                       f"'teacher.filter.intensity: is required (got null)' "
                       f"ELSE {intensity_error} END)")
    filter_json = (f"'{{\"name\":\"' || {name} || '\",\"intensity\":' || {intensity_value} "
                   f"|| '}}'")
    filter_error = _object_error("$.teacher.filter", "teacher.filter", ("name", "intensity"),
                                 [name_error, intensity_error])

    teacher_t = _t("$.teacher")
    teacher_error = (
        f"(CASE WHEN {teacher_t} = 'NULL' THEN 'teacher: must be an object (got null)' "
        f"WHEN {teacher_t} <> 'OBJECT' OR NOT {_keys_ok('$.teacher', TOOLS)} THEN {_q(DEFER)} "
        f"ELSE coalesce({adjust_error}, {selective_error}, {filter_error}) END)")

    def used(path: str, text: str) -> str:
        t = _t(path)
        return f"(CASE WHEN {t} IS NULL OR {t} = 'NULL' THEN NULL ELSE {text} END)"

    tool_json = {"adjust": used("$.teacher.adjust", adjust_json),
                 "selective_adjust": used(_SELECTIVE, selective_json),
                 "filter": used("$.teacher.filter", filter_json),
                 "filter_name": used("$.teacher.filter", name)}
    return tool_json, teacher_error


def _exports_sql() -> tuple[dict[str, str], str]:
    values, errors = {}, []
    for tool in TOOLS:
        value, error = _integer(f"$.exports.{tool}", f"exports.{tool}", 0, EXPORTS_MAX,
                                f"must be an integer from 0 to {EXPORTS_MAX:,}")
        values[tool] = value
        errors.append(error)
    t = _t("$.exports")
    error = (f"(CASE WHEN {t} = 'NULL' THEN "
             f"'exports: must be an object with per-tool counts (got null)' "
             f"WHEN {t} <> 'OBJECT' OR NOT {_keys_ok('$.exports', TOOLS)} THEN {_q(DEFER)} "
             f"ELSE coalesce({', '.join(errors)}) END)")
    return values, error


def _strip(text: str) -> str:
    return f"regexp_replace({text}, '^{_WHITESPACE}+|{_WHITESPACE}+$', '', 'g')"


def _text_field(name: str, limit: int, required: bool) -> tuple[str, str]:
    """(stripped value, envelope error) of a text field; empty optional text is None."""
    t, s = _t(f"$.{name}"), _s(f"$.{name}")
    value = _strip(s)
    absent = f"'{name}: missing required field'" if required else "NULL"
    null = f"'{name}: Input should be a valid string (got null)'" if required else "NULL"
    # An empty required text has a pydantic message that shows the value: Python writes it.
    empty = _q(DEFER) if required else "NULL"
    error = (f"(CASE WHEN {t} IS NULL THEN {absent} WHEN {t} = 'NULL' THEN {null} "
             f"WHEN {t} <> 'VARCHAR' OR regexp_matches({s}, '{_CONTROL}') THEN {_q(DEFER)} "
             f"WHEN length({value}) = 0 THEN {empty} "
             f"WHEN length({value}) > {limit} THEN '{name}: ' || length({value}) || "
             f"' characters after trimming, the limit is {limit}' ELSE NULL END)")
    stored = f"(CASE WHEN {t} = 'VARCHAR' THEN nullif({value}, '') END)"
    return stored, error


def _number_field(name: str, limit: float) -> tuple[str, str]:
    """(value, envelope error) of latency_ms or cost_usd: a JSON number (or numeric text, which
    pydantic parses too) from 0 to the limit; an integer out of range has a reason here."""
    t, v, s = _t(f"$.{name}"), _v(f"$.{name}"), f"json_extract_string(doc, '$.{name}')"
    number = f"TRY_CAST({v} AS DOUBLE)"
    text_number = f"TRY_CAST({s} AS DOUBLE)"
    shown = f"a finite number from 0 to {limit:.0f}"
    value = (f"(CASE WHEN {t} IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN {number} "
             f"WHEN {t} = 'VARCHAR' THEN {text_number} END)")
    error = (f"(CASE WHEN {t} IS NULL OR {t} = 'NULL' THEN NULL "
             f"WHEN {t} IN ('BIGINT', 'UBIGINT', 'DOUBLE') AND starts_with({v}, '-') "
             f"AND {number} = 0 THEN {_q(DEFER)} "
             f"WHEN {t} IN ('BIGINT', 'UBIGINT', 'DOUBLE') AND {number} BETWEEN 0 AND {limit} "
             f"THEN NULL "
             f"WHEN {t} IN ('BIGINT', 'UBIGINT') THEN '{name}: must be {shown} (got ' || {v} "
             f"|| ')' "
             f"WHEN {t} = 'VARCHAR' AND regexp_full_match({s}, '\\d{{1,10}}(\\.\\d{{1,10}})?') "
             f"AND {text_number} <= {limit} THEN NULL "
             f"ELSE {_q(DEFER)} END)")
    return value, error


def _created_at() -> tuple[str, str]:
    t, s = _t("$.created_at"), _s("$.created_at")
    value = f"TRY_CAST({s} AS TIMESTAMPTZ)"
    error = (f"(CASE WHEN {t} IS NULL THEN 'created_at: missing required field' "
             f"WHEN {t} = 'NULL' THEN "
             f"'created_at: Value error, must be an ISO 8601 timestamp (got null)' "
             f"WHEN {t} = 'VARCHAR' AND regexp_full_match({s}, '{_ISO}') "
             f"AND year({value}) BETWEEN 1000 AND 9998 THEN NULL ELSE {_q(DEFER)} END)")
    return value, error


def _py_str(text: str) -> str:
    """Python's repr() of printable ASCII text (the rows `ascii` marks), in SQL."""
    escaped = f"replace({text}, '\\', '\\\\')"
    return (f"(CASE WHEN {text} IS NULL THEN 'None' "
            f"WHEN contains({text}, '''') AND NOT contains({text}, '\"') "
            f"THEN '\"' || {escaped} || '\"' "
            f"ELSE '''' || replace({escaped}, '''', '\\''') || '''' END)")


def _py_float(number: str) -> str:
    # DuckDB writes doubles as Python's repr does (shortest round trip; -0.0 never gets here).
    return f"(CASE WHEN {number} IS NULL THEN 'None' ELSE CAST({number} AS VARCHAR) END)"


def _isoformat(timestamp: str) -> str:
    """datetime.isoformat() of a UTC timestamp (years 1000 to 9999)."""
    return (f"strftime({timestamp}, '%Y-%m-%dT%H:%M:%S') || CASE WHEN "
            f"strftime({timestamp}, '%f') = '000000' THEN '' ELSE '.' || "
            f"strftime({timestamp}, '%f') END || '+00:00'")


def _classify_sql() -> str:
    tools, teacher_error = _tool_sql()
    exports, exports_error = _exports_sql()
    request_id, request_id_error = _text_field("request_id", ID_MAX_CHARS, True)
    intent, intent_error = _text_field("intent", INTENT_MAX_CHARS, True)
    created_at, created_at_error = _created_at()
    teacher_model, teacher_model_error = _text_field("teacher_model", ID_MAX_CHARS, False)
    session_id, session_id_error = _text_field("session_id", ID_MAX_CHARS, False)
    latency, latency_error = _number_field("latency_ms", LATENCY_MS_MAX)
    cost, cost_error = _number_field("cost_usd", COST_USD_MAX)

    def missing_only(name: str) -> str:
        return f"(CASE WHEN {_t('$.' + name)} IS NULL THEN '{name}: missing required field' END)"

    envelope = [request_id_error, intent_error, created_at_error, missing_only("teacher"),
                missing_only("exports"), teacher_model_error, latency_error, cost_error,
                session_id_error]
    known = ", ".join(_q(name) for name in FIELDS)
    # Keys beyond the contract are ignored by the validator, but Python's decoder has read
    # their values: only scalars are sure to read the same in both.
    # Counted over every top-level value (a wildcard path: no key is ever written into a path).
    nested = ("len(list_filter(json_extract(doc, '$.*'), "
              "lambda x: json_type(x) IN ('OBJECT', 'ARRAY')))")
    expected = " + ".join(f"({_t('$.' + name)} IN ('OBJECT', 'ARRAY'))::INTEGER"
                          for name in ("teacher", "exports"))
    extra_scalar = (f"(list_has_all([{known}], {_k('$')}) OR {nested} = {expected})")
    return f"""
        CREATE TABLE classified AS
        WITH checked AS (
            SELECT seq, doc, t, v, s, k,
                   len({_k('$')}) = len(list_distinct({_k('$')})) AND
                   coalesce({extra_scalar}, true) AS readable,
                   [{', '.join(envelope)}] AS envelope,
                   coalesce({teacher_error}, {exports_error}) AS later
            FROM parsed
        ), decided AS (
            SELECT *, CASE
                WHEN NOT readable OR list_contains(envelope, {_q(DEFER)}) THEN 'defer'
                WHEN list_bool_or(list_transform(envelope, lambda x: x IS NOT NULL)) THEN 'bad'
                WHEN later = {_q(DEFER)} THEN 'defer'
                WHEN later IS NOT NULL THEN 'bad'
                ELSE 'good' END AS status
            FROM checked
        )
        SELECT seq, status,
               CASE status WHEN 'bad' THEN coalesce(
                   nullif(array_to_string(list_filter(envelope, lambda x: x IS NOT NULL), '; '), ''),
                   later) END AS reason,
               CASE WHEN status = 'good' THEN {request_id} END AS request_id,
               CASE WHEN status = 'good' THEN {intent} END AS intent_text,
               CASE WHEN status = 'good' THEN {created_at} END AS created_at,
               CASE WHEN status = 'good' THEN {tools['adjust']} END AS adjust,
               CASE WHEN status = 'good' THEN {tools['selective_adjust']} END AS selective_adjust,
               CASE WHEN status = 'good' THEN {tools['filter']} END AS filter,
               CASE WHEN status = 'good' THEN {tools['filter_name']} END AS filter_name,
               CASE WHEN status = 'good' THEN {exports['adjust']} END AS exports_adjust,
               CASE WHEN status = 'good' THEN {exports['selective_adjust']}
                    END AS exports_selective_adjust,
               CASE WHEN status = 'good' THEN {exports['filter']} END AS exports_filter,
               CASE WHEN status = 'good' THEN {teacher_model} END AS teacher_model,
               CASE WHEN status = 'good' THEN {latency} END AS latency_ms,
               CASE WHEN status = 'good' THEN {cost} END AS cost_usd,
               CASE WHEN status = 'good' THEN {session_id} END AS session_id
        FROM decided
    """


def _good_sql() -> str:
    """The good rows' stage columns; intent key and hash in SQL for printable ASCII text."""
    text = ("request_id", "intent_text", "teacher_model", "session_id")
    ascii_ = " AND ".join(f"regexp_full_match(coalesce({name}, ''), '[ -~]*')" for name in text)
    parts = [_py_str("c.request_id"), _py_str("c.intent_text"),
             f"'''' || {_isoformat('c.created_at')} || ''''",
             *(f"(CASE WHEN c.{tool} IS NULL THEN 'None' ELSE '''' || c.{tool} || '''' END)"
               for tool in TOOLS),
             *(f"CAST(c.exports_{tool} AS VARCHAR)" for tool in TOOLS),
             _py_str("c.teacher_model"), _py_float("c.latency_ms"), _py_float("c.cost_usd"),
             _py_str("c.session_id")]
    content = "'(' || " + " || ', ' || ".join(parts) + " || ')'"
    return f"""
        INSERT INTO good
        SELECT c.seq, c.request_id,
               CASE WHEN ascii THEN trim(regexp_replace(lower(c.intent_text), ' +', ' ', 'g'))
                    ELSE key_udf(c.intent_text) END,
               c.intent_text, c.created_at, c.adjust, c.selective_adjust, c.filter,
               c.filter_name, c.exports_adjust, c.exports_selective_adjust, c.exports_filter,
               c.teacher_model, c.latency_ms, c.cost_usd, c.session_id,
               CASE WHEN ascii THEN sha1({content})
                    ELSE hash_udf(c.request_id, c.intent_text, {_isoformat('c.created_at')},
                                  c.adjust, c.selective_adjust, c.filter, c.exports_adjust,
                                  c.exports_selective_adjust, c.exports_filter, c.teacher_model,
                                  c.latency_ms, c.cost_usd, c.session_id) END,
               src.location, coalesce(src.raw, src.doc)
        FROM (SELECT *, {ascii_} AS ascii FROM classified WHERE status = 'good') c
        JOIN src USING (seq)
    """


def content_hash(parts: tuple[Any, ...]) -> str:
    """`LogRecord.content_hash` of already validated parts (request_id, intent, created_at
    ISO text, the three tools' JSON, the three export counts, teacher_model, latency_ms,
    cost_usd, session_id)."""
    return hashlib.sha1(repr(parts).encode()).hexdigest()


def _key_udf(texts: Any) -> Any:
    import pyarrow as pa

    return pa.array([intent_key(text) for text in texts.to_pylist()], pa.string())


def _hash_udf(request_id: Any, intent: Any, created_at: Any, adjust: Any, selective: Any,
              filter_: Any, exports_adjust: Any, exports_selective: Any, exports_filter: Any,
              teacher_model: Any, latency_ms: Any, cost_usd: Any, session_id: Any) -> Any:
    import pyarrow as pa

    columns = (request_id, intent, created_at, adjust, selective, filter_, exports_adjust,
               exports_selective, exports_filter, teacher_model, latency_ms, cost_usd, session_id)
    rows = zip(*(column.to_pylist() for column in columns))
    return pa.array([content_hash(parts) for parts in rows], pa.string())


# --------------------------------------------------------------------------- the stage


class SqlStage:
    """A file's records in a private DuckDB database inside the ingest's staging folder."""

    def __init__(self, folder: Path, threads: int | None = None):
        self.connection = duckdb.connect(str(folder / "stage.duckdb"))
        self.connection.execute("SET TimeZone = 'UTC'")
        self.connection.execute("SET preserve_insertion_order = true")
        self.connection.execute(f"SET temp_directory = {_q(str(folder / 'spill'))}")
        self.connection.execute("SET memory_limit = '1GB'")
        if threads is not None:
            self.connection.execute(f"SET threads = {int(threads)}")
        self.connection.execute("CREATE TABLE src (seq BIGINT, location VARCHAR, raw VARCHAR, "
                                "doc VARCHAR)")
        columns = ", ".join(f"{name} {kind}" for name, kind in zip(STAGE_COLUMNS, _STAGE_TYPES))
        self.connection.execute(f"CREATE TABLE good ({columns})")
        self.connection.create_function("key_udf", _key_udf, ["VARCHAR"], "VARCHAR",
                                        type=PythonUDFType.ARROW, side_effects=False)
        self.connection.create_function(
            "hash_udf", _hash_udf,
            ["VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT",
             "BIGINT", "BIGINT", "VARCHAR", "DOUBLE", "DOUBLE", "VARCHAR"], "VARCHAR",
            type=PythonUDFType.ARROW, side_effects=False,
            null_handling=FunctionNullHandling.SPECIAL)

    def close(self) -> None:
        self.connection.close()

    def add_lines(self, lines: Any, first_line: int) -> int:
        """Add JSONL lines (an Arrow string array, physical line numbers from `first_line`):
        blank lines are skipped, a trailing CR and line 1's byte-order mark removed, as
        `workbench.log_readers` does. Returns the records added."""
        import pyarrow as pa

        self.connection.register("lines_chunk", pa.table({
            "line": pa.array(range(first_line, first_line + len(lines)), pa.int64()),
            "text": lines}))
        try:
            added = self.connection.execute(
                "INSERT INTO src SELECT line, 'line ' || line, NULL, CASE "
                "WHEN line = 1 THEN regexp_replace(rtrim(text, chr(13)), '^\\x{FEFF}', '') "
                "WHEN suffix(text, chr(13)) THEN rtrim(text, chr(13)) ELSE text END "
                "FROM lines_chunk WHERE regexp_matches(text, '[^ \\t\\n\\r\\x0B\\f]')"
            ).fetchall()
        finally:
            self.connection.unregister("lines_chunk")
        return int(added[0][0])

    def add_records(self, seq: Sequence[int], location: Sequence[str], raw: Sequence[str],
                    doc: Sequence[str | None]) -> None:
        """Add records read by Python (CSV, Parquet): a None doc is decided by Python."""
        import pyarrow as pa

        self.connection.register("records_chunk", pa.table({
            "seq": pa.array(seq, pa.int64()), "location": pa.array(location, pa.string()),
            "raw": pa.array(raw, pa.string()), "doc": pa.array(doc, pa.string())}))
        try:
            self.connection.execute("INSERT INTO src SELECT * FROM records_chunk")
        finally:
            self.connection.unregister("records_chunk")

    def classify(self) -> None:
        """Decide every record (good, bad with its reason, or deferred); stage the good ones."""
        paths = "[" + ", ".join(_q(p) for p in PATHS) + "]"
        strings = "[" + ", ".join(_q(p) for p in _STRINGS) + "]"
        objects = "[" + ", ".join(_q(p) for p in _OBJECTS) + "]"
        # Only text both decoders read alike is parsed; the rest is deferred. Parsed once into
        # an in-memory table, so that no JSON function runs again for each use of its result.
        self.connection.execute(
            f"CREATE TEMP TABLE parsed AS SELECT seq, doc, json_type(doc, {paths}) AS t, "
            f"json_extract(doc, {paths}) AS v, json_extract_string(doc, {strings}) AS s, "
            f"json_keys(doc, {objects}) AS k FROM src WHERE doc IS NOT NULL "
            f"AND strlen(doc) <= {DOC_MAX_BYTES} AND NOT regexp_matches(doc, {_q(_UNSURE_JSON)}) "
            "AND json_valid(doc) AND json_type(doc) = 'OBJECT'")
        self.connection.execute(_classify_sql())
        self.connection.execute("DROP TABLE parsed")
        self.connection.execute(_good_sql())
        # An intent of nothing but zero-width characters has an empty key: Python says why.
        self.connection.execute(
            "UPDATE classified SET status = 'defer' WHERE seq IN "
            "(SELECT seq FROM good WHERE intent_key = '')")
        self.connection.execute("DELETE FROM good WHERE intent_key = ''")

    def bad(self) -> list[dict]:
        """Records SQL quarantines: seq, location, reason, raw."""
        return self._query(
            "SELECT c.seq, s.location, c.reason, coalesce(s.raw, s.doc) AS raw "
            "FROM classified c JOIN src s USING (seq) WHERE c.status = 'bad' ORDER BY c.seq")

    def deferred(self, batch: int = 10_000) -> Iterator[list[dict]]:
        """Batches (lists of dicts: seq, location, raw, doc) of the records Python decides."""
        # A cursor of its own: the caller adds rows between batches on the main connection.
        cursor = self.connection.cursor().execute(
            "SELECT s.seq, s.location, s.raw, s.doc FROM src s "
            "ANTI JOIN (SELECT seq FROM classified WHERE status <> 'defer') USING (seq) "
            "ORDER BY s.seq")
        names = [column[0] for column in cursor.description]
        while True:
            rows = cursor.fetchmany(batch)
            if not rows:
                return
            yield [dict(zip(names, row)) for row in rows]

    def add_good(self, rows: Sequence[tuple]) -> None:
        """Add rows Python validated (tuples in STAGE_COLUMNS order, seq = the record's)."""
        import pyarrow as pa

        if not rows:
            return
        columns = list(zip(*rows))
        types = {"BIGINT": pa.int64(), "VARCHAR": pa.string(), "DOUBLE": pa.float64(),
                 "TIMESTAMPTZ": pa.timestamp("us", tz="UTC")}
        self.connection.register("python_good", pa.table({
            name: pa.array(values, types[kind])
            for name, kind, values in zip(STAGE_COLUMNS, _STAGE_TYPES, columns)}))
        try:
            self.connection.execute("INSERT INTO good SELECT * FROM python_good")
        finally:
            self.connection.unregister("python_good")

    def repeats(self) -> tuple[int, list[dict]]:
        """Requests repeated within the file after their first valid occurrence: (how many
        have the same content, the others with seq, location, raw, request_id and the first
        occurrence's location). The first occurrence stays in `good`; the repeats leave it."""
        self.connection.execute(
            "CREATE TABLE repeated AS SELECT g.seq, g.request_id, g.source_location, g.raw, "
            "g.content_hash = f.content_hash AS same, f.source_location AS first_location "
            "FROM good g JOIN (SELECT request_id, arg_min(content_hash, seq) AS content_hash, "
            "arg_min(source_location, seq) AS source_location, min(seq) AS first "
            "FROM good GROUP BY request_id HAVING count(*) > 1) f "
            "ON g.request_id = f.request_id AND g.seq > f.first")
        same = int(self.connection.execute(
            "SELECT count(*) FROM repeated WHERE same").fetchall()[0][0])
        conflicts = self._query(
            "SELECT seq, source_location AS location, raw, request_id, first_location "
            "FROM repeated WHERE NOT same ORDER BY seq")
        self.connection.execute("DELETE FROM good WHERE seq IN (SELECT seq FROM repeated)")
        return same, conflicts

    def write(self, path: Path) -> tuple[int, Any]:
        """Write the staged rows in file order to `path` (Parquet, seq from 0) and return
        (rows, the file's intents as Arrow: intent_key, intent_text, first_seen_at, n,
        exported, last_seen, outputs)."""
        literal = _q(str(path))
        select = ", ".join(STAGE_COLUMNS[1:])
        self.connection.execute(
            f"COPY (SELECT row_number() OVER (ORDER BY seq) - 1 AS seq, {select} FROM good "
            f"ORDER BY seq) TO {literal} (FORMAT parquet)")
        count = int(self.connection.execute("SELECT count(*) FROM good").fetchall()[0][0])
        intents = self.connection.sql(
            "SELECT intent_key, arg_min(intent_text, seq) AS intent_text, "
            "arg_min(created_at, seq) AS first_seen_at, count(*) AS n, "
            "count(*) FILTER (WHERE exports_adjust + exports_selective_adjust + exports_filter "
            "> 0) AS exported, max(created_at) AS last_seen, "
            "count(DISTINCT (adjust, selective_adjust, filter)) AS outputs "
            "FROM good GROUP BY intent_key").to_arrow_table()
        return count, intents

    def _query(self, sql: str) -> list[dict]:
        cursor = self.connection.execute(sql)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

