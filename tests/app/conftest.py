"""AppTest helpers: run one page of the app against a given database file."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from workbench.app import jobs


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


def write_job(db: Path, job_id: str, kind: str, **fields: Any) -> Path:
    """A job folder as the job process leaves it (running, by this process, unless `fields`
    say otherwise)."""
    folder = jobs.jobs_dir(db) / job_id
    folder.mkdir(parents=True)
    now = datetime.now(UTC).isoformat()
    data = {"id": job_id, "kind": kind, "config": {}, "db": str(db), "status": "running",
            "created_at": now, "started_at": now, "finished_at": None, "pid": os.getpid(),
            "pgid": None, "proc_start": None, "result": None, "error": None,
            "error_type": None, **fields}
    (folder / jobs.JOB_FILE).write_text(json.dumps(data))
    return folder
