"""Closing the loop (pipelines.fold_served, the end of `workbench ingest SPOOL_FOLDER`): the
teacher's served answers folded into the logs with their feedback window's exports. Spools
built by hand; every count and export sum worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines import curate, fold_served, ingest, ingest_spool
from pipelines.fold_served import FoldConfig
from workbench.errors import WorkbenchError
from workbench.serving.spool import Spool, segment_name
from workbench.store import Store
from workbench.store.requests import ground_truth_by_intent, intent_request_counts, log_counts

R1, R2, R3, R4, R5 = (f"req_{n:032x}" for n in (1, 2, 3, 4, 5))
F1, F2, F3, F4, F5, F6 = (f"fb_{n:032x}" for n in (11, 12, 13, 14, 15, 16))
T0 = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)
ADJUST = {"temperature": 30}
FILTER = {"name": "warm_Golden", "intensity": 40}
TEACHER = "teacher:gpt-3.5-turbo"
ZERO = {"adjust": 0, "selective_adjust": 0, "filter": 0}


def answer(**tools: Any) -> dict[str, Any]:
    return {"adjust": None, "selective_adjust": None, "filter": None, **tools}


def request(request_id: str, at: datetime, *, model: str = TEACHER, status: str = "ok",
            intent: str = "Golden hour", teacher: dict | None = None,
            session_id: str | None = "s1") -> dict[str, Any]:
    if teacher is None and status == "ok":
        teacher = answer(adjust=ADJUST, filter=FILTER)
    return {"kind": "request", "request_id": request_id, "created_at": at.isoformat(),
            "intent": intent, "teacher": teacher, "exports": dict(ZERO), "teacher_model": model,
            "arm": None, "session_id": session_id, "latency_ms": 12.5, "status": status}


def feedback(feedback_id: str, request_id: str, at: datetime, **exports: int) -> dict[str, Any]:
    return {"kind": "feedback", "feedback_id": feedback_id, "request_id": request_id,
            "created_at": at.isoformat(), "exports": {**ZERO, **exports}}


def segment(folder: Path, records: list[dict[str, Any]], seq: int = 0) -> Path:
    """A closed segment of the given records (one JSON line each)."""
    folder.mkdir(exist_ok=True)
    path = folder / segment_name(T0 + timedelta(seconds=seq), 4242, seq, open_=False)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                    encoding="utf-8")
    return path


def ingest_folder(folder: Path, store: Store) -> ingest_spool.SpoolIngestResult:
    return ingest_spool.run(ingest_spool.SpoolIngestConfig((folder,)), store)


def fold(store: Store, now: datetime, hours: float = 24.0) -> fold_served.FoldResult:
    return fold_served.run(FoldConfig(feedback_window_hours=hours), store, now=now)


def request_rows(store: Store) -> list[dict]:
    with store.session() as session:
        rows = session.query("SELECT * FROM requests ORDER BY request_id")
    for row in rows:
        row["created_at"] = row["created_at"].astimezone(UTC)
    return rows


def counts(result: fold_served.FoldResult) -> tuple[int, ...]:
    return (result.folded, result.with_exports, result.duplicates, result.quarantined,
            result.waiting, result.late_feedback)


# -- the fold --------------------------------------------------------------------------------------

def test_a_teacher_request_folds_with_its_window_feedback_summed_by_hand(
        tmp_path: Path, store: Store) -> None:
    a = segment(tmp_path / "spool", [
        request(R1, T0),                                                   # line 1: folded
        request(R2, T0, model="student:run1"),                             # 2: a student's
        request(R3, T0, status="error:teacher_timeout"),                   # 3: a failed call
        feedback(F1, R1, T0 + timedelta(hours=1), adjust=1, filter=2),     # 4: in the window
        feedback(F2, R1, T0 + timedelta(hours=24), filter=1),              # 5: its last instant
        feedback(F3, R1, T0 + timedelta(hours=25), adjust=4),              # 6: after the window
        feedback(F4, R2, T0 + timedelta(hours=1), adjust=7),               # 7: the student's
    ])
    ingest_folder(tmp_path / "spool", store)
    result = fold(store, now=T0 + timedelta(days=2))
    # Only R1: R2 is a student's answer, R3 failed. Its exports: F1 + F2 = adjust 1, filter
    # 2 + 1 = 3; F3 came an hour after the window closed.
    assert counts(result) == (1, 1, 0, 0, 0, 1)
    [summary] = result.segments
    assert (summary.source_file, summary.format, summary.read, summary.ingested) == \
        (str(a), "served", 1, 1)
    [row] = request_rows(store)
    assert {key: row[key] for key in (
        "request_id", "intent_key", "intent_text", "created_at", "filter_name", "exports_adjust",
        "exports_selective_adjust", "exports_filter", "teacher_model", "latency_ms",
        "cost_usd", "session_id", "ingest_id", "source_file", "source_location")} == {
        "request_id": R1, "intent_key": "golden hour", "intent_text": "Golden hour",
        "created_at": T0, "filter_name": "warm_Golden", "exports_adjust": 1,
        "exports_selective_adjust": 0, "exports_filter": 3, "teacher_model": "gpt-3.5-turbo",
        "latency_ms": 12.5, "cost_usd": None, "session_id": "s1",
        "ingest_id": summary.ingest_id, "source_file": str(a), "source_location": "line 1"}

    with store.session() as session:
        folds = session.query("SELECT request_id, ingest_id, feedback_until, n_feedback "
                              "FROM served_folds")
        late = session.query("SELECT feedback_id, request_id, reason FROM served_late_feedback")
        history = session.query("SELECT source_file, format, n_read, n_ingested FROM ingests "
                                "ORDER BY ingest_id")
        stats = session.query("SELECT request_count, exported_count, output_count "
                              "FROM intent_stats")
        logs = log_counts(session)
    assert [{**f, "feedback_until": f["feedback_until"].astimezone(UTC)} for f in folds] == [
        {"request_id": R1, "ingest_id": summary.ingest_id,
         "feedback_until": T0 + timedelta(hours=24), "n_feedback": 2}]
    assert late == [{"feedback_id": F3, "request_id": R1, "reason": "past the feedback window"}]
    # The spool's own ingest (7 lines: 3 requests and 4 feedback), then the fold's.
    assert history == [{"source_file": str(a), "format": "spool", "n_read": 7, "n_ingested": 7},
                       {"source_file": str(a), "format": "served", "n_read": 1,
                        "n_ingested": 1}]
    assert stats == [{"request_count": 1, "exported_count": 1, "output_count": 1}]
    assert logs == {"requests": 1, "intents": 1, "quarantined": 0, "ingests": 2}


def test_simulated_sessions_never_reach_the_logs(tmp_path: Path, store: Store) -> None:
    """`workbench simulate-traffic` names its sessions sim-...: their exports are made up, so
    the teacher's answers to them are not folded (nor counted as waiting)."""
    segment(tmp_path / "spool", [
        request(R1, T0, session_id="sim-7-0001"),
        request(R2, T0, session_id=None),                       # no session: a real caller
        request(R3, T0 + timedelta(days=2), session_id="sim-7-0002"),
        feedback(F1, R1, T0 + timedelta(hours=1), adjust=1),
    ])
    ingest_folder(tmp_path / "spool", store)
    result = fold(store, now=T0 + timedelta(days=2))
    assert counts(result) == (1, 0, 0, 0, 0, 0)
    assert [row["request_id"] for row in request_rows(store)] == [R2]


def test_a_folded_request_is_the_one_a_log_file_with_the_same_record_gives(
        tmp_path: Path, store: Store) -> None:
    segment(tmp_path / "spool", [request(R1, T0, intent="  Café\u200b au lait "),
                                 feedback(F1, R1, T0 + timedelta(hours=2), adjust=2)])
    ingest_folder(tmp_path / "spool", store)
    fold(store, now=T0 + timedelta(days=1))
    # The same request written by hand in the log contract (SPEC 3), ingested from a file.
    logs = tmp_path / "logs.jsonl"
    logs.write_text(json.dumps({
        "request_id": R1, "intent": "Café\u200b au lait", "created_at": T0.isoformat(),
        "teacher": answer(adjust=ADJUST, filter=FILTER),
        "exports": {"adjust": 2, "selective_adjust": 0, "filter": 0},
        "teacher_model": "gpt-3.5-turbo", "latency_ms": 12.5, "session_id": "s1"}) + "\n")
    other = Store(tmp_path / "other.duckdb")
    ingest.ingest_file(logs, other)
    where = ("ingest_id", "source_file", "source_location")
    [folded], [logged] = request_rows(store), request_rows(other)
    assert {k: v for k, v in folded.items() if k not in where} == \
        {k: v for k, v in logged.items() if k not in where}
    assert folded["intent_key"] == "café au lait"
    # And then ingesting that file into the folded store is a no-op (same id, same content).
    again = ingest.ingest_file(logs, store)
    assert (again.ingested, again.duplicates, again.quarantined) == (0, 1, 0)


def test_a_request_waits_for_its_window_and_a_later_ingest_folds_it(
        tmp_path: Path, store: Store) -> None:
    folder = tmp_path / "spool"
    segment(folder, [request(R1, T0), feedback(F1, R1, T0 + timedelta(hours=3), filter=1)])
    ingest_folder(folder, store)
    early = fold(store, now=T0 + timedelta(hours=10))
    assert counts(early) == (0, 0, 0, 0, 1, 0)     # 14 hours of its window left
    assert early.segments == [] and request_rows(store) == []
    with store.session() as session:
        assert log_counts(session)["ingests"] == 1  # nothing folded: no ingest row

    # More feedback comes inside the window, then a later ingest at the window's last instant.
    segment(folder, [feedback(F2, R1, T0 + timedelta(hours=20), adjust=2)], seq=1)
    ingest_folder(folder, store)
    done = fold(store, now=T0 + timedelta(hours=24))
    assert counts(done) == (1, 1, 0, 0, 0, 0)
    [row] = request_rows(store)
    assert (row["exports_adjust"], row["exports_selective_adjust"], row["exports_filter"]) == \
        (2, 0, 1)


def test_re_ingesting_folds_nothing_new_and_late_feedback_is_counted_once(
        tmp_path: Path, store: Store) -> None:
    folder = tmp_path / "spool"
    segment(folder, [request(R1, T0), feedback(F1, R1, T0 + timedelta(hours=1), adjust=1)])
    ingest_folder(folder, store)
    assert counts(fold(store, now=T0 + timedelta(days=1))) == (1, 1, 0, 0, 0, 0)
    before = request_rows(store)
    with store.session() as session:
        ingests = log_counts(session)["ingests"]

    again = fold(store, now=T0 + timedelta(days=2))
    assert counts(again) == (0, 0, 0, 0, 0, 0) and again.segments == []
    assert request_rows(store) == before

    # Feedback from inside the window, in a segment ingested after the fold, and feedback after
    # the window: both stay in served_feedback, neither changes the folded request.
    segment(folder, [feedback(F2, R1, T0 + timedelta(hours=2), filter=5),
                     feedback(F3, R1, T0 + timedelta(days=3), adjust=1)], seq=1)
    ingest_folder(folder, store)
    late = fold(store, now=T0 + timedelta(days=4))
    assert counts(late) == (0, 0, 0, 0, 0, 2)
    assert request_rows(store) == before
    assert counts(fold(store, now=T0 + timedelta(days=5))) == (0, 0, 0, 0, 0, 0)  # told once
    with store.session() as session:
        reasons = session.query("SELECT feedback_id, reason FROM served_late_feedback "
                                "ORDER BY feedback_id")
        served = session.value("SELECT sum(exports_adjust + exports_filter) FROM served_feedback")
        assert log_counts(session)["ingests"] == ingests + 1   # the second segment's ingest
    # F3 is both: past its window counts first.
    assert reasons == [{"feedback_id": F2, "reason": "ingested after the fold"},
                       {"feedback_id": F3, "reason": "past the feedback window"}]
    assert served == 1 + 5 + 1    # the online test still sees all three


def test_a_zero_window_folds_everything_now_with_the_feedback_known_now(
        tmp_path: Path, store: Store) -> None:
    with Spool(tmp_path / "spool") as spool:       # written by the spool itself
        spool.append(request(R1, T0))
        spool.append(feedback(F1, R1, T0 + timedelta(days=5), filter=2))
        spool.append(request(R2, T0 + timedelta(minutes=1), intent="cold blue"))
    ingest_folder(tmp_path / "spool", store)
    result = fold(store, now=T0 + timedelta(minutes=1), hours=0)
    assert counts(result) == (2, 1, 0, 0, 0, 0)
    assert [(r["request_id"], r["exports_filter"]) for r in request_rows(store)] == \
        [(R1, 2), (R2, 0)]
    with store.session() as session:
        assert session.query("SELECT feedback_until FROM served_folds") == \
            [{"feedback_until": None}] * 2


def test_a_fold_that_breaks_the_log_contract_is_quarantined_once(
        tmp_path: Path, store: Store) -> None:
    # Two feedback records of 600,000,000 exports each sum past the contract's 1,000,000,000.
    a = segment(tmp_path / "spool", [
        request(R1, T0), request(R2, T0, intent="cold blue"),
        feedback(F1, R1, T0, adjust=600_000_000), feedback(F2, R1, T0, adjust=600_000_000)])
    ingest_folder(tmp_path / "spool", store)
    result = fold(store, now=T0 + timedelta(days=1))
    assert counts(result) == (1, 0, 0, 1, 0, 0)
    with store.session() as session:
        bad = session.query("SELECT source_file, location, reason, raw FROM quarantine")
    assert [(b["source_file"], b["location"], b["reason"]) for b in bad] == [
        (str(a), "line 1",
         "exports.adjust: must be an integer from 0 to 1,000,000,000 (got 1200000000)")]
    assert json.loads(bad[0]["raw"])["exports"]["adjust"] == 1_200_000_000
    assert [r["request_id"] for r in request_rows(store)] == [R2]
    assert counts(fold(store, now=T0 + timedelta(days=2))) == (0, 0, 0, 0, 0, 0)


def test_a_request_already_in_the_logs_is_a_duplicate_or_a_conflict(
        tmp_path: Path, store: Store) -> None:
    def logged(request_id: str, exports_filter: int) -> dict[str, Any]:
        return {"request_id": request_id, "intent": "Golden hour",
                "created_at": T0.isoformat(), "teacher": answer(adjust=ADJUST, filter=FILTER),
                "exports": {**ZERO, "filter": exports_filter}, "teacher_model": "gpt-3.5-turbo",
                "latency_ms": 12.5, "session_id": "s1"}

    logs = tmp_path / "logs.jsonl"
    logs.write_text(json.dumps(logged(R1, 1)) + "\n" + json.dumps(logged(R2, 9)) + "\n")
    ingest.ingest_file(logs, store)                                   # ingest 1
    segment(tmp_path / "spool", [request(R1, T0), request(R2, T0),
                                 feedback(F1, R1, T0, filter=1), feedback(F2, R2, T0, filter=1)])
    ingest_folder(tmp_path / "spool", store)
    result = fold(store, now=T0 + timedelta(days=1))
    # R1 folds to exactly the logged record; R2's folded exports (1) differ from the log's (9).
    assert counts(result) == (0, 0, 1, 1, 0, 0)
    with store.session() as session:
        [bad] = session.query("SELECT location, reason FROM quarantine")
    assert bad == {"location": "line 2",
                   "reason": f"request_id '{R2}' was already ingested (ingest 1) with different "
                             "content"}
    assert [r["exports_filter"] for r in request_rows(store)] == [1, 9]


def test_folded_requests_reach_curation_with_their_exports(tmp_path: Path, store: Store) -> None:
    segment(tmp_path / "spool", [
        request(R1, T0),
        request(R2, T0, intent="cold blue", teacher=answer(adjust={"temperature": -40})),
        request(R3, T0, intent="golden  HOUR"),                         # same intent as R1
        request(R4, T0, intent="student only", model="student:run1"),
        feedback(F1, R1, T0 + timedelta(hours=1), adjust=2, filter=1),
        feedback(F2, R2, T0 + timedelta(hours=1), adjust=1),
        feedback(F3, R4, T0 + timedelta(hours=1), adjust=1),
    ])
    ingest_folder(tmp_path / "spool", store)
    assert counts(fold(store, now=T0 + timedelta(days=1))) == (3, 2, 0, 0, 0, 0)
    with store.session() as session:
        truth = ground_truth_by_intent(session)
        requests_per_intent = {k: v["request_count"]
                               for k, v in intent_request_counts(session).items()}
    # golden hour: R1 (exported) and R3 (not; curation drops it but counts it for r_k).
    assert requests_per_intent == {"golden hour": 2, "cold blue": 1}
    assert truth["golden hour"]["adjust"]["exports"] == 2
    assert truth["golden hour"]["filter"]["exports"] == 1
    assert truth["golden hour"]["adjust"]["n_requests"] == 1
    assert truth["cold blue"]["adjust"]["exports"] == 1
    assert truth["cold blue"]["filter"]["output"] is None
    made = curate.run(curate.CurateConfig(test_size=1, seed=1), store)
    assert (made.intents, made.requests, made.requests_dropped) == (2, 3, 1)


def test_a_window_out_of_range_is_refused() -> None:
    for hours in (-1, float("nan"), float("inf"), 1e9):
        with pytest.raises(WorkbenchError, match="^the feedback window must be from 0 to "
                                                 "876,000 hours, got "):
            FoldConfig(feedback_window_hours=hours)


def test_without_a_database_there_is_nothing_to_fold(tmp_path: Path) -> None:
    store = Store(tmp_path / "none.duckdb")
    assert counts(fold_served.run(FoldConfig(), store)) == (0, 0, 0, 0, 0, 0)
    assert not store.exists


# -- the command ---------------------------------------------------------------------------------

def test_workbench_ingest_folds_after_the_segments(tmp_path: Path, cli) -> None:
    db, folder = tmp_path / "w.duckdb", tmp_path / "spool"
    now = datetime.now(UTC)
    segment(folder, [
        request(R1, T0), feedback(F1, R1, T0 + timedelta(hours=1), adjust=1),
        request(R2, T0, model="student:run1"),
        request(R3, now - timedelta(hours=1), intent="cold blue"),       # its window is open
    ])
    code, out, _ = cli("ingest", folder, "--db", db, "--no-fold")
    assert code == 0
    assert "served teacher requests were not folded into the logs (--no-fold)" in out
    assert Store(db).query("SELECT count(*) AS n FROM requests") == [{"n": 0}]

    code, out, _ = cli("ingest", folder, "--db", db)
    assert code == 0
    assert ("folded 1 teacher request into the logs (1 with exports), duplicates 0, "
            "quarantined 0; 1 wait for their 24-hour feedback window to close") in out

    segment(folder, [feedback(F2, R1, T0 + timedelta(hours=2), filter=1)], seq=1)
    code, out, _ = cli("ingest", folder, "--db", db, "--feedback-window", "0", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["totals"]["feedback"] == 1
    fold_part = result["fold"]
    assert {key: fold_part[key] for key in ("folded", "with_exports", "waiting",
                                            "late_feedback", "feedback_window_hours")} == \
        {"folded": 1, "with_exports": 0, "waiting": 0, "late_feedback": 1,
         "feedback_window_hours": 0.0}
    assert [s["format"] for s in fold_part["segments"]] == ["served"]

    segment(folder, [feedback(F3, R1, T0 + timedelta(hours=3), filter=1),
                     feedback(F4, R1, T0 + timedelta(hours=4), filter=1)], seq=2)
    code, out, _ = cli("ingest", folder, "--db", db)
    assert code == 0
    assert ("folded 0 teacher requests into the logs (0 with exports), duplicates 0, "
            "quarantined 0; 0 wait for their 24-hour feedback window to close") in out
    assert ("2 feedback records came after their request was folded into the logs (past its "
            "feedback window, or ingested after the fold): the A/B test counts them, curation "
            "does not") in out


def test_workbench_ingest_fold_flags_are_checked_in_one_line(tmp_path: Path, cli) -> None:
    db, folder = tmp_path / "w.duckdb", tmp_path / "spool"
    segment(folder, [request(R1, T0)])
    code, out, err = cli("ingest", folder, "--db", db, "--feedback-window", "-1")
    assert (code, out, err) == (2, "", ("error: the feedback window must be from 0 to "
                                        "876,000 hours, got -1\n"))
    assert not db.exists()      # refused before any work
    code, _, err = cli("ingest", folder, "--db", db, "--no-fold", "--feedback-window", "2")
    assert (code, err) == (2, "error: give --no-fold or --feedback-window, not both\n")
    logs = tmp_path / "logs.jsonl"
    logs.write_text("")
    code, _, err = cli("ingest", logs, "--db", db, "--no-fold")
    assert (code, err) == (2, ("error: --no-fold applies to spool folders only; the paths "
                               "given are log files\n"))
    code, _, err = cli("ingest", logs, "--db", db, "--feedback-window", "1", "--include-open")
    assert (code, err) == (2, ("error: --include-open and --feedback-window apply to spool "
                               "folders only; the paths given are log files\n"))
