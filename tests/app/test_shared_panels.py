"""What the pages share: session-state keys and formatting helpers from `workbench.app.state`
(no page imports another page), and one job panel on the Runs and Augmentation pages."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from pathlib import Path

from tests.app.conftest import write_job
from tests.conftest import curated_store
from workbench.app import jobs

VIEWS = Path(__file__).resolve().parents[2] / "workbench" / "app" / "views"


def test_no_page_imports_another_page() -> None:
    found = []
    for path in sorted(VIEWS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "workbench.app.views"):
                found.append(f"{path.name}:{node.lineno} imports {node.module}")
    assert found == []


def test_the_errors_page_hands_intents_over_through_the_shared_keys() -> None:
    from workbench.app import state
    from workbench.app.views import augmentation, errors

    for key in ("SOURCES_KEY", "SOURCES_VERSION_KEY"):
        assert getattr(errors, key) is getattr(augmentation, key) is getattr(state, key)


def test_both_pages_show_jobs_through_one_panel(page, tmp_path: Path) -> None:
    db = curated_store(tmp_path).path
    write_job(db, "20240101-000000-augment-aaaaaa", "augment", status="succeeded",
               finished_at=datetime.now(UTC).isoformat(),
               result={"augmentation_id": 4, "n_sources": 2, "n_generated": 9, "n_kept": 6,
                       "dropped": {}, "n_failed": 0})
    write_job(db, "20240102-000000-train-bbbbbb", "train")
    (jobs.jobs_dir(db) / "20240102-000000-train-bbbbbb" / jobs.PROGRESS_FILE).write_text(
        json.dumps({"t": 1.0, "stage": "epoch", "done": 1, "total": 4}) + "\n")
    runs_page = page("runs", db).run()
    assert not runs_page.exception
    # The Runs page lists every kind: the running training job with its progress bar, and the
    # augmentation round the finished job made, in the same words as the Augmentation page.
    [bar] = runs_page.get("progress")
    assert bar.value == 25 and "epoch: 1 / 4" in bar.proto.text
    [outcome] = [s.body for s in runs_page.success if "Latest finished job" in s.body]
    assert "`20240101-000000-augment-aaaaaa` succeeded" in outcome
    assert "Round 4: 2 source intent(s), 9 candidate(s) generated, 6 kept" in outcome
    augmentation_page = page("augmentation", db).run()
    assert not augmentation_page.exception
    assert outcome in [s.body for s in augmentation_page.success]
    assert augmentation_page.get("progress") == []        # a training job is not its kind
