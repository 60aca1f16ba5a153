"""Ingest against hostile input (issue 11, items 1, 6, 8 and 10).

Every case is a tiny file written by the test, one bad record between good ones: the bad record
is quarantined with a reason that names the field and the value, the good ones land, and the
other files of the same run land too.
"""

from __future__ import annotations

import errno
import json
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import curate, ingest
from pipelines.ingest import FileSummary, IngestConfig, ingest_file
from tests.conftest import make_record
from workbench.errors import IngestError
from workbench.log_records import (
    COST_USD_MAX,
    EXPORTS_MAX,
    ID_MAX_CHARS,
    LATENCY_MS_MAX,
    intent_key,
)
from workbench.store import Store


def write_jsonl(path: Path, lines: Sequence[dict | str]) -> Path:
    path.write_text("".join((json.dumps(item) if isinstance(item, dict) else item) + "\n"
                            for item in lines), encoding="utf-8")
    return path


def counts(summary: FileSummary) -> tuple[int, int, int, int]:
    return summary.read, summary.ingested, summary.duplicates, summary.quarantined


def reasons(store: Store) -> list[str]:
    return [r["reason"] for r in store.query("SELECT reason FROM quarantine ORDER BY quarantine_id")]


def request_ids(store: Store) -> list[str]:
    return [r["request_id"] for r in store.query("SELECT request_id FROM requests ORDER BY 1")]


def deep_teacher(levels: int) -> str:
    """A record whose teacher is {"adjust": {"adjust": ... 1 ...}}, `levels` deep, as JSON."""
    record = {k: v for k, v in make_record(request_id="bad").items() if k != "teacher"}
    return json.dumps(record)[:-1] + ', "teacher": ' + '{"adjust":' * levels + "1" \
        + "}" * levels + "}"


# --------------------------------------------------------------------------- item 1

# (case, the bad line as JSON text, substrings its reason must hold)
SINKERS: list[tuple[str, str, tuple[str, ...]]] = [
    ("exports-1e20", json.dumps(make_record(request_id="bad", exports={"adjust": 10**20})),
     ("exports.adjust", "100000000000000000000", f"{EXPORTS_MAX:,}")),
    ("exports-1e300", json.dumps(make_record(request_id="bad", exports={"filter": 1e300})),
     ("exports.filter", "1e+300")),
    ("created-at-after-9999", json.dumps(make_record(
        request_id="bad", created_at="9999-12-31T23:59:59-14:00")),
     ("created_at", "9999-12-31T23:59:59-14:00")),
    ("created-at-before-1", json.dumps(make_record(
        request_id="bad", created_at="0001-01-01T00:00:00+14:00")),
     ("created_at", "0001-01-01T00:00:00+14:00")),
    ("surrogate-intent", json.dumps(make_record(request_id="bad", intent="caf\ud800")),
     ("intent", "\\ud800")),
    ("surrogate-request-id", json.dumps(make_record(request_id="bad\ud800")),
     ("request_id", "\\ud800")),
    ("surrogate-key", json.dumps(make_record(request_id="bad", exports={"\ud800": 1})),
     ("exports.\\ud800",)),
    ("teacher-100000-deep", deep_teacher(100_000), ("nested too deeply",)),
    ("teacher-500-deep", deep_teacher(500), ("teacher.adjust.adjust",)),
    ("int-of-5000-digits", '{"request_id": "bad", "exports": {"adjust": ' + "9" * 5000 + "}}",
     ("malformed JSON", "digits")),
]


@pytest.mark.parametrize("case, bad, must_name", SINKERS, ids=[c[0] for c in SINKERS])
def test_a_record_that_used_to_crash_ingest_is_quarantined(
        tmp_path: Path, store: Store, case: str, bad: str, must_name: tuple[str, ...]) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [make_record(request_id="g1"), bad,
                                                 make_record(request_id="g3")])
    summary = ingest_file(path, store)
    assert counts(summary) == (3, 2, 0, 1)
    assert request_ids(store) == ["g1", "g3"]
    [reason] = reasons(store)
    assert all(text in reason for text in must_name), reason
    [row] = store.query("SELECT location, raw FROM quarantine")
    assert row["location"] == "line 2" and row["raw"].startswith(bad[:50])


def test_later_files_land_after_a_file_with_crashing_records(tmp_path: Path, store: Store) -> None:
    first = write_jsonl(tmp_path / "a.jsonl", [make_record(request_id="a1"), SINKERS[0][1],
                                               SINKERS[2][1], SINKERS[4][1], SINKERS[7][1]])
    second = write_jsonl(tmp_path / "b.jsonl", [make_record(request_id="b1")])
    result = ingest.run(IngestConfig((first, second)), store)
    assert [counts(f) for f in result.files] == [(5, 1, 0, 4), (1, 1, 0, 0)]
    assert not result.failed
    assert request_ids(store) == ["a1", "b1"]


def parquet_file(path: Path, columns: dict[str, pa.Array]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def test_parquet_uint64_export_and_far_timestamp_are_quarantined(
        tmp_path: Path, store: Store) -> None:
    teacher = json.dumps(make_record()["teacher"])
    # Row 1 good; row 2 an export count of 2^64 - 1; row 3 a timestamp in the year 20000.
    year_20000 = (20000 - 1970) * 365 * 24 * 3600
    path = parquet_file(tmp_path / "logs.parquet", {
        "request_id": pa.array(["g1", "big", "far"]),
        "intent": pa.array(["golden hour"] * 3),
        "created_at": pa.array([1_704_103_200, 1_704_103_200, year_20000],
                               pa.timestamp("s", tz="UTC")),
        "teacher": pa.array([teacher] * 3),
        "exports": pa.array([{"adjust": 1}, {"adjust": 2**64 - 1}, {"adjust": 1}],
                            pa.struct([("adjust", pa.uint64())])),
    })
    summary = ingest_file(path, store)
    assert counts(summary) == (3, 1, 0, 2)
    assert request_ids(store) == ["g1"]
    rows = store.query("SELECT location, reason FROM quarantine ORDER BY quarantine_id")
    assert [r["location"] for r in rows] == ["row 2", "row 3"]
    assert "exports.adjust" in rows[0]["reason"] and str(2**64 - 1) in rows[0]["reason"]
    assert "created_at" in rows[1]["reason"] and str(year_20000) in rows[1]["reason"]


def test_an_unforeseen_failure_of_one_record_quarantines_it(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    real = ingest.parse_record

    def flaky(raw: dict[str, Any]) -> Any:
        if raw.get("request_id") == "boom":
            raise KeyError("something nobody foresaw")
        return real(raw)

    monkeypatch.setattr(ingest, "parse_record", flaky)
    path = write_jsonl(tmp_path / "logs.jsonl", [make_record(request_id="g1"),
                                                 make_record(request_id="boom"),
                                                 make_record(request_id="g3")])
    summary = ingest_file(path, store)
    assert counts(summary) == (3, 2, 0, 1)
    [reason] = reasons(store)
    assert "unexpectedly" in reason and "KeyError" in reason and "nobody foresaw" in reason


def test_an_unforeseen_failure_of_one_file_does_not_stop_the_others(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    real = ingest._write
    calls = []

    def failing_once(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk on fire")
        real(*args, **kwargs)

    monkeypatch.setattr(ingest, "_write", failing_once)
    first = write_jsonl(tmp_path / "a.jsonl", [make_record(request_id="a1")])
    second = write_jsonl(tmp_path / "b.jsonl", [make_record(request_id="b1")])
    result = ingest.run(IngestConfig((first, second)), store)
    assert [f.failed for f in result.files] == [True, False]
    error = result.files[0].error or ""
    assert "a.jsonl" in error and "RuntimeError" in error and "disk on fire" in error
    assert request_ids(store) == ["b1"]


# --------------------------------------------------------------------------- item 6


def test_intent_key_normalises_unicode() -> None:
    nfc = unicodedata.normalize("NFC", "Café Crème 7")
    nfd = unicodedata.normalize("NFD", "Café Crème 7")
    assert nfc != nfd
    assert intent_key(nfc) == intent_key(nfd) == "café crème 7"
    # Zero-width characters (space, non-joiner, joiner, word joiner, BOM) vanish.
    for char in "\u200b\u200c\u200d\u2060\ufeff":
        assert intent_key(f"gol{char}den hour") == "golden hour"
    assert intent_key("ｇｏｌｄｅｎ\u3000ＨＯＵＲ") == "golden hour"  # full-width, ideographic space
    assert intent_key("  Golden \t HOUR ") == "golden hour"       # as before for ASCII
    assert intent_key("\u200b \u200d") == ""


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_intent_key_is_idempotent(text: str) -> None:
    key = intent_key(text)
    assert intent_key(key) == key
    assert key == key.strip() and "  " not in key


def test_look_alike_intents_are_one_intent_and_stay_on_one_side(
        tmp_path: Path, store: Store) -> None:
    # 200 intents, each written in NFC, NFD, with a zero-width joiner and in full-width digits:
    # 800 requests, 200 intents.
    records = []
    for n in range(200):
        text = f"Café crème {n}"
        spellings = [unicodedata.normalize("NFC", text), unicodedata.normalize("NFD", text),
                     text.replace("crème", "cr\u200dème"),
                     text.replace(str(n), str(n).translate(str.maketrans("0123456789",
                                                                         "０１２３４５６７８９")))]
        records += [make_record(request_id=f"{n}-{i}", intent=s) for i, s in enumerate(spellings)]
    path = write_jsonl(tmp_path / "logs.jsonl", records)
    assert counts(ingest_file(path, store)) == (800, 800, 0, 0)
    intents = store.query("SELECT intent_key, intent_text FROM intents ORDER BY intent_key")
    assert len(intents) == 200
    # The first-seen spelling (NFC) is kept for display.
    assert all(unicodedata.is_normalized("NFC", row["intent_text"]) for row in intents)
    assert store.query("SELECT DISTINCT request_count FROM intent_stats") == \
        [{"request_count": 4}]
    version = curate.run(curate.CurateConfig(test_size=50, seed=3), store)
    split = store.query("SELECT split, count(*) AS n FROM dataset_rows WHERE version_id = ? "
                        "GROUP BY split ORDER BY split", [version.version_id])
    assert split == [{"split": "test", "n": 50}, {"split": "train", "n": 150}]


@pytest.mark.parametrize("intent, must_name", [
    ("\u200b", ("intent", "zero-width")), ("\u200b \ufeff\u2060", ("intent", "zero-width")),
    ("golden\x00hour", ("intent", "NUL")),
])
def test_an_intent_empty_after_normalising_or_with_nul_is_quarantined(
        tmp_path: Path, store: Store, intent: str, must_name: tuple[str, ...]) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [make_record(request_id="g1"),
                                                 make_record(request_id="bad", intent=intent)])
    assert counts(ingest_file(path, store)) == (2, 1, 0, 1)
    [reason] = reasons(store)
    assert all(text in reason for text in must_name), reason


# --------------------------------------------------------------------------- item 10


@pytest.mark.parametrize("field, value, shown", [
    ("latency_ms", "Infinity", "Infinity"), ("latency_ms", "NaN", "NaN"),
    ("latency_ms", "-Infinity", "-Infinity"), ("latency_ms", "3600001", "3600001"),
    ("cost_usd", "1e308", "1e+308"), ("cost_usd", "-0.5", "-0.5"),
    ("cost_usd", "100.01", "100.01"),
])
def test_latency_and_cost_must_be_finite_and_bounded(
        tmp_path: Path, store: Store, field: str, value: str, shown: str) -> None:
    bad = json.dumps(make_record(request_id="bad"))[:-1] + f', "{field}": {value}}}'
    path = write_jsonl(tmp_path / "logs.jsonl", [make_record(request_id="g1"), bad])
    assert counts(ingest_file(path, store)) == (2, 1, 0, 1)
    [reason] = reasons(store)
    limit = f"{LATENCY_MS_MAX:.0f}" if field == "latency_ms" else f"{COST_USD_MAX:.0f}"
    assert field in reason and shown in reason and limit in reason, reason


def test_the_bounds_themselves_are_accepted(tmp_path: Path, store: Store) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [make_record(
        request_id="r" * ID_MAX_CHARS, latency_ms=LATENCY_MS_MAX, cost_usd=COST_USD_MAX,
        exports={"adjust": EXPORTS_MAX}, session_id="s" * ID_MAX_CHARS)])
    assert counts(ingest_file(path, store)) == (1, 1, 0, 0)


def test_a_five_megabyte_request_id_is_quarantined(tmp_path: Path, store: Store) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [make_record(request_id="g1"),
                                                 make_record(request_id="x" * 5_000_000)])
    assert counts(ingest_file(path, store)) == (2, 1, 0, 1)
    [row] = store.query("SELECT reason, length(raw) AS n FROM quarantine")
    assert "request_id" in row["reason"] and "5000000" in row["reason"]
    assert str(ID_MAX_CHARS) in row["reason"]
    assert row["n"] < 200_000  # the raw text kept is clipped


@pytest.mark.parametrize("line, key", [
    (('{"request_id": "bad", "intent": "golden hour", "intent": "cool morning", '
     '"created_at": "2024-01-01T10:00:00Z", "teacher": {}, "exports": {}}'), "intent"),
    (('{"request_id": "bad", "intent": "golden hour", "created_at": "2024-01-01T10:00:00Z", '
     '"teacher": {"adjust": {"temperature": 10, "temperature": 90}}, "exports": {}}'),
     "temperature"),
])
def test_a_repeated_json_key_is_ambiguous(tmp_path: Path, store: Store, line: str,
                                          key: str) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [make_record(request_id="g1"), line])
    assert counts(ingest_file(path, store)) == (2, 1, 0, 1)
    [reason] = reasons(store)
    assert "ambiguous" in reason and repr(key) in reason, reason


def test_a_repeated_csv_column_is_ambiguous(tmp_path: Path, store: Store) -> None:
    record = make_record(request_id="c1")
    header = "request_id,intent,created_at,teacher,exports,intent\n"
    row = ",".join([record["request_id"], "golden hour", record["created_at"],
                    '"' + json.dumps(record["teacher"]).replace('"', '""') + '"',
                    '"' + json.dumps(record["exports"]).replace('"', '""') + '"', "cool morning"])
    path = tmp_path / "logs.csv"
    path.write_text(header + row + "\n" + row.replace("c1", "c2", 1) + "\n")
    summary = ingest_file(path, store)
    assert counts(summary) == (2, 0, 0, 2) and summary.failed
    assert all("ambiguous" in r and "intent" in r for r in reasons(store))


@pytest.mark.parametrize("encoding, name", [
    ("utf-16", "UTF-16"), ("utf-16-be", "UTF-16"), ("utf-16-le", "UTF-16"), ("utf-32", "UTF-32")])
@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_utf16_file_is_refused_once_with_the_reason(
        tmp_path: Path, store: Store, encoding: str, name: str, suffix: str) -> None:
    lines = [json.dumps(make_record(request_id=f"r{i}")) for i in range(3)]
    path = tmp_path / f"logs{suffix}"
    text = "\n".join(lines) + "\n"
    if encoding == "utf-16-be":  # a BOM written by hand, as some tools do
        path.write_bytes(b"\xfe\xff" + text.encode("utf-16-be"))
    else:  # utf-16 and utf-32 write a BOM; utf-16-le writes none
        path.write_bytes(text.encode(encoding))
    with pytest.raises(IngestError, match=name) as raised:
        ingest_file(path, store)
    assert "UTF-8" in str(raised.value) and "iconv" in str(raised.value)
    [row] = store.query("SELECT location, reason FROM quarantine")
    assert row["location"] == "file" and name in row["reason"]
    assert "not valid UTF-8" not in row["reason"]
    [history] = store.query("SELECT n_read, n_ingested, error FROM ingests")
    assert history["n_ingested"] == 0 and name in history["error"]


# --------------------------------------------------------------------------- item 8


def test_a_symlink_loop_is_reported_as_such(tmp_path: Path, store: Store) -> None:
    loop = tmp_path / "loop.jsonl"
    loop.symlink_to(tmp_path / "loop.jsonl")
    result = ingest.run(IngestConfig((loop,)), store)
    [summary] = result.files
    assert summary.failed and summary.error is not None
    assert "symlink loop" in summary.error and "no such file" not in summary.error
    assert str(loop) in summary.error and "\n" not in summary.error


def test_a_dangling_symlink_is_no_such_file(tmp_path: Path, store: Store) -> None:
    link = tmp_path / "gone.jsonl"
    link.symlink_to(tmp_path / "missing.jsonl")
    with pytest.raises(IngestError, match="no such file"):
        ingest_file(link, store)


def test_a_file_without_read_permission_is_reported_as_such(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_jsonl(tmp_path / "secret.jsonl", [make_record(request_id="g1")])
    # The tests may run as root, who reads anything; so the refusal is simulated where the
    # operating system would give it.
    real_open = Path.open

    def refusing_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing_open)
    result = ingest.run(IngestConfig((path,)), store)
    [summary] = result.files
    assert summary.error is not None and "permission denied" in summary.error
    assert str(path) in summary.error
