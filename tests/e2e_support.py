"""What the Chromium end-to-end tests share: `streamlit run` of the app on 127.0.0.1 for a given
database (started, and stopped, by its process id), Debian's Chromium driven by Playwright, and
the helpers that wait for Streamlit and take screenshots into test-artifacts/e2e/ (git-ignored;
look at them).

Test modules import the fixtures they use (`browser`, `page`) by name, so pytest finds them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def streamlit_server(db: Path) -> Iterator[str]:
    """The app on `db` (which need not exist yet) at the URL yielded; its log is
    `streamlit.log` beside the database. Stopped by its process id at the end."""
    port = free_port()
    db.parent.mkdir(parents=True, exist_ok=True)
    log = (db.parent / "streamlit.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "workbench" / "app" / "main.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        env={**os.environ, "WORKBENCH_DB": str(db)}, stdout=log,
        stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.read().strip() == b"ok":
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.terminate()
        pytest.fail("streamlit did not start; see " + log.name)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    opened = context.new_page()
    opened.set_default_timeout(60_000)
    yield opened
    context.close()


def settle(page: Any) -> None:
    """Wait until Streamlit has finished the script run the last action started."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=90_000)
    # Elements still loading (dataframes, charts) show as skeletons; screenshots want them drawn.
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stSkeleton\"]')",
                           timeout=60_000)
    page.wait_for_timeout(300)


def open_page(page: Any, server: str, name: str) -> None:
    page.goto(f"{server}/{'' if name == 'overview' else name}")  # Overview is the default page
    title = name.replace("-", " ").capitalize()                  # reality-check: Reality check
    page.get_by_role("heading", name=title, exact=True).wait_for()
    settle(page)


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
