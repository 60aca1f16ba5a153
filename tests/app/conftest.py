"""AppTest helpers: run one page of the app against a given database file."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest


def _page_script(view: str) -> None:  # runs inside AppTest: imports must be local
    import importlib

    importlib.import_module(f"workbench.app.views.{view}").render()


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch):
    """page(view, db) -> an AppTest of `workbench.app.views.<view>.render()` on `db`, not run."""
    def make(view: str, db: Path, timeout: float = 60) -> AppTest:
        monkeypatch.setenv("WORKBENCH_DB", str(db))
        return AppTest.from_function(_page_script, args=(view,), default_timeout=timeout)
    return make
