"""Quarantine parity between the two validators (issue 17): the DuckDB path (`pipelines.ingest_sql`)
and the Python reference (`pipelines.ingest._stage_file`) must quarantine the same records with
the same reasons, locations and raw text, and stage the same good rows with the same values.

Both are run on the same file and their whole output compared: every staged column (intent
key, timestamps, canonical tool JSON, exports, content hash, location, raw), the file's intents
and numbers, the quarantine list in order, records read and duplicates. The inputs are the
bad-input cases of the existing ingest tests (imported, not copied), records generated with
hypothesis (hostile text, numbers, timestamps, teachers), and a few cases aimed at where the two
engines could differ (JSON dialects, whitespace, repr of text, float formatting).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import ingest, ingest_sql
from pipelines.ingest import IngestConfig, Validator
from tests.conftest import make_record
from tests.test_ingest import (
    BAD_LINES,
    CSV_BAD_ROWS,
    CSV_COLUMNS,
    PARQUET_RECORDS,
    csv_row,
    csv_text,
    good,
    write_csv,
    write_jsonl,
)
from tests.test_ingest_fuzz import jsonl_lines, records
from tests.test_ingest_hardening import SINKERS
from workbench.log_readers import detect_format, read_records
from workbench.store import Store
from workbench.store.ingest_sql import SqlStage


def staged(path: Path, validator: Validator) -> dict[str, Any]:
    """Everything one validator makes of a file, before the write step."""
    fmt = detect_format(path)
    with tempfile.TemporaryDirectory() as folder:
        if validator is Validator.SQL:
            stage, bad, read, duplicates = ingest_sql.stage_file(
                path, fmt, Path(folder), None, path.name,
                ingest_sql.Reference(ingest._validate, ingest.stage_row))
        else:
            stage, bad, read, duplicates = ingest._stage_file(read_records(path, fmt),
                                                              Path(folder), None, path.name)
        rows = pq.read_table(stage.path).to_pylist() if stage.count else []
        intents = sorted(stage.file_intents_table.to_pylist(), key=lambda row: row["intent_key"])
    return {"rows": rows, "quarantine": bad, "read": read, "duplicates": duplicates,
            "intents": intents}


def assert_same(path: Path) -> dict[str, Any]:
    python, sql = staged(path, Validator.PYTHON), staged(path, Validator.SQL)
    for key in python:
        assert sql[key] == python[key], f"{key} differs for {path.name}"
    return python


def decisions(path: Path) -> dict[str, int]:
    """How many of a JSONL file's records SQL decided (good, bad) and handed to Python."""
    with tempfile.TemporaryDirectory() as folder:
        stage = SqlStage(Path(folder))
        try:
            ingest_sql._load_jsonl(path, stage, [], None, path.name)
            stage.classify()
            counted = dict(stage.connection.execute(
                "SELECT status, count(*) FROM classified GROUP BY status").fetchall())
            total = stage.connection.execute("SELECT count(*) FROM src").fetchall()[0][0]
        finally:
            stage.close()
    counted["defer"] = total - counted.get("good", 0) - counted.get("bad", 0)
    return {key: counted.get(key, 0) for key in ("good", "bad", "defer")}


# --------------------------------------------------------------------------- the existing cases


def test_the_bad_jsonl_lines_of_the_ingest_tests(tmp_path: Path) -> None:
    lines: list[dict | str] = [good("g0")]
    for i, (_, bad, _) in enumerate(BAD_LINES):
        lines += [bad, good(f"g{i + 1}", intent=f"look {i + 1}")]
    result = assert_same(write_jsonl(tmp_path / "logs.jsonl", lines))
    assert len(result["quarantine"]) == len(BAD_LINES)   # as the ingest test counts them


@pytest.mark.parametrize("case, bad, must_name", SINKERS, ids=[c[0] for c in SINKERS])
def test_the_records_that_used_to_crash_ingest(tmp_path: Path, case: str, bad: str,
                                               must_name: tuple[str, ...]) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [make_record(request_id="g1"), bad,
                                                 make_record(request_id="g3")])
    assert len(assert_same(path)["quarantine"]) == 1


def test_the_bad_csv_rows_of_the_ingest_tests(tmp_path: Path) -> None:
    columns = CSV_COLUMNS + ("latency_ms",)
    rows = [good("g0")]
    for i, (_, bad, _) in enumerate(CSV_BAD_ROWS):
        rows += [bad, good(f"g{i + 1}", intent=f"look {i + 1}")]
    result = assert_same(write_csv(tmp_path / "logs.csv", rows, columns))
    assert len(result["quarantine"]) == len(CSV_BAD_ROWS)


def test_csv_with_multiline_cells_short_rows_and_bad_bytes(tmp_path: Path) -> None:
    text = csv_text([list(CSV_COLUMNS), csv_row(good("a", intent="two\nlines")),
                     ["b", "short row"], csv_row(good("c"))])
    path = tmp_path / "logs.csv"
    path.write_bytes(text.encode() + b'd,caf\xe9,2024-01-01T00:00:00,{},{}\n')
    assert len(assert_same(path)["quarantine"]) == 2


def test_parquet_structs_and_json_text(tmp_path: Path) -> None:
    table = pa.Table.from_pylist(PARQUET_RECORDS)
    pq.write_table(table, tmp_path / "structs.parquet")
    assert_same(tmp_path / "structs.parquet")
    texts = [{**record, "teacher": json.dumps(record["teacher"]),
              "exports": json.dumps(record["exports"])} for record in PARQUET_RECORDS]
    pq.write_table(pa.Table.from_pylist(texts), tmp_path / "text.parquet")
    assert_same(tmp_path / "text.parquet")


def test_parquet_timestamps_and_values_json_cannot_carry(tmp_path: Path) -> None:
    from datetime import UTC, date, datetime

    rows = [make_record(request_id=f"p{i}") for i in range(4)]
    rows[0]["created_at"] = datetime(2024, 3, 1, 12, 30, 1, 5, tzinfo=UTC)
    rows[1]["created_at"] = datetime(2024, 3, 1, 12, 30)      # naive: UTC
    rows[2]["created_at"] = str(date(2024, 3, 1))             # a date only, as text
    rows[3]["teacher"] = json.dumps(rows[3]["teacher"])
    table = pa.table({
        "request_id": [r["request_id"] for r in rows], "intent": [r["intent"] for r in rows],
        "created_at": [str(r["created_at"]) if not isinstance(r["created_at"], str)
                       else r["created_at"] for r in rows],
        "teacher": [json.dumps(r["teacher"]) if not isinstance(r["teacher"], str)
                    else r["teacher"] for r in rows],
        "exports": [json.dumps(r["exports"]) for r in rows],
        "session_id": pa.array([b"s1", None, None, None], pa.binary())})
    pq.write_table(table, tmp_path / "mixed.parquet")
    assert_same(tmp_path / "mixed.parquet")
    stamps = pa.table({"request_id": ["t1", "t2"], "intent": ["a", "b"],
                       "created_at": pa.array([datetime(2024, 1, 1, 5, tzinfo=UTC),
                                               datetime(2024, 1, 2, 6, 7, 8, 9, tzinfo=UTC)],
                                              pa.timestamp("us", tz="UTC")),
                       "teacher": ['{"filter": {"name": "mono_Noir", "intensity": 5}}'] * 2,
                       "exports": ['{"filter": 1}', '{"filter": 0}']})
    pq.write_table(stamps, tmp_path / "stamps.parquet")
    assert len(assert_same(tmp_path / "stamps.parquet")["rows"]) == 2


# --------------------------------------------------------------------------- aimed at the engines

EDGE_LINES = [
    ('{"request_id": "t1", "intent": "a", "created_at": "2024-01-01T00:00:00", '
     '"teacher": {"adjust": null}, "exports": {},}'),                      # trailing comma
    ('{"request_id": "t2", "intent": "a", "created_at": "2024-01-01T00:00:00", '
     '"teacher": {}, "exports": {}, "x": NaN}'),                          # NaN: Python reads it
    ('{"request_id": "t3", "intent": "a", "created_at": "2024-01-01T00:00:00", '
     '"teacher": {}, "exports": {}, "x": inf}'),                          # inf: Python does not
    ('{"request_id": "t4", "intent": "\\ud83d\\udc4d ok", "created_at": "2024-01-01T00:00:00",'
     ' "teacher": {}, "exports": {}}'),                                   # an escaped pair
    ('{"request_id": "t5", "intent": "a", "created_at": "2024-01-01T00:00:00", '
     '"teacher": {}, "exports": {"adjust": 1.0, "filter": 2e0}}'),        # integral floats
    ('{"request_id": "t6", "intent": "a", "created_at": "2024-01-01T00:00:00", '
     '"teacher": {"adjust": {"exposure": -0.0}}, "exports": {"adjust": true}}'),
    ('\ufeff{"request_id": "t7", "intent": "a", "created_at": "2024-01-01T00:00:00", '
     '"teacher": {}, "exports": {}}'),                                    # a mark past line 1
]


def test_json_the_two_decoders_read_differently(tmp_path: Path) -> None:
    path = tmp_path / "edges.jsonl"
    path.write_text("\n".join(EDGE_LINES) + "\n", encoding="utf-8")
    assert_same(path)


@pytest.mark.parametrize("intent", [
    "  Golden  Hour  ", "it's", 'say "hi"', "both ' and \"", "back\\slash", "\u00a0nbsp\u00a0",
    "Caf\u00e9 cr\u00e8me", "\u2000wide\u3000", "\uff27\uff4f\uff4c\uff44", "x\u200by",
    "\u200b\u200b", "tab\there", "\u0130stanbul", "\U0001f44d thumbs", "\x1cseparator"])
def test_text_that_python_strips_keys_and_reprs_its_own_way(tmp_path: Path, intent: str) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [
        good("r1", intent=intent, teacher_model=f" {intent} ", session_id=intent),
        good(intent.strip() or "empty", intent=intent)])
    assert_same(path)


@pytest.mark.parametrize("created_at", [
    "2024-01-01T12:00:00Z", "2024-01-01 12:00", "2024-01-01T12:00:00.5+05:30",
    "2024-01-01T12:00:00.123456-01:00", "2024-02-30T00:00:00", "2024-01-01T24:00:00",
    "2024-01-01", "20240101T120000", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
    "0999-06-01T00:00:00", " 2024-01-01T00:00:00 ", "2024-01-01T00:00:00.1234567"])
def test_timestamps(tmp_path: Path, created_at: str) -> None:
    assert_same(write_jsonl(tmp_path / "logs.jsonl", [good("r1", created_at=created_at)]))


@pytest.mark.parametrize("value", [0, 120, 3_600_000, 3_600_001, -1, 0.1, 1.5e-7, 5e-05,
                                   123.456, 99.99999999999999, 1e300, "12.5", "012", " 7 ",
                                   "1e3", True, None, -0.0])
def test_latency_and_cost(tmp_path: Path, value: Any) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [good("r1", latency_ms=value),
                                                 good("r2", cost_usd=value)])
    assert_same(path)
    assert_same(write_csv(tmp_path / "logs.csv", [good("r1", latency_ms=value)],
                          CSV_COLUMNS + ("latency_ms",)))


def test_the_usual_bad_records_are_decided_in_sql(tmp_path: Path) -> None:
    """SQL writes these reasons itself: only the oddities go to Python."""
    lines = [good("g1"), good("g2", intent="Caf\u00e9"),
             {k: v for k, v in good("m").items() if k not in ("intent", "exports")},
             good("s", teacher={"adjust": {"exposure": 150}}),
             good("f", teacher={"filter": {"name": "sepia", "intensity": 5}}),
             good("e", exports={"filter": -2}), good("l", latency_ms=-5),
             good("i", intent="x" * 501), good("t", teacher=None)]
    path = write_jsonl(tmp_path / "logs.jsonl", lines)
    assert decisions(path) == {"good": 2, "bad": 7, "defer": 0}
    assert_same(path)


# --------------------------------------------------------------------------- generated records

FUZZ = settings(max_examples=15, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(st.lists(jsonl_lines(), min_size=1, max_size=12))
def test_generated_jsonl_files(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.jsonl"
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + b"\n")
        assert_same(path)


@FUZZ
@given(st.lists(records(), min_size=1, max_size=10))
def test_generated_csv_files(rows: list[dict[str, Any]]) -> None:
    columns = (*CSV_COLUMNS, "latency_ms", "cost_usd", "teacher_model", "session_id")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        cells = [[json.dumps(row.get(name)) if name in ("teacher", "exports")
                  else ("" if row.get(name) is None else str(row.get(name)))
                  for name in columns] for row in rows]
        path.write_bytes(csv_text([list(columns), *cells]).encode("utf-8", "surrogatepass"))
        assert_same(path)


# --------------------------------------------------------------------------- the whole ingest


@pytest.mark.parametrize("validator", list(Validator))
def test_both_validators_leave_the_same_store(tmp_path: Path, validator: Validator) -> None:
    lines: list[dict | str] = [good("g0")]
    for i, (_, bad, _) in enumerate(BAD_LINES):
        lines += [bad, good(f"g{i + 1}", intent=f"look {i + 1}")]
    path = write_jsonl(tmp_path / "logs.jsonl", lines)
    store = Store(tmp_path / f"{validator.value}.duckdb", lock_timeout=2.0)
    first = ingest.run(IngestConfig((path,), validator), store)
    again = ingest.run(IngestConfig((path,), validator), store)   # a no-op for every record
    assert first.totals["ingested"] == len(BAD_LINES) + 1
    assert again.totals == {"read": first.totals["read"], "ingested": 0,
                            "duplicates": len(BAD_LINES) + 1, "quarantined": len(BAD_LINES)}
    other = Store(tmp_path / "other.duckdb", lock_timeout=2.0)
    reference = Validator.PYTHON if validator is Validator.SQL else Validator.SQL
    ingest.run(IngestConfig((path,), reference), other)
    for table, columns, order in (
            ("requests", "*", "request_id"), ("intents", "*", "intent_key"),
            ("intent_stats", "*", "intent_key"),
            ("quarantine", "* EXCLUDE (quarantined_at)", "quarantine_id")):
        query = f"SELECT {columns} FROM {table} ORDER BY {order}"
        assert store.query(query) == other.query(query), table


def test_the_cli_takes_the_validator(tmp_path: Path) -> None:
    from workbench.cli import main

    path = write_jsonl(tmp_path / "logs.jsonl", [good("g1"), good("g2", intent=42)])
    db = tmp_path / "cli.duckdb"
    assert main(["ingest", "--db", str(db), "--validator", "sql", str(path)]) == 0
    assert main(["ingest", "--db", str(db), "--validator", "python", str(path)]) == 0
    store = Store(db)
    assert [row["n_duplicates"] for row in store.query(
        "SELECT n_duplicates FROM ingests ORDER BY ingest_id")] == [0, 1]


def test_the_validator_is_refused_for_spool_folders(tmp_path: Path, capsys: Any) -> None:
    from workbench.cli import main

    folder = tmp_path / "spool"
    folder.mkdir()
    (folder / "spool-20261130T000000000000-1-000001.jsonl").write_text("")
    code = main(["ingest", "--db", str(tmp_path / "w.duckdb"), "--validator", "sql",
                 str(folder)])
    assert code == 2 and "--validator applies to log files only" in capsys.readouterr().err
