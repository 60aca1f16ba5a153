"""A database another process holds for writing (issue 11, item 5): every page says it is busy
and what holds it, retries, and renders once the file is free; never a traceback.

A subprocess opens the file for writing through the store (so it leaves the holder note a
`workbench ingest` would) and keeps it until told to let go."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import curated_store
from workbench.app import state

ROOT = Path(__file__).resolve().parents[2]
HOLD = ("import sys; from workbench.store import Store\n"
        "with Store(sys.argv[1], label='workbench ingest big.jsonl').atomic():\n"
        "    print('holding', flush=True)\n"
        "    sys.stdin.readline()\n")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return curated_store(tmp_path_factory.mktemp("busy")).path


@pytest.fixture
def held(db: Path) -> Iterator[Callable[[], None]]:
    """Holds the database for writing; calling the fixture's value lets go."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert holder.stdout is not None and holder.stdout.readline() == "holding\n"

    def release() -> None:
        if holder.poll() is None:
            assert holder.stdin is not None
            holder.stdin.write("\n")
            holder.stdin.flush()
            holder.wait(timeout=30)
    yield release
    release()


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch, db: Path) -> None:
    """Wait 1 s for the file, retry twice 0.1 s apart (the app waits 5 s and retries 10 times
    3 s apart)."""
    monkeypatch.setenv("WORKBENCH_DB", str(db))
    monkeypatch.setenv("WORKBENCH_LOCK_TIMEOUT", "1")
    monkeypatch.setattr(state, "RETRY_S", 0.1)
    monkeypatch.setattr(state, "AUTO_RETRIES", 2)


def _guarded(view: str) -> None:  # runs inside AppTest: imports must be local
    import importlib

    from workbench.app import state

    state.run_page(importlib.import_module(f"workbench.app.views.{view}").render)


def busy_notices(at: AppTest) -> list[str]:
    return [e.body for e in [*at.info, *at.warning] if "The database is busy" in e.body]


@pytest.mark.parametrize(("view", "loaded"), [
    ("intents", lambda at: at.dataframe and "intents match" in "".join(
        c.value for c in at.caption)),
    ("settings", lambda at: any(m.label == "Calls" for m in at.metric)),
    ("overview", lambda at: any(m.label == "Requests" and m.value == "18" for m in at.metric)),
])
def test_a_page_says_what_holds_the_database_then_loads_when_it_is_free(view, loaded, held):
    at = AppTest.from_function(_guarded, args=(view,), default_timeout=60).run()
    assert not at.exception
    [notice] = busy_notices(at)
    # Tried, retried twice, then waits for the button; the holder's note names what it does.
    assert "`workbench ingest big.jsonl` (process" in notice.replace("\\", "")
    assert "press Retry" in notice and at.session_state["busy_tries"] == 3
    assert not loaded(at)
    held()                                      # the ingest ends
    at.button(key="busy_retry").click().run()
    assert not at.exception and not busy_notices(at)
    assert loaded(at)
    assert "busy_tries" not in at.session_state


def test_a_page_retries_on_its_own_and_loads_once_the_file_is_free(held, monkeypatch):
    import threading

    monkeypatch.setattr(state, "AUTO_RETRIES", 20)
    finish = threading.Timer(1.5, held)              # the writer finishes a moment later
    finish.start()
    try:
        at = AppTest.from_function(_guarded, args=("intents",), default_timeout=60).run()
    finally:
        finish.join()
    assert not at.exception
    assert not busy_notices(at) and at.dataframe
    assert "busy_tries" not in at.session_state


def test_the_app_entry_point_guards_every_page(held):
    at = AppTest.from_file(str(ROOT / "workbench" / "app" / "main.py"), default_timeout=60).run()
    assert not at.exception
    assert len(busy_notices(at)) == 1                     # the default page: Overview
    held()
    at.button(key="busy_retry").click().run()
    assert not at.exception and not busy_notices(at)
    assert at.title[0].value == "Overview"


def test_app_sessions_read_while_another_reads(db: Path):
    """The app reads through read-only sessions: a reader elsewhere (another browser session's
    process, `workbench status`) does not make a page wait or say busy."""
    reader = subprocess.Popen(
        [sys.executable, "-c", ("import sys; from workbench.store import Store\n"
         "with Store(sys.argv[1]).session(read_only=True):\n"
         "    print('reading', flush=True); sys.stdin.readline()\n"), str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "reading\n"
        at = AppTest.from_function(_guarded, args=("intents",), default_timeout=60).run()
        assert not at.exception and not busy_notices(at) and at.dataframe
    finally:
        reader.communicate("\n", timeout=30)
