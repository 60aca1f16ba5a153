"""End to end in a real browser: `streamlit run` of the app on 127.0.0.1, driven by Playwright in
Debian's Chromium (`.ci/run` installs it). Opens every page, searches an intent, approves an
augmentation candidate, starts a small training job and waits for it to finish; edits an
intent's answer with the editor (the preview turns cooler), commits the label and exports it;
works the label queue while a second curator does; sends simulated traffic through a served run
and reads the Online page. Screenshots go to test-artifacts/e2e/
(git-ignored); look at them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines import augment, demo, evaluate, train
from tests import e2e_support
from tests.e2e_support import ROOT, open_page, settle, shot, streamlit_server
from workbench.paraphrase.offline import OfflineParaphraser
from workbench.store import Store

PAGES = ["overview", "data", "quarantine", "intents", "errors", "augmentation", "labels",
         "reality-check", "datasets", "runs", "online", "settings"]

pytestmark = pytest.mark.slow
browser, page = e2e_support.browser, e2e_support.page      # the shared fixtures, by name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small synthetic demo with an evaluated retrieval run and a round of pending candidates."""
    folder = tmp_path_factory.mktemp("e2e")
    store = Store(folder / "workbench.duckdb")
    demo.run(demo.DemoRunConfig(requests=1500, test_size=0.1), store)
    run = train.run(train.TrainConfig(student="retrieval", student_config={"runtime": "torch"}),
                    store)
    evaluate.evaluate_run(run.run_id, None, store)
    with store.session() as session:
        sources = [row["intent_key"] for row in session.query(
            "SELECT intent_key FROM dataset_rows WHERE version_id = 1 AND split = 'train' "
            "ORDER BY request_count DESC, intent_key LIMIT 3")]
    round_ = augment.run(augment.AugmentConfig(sources=tuple(sources), n=3), store,
                         paraphraser=OfflineParaphraser(seed=0))
    assert round_.n_kept > 0
    return {"store": store, "run_id": run.run_id, "sources": sources}


@pytest.fixture(scope="module")
def server(world: dict[str, Any]) -> Iterator[str]:
    with streamlit_server(world["store"].path) as url:
        yield url


def test_every_page_opens_without_an_exception(page, server) -> None:
    for name in PAGES:
        open_page(page, server, name)
        assert page.locator('[data-testid="stException"]').count() == 0, name
        assert page.get_by_text("Page not found").count() == 0, name
        shot(page, name)
    open_page(page, server, "overview")
    assert page.get_by_text("synthetic", exact=False).first.is_visible()


def test_searching_an_intent_narrows_the_table(page, server, world) -> None:
    term = world["sources"][0]
    with world["store"].session() as session:
        expected = session.value("SELECT count(*) FROM intents WHERE contains(intent_key, ?)",
                                 [term])
    open_page(page, server, "intents")
    search = page.get_by_label("Search intents")
    search.fill(term)
    search.press("Enter")
    settle(page)
    page.get_by_text(f"{expected:,} intents match" if expected != 1 else "1 intent match",
                     exact=False).first.wait_for()
    shot(page, "intents-search")


def test_approving_a_candidate_in_the_review_queue(page, server, world) -> None:
    store = world["store"]
    with store.session() as session:
        before = session.value("SELECT count(*) FROM candidates WHERE status = 'approved'")
    open_page(page, server, "augmentation")
    page.get_by_role("button", name=re.compile(r"^Approve all \d+ pending")).first.click()
    settle(page)
    # a bulk action says how many it touches and asks once
    page.get_by_role("button", name=re.compile(r"^Yes: approve")).click()
    settle(page)
    with store.session() as session:
        after = session.value("SELECT count(*) FROM candidates WHERE status = 'approved'")
    assert after > before
    shot(page, "augmentation-approved")


def test_a_training_job_started_in_the_app_finishes(page, server, world) -> None:
    store = world["store"]
    with store.session() as session:
        runs_before = session.value("SELECT count(*) FROM runs")
    open_page(page, server, "runs")
    page.get_by_role("textbox", name="Student settings (JSON)", exact=True).fill('{"runtime": "torch"}')
    page.get_by_role("textbox", name="Note").fill("started in the browser")
    page.get_by_test_id("stSelectbox").filter(has_text="Student").first.click()
    page.get_by_role("option", name="retrieval").click()
    page.get_by_role("button", name="Start", exact=True).click()
    settle(page)
    page.get_by_text("Started job", exact=False).wait_for()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        with store.session() as session:
            if session.value("SELECT count(*) FROM runs WHERE note = 'started in the browser'"):
                break
        time.sleep(1)
    with store.session() as session:
        assert session.value("SELECT count(*) FROM runs") == runs_before + 1
    open_page(page, server, "runs")
    page.get_by_role("tab", name="Jobs").click()
    page.get_by_text("succeeded", exact=False).first.wait_for()
    shot(page, "runs-job-finished")


# ------------------------------------------------------------------ labels (issue 13)

def pixels(png: bytes) -> Any:
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB")).astype(float)


def set_curator(page: Any, name: str) -> None:
    box = page.get_by_role("textbox", name="Curator").first
    box.fill(name)
    box.press("Enter")
    settle(page)


def set_slider(page: Any, container: str, value: int) -> None:
    """Drive a slider with the keyboard, as a person can: Home (-100), then one step at a time."""
    thumb = page.locator(f".{container}").get_by_role("slider").first
    thumb.focus()
    thumb.press("Home")
    for _ in range(value + 100):
        thumb.press("ArrowRight")
    settle(page)
    page.locator(f".{container} [data-testid=stSliderThumbValue]").filter(
        has_text=re.compile(rf"^{value}$")).wait_for()


def export_rows(db: Path, version: int, out: Path) -> dict[str, dict]:
    import json

    subprocess.run([sys.executable, "-m", "workbench.cli", "export", "--db", str(db), "--version",
                    str(version), "--out", str(out)], check=True, cwd=ROOT,
                   capture_output=True, text=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return {row["intent"]: row for row in rows}


def test_editing_an_intent_saves_a_label_that_a_commit_exports(page, server, world) -> None:
    store = world["store"]
    with store.session() as session:
        version = session.value("SELECT max(version_id) FROM dataset_versions")
        # A popular intent whose ground truth warms or is neutral: -40 is cooler for sure.
        text = session.value(
            "SELECT i.intent_text FROM dataset_rows d JOIN intents i USING (intent_key) "
            "JOIN intent_stats s USING (intent_key) WHERE d.version_id = ? "
            "AND d.adjust IS NOT NULL AND CAST(d.adjust ->> 'temperature' AS INTEGER) >= 0 "
            "ORDER BY s.request_count DESC, d.intent_key LIMIT 1", [version])
    open_page(page, server, "intents")
    search = page.get_by_label("Search intents")
    search.fill(text)
    search.press("Enter")
    settle(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Open an intent").click()
    page.get_by_role("option", name=text, exact=True).click()
    settle(page)
    set_curator(page, "e2e-ana")                   # the curator's name shows with the editor
    after = page.locator(".st-key-intent_editor-after img")
    after.wait_for()
    before = pixels(after.screenshot())
    set_slider(page, "st-key-intent_editor-adjust-temperature", -40)
    page.wait_for_function(  # the new preview has loaded
        "() => { const i = document.querySelector('.st-key-intent_editor-after img');"
        " return i && i.complete && i.naturalWidth > 0; }")
    settle(page)
    cooler = pixels(after.screenshot())
    shift = ((cooler[..., 2] - cooler[..., 0]).mean() - (before[..., 2] - before[..., 0]).mean())
    assert shift > 5, f"the preview did not turn cooler (blue - red moved by {shift:.1f})"
    page.get_by_role("textbox", name="Note (optional)").fill("cooler, from the browser")
    page.get_by_role("button", name="Save label").click()
    settle(page)
    page.get_by_text("as curator:e2e-ana", exact=False).first.wait_for()
    shot(page, "editor-saved")
    with store.session() as session:
        saved = session.first("SELECT label_id, adjust, note FROM labels "
                              "WHERE source = 'curator:e2e-ana'")
    assert saved is not None and saved["note"] == "cooler, from the browser"
    assert '"temperature":-40' in saved["adjust"]

    open_page(page, server, "labels")
    page.get_by_role("tab", name="Commit labels").click()
    page.get_by_role("button", name="Commit labels into a new version").click()
    settle(page)
    page.get_by_text(f"dataset version {version + 1} (now current)", exact=False).first.wait_for()
    shot(page, "labels-committed")
    folder = store.path.parent
    new = export_rows(store.path, version + 1, folder / "new.jsonl")[text]
    old = export_rows(store.path, version, folder / "old.jsonl")[text]
    assert new["adjust"]["temperature"] == -40 and new["label_source"] == "curator:e2e-ana"
    assert new["label_id"] == saved["label_id"]
    assert old["adjust"]["temperature"] >= 0 and old["label_source"] != "curator:e2e-ana"


def click_keyed(page: Any, key: str) -> None:
    """Click the button with this Streamlit key once exactly one of it is visible: while a
    rerun replaces the queue's item, the previous item's button can still be drawn beside the
    new one (and a hidden copy can sit in the page), so a click by name alone is ambiguous."""
    selector = f".st-key-{key} button"
    page.wait_for_function(
        "s => [...document.querySelectorAll(s)].filter(b => b.offsetParent !== null).length === 1",
        arg=selector, timeout=60_000)
    page.locator(f"{selector}:visible").click()


def test_the_label_queue_five_in_a_row_while_another_curator_works(page, browser, server,
                                                                   world) -> None:
    store = world["store"]

    def showing(on: Any) -> str:
        return str(on.locator(".st-key-labels_intent code").inner_text()).strip()

    open_page(page, server, "labels")
    set_curator(page, "e2e-one")
    other_context = browser.new_context(viewport={"width": 1400, "height": 1800})
    other = other_context.new_page()
    other.set_default_timeout(60_000)
    try:
        open_page(other, server, "labels")
        set_curator(other, "e2e-two")
        held = showing(other)
        progress = page.locator(".st-key-labels_progress")
        first = re.search(r"(\d+) of (\d+)", progress.inner_text())
        assert first is not None and first.group(1) == "1"
        total = int(first.group(2))
        seen = []
        for n in range(5):
            # the queue has moved on (under load the rerun may land after the click returns)
            progress.filter(has_text=f"{n + 1} of {total}").wait_for()
            settle(page)
            intent = showing(page)
            assert intent != held, "two curators were given the same intent"
            seen.append(intent)
            if n == 2:              # one of them edited, the rest accepted
                click_keyed(page, "labels_edit")
                settle(page)
                set_slider(page, "st-key-queue_editor-adjust-contrast", 25)
                page.get_by_role("button", name="Save and next").click()
            else:
                click_keyed(page, "labels_accept")
            settle(page)
            if n == 0:
                shot(page, "labels-queue")
        assert len(set(seen)) == 5
        assert showing(other) == held            # the other curator still has theirs
        shot(other, "labels-queue-second-curator")
    finally:
        other_context.close()
    with store.session() as session:
        labelled = [row["intent_text"] for row in session.query(
            "SELECT intent_text FROM labels WHERE source = 'curator:e2e-one' ORDER BY label_id")]
    assert len(labelled) == 5 and held not in labelled


def test_the_online_page_after_simulated_traffic(page, server, world, tmp_path: Path) -> None:
    """The run behind an A/B split with the fake teacher, 40 simulated sessions through it, the
    spool ingested: the Online page shows the ratio to the teacher and its interval."""
    from tests.fake_teacher import fake_teacher
    from tests.test_serve import start_server

    db, student = world["store"].path, f"student:{world['run_id']}"
    with fake_teacher() as teacher:
        gateway = start_server(tmp_path, ["--db", str(db), "--ab", f"teacher=50,{student}=50"],
                               teacher.base_url)
        try:
            sent = subprocess.run(
                [sys.executable, "-m", "workbench.cli", "simulate-traffic", "--db", str(db),
                 "--url", gateway.url + "/v1", "--sessions", "40", "--no-progress"],
                check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
        finally:
            gateway.stop()
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("SIMULATION (not real users): 40 simulated sessions")
    ingested = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "ingest", "--db", str(db), str(gateway.spool),
         "--no-progress"], check=False, cwd=ROOT, capture_output=True, text=True,
        timeout=300)
    assert ingested.returncode == 0, ingested.stderr
    open_page(page, server, "online")
    page.get_by_text("Simulated traffic", exact=False).first.wait_for()
    page.get_by_text(f"{student} / teacher", exact=True).wait_for()
    assert page.locator('[data-testid="stMetricValue"]').first.inner_text().endswith("%")
    page.get_by_text(re.compile(r"^95% CI \d+\.\d% to \d+\.\d%$")).first.wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    shot(page, "online-simulated")
