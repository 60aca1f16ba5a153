"""End to end in a real browser, from nothing: the app on a database that does not exist yet; the
empty state's link to the Data page; a small log file (good records and one bad) uploaded and
ingested by a background job; the bad record on the Quarantine page with its reason; curation
into a version, a retrieval student trained and evaluated from the Runs page: no terminal.
Screenshots go to test-artifacts/e2e/start-*.png; look at them."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests import e2e_support
from tests.conftest import LOOKS, PREFIXES, make_record
from tests.e2e_support import open_page, settle, shot, streamlit_server
from workbench.store import Store

pytestmark = pytest.mark.slow
browser, page = e2e_support.browser, e2e_support.page      # the shared fixtures, by name

BAD_LINE = '{"request_id": "broken", "intent": "half a record"'


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A database path with nothing at it, and a log file: the tiny world's 18 good records (3
    looks in 6 phrasings) with one malformed line in the middle."""
    folder = tmp_path_factory.mktemp("e2e-start")
    lines = [json.dumps(make_record(request_id=f"{i}-{j}", intent=prefix + look,
                                    teacher={"adjust": adjust, "filter": filter_},
                                    exports={"adjust": 1, "filter": 1}))
             for i, (look, (adjust, filter_)) in enumerate(LOOKS.items())
             for j, prefix in enumerate(PREFIXES)]
    lines.insert(7, BAD_LINE)                  # line 8 of the file
    logs = folder / "first-logs.jsonl"
    logs.write_text("\n".join(lines) + "\n")
    return {"store": Store(folder / "db" / "workbench.duckdb"), "logs": logs}


@pytest.fixture(scope="module")
def server(empty: dict[str, Any]) -> Iterator[str]:
    with streamlit_server(empty["store"].path) as url:
        yield url


def wait_for(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(1)


def count(store: Store, sql: str) -> int:
    if not store.exists:
        return 0
    with store.session(read_only=True) as session:
        return int(session.value(sql))


def no_exception(page: Any) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0


def test_from_an_empty_database_to_an_evaluated_student(page, server, empty) -> None:
    store: Store = empty["store"]

    # 1. Nothing there: the Overview says which file and links to the Data page.
    open_page(page, server, "overview")
    page.get_by_text(f"workbench demo --db {store.path}", exact=False).first.wait_for()
    shot(page, "start-1-empty-overview")
    page.get_by_role("link", name=re.compile("Upload logs or build the demo")).click()
    page.get_by_role("heading", name="Data", exact=True).wait_for()
    settle(page)
    page.get_by_text("does not exist yet", exact=False).first.wait_for()
    shot(page, "start-2-data-empty")
    assert not store.exists

    # 2. Upload the log file; the ingest job makes the database and reports per file.
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        str(empty["logs"]))
    page.get_by_role("button", name="Ingest 1 file").click()
    settle(page)
    page.get_by_text("Started the ingest job", exact=False).first.wait_for()
    page.get_by_role("heading", name="Latest upload").wait_for(timeout=120_000)
    settle(page)
    no_exception(page)
    assert count(store, "SELECT count(*) FROM requests") == 18
    assert count(store, "SELECT count(*) FROM quarantine") == 1
    shot(page, "start-3-data-uploaded")

    # 3. The summary's link opens the quarantine, which shows the bad record and its reason.
    page.get_by_role("link", name=re.compile("See the 1 record this upload quarantined")).click()
    page.get_by_role("heading", name="Quarantine", exact=True).wait_for()
    settle(page)
    page.get_by_text("Records 1 to 1 of 1 matching", exact=False).wait_for()
    page.get_by_test_id("stSelectbox").filter(has_text="Show a record in full").click()
    page.get_by_role("option", name=re.compile("first-logs.jsonl · line 8")).click()
    settle(page)
    # The table's cells (drawn on a canvas) are in the DOM for screen readers; the record in
    # full is text: its reason above, its raw line in a code block.
    assert page.locator('[role="gridcell"]').filter(has_text="malformed JSON").count() == 1
    page.locator('[data-testid="stMarkdownContainer"]').filter(
        has_text="line 8, ingest 1: malformed JSON").wait_for()
    assert page.locator('[data-testid="stCode"]').filter(has_text=BAD_LINE).count() == 1
    no_exception(page)
    shot(page, "start-4-quarantine")

    # 4. Curate into version 1: three test intents, a note.
    open_page(page, server, "data")
    page.get_by_role("tab", name="Curate").click()
    test_size = page.get_by_role("spinbutton", name="Test size")
    test_size.fill("3")
    test_size.press("Tab")
    page.get_by_role("textbox", name="Note").fill("curated in the browser")
    page.get_by_role("button", name="Curate into a new version").click()
    settle(page)
    wait_for(lambda: count(store, "SELECT count(*) FROM dataset_versions") == 1, 120,
             "the curation job")
    page.get_by_role("tab", name="Curate").click()
    page.get_by_text("Dataset version 1 (now current)", exact=False).first.wait_for(
        timeout=60_000)
    settle(page)
    shot(page, "start-5-curated")
    with store.session(read_only=True) as session:
        version = session.first("SELECT note FROM dataset_versions WHERE version_id = 1")
        tested = session.value("SELECT count(*) FROM dataset_rows WHERE split = 'test'")
    assert (version["note"], tested) == ("curated in the browser", 3)

    # 5. Train the retrieval student (the fastest) from the Runs page.
    open_page(page, server, "runs")
    page.get_by_test_id("stSelectbox").filter(has_text="Student").first.click()
    page.get_by_role("option", name="retrieval").click()
    page.get_by_role("textbox", name="Student settings (JSON)", exact=True).fill('{"runtime": "torch"}')
    page.get_by_role("textbox", name="Note").fill("first student")
    page.get_by_role("button", name="Start", exact=True).click()
    settle(page)
    page.get_by_text("Started job", exact=False).wait_for()
    wait_for(lambda: count(store, "SELECT count(*) FROM runs") == 1, 300, "the training job")

    # 6. Evaluate it, also from the Runs page, and compare.
    open_page(page, server, "runs")
    page.locator('[data-testid="stRadio"] label').filter(has_text="evaluate").click()
    settle(page)
    page.get_by_role("button", name="Start", exact=True).click()
    settle(page)
    page.get_by_text("Started job", exact=False).wait_for()
    wait_for(lambda: count(store, "SELECT count(*) FROM evaluations") == 1, 300,
             "the evaluation job")
    open_page(page, server, "runs")
    page.get_by_role("tab", name="Jobs").click()
    page.get_by_text(re.compile(r"Latest finished job: evaluate .* succeeded")).wait_for()
    page.get_by_role("tab", name="Compare runs").click()
    settle(page)
    no_exception(page)
    shot(page, "start-6-evaluated")
    with store.session(read_only=True) as session:
        run = session.first("SELECT student, note FROM runs")
    assert (run["student"], run["note"]) == ("retrieval", "first student")
