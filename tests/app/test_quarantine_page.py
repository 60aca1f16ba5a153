"""Quarantine page: every quarantined record with its file, place, reason and raw text; filters;
pages cut in SQL; raw text shown as text; the CSV export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from pipelines import ingest
from tests.conftest import curated_store, make_record
from workbench.app.views import quarantine
from workbench.store import Store
from workbench.store.requests import QuarantineFilter

MALFORMED = 120
HTML_RAW = json.dumps({"request_id": "h1", "intent": "<b>bold</b><script>alert(1)</script>"})
BAD_EXPORTS = "exports.adjust: must be an integer from 0"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Two files: logs.jsonl with 5 good records, 120 malformed lines, 3 bad export counts and
    one record with HTML in it; other.jsonl with 2 malformed lines."""
    folder = tmp_path_factory.mktemp("quarantine")
    lines = [json.dumps(make_record(request_id=f"good-{i}", intent=f"look {i}"))
             for i in range(5)]
    lines += [f"not json {i}" for i in range(MALFORMED)]
    lines += [json.dumps(make_record(request_id=f"bad-{i}", exports={
        "adjust": -1, "selective_adjust": 0, "filter": 0})) for i in range(3)]
    lines.append(HTML_RAW)
    (folder / "logs.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "other.jsonl").write_text("{oops\n[1, 2\n")
    store = Store(folder / "w.duckdb")
    for name in ("logs.jsonl", "other.jsonl"):
        ingest.ingest_file(folder / name, store)
    return store


def table(at):
    return at.dataframe[0].value


def test_records_are_listed_with_file_place_reason_and_raw_text(page, world) -> None:
    at = page("quarantine", world.path).run()
    assert not at.exception
    shown = table(at)
    assert list(shown.columns[:5]) == ["#", "file", "where", "reason", "raw"]
    assert len(shown) == 50                       # the first page only
    first = shown.iloc[0]
    assert (first["file"], first["where"], first["raw"]) == ("logs.jsonl", "line 6", "not json 0")
    assert first["reason"].startswith("malformed JSON")
    assert "of 126 matching (126 quarantined in all)" in at.caption[1].value


def test_pages_are_cut_in_sql_and_a_page_past_the_end_goes_to_the_last(page, world,
                                                                        monkeypatch) -> None:
    asked: list[tuple[int, int]] = []
    real = quarantine.quarantined_records

    def spy(session, filters, limit=50, offset=0, raw_chars=1_000_000):
        asked.append((limit, offset))
        return real(session, filters, limit, offset, raw_chars)

    monkeypatch.setattr(quarantine, "quarantined_records", spy)
    at = page("quarantine", world.path).run()
    at.number_input(key="quarantine_page").set_value(3).run()
    assert not at.exception
    assert len(table(at)) == 126 - 100 and asked[-1] == (50, 100)
    assert table(at).iloc[0]["#"] == 101
    # Narrowed to one file (2 records): page 3 no longer exists, so the last page shows.
    at.selectbox(key="quarantine_file").set_value(
        str(world.path.parent / "other.jsonl")).run()
    assert not at.exception
    assert at.number_input(key="quarantine_page").value == 1
    assert list(table(at)["file"]) == ["other.jsonl", "other.jsonl"]
    assert all(limit == 50 for limit, _ in asked)


def test_filter_by_reason_and_by_words_in_it(page, world) -> None:
    at = page("quarantine", world.path).run()
    reasons = at.selectbox(key="quarantine_reason").options
    exports = next(option for option in reasons if BAD_EXPORTS in option)
    assert exports.endswith("(3)")                # the most common reasons, with their counts
    at.selectbox(key="quarantine_reason").select_index(reasons.index(exports)).run()
    shown = table(at)
    assert len(shown) == 3 and all(BAD_EXPORTS in reason for reason in shown["reason"])
    at.selectbox(key="quarantine_reason").select_index(0).run()       # any reason again
    at.text_input(key="quarantine_reason_contains").set_value("MALFORMED json").run()
    assert "of 122 matching" in at.caption[1].value      # 120 + the 2 of other.jsonl
    at.text_input(key="quarantine_reason_contains").set_value("no such reason").run()
    assert at.info and "No quarantined record matches" in at.info[0].body


def test_raw_text_is_shown_as_text_never_as_html(page, world) -> None:
    at = page("quarantine", world.path).run()
    at.number_input(key="quarantine_page").set_value(3).run()
    shown = table(at)
    row = shown[shown["raw"].str.contains("<script>", regex=False)].iloc[0]
    assert row["raw"] == HTML_RAW                  # the text as found, in a table cell
    assert not at.get("html")
    at.selectbox(key="quarantine_record").set_value(int(row["#"])).run()
    assert at.code[0].value == HTML_RAW
    assert all("<script>" not in markdown.value for markdown in at.markdown)


def test_the_export_is_every_matching_record_as_csv(page, world, monkeypatch) -> None:
    monkeypatch.setattr(quarantine, "EXPORT_BATCH", 7)   # several batches, one cut mid-way
    exported = quarantine.quarantine_csv(world, QuarantineFilter(reason_contains="malformed"))
    rows = list(csv.DictReader(io.StringIO(exported.decode("utf-8"))))
    assert len(rows) == MALFORMED + 2
    assert [row["raw"] for row in rows[:2]] == ["not json 0", "not json 1"]
    assert len({row["quarantine_id"] for row in rows}) == len(rows)
    assert list(rows[0]) == list(quarantine.EXPORT_COLUMNS)
    at = page("quarantine", world.path).run()
    [button] = at.get("download_button")
    assert button.proto.label == "Export the 126 matching records as CSV"


def test_a_clean_quarantine_says_so(page, tmp_path: Path) -> None:
    store = curated_store(tmp_path)
    at = page("quarantine", store.path).run()
    assert not at.exception
    assert "Nothing is quarantined" in at.success[0].body and not at.dataframe


def test_a_missing_database_says_how_to_make_one(page, tmp_path: Path) -> None:
    at = page("quarantine", tmp_path / "none.duckdb").run()
    assert not at.exception and "workbench demo --db" in at.info[0].body
