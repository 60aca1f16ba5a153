"""Online page: the empty state that says how to get served data, and the A/B test on served
requests written by hand (the ratio and its interval worked out below), simulated or not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import curated_store
from workbench.store import Store
from workbench.store.serving import write_served_feedback, write_served_requests

ADJUST = '{"temperature":40}'


def served(store: Store, sessions: dict[str, tuple[str, list[bool]]]) -> None:
    """Served requests: per session id, its arm and, per request in order, whether it was
    exported (feedback with one adjust export). Every answer uses adjust only."""
    start = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)
    requests: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    for s, (session, (arm, exported)) in enumerate(sessions.items()):
        for r, export in enumerate(exported):
            request_id = f"req_{s:016x}{r:016x}"
            when = start + timedelta(minutes=10 * s + r)
            requests.append({
                "request_id": request_id, "created_at": when, "session_id": session,
                "model": arm, "arm": arm, "intent_key": "golden hour",
                "intent_text": "golden hour", "adjust": ADJUST, "selective_adjust": None,
                "filter": None, "status": "ok", "latency_ms": 4.0,
                "source_location": f"line {len(requests) + 1}"})
            if export:
                feedback.append({
                    "feedback_id": f"fb_{s:016x}{r:016x}", "request_id": request_id,
                    "created_at": when + timedelta(minutes=1), "exports_adjust": 1,
                    "exports_selective_adjust": 0, "exports_filter": 0,
                    "source_location": f"line {100 + len(feedback)}"})
    with store.atomic() as session:
        write_served_requests(session, requests, 1, "spool-test.jsonl")
        write_served_feedback(session, feedback, 1, "spool-test.jsonl")


def hand_case(prefix: str) -> dict[str, tuple[str, list[bool]]]:
    # teacher: A (1 of 1) and B (0 of 1): rate 1/2; a resample of two sessions is AA (rate 1)
    # with probability 1/4, AB (1/2) 1/2, BB (0) 1/4. student: C and D, each 1 of 2: every
    # resample 1/2. Ratio student / teacher: 0.5 / 0.5 = 100%; per resample 0.5 / 1 = 0.5
    # (a third of the defined ones), 0.5 / 0.5 = 1 (two thirds), 0.5 / 0 undefined (left out):
    # the 95% interval is exactly [50%, 100%].
    return {f"{prefix}A": ("teacher", [True]), f"{prefix}B": ("teacher", [False]),
            f"{prefix}C": ("student:run-1", [True, False]),
            f"{prefix}D": ("student:run-1", [False, True])}


def texts(elements: Any) -> str:
    return "\n".join(str(element.value if hasattr(element, "value") else element.body)
                     for element in elements)


def test_without_served_data_it_says_how_to_get_some(page, tmp_path: Path) -> None:
    store = curated_store(tmp_path)
    at = page("online", store.path).run()
    assert not at.exception
    [info] = at.info
    steps = ("workbench serve", "--ab teacher=50,student:latest=50",
             "workbench simulate-traffic", "workbench ingest", str(store.path.parent / "spool"))
    for step in steps:
        assert step in info.body, step
    assert not at.warning and not at.metric


@pytest.mark.parametrize("prefix", ["u-", "sim-"])
def test_the_ratio_and_its_interval_are_shown(page, tmp_path: Path, prefix: str) -> None:
    store = curated_store(tmp_path)
    served(store, hand_case(prefix))
    at = page("online", store.path).run()
    assert not at.exception
    assert at.selectbox(key="online_control").value == "teacher"
    [ratio] = at.metric
    assert ratio.label == "student:run-1 / teacher" and ratio.value == "100.0%"
    assert "95% CI 50.0% to 100.0%" in texts(at.caption)
    verdict = texts(at.info)
    assert "keeps 100% of the teacher" in verdict.replace("\\", "")
    assert "too few sessions to tell" in verdict
    page_text = texts(at.markdown).replace("\\", "")
    assert "Sample ratio: sessions teacher 2, student:run-1 2" in page_text
    assert "no mismatch" in page_text
    assert "Minimum detectable effect for student:run-1" in page_text
    [arms] = at.dataframe
    table = arms.value.set_index("arm")
    assert table.loc["teacher (control)", "export rate"] == "50.0%"
    assert table.loc["teacher (control)", "95% interval"] == "0.0% to 100.0%"
    assert table.loc["student:run-1", "export rate"] == "50.0%"
    assert table.loc["student:run-1", "sessions"] == 2
    # Per tool with its interval: every answer used adjust only (the same sessions as the
    # overall rate); no answer used a filter.
    assert table.loc["teacher (control)", "adjust"] == "50.0% (0.0% to 100.0%)"
    assert table.loc["student:run-1", "adjust"] == "50.0% (50.0% to 50.0%)"
    assert table.loc["student:run-1", "filter"] == "-"
    simulated = [w.body for w in at.warning if "Simulated traffic" in w.body]
    assert len(simulated) == (1 if prefix == "sim-" else 0)


def test_another_control_flips_the_ratio(page, tmp_path: Path) -> None:
    store = curated_store(tmp_path)
    served(store, hand_case("u-"))
    at = page("online", store.path).run()
    at.selectbox(key="online_control").set_value("student:run-1").run()
    assert not at.exception
    [ratio] = at.metric
    # teacher / student: 0.5 / 0.5; per resample 1 / 0.5 = 2, 0.5 / 0.5 = 1, 0 / 0.5 = 0.
    assert ratio.label == "teacher / student:run-1" and ratio.value == "100.0%"
    assert "95% CI 0.0% to 200.0%" in texts(at.caption)
