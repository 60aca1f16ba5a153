"""Ingest of a spool folder (pipelines.ingest_spool, `workbench ingest SPOOL_FOLDER`): a spool
built by hand, its counts and rows worked out by hand."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipelines.ingest_spool import SpoolIngestConfig, run
from workbench.cli import main
from workbench.log_records import RecordError
from workbench.serving.spool import Spool, segment_name
from workbench.serving.spool_records import parse_feedback, parse_request
from workbench.store import Store
from workbench.store.requests import log_counts
from workbench.store.serving import served_counts, served_rows

R1, R2, R3, R4 = (f"req_{n:032x}" for n in (1, 2, 3, 4))
F1, F1B, F3, F_EARLY, F_BAD = (f"fb_{n:032x}" for n in (11, 12, 13, 14, 15))
ADJUST = {"temperature": 30}
FILTER = {"name": "warm_Golden", "intensity": 40}
SELECTIVE = {"red": {"saturation": 10}}


def request(request_id: str, second: int, *, teacher: dict[str, Any] | None,
            model: str = "student:run1", arm: str | None = "student:run1",
            session_id: str | None = "s1", status: str = "ok",
            intent: str = "golden hour") -> dict[str, Any]:
    return {"kind": "request", "request_id": request_id,
            "created_at": f"2026-11-29T22:00:{second:02d}.000000+00:00", "intent": intent,
            "teacher": teacher, "exports": {"adjust": 0, "selective_adjust": 0, "filter": 0},
            "teacher_model": model, "arm": arm, "session_id": session_id, "latency_ms": 4.5,
            "status": status}


def feedback(feedback_id: str, request_id: str, **exports: int) -> dict[str, Any]:
    return {"kind": "feedback", "feedback_id": feedback_id, "request_id": request_id,
            "created_at": "2026-11-29T22:05:00+00:00",
            "exports": {"adjust": 0, "selective_adjust": 0, "filter": 0, **exports}}


def line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def answer(**tools: Any) -> dict[str, Any]:
    return {"adjust": None, "selective_adjust": None, "filter": None, **tools}


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


T0 = datetime(2026, 11, 29, 22, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 29, 22, 1, 0, tzinfo=UTC)
UNKNOWN_KIND = {"kind": "click", "request_id": R1}


def build_spool(folder: Path) -> tuple[Path, Path]:
    """Segment A (closed) and segment B (`.open`, its writer dead, a torn last line)."""
    folder.mkdir()
    a = folder / segment_name(T0, 4242, 0, open_=False)
    r1 = request(R1, 0, teacher=answer(adjust=ADJUST, filter=FILTER))
    a.write_text("".join([
        line(r1),                                                              # 1 request
        line(request(R2, 1, teacher=answer(filter=FILTER), model="teacher:gpt-3.5-turbo",
                     arm="teacher", session_id="s2")),                         # 2 request
        line(feedback(F1, R1, adjust=1, filter=2)),                            # 3 feedback
        line(feedback(F_EARLY, R3, selective_adjust=2)),                       # 4 R3 not yet
        line(r1),                                                              # 5 duplicate
        line(UNKNOWN_KIND),                                                    # 6 bad kind
        line(request(R4, 3, teacher=None, model="teacher:gpt-3.5-turbo", arm="teacher",
                     session_id="s2", status="error:teacher_timeout")),        # 7 request
        line(feedback(F1B, R1, filter=1)),                                     # 8 feedback
        "\n",                                                                  # 9 blank
        line(feedback(F_BAD, R2, adjust=-1)),                                  # 10 bad exports
    ]), encoding="utf-8")
    b = folder / segment_name(T1, dead_pid(), 0)
    b.write_text(line(request(R3, 2, teacher=answer(selective_adjust=SELECTIVE)))  # 1
                 + line(feedback(F3, R2, filter=1))                                # 2
                 + '{"kind": "feedback", "feedback_id": "fb_', encoding="utf-8")   # 3 torn
    return a, b


def quarantine_rows(store: Store) -> list[dict]:
    with store.session() as session:
        return session.query("SELECT source_file, location, reason, raw FROM quarantine "
                             "ORDER BY quarantine_id")


def test_a_hand_built_spool_is_ingested_with_every_count_worked_out(
        tmp_path: Path, store: Store) -> None:
    a, b = build_spool(tmp_path / "spool")
    result = run(SpoolIngestConfig((tmp_path / "spool",)), store)
    assert [s.source_file for s in result.segments] == [str(a), str(b)]   # oldest first
    sa, sb = result.segments
    # A: 9 non-blank lines; requests R1 R2 R4; feedback F1 F1B; line 5 repeats line 1;
    # quarantined: F_EARLY (R3 unknown yet), the unknown kind, the negative export.
    assert (sa.read, sa.requests, sa.feedback, sa.duplicates, sa.quarantined, sa.released) == \
        (9, 3, 2, 1, 3, 0)
    # B: R3 and F3, the torn line quarantined, and F_EARLY released now that R3 is stored.
    assert (sb.read, sb.requests, sb.feedback, sb.duplicates, sb.quarantined, sb.released) == \
        (3, 1, 1, 0, 1, 1)
    assert not sb.open    # its writer is dead: a finished segment
    assert result.totals == {"read": 12, "requests": 4, "feedback": 3, "duplicates": 1,
                             "quarantined": 4, "released": 1}
    assert not result.failed

    bad = quarantine_rows(store)
    assert [(r["source_file"], r["location"]) for r in bad] == [
        (str(a), "line 6"), (str(a), "line 10"), (str(b), "line 3")]
    assert bad[0]["reason"] == "kind: must be 'request' or 'feedback' (got \"click\")"
    assert bad[0]["raw"] == json.dumps(UNKNOWN_KIND)
    assert bad[1]["reason"] == "exports.adjust: must be an integer from 0 to 1,000,000,000 (got -1)"
    assert bad[2]["reason"].startswith("the last line is incomplete: its writer stopped in the "
                                       "middle of it (malformed JSON:")
    assert bad[2]["raw"] == '{"kind": "feedback", "feedback_id": "fb_'

    with store.session() as session:
        rows = served_rows(session)
        released = session.query("SELECT feedback_id, source_file, source_location, ingest_id "
                                 "FROM served_feedback WHERE feedback_id = ?", [F_EARLY])
        trace = session.query("SELECT feedback_id, quarantined_ingest_id, released_ingest_id "
                              "FROM served_feedback_releases")
        counts = served_counts(session)
        logs = log_counts(session)
    # The released feedback keeps where it was read; the release is traced.
    assert released == [{"feedback_id": F_EARLY, "source_file": str(a),
                         "source_location": "line 4", "ingest_id": sb.ingest_id}]
    assert trace == [{"feedback_id": F_EARLY, "quarantined_ingest_id": sa.ingest_id,
                      "released_ingest_id": sb.ingest_id}]
    assert counts == {"requests": 4, "feedback": 4, "segments": 2}
    # Served requests never enter the teacher logs; each segment is one ingest.
    assert logs == {"requests": 0, "intents": 0, "quarantined": 3, "ingests": 2}

    # Oldest first: R1 (:00), R2 (:01), R3 (:02), R4 (:03). Feedback sums by hand:
    # R1 = F1 (adjust 1, filter 2) + F1B (filter 1); R2 = F3 (filter 1); R3 = F_EARLY.
    def row(rid: str, model: str, arm: str, session: str, status: str, used: tuple, ex: tuple,
            second: int) -> dict:
        return {"request_id": rid, "created_at": T0.replace(second=second), "session_id": session,
                "model": model, "arm": arm, "status": status, "used_adjust": used[0],
                "used_selective_adjust": used[1], "used_filter": used[2],
                "exports_adjust": ex[0], "exports_selective_adjust": ex[1],
                "exports_filter": ex[2], "latency_ms": 4.5}

    student, teacher = "student:run1", "teacher:gpt-3.5-turbo"
    expected = [
        row(R1, student, student, "s1", "ok", (True, False, True), (1, 0, 3), 0),
        row(R2, teacher, "teacher", "s2", "ok", (False, False, True), (0, 0, 1), 1),
        row(R3, student, student, "s1", "ok", (False, True, False), (0, 2, 0), 2),
        row(R4, teacher, "teacher", "s2", "error:teacher_timeout", (False, False, False),
            (0, 0, 0), 3),
    ]
    for got in rows:
        got["created_at"] = got["created_at"].astimezone(UTC)
    assert rows == expected


def test_re_ingesting_is_a_no_op_and_only_new_lines_are_read(tmp_path: Path,
                                                             store: Store) -> None:
    folder = tmp_path / "spool"
    build_spool(folder)
    run(SpoolIngestConfig((folder,)), store)
    before = (quarantine_rows(store), store.query("SELECT * FROM served_feedback ORDER BY 1"))
    again = run(SpoolIngestConfig((folder,)), store)
    assert [s.unchanged for s in again.segments] == [True, True]
    assert again.totals == {"read": 0, "requests": 0, "feedback": 0, "duplicates": 0,
                            "quarantined": 0, "released": 0}
    assert (quarantine_rows(store), store.query("SELECT * FROM served_feedback ORDER BY 1")) \
        == before
    with store.session() as session:
        assert log_counts(session)["ingests"] == 2   # unchanged segments leave no ingest row

    # A third segment: one new request (no-op duplicate of R1) and one conflicting R2.
    c = folder / segment_name(datetime(2026, 11, 29, 23, tzinfo=UTC), 4242, 1, open_=False)
    changed = request(R2, 1, teacher=answer(adjust=ADJUST), model="teacher:gpt-3.5-turbo",
                      arm="teacher", session_id="s2")
    c.write_text(line(request(R1, 0, teacher=answer(adjust=ADJUST, filter=FILTER)))
                 + line(changed), encoding="utf-8")
    third = run(SpoolIngestConfig((folder,)), store)
    sc = third.segments[-1]
    assert [s.unchanged for s in third.segments] == [True, True, False]
    assert (sc.read, sc.requests, sc.duplicates, sc.quarantined) == (2, 0, 1, 1)
    last = quarantine_rows(store)[-1]
    assert (last["source_file"], last["location"]) == (str(c), "line 2")
    assert last["reason"] == f"request_id '{R2}' was already ingested (ingest 1) with different content"


def test_live_segments_wait_unless_include_open_and_then_resume_where_they_stopped(
        tmp_path: Path, store: Store) -> None:
    folder = tmp_path / "spool"
    folder.mkdir()
    live = folder / segment_name(datetime.now(UTC), os.getpid(), 0)   # this process writes it
    live.write_text(line(request(R1, 0, teacher=answer(filter=FILTER)))
                    + '{"kind": "feedback", "feed', encoding="utf-8")  # a line in flight
    skipped = run(SpoolIngestConfig((folder,)), store)
    assert skipped.segments == [] and skipped.open_left == 1

    first = run(SpoolIngestConfig((folder,), include_open=True), store)
    [s] = first.segments
    assert (s.read, s.requests, s.quarantined, s.open) == (1, 1, 0, True)   # not the tail
    # The writer finishes the line, adds one more and closes the segment (the rename).
    with live.open("a", encoding="utf-8") as handle:
        handle.write(line(feedback(F1, R1, filter=1))[len('{"kind": "feedback", "feed'):])
        handle.write(line(feedback(F1B, R1, adjust=1)))
    closed = live.with_name(live.name.removesuffix(".open"))
    live.rename(closed)
    second = run(SpoolIngestConfig((folder,)), store)
    [s] = second.segments
    # Only the two new lines, numbered 2 and 3 in the file; nothing read twice.
    assert (s.read, s.requests, s.feedback, s.duplicates, s.quarantined) == (2, 0, 2, 0, 0)
    with store.session() as session:
        locations = session.query("SELECT feedback_id, source_location, source_file "
                                  "FROM served_feedback ORDER BY feedback_id")
        assert [row["source_location"] for row in locations] == ["line 2", "line 3"]
        assert {row["source_file"] for row in locations} == {str(closed)}
        assert [r["exports_adjust"] + r["exports_filter"] for r in served_rows(session)] == [2]
    assert run(SpoolIngestConfig((folder,)), store).segments[0].unchanged


def test_what_the_spool_writes_is_what_ingest_reads(tmp_path: Path, store: Store) -> None:
    folder = tmp_path / "spool"
    with Spool(folder, max_bytes=600) as spool:   # rotates: about one request per segment
        for n in range(1, 6):
            spool.append(request(f"req_{n:032x}", n, teacher=answer(filter=FILTER),
                                 intent="café au lait"))
        spool.append(feedback(F1, f"req_{1:032x}", filter=4))
    result = run(SpoolIngestConfig((folder,)), store)
    assert len(result.segments) > 1
    assert result.totals["requests"] == 5 and result.totals["feedback"] == 1
    assert result.totals["quarantined"] == 0
    with store.session() as session:
        rows = served_rows(session)
        intents = session.query("SELECT DISTINCT intent_text, intent_key FROM served_requests")
    assert [r["exports_filter"] for r in rows] == [4, 0, 0, 0, 0]
    assert intents == [{"intent_text": "café au lait", "intent_key": "café au lait"}]


GOOD_REQUEST = request(R1, 0, teacher=answer(filter=FILTER))


@pytest.mark.parametrize(("change", "reason"), [
    ({"request_id": "r1"}, "request_id: must be req_ and 32 lower-case hex digits (got \"r1\")"),
    ({"status": "fine"}, "status: must be 'ok' or 'error:<code>' (got \"fine\")"),
    ({"teacher": None}, "teacher: a request served with status 'ok' must have its answer"),
    ({"status": "error:x"}, "teacher: must be null when the call failed (status error:x)"),
    ({"teacher_model": "gpt"}, ("teacher_model: must be 'student:<run id>' or 'teacher:<model "
                                "name>' (got \"gpt\")")),
    ({"exports": {"adjust": 1}}, ("exports: a served request's exports arrive as feedback and "
                                  "must be 0 here (got {\"adjust\": 1})")),
    ({"intent": "   "}, "intent: String should have at least 1 character (got \"   \")"),
    ({"arm": 3}, "arm: must be text or null (got 3)"),
    ({"teacher": {"filter": {"name": "nope", "intensity": 10}}}, None),
])
def test_a_bad_request_record_names_its_field(change: dict, reason: str | None) -> None:
    with pytest.raises(RecordError) as caught:
        parse_request({**GOOD_REQUEST, **change})
    if reason is None:   # the tool's own message (workbench.tools)
        assert str(caught.value).startswith("teacher.filter.name")
    else:
        assert str(caught.value) == reason


def test_a_request_record_is_read_as_spec_3_reads_it() -> None:
    served = parse_request({**GOOD_REQUEST, "intent": "  Golden\u200b  HOUR ",
                            "created_at": "2026-11-29T23:00:00+01:00"})
    assert (served.intent_text, served.intent_key) == ("Golden\u200b  HOUR", "golden hour")
    assert served.created_at == T0
    assert served.filter == '{"name":"warm_Golden","intensity":40}'
    assert served.adjust is None and served.status == "ok" and served.arm == "student:run1"


@pytest.mark.parametrize(("change", "reason"), [
    ({"feedback_id": "fb_1"}, "feedback_id: must be fb_ and 32 lower-case hex digits (got \"fb_1\")"),
    ({"exports": {"filter": 1.5}}, ("exports.filter: must be an integer from 0 to 1,000,000,000 "
                                    "(got 1.5)")),
    ({"exports": {"crop": 1}}, ("exports.crop: unknown tool; expected one of adjust, "
                                "selective_adjust, filter")),
    ({"exports": {"adjust": True}}, ("exports.adjust: must be an integer from 0 to "
                                     "1,000,000,000 (got true)")),
    ({"created_at": "yesterday"}, "created_at: must be an ISO 8601 timestamp (got \"yesterday\")"),
])
def test_a_bad_feedback_record_names_its_field(change: dict, reason: str) -> None:
    with pytest.raises(RecordError, match="^" + re.escape(reason) + "$"):
        parse_feedback({**feedback(F1, R1, filter=1), **change})


# -- the command --------------------------------------------------------------------------------

def cli(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_workbench_ingest_reads_a_spool_folder(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "w.duckdb"
    a, b = build_spool(tmp_path / "spool")
    code, out, _ = cli(capsys, "ingest", tmp_path / "spool", "--db", db)
    assert code == 0
    assert (f"{a}: read 9, requests 3, feedback 2, duplicates 1, quarantined 3, released 0 (ok)"
            in out)
    assert (f"{b}: read 3, requests 1, feedback 1, duplicates 0, quarantined 1, released 1 (ok)"
            in out)
    assert ("total: 2 segments read (0 unchanged since the last ingest): requests 4, feedback 3, "
            "duplicates 1, quarantined 4, released 1") in out
    code, out, _ = cli(capsys, "ingest", tmp_path / "spool", "--db", db, "--json")
    assert code == 0
    result = json.loads(out)
    assert [s["unchanged"] for s in result["segments"]] == [True, True]
    assert result["totals"]["requests"] == 0


def test_workbench_ingest_spool_errors_are_one_line(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "w.duckdb"
    build_spool(tmp_path / "spool")
    log = tmp_path / "logs.jsonl"
    log.write_text("")
    code, _, err = cli(capsys, "ingest", tmp_path / "spool", log, "--db", db)
    assert (code, err) == (2, ("error: give either log files or spool folders to one "
                               "ingest, not both\n"))
    code, _, err = cli(capsys, "ingest", log, "--include-open", "--db", db)
    assert code == 2 and err.startswith("error: --include-open applies to spool folders only")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    code, _, err = cli(capsys, "ingest", other, "--db", db)
    assert (code, err) == (2, (f"error: {other} is a folder without spool segments "
                               "(spool-*.jsonl); ingest takes log files, or a spool folder "
                               "`workbench serve` wrote\n"))
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, _ = cli(capsys, "ingest", empty, "--db", db)
    assert code == 0 and "total: 0 segments read" in out


def test_a_segment_closed_while_ingest_ran_is_read_under_its_new_name(
        tmp_path: Path, store: Store) -> None:
    from pipelines.ingest_spool import ingest_segment

    listed = tmp_path / segment_name(T0, os.getpid(), 0)          # as the folder was listed
    closed = listed.with_name(listed.name.removesuffix(".open"))  # renamed by its writer since
    closed.write_text(line(GOOD_REQUEST), encoding="utf-8")
    summary = ingest_segment(listed, store, None, finished=False)
    assert (summary.source_file, summary.open, summary.requests) == (str(closed), False, 1)
