"""Data page: starting from nothing in the browser. The empty-database message names this
database; uploads are ingested by a background job with a per-file summary (bad uploads named and
left out, nothing good lost); the demo is built only where there are no logs; curation makes a
new version with its options."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path

import pytest

from tests.conftest import curated_store, make_record
from workbench.app import jobs
from workbench.app.views import data
from workbench.errors import StoreMissingError
from workbench.store import Store

ROOT = Path(__file__).resolve().parents[2]


def jsonl(*records: dict, bad: tuple[str, ...] = ()) -> bytes:
    return ("".join(json.dumps(record) + "\n" for record in records)
            + "".join(line + "\n" for line in bad)).encode()


def finished(db: Path, kind: str, timeout_s: float = 120) -> jobs.Job:
    """The one job of `kind` on `db`, once it has finished."""
    [job] = [job for job in jobs.list_jobs(db) if job.kind.value == kind]
    deadline = time.monotonic() + timeout_s
    while not job.finished and time.monotonic() < deadline:
        time.sleep(0.3)
        job = jobs.load_job(db, job.id)
    assert job.finished, f"the {kind} job did not finish: {job.log_tail()}"
    return job


def summary_table(at):
    """The per-file summary of the latest upload (the table with an 'ingested' column)."""
    return next(element.value for element in at.dataframe
                if "ingested" in element.value.columns)


def plain(markdown: str) -> str:
    """Escaped Markdown (data in messages is escaped) as the reader sees it."""
    return re.sub(r"\\(.)", r"\1", markdown)


def page_links(at) -> list:
    return list(at.get("page_link"))


def test_a_missing_database_names_itself_in_the_commands_and_links_to_the_data_page(
        page, tmp_path: Path) -> None:
    db = tmp_path / "my logs" / "w.duckdb"         # a space: the path must be quoted
    at = page("overview", db).run()
    assert not at.exception
    message = at.info[0].body
    assert f"workbench demo --db '{db}'" in message
    assert f"workbench ingest --db '{db}' FILE" in message
    [link] = page_links(at)
    assert link.proto.page == "data" and link.value == "Upload logs or build the demo"


def test_on_a_missing_database_the_page_offers_upload_demo_and_waits_to_curate(
        page, tmp_path: Path) -> None:
    at = page("data", tmp_path / "none.duckdb").run()
    assert not at.exception
    assert "does not exist yet" in at.info[0].body
    assert at.button(key="data_ingest").disabled          # nothing uploaded yet
    assert not at.button(key="demo_start").disabled
    assert any("Nothing to curate yet" in info.body for info in at.info)
    assert not (tmp_path / "none.duckdb").exists()       # looking makes nothing


def test_uploads_are_ingested_in_the_background_with_a_summary_and_the_quarantine(
        page, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    good = jsonl(*[make_record(request_id=f"r{i}", intent=f"look {i}") for i in range(3)],
                 bad=("{not json",))
    at = page("data", db).run()
    at.file_uploader[0].set_value(("logs.jsonl", good, "application/jsonl")).run()
    assert at.button(key="data_ingest").label == "Ingest 1 file"
    at.button(key="data_ingest").click().run()
    assert not at.exception
    assert at.success[0].body.startswith("Started the ingest job")
    assert at.file_uploader[0].value == []               # the uploader starts empty again
    job = finished(db, "ingest")
    assert job.status is jobs.JobStatus.SUCCEEDED, job.log_tail()
    # The job read a copy saved beside the database, never in the source tree.
    [saved] = [Path(f["source_file"]) for f in job.result["files"]]
    assert saved.read_bytes() == good and saved.name == "logs.jsonl"
    assert saved.is_relative_to(tmp_path / "jobs" / "uploads")
    assert not saved.is_relative_to(ROOT)

    at = page("data", db).run()
    assert not at.exception
    summary = summary_table(at)
    assert summary.iloc[0][["file", "read", "ingested", "duplicates", "quarantined"]].tolist() \
        == ["logs.jsonl", 4, 3, 0, 1]
    assert [metric.value for metric in at.metric][:3] == ["3", "3", "1"]
    assert {link.proto.page for link in page_links(at)} == {"quarantine"}
    assert "See the 1 record this upload quarantined, with the reasons" in [
        link.value for link in page_links(at)]


def test_bad_uploads_are_named_and_left_out_and_the_good_ones_still_ingest(
        page, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    record = make_record()
    written = io.StringIO()
    rows = csv.writer(written)
    rows.writerow(["request_id", "intent", "created_at", "teacher", "exports"])
    rows.writerows([f"c{i}", f"look {i}", record["created_at"], json.dumps(record["teacher"]),
                    json.dumps(record["exports"])] for i in range(2))
    good_csv = written.getvalue().encode()
    at = page("data", db).run()
    at.file_uploader[0].set_value([
        ("empty.jsonl", b"", "application/jsonl"),
        ("notes.txt", b"hello", "text/plain"),
        ("blank.csv", b"\n \n", "text/csv"),
        ("table.jsonl", b"request_id,intent\nr1,look\n", "application/jsonl"),
        ("good.csv", good_csv, "text/csv")]).run()
    warnings = [plain(warning.body) for warning in at.warning]
    assert len(warnings) == 3
    assert "empty.jsonl: the file is empty" in warnings[0]
    assert "notes.txt: not a log file (.txt)" in warnings[1]
    assert "blank.csv: the file holds only blank lines" in warnings[2]
    assert at.button(key="data_ingest").label == "Ingest 2 files"
    at.button(key="data_ingest").click().run()
    job = finished(db, "ingest")
    assert [Path(f["source_file"]).name for f in job.result["files"]] == ["table.jsonl",
                                                                          "good.csv"]
    at = page("data", db).run()
    summary = summary_table(at)
    assert summary[["file", "read", "ingested", "quarantined", "outcome"]].values.tolist() == [
        ["table.jsonl", 2, 0, 2, "nothing ingested"], ["good.csv", 2, 2, 0, "ok"]]
    [error] = [plain(error.body) for error in at.error]
    assert "table.jsonl: nothing could be ingested: all 2 of its records were quarantined" \
        in error and "line 1: malformed JSON" in error


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("logs.jsonl", b'{"a": 1}\n', None),
    ("logs.PARQUET", b"PAR1", None),
    ("logs.json", b"{}", "not a log file (.json)"),
    ("logs", b"{}", "not a log file (no extension)"),
    ("logs.csv", b"", "the file is empty"),
    ("logs.ndjson", b" \n\t\n", "only blank lines"),
])
def test_what_an_upload_is_refused_for(name: str, content: bytes, expected: str | None) -> None:
    problem = data.upload_problem(name, content, len(content))
    assert problem == expected if expected is None else expected in (problem or "")


def test_the_demo_is_not_built_where_there_are_logs_and_the_page_says_why(
        page, tmp_path: Path) -> None:
    store = curated_store(tmp_path)
    at = page("data", store.path).run()
    assert not at.exception
    refusal = next(plain(info.body) for info in at.info
                   if info.body.startswith("No demo in this database"))
    assert "already holds 18 requests" in refusal and "never mix" in refusal
    assert not [button for button in at.button if button.key == "demo_start"]
    # The job refuses too (a CLI or a second tab could submit it): the logs are untouched.
    jobs.submit(store.path, "demo", {"requests": 100})
    job = finished(store.path, "demo")
    assert job.status is jobs.JobStatus.FAILED and "already holds 18 requests" in job.error
    with store.session() as session:
        assert session.value("SELECT count(*) FROM requests") == 18


def test_the_demo_builds_a_missing_database_in_the_background(page, tmp_path: Path) -> None:
    db = tmp_path / "demo" / "w.duckdb"
    at = page("data", db).run()
    at.number_input(key="demo_requests").set_value(300)
    at.button(key="demo_start").click().run()
    assert not at.exception and at.success[0].body.startswith("Started the demo job")
    job = finished(db, "demo", timeout_s=240)
    assert job.status is jobs.JobStatus.SUCCEEDED, job.log_tail()
    with Store(db).session() as session:
        assert session.value("SELECT count(*) FROM requests") == 300
        assert session.value("SELECT count(*) FROM dataset_versions") == 1
    at = page("data", db).run()
    assert any(success.body.startswith("Built the synthetic demo (300 requests): dataset "
                                       "version 1") for success in at.success)


def test_curation_makes_a_new_version_with_the_chosen_options(page, tmp_path: Path) -> None:
    store = curated_store(tmp_path)
    at = page("data", store.path).run()
    note_key = next(box.key for box in at.text_input if box.key.startswith("curate_note"))
    at.number_input(key="curate_test_size").set_value(4.0)
    at.number_input(key="curate_seed").set_value(5)
    at.text_input(key=note_key).set_value("from the data page")
    at.button(key="curate_start").click().run()
    assert not at.exception and at.success[0].body.startswith("Started the curate job")
    assert [box.value for box in at.text_input if box.key.startswith("curate_note")] == [""]
    job = finished(store.path, "curate")
    assert job.status is jobs.JobStatus.SUCCEEDED, job.log_tail()
    with store.session() as session:
        made = session.first("SELECT version_id, note FROM dataset_versions "
                             "ORDER BY version_id DESC LIMIT 1")
        tested = session.value("SELECT count(*) FROM dataset_rows WHERE version_id = ? "
                               "AND split = 'test'", [made["version_id"]])
    assert (made["version_id"], made["note"], tested) == (2, "from the data page", 4)
    at = page("data", store.path).run()
    assert any(success.body.startswith("Dataset version 2 (now current)")
               for success in at.success)


def test_jobs_that_need_logs_are_still_refused_without_a_database(tmp_path: Path) -> None:
    with pytest.raises(StoreMissingError):
        jobs.submit(tmp_path / "none.duckdb", "curate", {})
    assert not (tmp_path / "jobs").exists()
