"""Ingest of bad input (SPEC 3): good records land, bad ones are quarantined with where and why.

Every file here is tiny and written by the test; every expected count is worked out from it by
hand (the comments say how). Physical line numbers count from 1 and include blank lines and the
CSV header; Parquet rows count from 1.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import ingest
from pipelines.ingest import FileSummary, IngestConfig, ingest_file
from tests.conftest import make_record
from workbench.errors import IngestError
from workbench.store import Store, requests
from workbench.tools import ADJUST_KEYS, COLOURS

CSV_COLUMNS = ("request_id", "intent", "created_at", "teacher", "exports")



# --------------------------------------------------------------------------- helpers


def line_of(record: dict[str, Any]) -> str:
    return json.dumps(record)


def write_jsonl(path: Path, lines: Sequence[dict | str | bytes]) -> Path:
    """One item per physical line: dicts as JSON, str as written, bytes as written."""
    chunks = []
    for item in lines:
        if isinstance(item, dict):
            chunks.append(line_of(item).encode())
        elif isinstance(item, str):
            chunks.append(item.encode())
        else:
            chunks.append(item)
    path.write_bytes(b"\n".join(chunks) + b"\n")
    return path


def csv_row(record: dict[str, Any], columns: tuple[str, ...] = CSV_COLUMNS) -> list[str]:
    """A record as CSV cells; nested fields (teacher, exports) as JSON text."""
    cells = []
    for name in columns:
        value = record.get(name)
        if name in ("teacher", "exports"):
            cells.append(json.dumps(value))
        else:
            cells.append("" if value is None else str(value))
    return cells


def csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def write_csv(path: Path, records: list[dict[str, Any]],
              columns: tuple[str, ...] = CSV_COLUMNS) -> Path:
    path.write_text(csv_text([list(columns)] + [csv_row(r, columns) for r in records]),
                    encoding="utf-8")
    return path


def request_ids(store: Store) -> list[str]:
    if not store.exists:
        return []
    return [row["request_id"] for row in
            store.query("SELECT request_id FROM requests ORDER BY request_id")]


def quarantine_rows(store: Store) -> list[dict]:
    if not store.exists:
        return []
    return store.query("SELECT ingest_id, source_file, location, reason, raw FROM quarantine "
                       "ORDER BY quarantine_id")


def counts(summary: FileSummary) -> tuple[int, int, int, int]:
    return summary.read, summary.ingested, summary.duplicates, summary.quarantined


def snapshot(store: Store) -> dict[str, list[dict]]:
    """Every row of the tables an ingest writes (empty lists when the file does not exist)."""
    if not store.exists:
        return {}
    with store.session() as session:
        return {table: session.query(f"SELECT * FROM {table} ORDER BY ALL")
                for table in ("requests", "intents", "ingests", "quarantine")}


def good(request_id: str, **overrides: Any) -> dict[str, Any]:
    return make_record(request_id=request_id, **overrides)


def teacher(**tools: Any) -> dict[str, Any]:
    base = {"adjust": {"temperature": 30}, "selective_adjust": None,
            "filter": {"name": "warm_Golden", "intensity": 40}}
    base.update(tools)
    return base


# --------------------------------------------------------------------------- one bad JSONL line

# (case id, the bad line (a record or raw text), substrings the reason must contain)
BAD_LINES: list[tuple[str, dict | str, tuple[str, ...]]] = [
    ("malformed-json", '{"request_id": "bad", "intent": "golden hour", ',
     ("malformed JSON",)),
    ("not-an-object", '["bad", "golden hour"]', ("JSON object", "list")),
    ("missing-exports", {k: v for k, v in good("bad").items() if k != "exports"},
     ("exports", "missing")),
    ("missing-request-id", {k: v for k, v in good("bad").items() if k != "request_id"},
     ("request_id", "missing")),
    ("intent-a-number", good("bad", intent=42), ("intent", "42")),
    ("request-id-empty", good("", intent="x"), ("request_id", '""')),
    ("teacher-not-object", good("bad", teacher="warm"), ("teacher", '"warm"')),
    ("adjust-a-list", good("bad", teacher=teacher(adjust=[10, 20])),
     ("teacher.adjust", "[10, 20]")),
    ("slider-150", good("bad", teacher=teacher(adjust={"temperature": 150})),
     ("teacher.adjust.temperature", "150", "[-100, 100]")),
    ("slider-minus-101", good("bad", teacher=teacher(adjust={"contrast": -101})),
     ("teacher.adjust.contrast", "-101")),
    ("slider-12.5", good("bad", teacher=teacher(adjust={"temperature": 12.5})),
     ("teacher.adjust.temperature", "12.5", "integer")),
    ("slider-bool", good("bad", teacher=teacher(adjust={"temperature": True})),
     ("teacher.adjust.temperature", "true")),
    ("slider-string", good("bad", teacher=teacher(adjust={"temperature": "30"})),
     ("teacher.adjust.temperature", '"30"')),
    ("colour-150", good("bad", teacher=teacher(
        selective_adjust={"red": {"saturation": 150}})),
     ("teacher.selective_adjust.red.saturation", "150")),
    ("unknown-colour", good("bad", teacher=teacher(
        selective_adjust={"purple": {"saturation": 10}})),
     ("teacher.selective_adjust.purple", "purple")),
    ("unknown-channel", good("bad", teacher=teacher(
        selective_adjust={"red": {"hue": 10}})),
     ("teacher.selective_adjust.red.hue", "10")),
    ("intensity-101", good("bad", teacher=teacher(
        filter={"name": "warm_Golden", "intensity": 101})),
     ("teacher.filter.intensity", "101", "[0, 100]")),
    ("filter-without-intensity", good("bad", teacher=teacher(filter={"name": "warm_Golden"})),
     ("teacher.filter.intensity", "required")),
    ("unknown-filter", good("bad", teacher=teacher(
        filter={"name": "sepia_Fake", "intensity": 50})),
     ("teacher.filter.name", "sepia_Fake", "catalogue")),
    ("unknown-tool", good("bad", teacher=teacher(crop={"left": 10})),
     ("teacher.crop", "crop", '{"left": 10}')),
    ("unknown-slider", good("bad", teacher=teacher(adjust={"temperature": 30, "glow": 5})),
     ("teacher.adjust.glow", "glow", "5")),
    ("empty-intent", good("bad", intent=""), ("intent", '""')),
    ("whitespace-intent", good("bad", intent="   \t "), ("intent",)),
    ("negative-export", good("bad", exports={"adjust": 1, "selective_adjust": 0, "filter": -1}),
     ("exports.filter", "-1")),
    ("fractional-export", good("bad", exports={"adjust": 1.5}), ("exports.adjust", "1.5")),
    ("exports-not-object", good("bad", exports=3), ("exports", "3")),
    ("unix-number-timestamp", good("bad", created_at=1704103200),
     ("created_at", "1704103200")),
    ("timestamp-text", good("bad", created_at="yesterday"), ("created_at", "yesterday")),
    ("negative-latency", good("bad", latency_ms=-5), ("latency_ms", "-5")),
    ("teacher-model-number", good("bad", teacher_model=3), ("teacher_model", "3")),
]


def test_each_bad_jsonl_line_is_quarantined_and_the_good_ones_land(
        tmp_path: Path, store: Store) -> None:
    # Line 1 is good (g0); then each case's bad line, each followed by a good line g<i>.
    # So case i (from 0) is on line 2 + 2i and good g<i> on line 3 + 2i.
    n = len(BAD_LINES)
    lines: list[dict | str] = [good("g0", intent="cool morning")]
    for i, (_, bad, _) in enumerate(BAD_LINES):
        lines += [bad, good(f"g{i + 1}", intent=f"look {i + 1}")]
    path = write_jsonl(tmp_path / "logs.jsonl", lines)
    summary = ingest_file(path, store)

    assert counts(summary) == (1 + 2 * n, 1 + n, 0, n)
    assert not summary.failed and summary.error is None
    assert request_ids(store) == sorted(f"g{i}" for i in range(n + 1))
    rows = {row["location"]: row for row in quarantine_rows(store)}
    assert sorted(rows) == sorted(f"line {2 + 2 * i}" for i in range(n))
    problems = []
    for i, (case, bad, must_name) in enumerate(BAD_LINES):
        row = rows[f"line {2 + 2 * i}"]
        missing = [text for text in must_name if text not in row["reason"]]
        if missing:
            problems.append(f"{case}: reason {row['reason']!r} lacks {missing}")
        if row["raw"] != (bad if isinstance(bad, str) else line_of(bad)):
            problems.append(f"{case}: raw not kept: {row['raw']!r}")
        if (row["source_file"], row["ingest_id"]) != (str(path), summary.ingest_id):
            problems.append(f"{case}: source {row['source_file']!r}, ingest {row['ingest_id']}")
    assert not problems, "\n".join(problems)
    [ingest_row] = store.query("SELECT * FROM ingests")
    assert (ingest_row["n_read"], ingest_row["n_ingested"], ingest_row["n_duplicates"],
            ingest_row["n_quarantined"], ingest_row["error"]) == (1 + 2 * n, 1 + n, 0, n, None)


@pytest.mark.parametrize("case", ["malformed-json", "slider-150", "unknown-filter"])
def test_one_bad_line_between_two_good_ones(tmp_path: Path, store: Store, case: str) -> None:
    # line 1 good g1, line 2 the bad record, line 3 good g3: read 3, ingested 2, quarantined 1.
    [(bad, must_name)] = [(b, n) for c, b, n in BAD_LINES if c == case]
    path = write_jsonl(tmp_path / "logs.jsonl", [good("g1"), bad, good("g3", intent="cool morning")])
    summary = ingest_file(path, store)
    assert counts(summary) == (3, 2, 0, 1)
    assert request_ids(store) == ["g1", "g3"]
    [row] = quarantine_rows(store)
    assert (row["source_file"], row["location"]) == (str(path), "line 2")
    assert all(text in row["reason"] for text in must_name), row["reason"]
    assert row["raw"] == (bad if isinstance(bad, str) else line_of(bad))


def test_blank_lines_count_as_physical_lines(tmp_path: Path, store: Store) -> None:
    # lines: 1 good, 2 blank, 3 blank, 4 bad (slider 150), 5 good. Blank lines are not records.
    path = write_jsonl(tmp_path / "logs.jsonl", [
        good("g1"), "", "   ", good("b4", teacher=teacher(adjust={"temperature": 150})),
        good("g5")])
    summary = ingest_file(path, store)
    assert counts(summary) == (3, 2, 0, 1)
    assert [r["location"] for r in quarantine_rows(store)] == ["line 4"]


def test_crlf_line_endings(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "logs.jsonl"
    path.write_bytes((line_of(good("g1")) + "\r\n" + "{broken\r\n" + line_of(good("g3")) + "\r\n")
                     .encode())
    summary = ingest_file(path, store)
    assert counts(summary) == (3, 2, 0, 1)
    [row] = quarantine_rows(store)
    assert (row["location"], row["raw"]) == ("line 2", "{broken")


# --------------------------------------------------------------------------- intents, length


def test_ten_kilobyte_intent_is_quarantined_with_its_length_and_raw_kept(
        tmp_path: Path, store: Store) -> None:
    long_intent = "  " + "a" * 10_000 + "  "  # 10,000 characters after trimming
    bad = good("long", intent=long_intent)
    path = write_jsonl(tmp_path / "logs.jsonl", [good("g1"), bad])
    summary = ingest_file(path, store)

    assert counts(summary) == (2, 1, 0, 1)
    [row] = quarantine_rows(store)
    assert row["location"] == "line 2"
    assert "intent" in row["reason"]
    assert "10000" in row["reason"] and "500" in row["reason"]
    assert row["raw"] == line_of(bad)  # the whole record, all 10 KB of it
    assert len(row["raw"]) > 10_000


def test_intent_limit_is_500_characters_after_trimming(tmp_path: Path, store: Store) -> None:
    # 500 'b' with spaces around: 500 after trimming, accepted; 501 'c': quarantined.
    path = write_jsonl(tmp_path / "logs.jsonl", [
        good("ok500", intent="   " + "b" * 500 + "   "), good("bad501", intent="c" * 501)])
    summary = ingest_file(path, store)
    assert counts(summary) == (2, 1, 0, 1)
    assert store.query("SELECT intent_text FROM requests")[0]["intent_text"] == "b" * 500
    [row] = quarantine_rows(store)
    assert "501" in row["reason"] and "500" in row["reason"]


def test_first_seen_spelling_is_kept_for_display(tmp_path: Path, store: Store) -> None:
    first = write_jsonl(tmp_path / "a.jsonl", [
        good("r1", intent="Golden Hour"), good("r2", intent="golden  hour"),
        good("r3", intent="  GOLDEN\thour "), good("r4", intent="Cool Morning")])
    summary = ingest_file(first, store)
    assert counts(summary) == (4, 4, 0, 0)
    second = write_jsonl(tmp_path / "b.jsonl", [good("r5", intent="golden hour"),
                                                good("r6", intent="cool   MORNING")])
    assert counts(ingest_file(second, store)) == (2, 2, 0, 0)

    intents = store.query("SELECT intent_key, intent_text, ingest_id FROM intents ORDER BY 1")
    assert intents == [
        {"intent_key": "cool morning", "intent_text": "Cool Morning", "ingest_id": 1},
        {"intent_key": "golden hour", "intent_text": "Golden Hour", "ingest_id": 1},
    ]
    # Each request keeps its own (trimmed) spelling and points at the shared key.
    rows = store.query("SELECT request_id, intent_key, intent_text FROM requests ORDER BY 1")
    assert [(r["intent_key"], r["intent_text"]) for r in rows] == [
        ("golden hour", "Golden Hour"), ("golden hour", "golden  hour"),
        ("golden hour", "GOLDEN\thour"), ("cool morning", "Cool Morning"),
        ("golden hour", "golden hour"), ("cool morning", "cool   MORNING")]


# --------------------------------------------------------------------------- encoding


def test_non_utf8_bytes_on_one_jsonl_line(tmp_path: Path, store: Store) -> None:
    # é written as the single Latin-1 byte 0xE9, which is not UTF-8.
    bad_line = json.dumps(good("latin1", intent="caf\u00e9"), ensure_ascii=False).encode("latin-1")
    assert b"\xe9" in bad_line
    path = write_jsonl(tmp_path / "logs.jsonl", [good("g1"), bad_line, good("g3")])
    summary = ingest_file(path, store)

    assert counts(summary) == (3, 2, 0, 1)
    assert request_ids(store) == ["g1", "g3"]
    [row] = quarantine_rows(store)
    assert row["location"] == "line 2"
    assert "UTF-8" in row["reason"]
    position = bad_line.index(b"\xe9")
    assert f"byte {position}" in row["reason"]
    assert "caf\\xe9" in row["raw"] and '"latin1"' in row["raw"]


def test_non_utf8_bytes_in_one_csv_row(tmp_path: Path, store: Store) -> None:
    header = ",".join(CSV_COLUMNS).encode()
    lines = [header,
             csv_text([csv_row(good("g1"))]).rstrip("\n").encode(),
             csv_text([csv_row(good("latin1", intent="caf\u00e9"))]).rstrip("\n").encode("latin-1"),
             csv_text([csv_row(good("g3"))]).rstrip("\n").encode()]
    path = tmp_path / "logs.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    summary = ingest_file(path, store)

    # header is line 1; rows on lines 2, 3 (bad), 4: read 3, ingested 2, quarantined 1.
    assert counts(summary) == (3, 2, 0, 1)
    assert request_ids(store) == ["g1", "g3"]
    [row] = quarantine_rows(store)
    assert row["location"] == "line 3"
    assert "UTF-8" in row["reason"]
    assert "latin1" in row["raw"] and "caf\\xe9" in row["raw"]


# --------------------------------------------------------------------------- CSV


def test_csv_good_rows_with_json_text_columns_and_optional_fields(
        tmp_path: Path, store: Store) -> None:
    columns = CSV_COLUMNS + ("teacher_model", "latency_ms", "cost_usd", "session_id")
    records = [
        good("c1", teacher_model="gpt-3.5", latency_ms=812.5, cost_usd=0.002, session_id="s1"),
        good("c2", intent="cool morning", teacher={"adjust": None, "selective_adjust": {
            "blue": {"saturation": -20}}, "filter": None}),  # optional cells left empty
    ]
    path = write_csv(tmp_path / "logs.csv", records, columns)
    summary = ingest_file(path, store)
    assert counts(summary) == (2, 2, 0, 0)
    rows = store.query("SELECT * FROM requests ORDER BY request_id")
    assert (rows[0]["teacher_model"], rows[0]["latency_ms"], rows[0]["cost_usd"],
            rows[0]["session_id"]) == ("gpt-3.5", 812.5, 0.002, "s1")
    assert (rows[1]["teacher_model"], rows[1]["latency_ms"], rows[1]["session_id"]) == \
        (None, None, None)
    assert rows[1]["adjust"] is None and rows[1]["filter"] is None
    assert json.loads(rows[1]["selective_adjust"])["blue"] == {"saturation": -20, "luminance": 0}
    assert rows[0]["source_location"] == "line 2" and rows[1]["source_location"] == "line 3"


CSV_BAD_ROWS: list[tuple[str, dict, tuple[str, ...]]] = [
    ("adjust-a-list", good("bad", teacher=teacher(adjust=[10, 20])),
     ("teacher.adjust", "[10, 20]")),
    ("slider-150", good("bad", teacher=teacher(adjust={"temperature": 150})),
     ("teacher.adjust.temperature", "150")),
    ("slider-12.5", good("bad", teacher=teacher(adjust={"temperature": 12.5})),
     ("teacher.adjust.temperature", "12.5")),
    ("unknown-filter", good("bad", teacher=teacher(filter={"name": "sepia_Fake", "intensity": 5})),
     ("teacher.filter.name", "sepia_Fake")),
    ("unknown-slider", good("bad", teacher=teacher(adjust={"glow": 5})),
     ("teacher.adjust.glow", "5")),
    ("negative-export", good("bad", exports={"filter": -2}), ("exports.filter", "-2")),
    ("blank-intent", good("bad", intent="   "), ("intent",)),
    ("bad-timestamp", good("bad", created_at="2024-13-45"), ("created_at", "2024-13-45")),
    ("bad-latency", good("bad", latency_ms="fast"), ("latency_ms", "fast")),
]


def test_each_bad_csv_row_is_quarantined_and_the_good_ones_land(
        tmp_path: Path, store: Store) -> None:
    # Line 1 header, line 2 good g0, then case i on line 3 + 2i and good g<i+1> on line 4 + 2i.
    columns = CSV_COLUMNS + ("latency_ms",)
    n = len(CSV_BAD_ROWS)
    records = [good("g0")]
    for i, (_, bad, _) in enumerate(CSV_BAD_ROWS):
        records += [bad, good(f"g{i + 1}", intent=f"look {i + 1}")]
    path = write_csv(tmp_path / "logs.csv", records, columns)
    summary = ingest_file(path, store)

    assert counts(summary) == (1 + 2 * n, 1 + n, 0, n)
    assert request_ids(store) == sorted(f"g{i}" for i in range(n + 1))
    rows = {row["location"]: row for row in quarantine_rows(store)}
    assert sorted(rows) == sorted(f"line {3 + 2 * i}" for i in range(n))
    problems = []
    for i, (case, bad, must_name) in enumerate(CSV_BAD_ROWS):
        row = rows[f"line {3 + 2 * i}"]
        missing = [text for text in must_name if text not in row["reason"]]
        if missing:
            problems.append(f"{case}: reason {row['reason']!r} lacks {missing}")
        if row["raw"] != csv_text([csv_row(bad, columns)]).rstrip("\n"):
            problems.append(f"{case}: raw not kept: {row['raw']!r}")
        if row["source_file"] != str(path):
            problems.append(f"{case}: source {row['source_file']!r}")
    assert not problems, "\n".join(problems)


def test_csv_cell_that_is_not_json_names_the_column(tmp_path: Path, store: Store) -> None:
    text = csv_text([list(CSV_COLUMNS), csv_row(good("g1")),
                     ["bad", "golden hour", "2024-01-01T10:00:00Z", "{adjust: 5", "{}"]])
    path = tmp_path / "logs.csv"
    path.write_text(text)
    summary = ingest_file(path, store)
    assert counts(summary) == (2, 1, 0, 1)
    [row] = quarantine_rows(store)
    assert row["location"] == "line 3"
    assert "teacher" in row["reason"] and "{adjust: 5" in row["reason"]


def test_a_file_of_only_bad_records_ingests_nothing_and_fails(tmp_path: Path, store: Store) -> None:
    # line 1 malformed, line 2 slider 150, line 3 unknown filter: read 3, quarantined 3.
    path = write_jsonl(tmp_path / "logs.jsonl", [
        "{oops", good("b2", teacher=teacher(adjust={"temperature": 150})),
        good("b3", teacher=teacher(filter={"name": "sepia_Fake", "intensity": 5}))])
    summary = ingest_file(path, store)
    assert counts(summary) == (3, 0, 0, 3)
    assert summary.failed
    assert request_ids(store) == []
    assert [r["location"] for r in quarantine_rows(store)] == ["line 1", "line 2", "line 3"]


def test_csv_missing_column_quarantines_every_row(tmp_path: Path, store: Store) -> None:
    columns = ("request_id", "intent", "created_at", "teacher")  # no exports column
    path = write_csv(tmp_path / "logs.csv", [good("g1"), good("g2"), good("g3")], columns)
    summary = ingest_file(path, store)

    assert counts(summary) == (3, 0, 0, 3)
    assert summary.failed
    assert request_ids(store) == []
    assert store.query("SELECT count(*) AS n FROM intents")[0]["n"] == 0
    rows = quarantine_rows(store)
    assert [r["location"] for r in rows] == ["line 2", "line 3", "line 4"]
    for row, rid in zip(rows, ("g1", "g2", "g3")):
        assert "exports" in row["reason"]
        assert row["source_file"] == str(path)
        assert row["raw"].startswith(rid + ",")


def test_csv_row_with_wrong_number_of_fields(tmp_path: Path, store: Store) -> None:
    short = csv_row(good("short"))[:4]                 # 4 fields
    long = csv_row(good("long")) + ["surplus"]         # 6 fields
    path = tmp_path / "logs.csv"
    path.write_text(csv_text([list(CSV_COLUMNS), csv_row(good("g1")), short, long,
                              csv_row(good("g5"))]))
    summary = ingest_file(path, store)

    # lines: 1 header, 2 g1, 3 short, 4 long, 5 g5
    assert counts(summary) == (4, 2, 0, 2)
    assert request_ids(store) == ["g1", "g5"]
    rows = quarantine_rows(store)
    assert [r["location"] for r in rows] == ["line 3", "line 4"]
    assert "4" in rows[0]["reason"] and "5" in rows[0]["reason"]
    assert "6" in rows[1]["reason"] and "5" in rows[1]["reason"]
    assert rows[0]["raw"].startswith("short,") and rows[1]["raw"].endswith(",surplus")


def test_csv_locations_are_physical_lines_across_multiline_cells(
        tmp_path: Path, store: Store) -> None:
    # Row g1's teacher cell holds two newlines, so g1 spans lines 2-4 and the bad row is line 5.
    teacher_text = '{"adjust": {"temperature": 30},\n"selective_adjust": null,\n"filter": null}'
    assert teacher_text.count("\n") == 2
    rows = [list(CSV_COLUMNS),
            ["g1", "golden hour", "2024-01-01T10:00:00Z", teacher_text, '{"adjust": 1}'],
            csv_row(good("bad", teacher=teacher(adjust={"temperature": 150}))),
            csv_row(good("g6"))]
    path = tmp_path / "logs.csv"
    path.write_text(csv_text(rows))
    assert path.read_text().count("\n") == 6  # 1 header + 3 for g1 + bad + g6
    summary = ingest_file(path, store)
    assert counts(summary) == (3, 2, 0, 1)
    assert [r["location"] for r in quarantine_rows(store)] == ["line 5"]
    locations = store.query("SELECT request_id, source_location FROM requests ORDER BY 1")
    assert locations == [{"request_id": "g1", "source_location": "line 2"},
                         {"request_id": "g6", "source_location": "line 6"}]


# --------------------------------------------------------------------------- empty, missing


@pytest.mark.parametrize("name, content", [
    ("empty.jsonl", b""), ("blank.jsonl", b"\n  \n\n"), ("empty.csv", b""),
    ("header-only.csv", (",".join(CSV_COLUMNS) + "\n").encode()),
])
def test_empty_file_fails_and_is_recorded(tmp_path: Path, store: Store, name: str,
                                          content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    summary = ingest_file(path, store)
    assert counts(summary) == (0, 0, 0, 0)
    assert summary.failed
    assert summary.error and "no records" in summary.error
    [row] = store.query("SELECT * FROM ingests")
    assert row["source_file"] == str(path) and row["n_read"] == 0
    assert row["error"] == summary.error
    assert request_ids(store) == [] and quarantine_rows(store) == []


def test_missing_file_raises_and_writes_nothing(tmp_path: Path, store: Store) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(IngestError, match="nope.jsonl"):
        ingest_file(missing, store)
    assert not store.exists  # not even created


def test_run_reports_a_missing_file_as_failed_and_goes_on(tmp_path: Path, store: Store) -> None:
    existing = write_jsonl(tmp_path / "a.jsonl", [good("g1"), good("g2")])
    ingest_file(existing, store)
    before = snapshot(store)

    missing = tmp_path / "nope.jsonl"
    result = ingest.run(IngestConfig((missing,)), store)
    [summary] = result.files
    assert summary.failed and result.failed
    assert summary.source_file == str(missing)
    assert summary.error is not None
    assert "nope.jsonl" in summary.error and "no such file" in summary.error
    assert counts(summary) == (0, 0, 0, 0)
    assert snapshot(store) == before  # no ingests row, nothing else either


def test_run_goes_on_after_a_failed_file(tmp_path: Path, store: Store) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [good("g1"), "{bad"])
    missing = tmp_path / "nope.jsonl"
    b = write_jsonl(tmp_path / "b.jsonl", [good("g2"), good("g3"), good("g1")])
    result = ingest.run(IngestConfig((a, missing, b)), store)
    # a: read 2, ingested 1, quarantined 1; missing: zeros; b: read 3, ingested 2, g1 duplicate.
    assert [counts(f) for f in result.files] == [(2, 1, 0, 1), (0, 0, 0, 0), (3, 2, 1, 0)]
    assert [f.failed for f in result.files] == [False, True, False]
    assert result.totals == {"read": 5, "ingested": 3, "duplicates": 1, "quarantined": 1}
    assert request_ids(store) == ["g1", "g2", "g3"]
    assert store.query("SELECT count(*) AS n FROM ingests")[0]["n"] == 2


def test_unknown_extension_is_an_ingest_error(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "logs.txt"
    path.write_text(line_of(good("g1")) + "\n")
    with pytest.raises(IngestError, match=r"\.txt"):
        ingest_file(path, store)
    assert request_ids(store) == []


# --------------------------------------------------------------------------- duplicates


def test_duplicate_inside_a_file_with_identical_content_is_a_duplicate(
        tmp_path: Path, store: Store) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [good("r1"), good("r2"), good("r1")])
    summary = ingest_file(path, store)
    assert counts(summary) == (3, 2, 1, 0)
    assert request_ids(store) == ["r1", "r2"]
    assert quarantine_rows(store) == []


def test_same_instant_in_another_offset_is_the_same_content(tmp_path: Path, store: Store) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [
        good("r1", created_at="2024-01-01T10:00:00Z"),
        good("r1", created_at="2024-01-01T12:00:00+02:00")])
    assert counts(ingest_file(path, store)) == (2, 1, 1, 0)


def test_duplicate_inside_a_file_with_different_content_is_quarantined(
        tmp_path: Path, store: Store) -> None:
    second = good("r1", intent="cool morning")
    path = write_jsonl(tmp_path / "logs.jsonl", [good("r1"), good("r2"), second])
    summary = ingest_file(path, store)
    assert counts(summary) == (3, 2, 0, 1)
    [row] = quarantine_rows(store)
    assert row["location"] == "line 3"
    assert "r1" in row["reason"] and "line 1" in row["reason"]
    assert row["raw"] == line_of(second)
    # The first one wins.
    assert store.query("SELECT intent_text FROM requests WHERE request_id = 'r1'") == \
        [{"intent_text": "golden hour"}]


def test_reingesting_the_same_file_is_a_no_op(tmp_path: Path, store: Store) -> None:
    # 3 good (r1, r2, r3), 1 bad (line 3), 1 in-file duplicate of r1 (line 5).
    path = write_jsonl(tmp_path / "logs.jsonl", [
        good("r1"), good("r2", intent="cool morning"),
        good("bad", teacher=teacher(adjust={"temperature": 150})), good("r3"), good("r1")])
    first = ingest_file(path, store)
    assert counts(first) == (5, 3, 1, 1)
    before = {t: rows for t, rows in snapshot(store).items() if t != "ingests"}

    second = ingest_file(path, store)
    # Nothing new: the 3 stored requests and the in-file repeat are all duplicates; the bad
    # record is still counted in the summary but the quarantine table does not grow.
    assert counts(second) == (5, 0, 4, 1)
    assert not second.failed
    after = {t: rows for t, rows in snapshot(store).items() if t != "ingests"}
    assert after == before
    assert len(quarantine_rows(store)) == 1
    history = store.query("SELECT n_read, n_ingested, n_duplicates, n_quarantined FROM ingests "
                          "ORDER BY ingest_id")
    assert [tuple(h.values()) for h in history] == [(5, 3, 1, 1), (5, 0, 4, 1)]


def test_duplicate_across_files(tmp_path: Path, store: Store) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [good("r1"), good("r2")])
    b = write_jsonl(tmp_path / "b.jsonl", [good("r2"), good("r3"), good("r1")])
    assert counts(ingest_file(a, store)) == (2, 2, 0, 0)
    summary = ingest_file(b, store)
    assert counts(summary) == (3, 1, 2, 0)
    assert request_ids(store) == ["r1", "r2", "r3"]
    assert store.query("SELECT source_file FROM requests WHERE request_id = 'r2'") == \
        [{"source_file": str(a)}]


def test_same_id_with_different_content_across_files_is_quarantined(
        tmp_path: Path, store: Store) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [good("r1")])
    changed = good("r1", intent="cool morning")
    b = write_jsonl(tmp_path / "b.jsonl", [changed, good("r5")])
    first = ingest_file(a, store)
    summary = ingest_file(b, store)
    assert counts(summary) == (2, 1, 0, 1)
    [row] = quarantine_rows(store)
    assert (row["source_file"], row["location"]) == (str(b), "line 1")
    assert "r1" in row["reason"] and "already" in row["reason"]
    assert f"ingest {first.ingest_id}" in row["reason"]
    assert row["raw"] == line_of(changed)
    assert store.query("SELECT intent_text FROM requests WHERE request_id = 'r1'") == \
        [{"intent_text": "golden hour"}]
    # The conflicting record's intent is not created either.
    assert [r["intent_key"] for r in store.query("SELECT intent_key FROM intents ORDER BY 1")] \
        == ["golden hour"]


# --------------------------------------------------------------------------- timestamps


def test_timestamp_without_offset_is_utc(tmp_path: Path, store: Store) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [
        good("naive", created_at="2024-03-05T14:30:00"),
        good("offset", created_at="2024-03-05T14:30:00+02:00"),
        good("zulu", created_at="2024-03-05T14:30:00Z")])
    assert counts(ingest_file(path, store)) == (3, 3, 0, 0)
    got = {r["request_id"]: r["created_at"] for r in
           store.query("SELECT request_id, created_at FROM requests")}
    utc = UTC
    assert got["naive"] == datetime(2024, 3, 5, 14, 30, tzinfo=utc)
    assert got["zulu"] == datetime(2024, 3, 5, 14, 30, tzinfo=utc)
    assert got["offset"] == datetime(2024, 3, 5, 14, 30, tzinfo=utc) - timedelta(hours=2)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_unix_time_as_text_is_quarantined(tmp_path: Path, store: Store, fmt: str) -> None:
    bad = good("unix", created_at="1704103200")
    if fmt == "csv":
        path = write_csv(tmp_path / "logs.csv", [good("g1"), bad])
    else:
        path = write_jsonl(tmp_path / "logs.jsonl", [good("g1"), bad])
    summary = ingest_file(path, store)
    assert counts(summary) == (2, 1, 0, 1)
    [row] = quarantine_rows(store)
    assert "created_at" in row["reason"] and "1704103200" in row["reason"]


# --------------------------------------------------------------------------- Parquet

# pyarrow takes the columns from the first row's keys, so every row names latency_ms.
PARQUET_RECORDS = [
    good("p1", intent="golden hour", latency_ms=None),
    good("p2", intent="cool morning", teacher={
        "adjust": {"contrast": -10}, "selective_adjust": {"blue": {"saturation": -20}},
        "filter": None}, latency_ms=None),
    good("p3", intent="film noir", teacher={
        "adjust": None, "selective_adjust": {"red": {"luminance": 15}},
        "filter": {"name": "mono_Noir", "intensity": 80}}, latency_ms=120.0),
    good("p4", intent="too hot", teacher=teacher(adjust={"temperature": 150}), latency_ms=None),
]


def full_adjust(**sliders: int) -> dict[str, int]:
    return {key: sliders.get(key, 0) for key in ADJUST_KEYS}


def full_selective(**colours: dict[str, int]) -> dict[str, dict[str, int]]:
    return {c: {"saturation": colours.get(c, {}).get("saturation", 0),
                "luminance": colours.get(c, {}).get("luminance", 0)} for c in COLOURS}


def test_parquet_struct_columns_with_nulls_for_missing_keys(tmp_path: Path, store: Store) -> None:
    table = pa.Table.from_pylist(PARQUET_RECORDS)
    teacher_type = table.schema.field("teacher").type
    assert pa.types.is_struct(teacher_type)  # really structs, with every key of every row
    adjust_type = teacher_type.field("adjust").type
    assert {adjust_type.field(i).name for i in range(adjust_type.num_fields)} == \
        {"temperature", "highlights", "contrast"}
    path = tmp_path / "logs.parquet"
    pq.write_table(table, path)

    summary = ingest_file(path, store)
    # p1-p3 ingest; p4 (temperature 150) is row 4.
    assert counts(summary) == (4, 3, 0, 1)
    rows = {r["request_id"]: r for r in store.query("SELECT * FROM requests")}
    assert set(rows) == {"p1", "p2", "p3"}
    assert json.loads(rows["p1"]["adjust"]) == full_adjust(temperature=30, highlights=20)
    assert rows["p1"]["selective_adjust"] is None
    assert json.loads(rows["p1"]["filter"]) == {"name": "warm_Golden", "intensity": 40}
    assert json.loads(rows["p2"]["adjust"]) == full_adjust(contrast=-10)
    assert json.loads(rows["p2"]["selective_adjust"]) == full_selective(blue={"saturation": -20})
    assert rows["p2"]["filter"] is None and rows["p2"]["filter_name"] is None
    assert rows["p3"]["adjust"] is None
    assert json.loads(rows["p3"]["selective_adjust"]) == full_selective(red={"luminance": 15})
    assert rows["p3"]["filter_name"] == "mono_Noir"
    assert rows["p3"]["latency_ms"] == 120.0 and rows["p1"]["latency_ms"] is None
    assert [rows[k]["source_location"] for k in ("p1", "p2", "p3")] == ["row 1", "row 2", "row 3"]

    [bad] = quarantine_rows(store)
    assert (bad["source_file"], bad["location"]) == (str(path), "row 4")
    assert "teacher.adjust.temperature" in bad["reason"] and "150" in bad["reason"]
    assert '"p4"' in bad["raw"] and "150" in bad["raw"]


def test_parquet_with_json_text_columns(tmp_path: Path, store: Store) -> None:
    records = [{**r, "teacher": json.dumps(r["teacher"]), "exports": json.dumps(r["exports"])}
               for r in PARQUET_RECORDS]
    path = tmp_path / "logs.parquet"
    pq.write_table(pa.Table.from_pylist(records), path)
    assert counts(ingest_file(path, store)) == (4, 3, 0, 1)
    assert request_ids(store) == ["p1", "p2", "p3"]
    assert [r["location"] for r in quarantine_rows(store)] == ["row 4"]


def test_truncated_parquet_is_an_ingest_error(tmp_path: Path, store: Store) -> None:
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.Table.from_pylist(PARQUET_RECORDS[:3]), whole)
    data = whole.read_bytes()
    path = tmp_path / "cut.parquet"
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(IngestError, match="cut.parquet"):
        ingest_file(path, store)
    assert request_ids(store) == []
    assert store.query("SELECT count(*) AS n FROM intents")[0]["n"] == 0
    # The failure is in the ingest history, with the file-level reason.
    [row] = store.query("SELECT source_file, n_read, n_ingested, error FROM ingests")
    assert row["source_file"] == str(path) and row["n_ingested"] == 0 and row["error"]
    [bad] = quarantine_rows(store)
    assert bad["location"] == "file" and bad["source_file"] == str(path)


def test_truncated_parquet_in_run_is_a_failed_summary(tmp_path: Path, store: Store) -> None:
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.Table.from_pylist(PARQUET_RECORDS[:3]), whole)
    data = whole.read_bytes()
    path = tmp_path / "cut.parquet"
    path.write_bytes(data[: len(data) // 2])
    good_file = write_jsonl(tmp_path / "a.jsonl", [good("g1")])
    result = ingest.run(IngestConfig((path, good_file)), store)
    assert [f.failed for f in result.files] == [True, False]
    assert result.files[0].error and "cut.parquet" in result.files[0].error
    assert request_ids(store) == ["g1"]


# --------------------------------------------------------------------------- atomicity


def _boom(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("injected failure inside the write step")


@pytest.mark.parametrize("with_earlier_ingest", [False, True])
def test_a_failure_in_the_write_step_leaves_the_store_as_it_was(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch,
        with_earlier_ingest: bool) -> None:
    if with_earlier_ingest:
        ingest_file(write_jsonl(tmp_path / "first.jsonl", [good("g0", intent="cool morning")]),
                    store)
    before = snapshot(store)

    path = write_jsonl(tmp_path / "logs.jsonl", [
        good("g1", intent="film noir"), good("g2"), "{bad json"])
    monkeypatch.setattr(requests, "quarantine_records", _boom)  # after the requests
    with pytest.raises(RuntimeError, match="injected"):
        ingest_file(path, store)
    monkeypatch.undo()

    after = snapshot(store)
    if with_earlier_ingest:
        assert after == before
        assert request_ids(store) == ["g0"]
    else:
        # The file may exist now (created with the schema), but every table is empty.
        assert all(rows == [] for rows in after.values())

    # And the same file then ingests normally.
    assert counts(ingest_file(path, store)) == (3, 2, 0, 1)


# --------------------------------------------------------------------------- big numbers


def test_export_count_beyond_int32_does_not_crash_the_ingest(tmp_path: Path, store: Store) -> None:
    huge = good("huge", exports={"adjust": 2**31, "selective_adjust": 0, "filter": 0})
    path = write_jsonl(tmp_path / "logs.jsonl", [good("g1"), huge])
    summary = ingest_file(path, store)
    assert summary.read == 2 and summary.ingested + summary.quarantined == 2
    assert "g1" in request_ids(store)
    if summary.quarantined:
        [row] = quarantine_rows(store)
        assert "exports.adjust" in row["reason"] and str(2**31) in row["reason"]
