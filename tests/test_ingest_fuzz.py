"""Fuzzing ingest (issue 11, item 1): no record, however strange, sinks a file.

Hypothesis writes files of records built from the contract's fields with hostile values (huge
and non-finite numbers, far-off timestamps, lone surrogates, NUL, zero-width text, deep nesting,
repeated keys, garbage lines) mixed with valid records. Whatever it writes, ingest must not
raise, and every record must end up exactly once as ingested, duplicate or quarantined, in the
summary and in the store.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.ingest import ingest_file
from tests.conftest import make_record
from tests.strategies import raw_answers
from workbench.store import Store

FIELDS = ("request_id", "intent", "created_at", "teacher", "exports", "teacher_model",
          "latency_ms", "cost_usd", "session_id")

# Text that has broken ingest before: lone surrogates, NUL, zero-width and full-width forms,
# combining marks, very long text.
nasty_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "\u200b", "\u200d\u2060\ufeff", "ｃａｆｅ",
                     "cafe\u0301", "café", "  ", "", "\u0000x", "x" * 600, "Σ\u0345"]),
)
timestamps = st.one_of(
    st.sampled_from(["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                     "2024-01-01T10:00:00Z", "2024-02-30T00:00:00", "yesterday", "1704103200",
                     "2024-01-01T10:00:00+23:59", "0001-01-01T00:00:00"]),
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.integers(),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**20, 2**63, 2**64 - 1, -1, 0, 1, 2**31]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e300, 1e308, -0.0, 0.5]),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, nasty_text)
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(nasty_text, inner, max_size=3), max_leaves=8)
exports = st.one_of(
    st.dictionaries(st.sampled_from(["adjust", "selective_adjust", "filter"]), numbers,
                    max_size=3),
    values,
)
teachers = st.one_of(raw_answers, values)


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A record: valid, with some fields replaced by hostile values, some dropped, some extra."""
    record = make_record(request_id=draw(st.sampled_from(["r1", "r2", "r3"]) | nasty_text),
                         teacher=draw(raw_answers))
    replace = draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True))
    strategy = {"intent": nasty_text, "created_at": timestamps, "teacher": teachers,
                "exports": exports, "latency_ms": numbers | values, "cost_usd": numbers | values}
    for name in replace:
        record[name] = draw(strategy.get(name, nasty_text | values))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=1)):
        record.pop(name, None)
    return record


def deep(levels: int) -> str:
    return '{"adjust":' * levels + "1" + "}" * levels


@st.composite
def jsonl_lines(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["record"] * 6 + ["repeated-key", "deep", "garbage", "value"]))
    if kind == "record":
        return json.dumps(draw(records()), ensure_ascii=draw(st.booleans()))
    if kind == "repeated-key":
        return json.dumps(draw(records()))[:-1] + ', "intent": "again"}'
    if kind == "deep":
        record = make_record(request_id=draw(nasty_text))
        del record["teacher"]
        text = json.dumps(record)
        return text[:-1] + ', "teacher": ' + deep(draw(st.sampled_from([50, 990, 5000]))) + "}"
    if kind == "garbage":
        return draw(st.text(max_size=30)).replace("\n", " ").replace("\r", " ")
    return json.dumps(draw(values))


def physical_lines(text: str) -> list[str]:
    """The lines ingest counts as records (it splits on \\n only and skips lines of ASCII
    whitespace)."""
    return [line for line in text.split("\n") if line.encode("utf-8", "surrogatepass").strip()]


def write_text(path: Path, text: str) -> None:
    # Lone surrogates cannot be encoded; the file gets them as escaped bytes, which is what a
    # broken producer writes (invalid UTF-8 for ingest to report).
    path.write_bytes(text.encode("utf-8", "surrogatepass"))


def check_every_record_accounted(path: Path, records_in_file: int) -> None:
    store = Store(path.with_suffix(".duckdb"), lock_timeout=2.0)
    summary = ingest_file(path, store)  # must not raise
    assert summary.read == records_in_file
    assert summary.ingested + summary.duplicates + summary.quarantined == summary.read
    if not store.exists:
        return
    with store.session() as session:
        assert session.value("SELECT count(*) FROM requests") == summary.ingested
        assert session.value("SELECT count(*) FROM quarantine") == summary.quarantined
        assert session.value("SELECT sum(request_count) FROM intent_stats") == \
            (summary.ingested or None)
        # Every stored request has its intent and its statistics.
        assert session.value("SELECT count(*) FROM requests ANTI JOIN intents "
                             "USING (intent_key)") == 0


FUZZ = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(st.lists(jsonl_lines(), min_size=1, max_size=12))
def test_no_jsonl_record_sinks_the_file(lines: list[str]) -> None:
    text = "\n".join([json.dumps(make_record(request_id="anchor"))] + lines) + "\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "logs.jsonl"
        write_text(path, text)
        check_every_record_accounted(path, len(physical_lines(text)))


def csv_cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return json.dumps(value)


@FUZZ
@given(st.lists(records(), min_size=1, max_size=10),
       st.sampled_from([list(FIELDS), ["request_id", "intent", "created_at", "teacher",
                                       "exports", "intent"]]))
def test_no_csv_row_sinks_the_file(rows: list[dict[str, Any]], columns: list[str]) -> None:
    buffer = io.StringIO()
    # "\r\n" ends rows, so the writer quotes a cell holding a lone \r or \n (with "\n" it
    # would leave a \r bare, which splits the row: another file than the one meant).
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    body = 0
    for record in [make_record(request_id="anchor"), *rows]:
        cells = [csv_cell(record.get(name, "")) for name in columns]
        if not any(cell.strip() for cell in cells):
            continue  # a blank row is not a record
        writer.writerow(cells)
        body += 1
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "logs.csv"
        write_text(path, buffer.getvalue())
        store = Store(path.with_suffix(".duckdb"), lock_timeout=2.0)
        summary = ingest_file(path, store)  # must not raise
        # A cell with a newline spans lines, but it is still one record.
        assert summary.read == body
        assert summary.ingested + summary.duplicates + summary.quarantined == summary.read
