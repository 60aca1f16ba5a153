"""Serving (SPEC 12): the tables `served_requests`, `served_feedback`, `spool_segments`,
`served_feedback_releases`, `served_folds` and `served_late_feedback`.

Only the spool ingest writes them, one transaction per spool segment: new requests and
feedback (the same id twice is a no-op, or a conflict when its content differs), how far each
segment was read, and the release of feedback that had been quarantined because it arrived
before its request. The online test reads `served_rows`: each served request with the sum of
its feedback.

The fold (pipelines.fold_served, at the end of every spool ingest) closes the loop: it reads
the teacher's served answers whose feedback window has closed (`fold_candidates`, each with
the sum of its feedback in the window), writes them into `requests` through the log ingest's
own path, marks each as folded (`record_folds`: once only) and records the feedback its folded
exports leave out (`record_late_feedback`), which stays here for the online test.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workbench.store.connection import Session

REQUEST_COLUMNS = ("request_id", "created_at", "session_id", "model", "arm", "intent_key",
                   "intent_text", "adjust", "selective_adjust", "filter", "status", "latency_ms",
                   "source_location")
FEEDBACK_COLUMNS = ("feedback_id", "request_id", "created_at", "exports_adjust",
                    "exports_selective_adjust", "exports_filter", "source_location")
# What must match for a second copy of an id to be the same record (where it was read may differ).
_REQUEST_CONTENT = REQUEST_COLUMNS[1:-1]
_FEEDBACK_CONTENT = FEEDBACK_COLUMNS[1:-1]
UNKNOWN_REQUEST = "feedback for unknown request id "   # the quarantine reason, + the id


@dataclass(frozen=True)
class Written:
    """What a write of requests or feedback did."""

    inserted: int
    duplicates: int                                    # already stored with the same content
    conflicts: list[dict] = field(default_factory=list)   # id, source_location (of the new copy),
                                                          # ingest_id (of the stored one)


def _arrow(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Any:
    import pyarrow as pa

    types = {"created_at": pa.timestamp("us", tz="UTC"), "latency_ms": pa.float64(),
             "exports_adjust": pa.int64(), "exports_selective_adjust": pa.int64(),
             "exports_filter": pa.int64()}
    return pa.table({name: pa.array([row[name] for row in rows], types.get(name, pa.string()))
                     for name in columns})


def _write(session: Session, table: str, key: str, columns: Sequence[str],
           content: Sequence[str], rows: Sequence[dict[str, Any]], ingest_id: int,
           source_file: str) -> Written:
    """Insert the rows whose `key` is new; compare the others with the stored copy. `table`,
    `key` and the column names are ours, never user input."""
    if not rows:
        return Written(0, 0)
    session.register("incoming", _arrow(rows, columns))
    try:
        same = " AND ".join(f"n.{name} IS NOT DISTINCT FROM s.{name}" for name in content)
        hits = session.query(
            f"SELECT n.{key} AS id, n.source_location, s.ingest_id, ({same}) AS same "
            f"FROM incoming n JOIN {table} s USING ({key}) ORDER BY n.source_location")
        names = ", ".join(columns)
        inserted = int(session.value(
            f"INSERT INTO {table} ({names}, ingest_id, source_file) "
            f"SELECT {names}, ?, ? FROM incoming ANTI JOIN {table} USING ({key})",
            [ingest_id, source_file]) or 0)
    finally:
        session.unregister("incoming")
    conflicts = [{k: hit[k] for k in ("id", "source_location", "ingest_id")}
                 for hit in hits if not hit["same"]]
    return Written(inserted, len(hits) - len(conflicts), conflicts)


def write_served_requests(session: Session, rows: Sequence[dict[str, Any]], ingest_id: int,
                          source_file: str) -> Written:
    """Store served requests (dicts with REQUEST_COLUMNS, ids unique among them) read from
    `source_file`; an id already stored is a duplicate or, with other content, a conflict."""
    return _write(session, "served_requests", "request_id", REQUEST_COLUMNS, _REQUEST_CONTENT,
                  rows, ingest_id, source_file)


def write_served_feedback(session: Session, rows: Sequence[dict[str, Any]], ingest_id: int,
                          source_file: str) -> Written:
    """Store feedback (dicts with FEEDBACK_COLUMNS, ids unique among them, every request id in
    served_requests) read from `source_file`; duplicates and conflicts as for requests."""
    return _write(session, "served_feedback", "feedback_id", FEEDBACK_COLUMNS, _FEEDBACK_CONTENT,
                  rows, ingest_id, source_file)


def known_request_ids(session: Session, request_ids: Iterable[str]) -> set[str]:
    """The ids among `request_ids` that are stored served requests."""
    import pyarrow as pa

    wanted = sorted(set(request_ids))
    if not wanted:
        return set()
    session.register("wanted_ids", pa.table({"request_id": pa.array(wanted, pa.string())}))
    try:
        rows = session.query("SELECT request_id FROM wanted_ids SEMI JOIN served_requests "
                             "USING (request_id)")
    finally:
        session.unregister("wanted_ids")
    return {row["request_id"] for row in rows}


# ------------------------------------------------------------------------------ early feedback

def feedback_awaiting_release(session: Session) -> list[dict]:
    """Quarantined feedback whose request has since been ingested: quarantine_id, ingest_id,
    source_file, location, raw, request_id; in the order it was quarantined."""
    return session.query(
        "SELECT q.quarantine_id, q.ingest_id, q.source_file, q.location, q.raw, r.request_id "
        "FROM quarantine q JOIN served_requests r ON q.reason = ? || r.request_id "
        "WHERE starts_with(q.reason, ?) ORDER BY q.quarantine_id",
        [UNKNOWN_REQUEST, UNKNOWN_REQUEST])


def release_feedback(session: Session, released: Sequence[dict[str, Any]], ingest_id: int,
                     now: datetime) -> int:
    """Move quarantined feedback into served_feedback: each dict has FEEDBACK_COLUMNS plus
    source_file, quarantine_id and quarantined_ingest_id. Its quarantine row is removed and
    `served_feedback_releases` says where it was. Returns how many were released (a feedback
    id already stored is only taken out of the quarantine)."""
    import pyarrow as pa

    if not released:
        return 0
    table = _arrow(released, FEEDBACK_COLUMNS)
    for name, kind in (("source_file", pa.string()), ("quarantine_id", pa.int64()),
                       ("quarantined_ingest_id", pa.int64())):
        table = table.append_column(name, pa.array([row[name] for row in released], kind))
    session.register("releasing", table)
    try:
        names = ", ".join(FEEDBACK_COLUMNS)
        session.execute(
            f"INSERT INTO served_feedback ({names}, ingest_id, source_file) "
            f"SELECT {names}, ?, source_file FROM releasing "
            "ANTI JOIN served_feedback USING (feedback_id)", [ingest_id])
        session.execute(
            "INSERT INTO served_feedback_releases (feedback_id, quarantine_id, "
            "quarantined_ingest_id, released_ingest_id, released_at) "
            "SELECT feedback_id, quarantine_id, quarantined_ingest_id, ?, ? FROM releasing "
            "ANTI JOIN served_feedback_releases USING (feedback_id)", [ingest_id, now])
        session.execute("DELETE FROM quarantine WHERE quarantine_id IN "
                        "(SELECT quarantine_id FROM releasing)")
    finally:
        session.unregister("releasing")
    return len(released)


# ------------------------------------------------------------------------------ segments read

def segment_progress(session: Session) -> dict[str, dict]:
    """How far every known spool segment was read: {segment: the spool_segments row}."""
    return {row["segment"]: row for row in session.query("SELECT * FROM spool_segments")}


def record_segment(session: Session, *, segment: str, source_file: str, bytes_read: int,
                   lines_read: int, sha256: str, size_bytes: int, mtime_ns: int, finished: bool,
                   ingest_id: int) -> None:
    """Remember how far `segment` has been read (replacing what was known)."""
    session.execute(
        "INSERT OR REPLACE INTO spool_segments (segment, source_file, bytes_read, lines_read, "
        "sha256, size_bytes, mtime_ns, finished, ingest_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [segment, source_file, bytes_read, lines_read, sha256, size_bytes, mtime_ns, finished,
         ingest_id])


# ------------------------------------------------------------------------------ the online test

def served_rows(session: Session) -> list[dict]:
    """One row per served request, oldest first: request_id, created_at, session_id, model, arm,
    status, used_adjust, used_selective_adjust, used_filter (whether the served answer used
    the tool), exports_adjust, exports_selective_adjust, exports_filter (the sums of its
    feedback, 0 without any), latency_ms."""
    return session.query(
        "SELECT r.request_id, r.created_at, r.session_id, r.model, r.arm, r.status, "
        "r.adjust IS NOT NULL AS used_adjust, "
        "r.selective_adjust IS NOT NULL AS used_selective_adjust, "
        "r.filter IS NOT NULL AS used_filter, "
        "coalesce(f.exports_adjust, 0)::BIGINT AS exports_adjust, "
        "coalesce(f.exports_selective_adjust, 0)::BIGINT AS exports_selective_adjust, "
        "coalesce(f.exports_filter, 0)::BIGINT AS exports_filter, r.latency_ms "
        "FROM served_requests r LEFT JOIN ("
        " SELECT request_id, sum(exports_adjust) AS exports_adjust, "
        " sum(exports_selective_adjust) AS exports_selective_adjust, "
        " sum(exports_filter) AS exports_filter FROM served_feedback GROUP BY request_id"
        ") f USING (request_id) ORDER BY r.created_at, r.request_id")


def served_counts(session: Session) -> dict[str, int]:
    """How many served requests, feedback records and spool segments are stored."""
    row = session.first(
        "SELECT (SELECT count(*) FROM served_requests) AS requests, "
        "(SELECT count(*) FROM served_feedback) AS feedback, "
        "(SELECT count(*) FROM spool_segments) AS segments") or {}
    return {key: int(row.get(key) or 0) for key in ("requests", "feedback", "segments")}


# ------------------------------------------------------------------------------ the fold

TEACHER_PREFIX = "teacher:"    # served_requests.model of the teacher's answers
# `workbench simulate-traffic` names its sessions so: their exports are simulated, so the online
# test may show them (labelled) but the fold never takes them into the logs that train students.
SIMULATION_PREFIX = "sim-"
# ... and marks each request with this header; `workbench serve` refuses a session id with the
# prefix from any caller that does not, so a real user can never be taken for a simulated one.
SIMULATION_HEADER = "x-workbench-simulation"
_REAL = "(r.session_id IS NULL OR NOT starts_with(r.session_id, ?))"
LATE_PAST_WINDOW = "past the feedback window"
LATE_AFTER_FOLD = "ingested after the fold"

# The feedback a fold sums into a request's exports: all of it that is stored (window None), or
# that created within the window. The fragments are ours; the window is a bound parameter.
_IN_WINDOW = {False: "", True: "WHERE f.created_at <= r.created_at + to_microseconds(?) "}
_UNTIL = {False: "NULL::TIMESTAMPTZ", True: "r.created_at + to_microseconds(?)"}


def fold_candidates(session: Session, served_until: datetime,
                    window_us: int | None) -> list[dict]:
    """The served requests a fold takes up now: the teacher's (model `teacher:...`), status
    'ok', served up to `served_until` (now minus the feedback window), of a real session (not
    simulated: SIMULATION_PREFIX), not folded before; by
    spool segment and line. Each row: request_id, created_at, session_id, model, intent_text,
    adjust, selective_adjust, filter, latency_ms, source_file, source_location, and the
    feedback summed into it: exports_adjust, exports_selective_adjust, exports_filter (sums,
    0 without any), n_feedback (records), feedback_until. The feedback is that created up to
    created_at + `window_us` microseconds (feedback_until), or with `window_us` None every
    feedback stored now (feedback_until None)."""
    windowed = window_us is not None
    params: list[Any] = [window_us] * (2 if windowed else 0)
    return session.query(
        "SELECT r.request_id, r.created_at, r.session_id, r.model, r.intent_text, r.adjust, "
        "r.selective_adjust, r.filter, r.latency_ms, r.source_file, r.source_location, "
        "coalesce(f.exports_adjust, 0)::BIGINT AS exports_adjust, "
        "coalesce(f.exports_selective_adjust, 0)::BIGINT AS exports_selective_adjust, "
        "coalesce(f.exports_filter, 0)::BIGINT AS exports_filter, "
        f"coalesce(f.n_feedback, 0)::BIGINT AS n_feedback, {_UNTIL[windowed]} AS feedback_until "
        "FROM served_requests r LEFT JOIN ("
        " SELECT f.request_id, sum(f.exports_adjust) AS exports_adjust, "
        " sum(f.exports_selective_adjust) AS exports_selective_adjust, "
        " sum(f.exports_filter) AS exports_filter, count(*) AS n_feedback "
        " FROM served_feedback f JOIN served_requests r USING (request_id) "
        f" {_IN_WINDOW[windowed]}GROUP BY f.request_id"
        ") f USING (request_id) "
        f"WHERE starts_with(r.model, ?) AND r.status = 'ok' AND r.created_at <= ? AND {_REAL} "
        "AND NOT EXISTS (SELECT 1 FROM served_folds s WHERE s.request_id = r.request_id) "
        "ORDER BY r.source_file, "
        "TRY_CAST(regexp_extract(r.source_location, '[0-9]+$') AS BIGINT), r.request_id",
        [*params, TEACHER_PREFIX, served_until, SIMULATION_PREFIX])


def teacher_requests_waiting(session: Session, served_after: datetime) -> int:
    """Teacher requests served with status 'ok' after `served_after` and not folded yet: those
    whose feedback window is still open."""
    return int(session.value(
        "SELECT count(*) FROM served_requests r WHERE starts_with(r.model, ?) "
        f"AND r.status = 'ok' AND r.created_at > ? AND {_REAL} "
        "AND NOT EXISTS (SELECT 1 FROM served_folds s WHERE s.request_id = r.request_id)",
        [TEACHER_PREFIX, served_after, SIMULATION_PREFIX]) or 0)


def record_folds(session: Session, folds: Sequence[dict[str, Any]], now: datetime) -> None:
    """Mark served requests as folded (dicts: request_id, ingest_id, feedback_until,
    n_feedback), so that no later fold takes them up again."""
    import pyarrow as pa

    if not folds:
        return
    session.register("folding", pa.table({
        "request_id": pa.array([f["request_id"] for f in folds], pa.string()),
        "ingest_id": pa.array([f["ingest_id"] for f in folds], pa.int64()),
        "feedback_until": pa.array([f["feedback_until"] for f in folds],
                                   pa.timestamp("us", tz="UTC")),
        "n_feedback": pa.array([f["n_feedback"] for f in folds], pa.int64())}))
    try:
        session.execute(
            "INSERT INTO served_folds (request_id, ingest_id, folded_at, feedback_until, "
            "n_feedback) SELECT request_id, ingest_id, ?, feedback_until, n_feedback "
            "FROM folding ANTI JOIN served_folds USING (request_id)", [now])
    finally:
        session.unregister("folding")


def record_late_feedback(session: Session, now: datetime) -> int:
    """Find the feedback of folded requests that their folded exports do not include (created
    after the request's feedback window, or stored after the fold) and not found before;
    record it in served_late_feedback with the reason. Returns how many were new."""
    return int(session.value(
        "INSERT INTO served_late_feedback (feedback_id, request_id, reason, noticed_at) "
        "SELECT f.feedback_id, f.request_id, CASE WHEN s.feedback_until IS NOT NULL "
        "AND f.created_at > s.feedback_until THEN ? ELSE ? END, ? "
        "FROM served_feedback f JOIN served_folds s USING (request_id) "
        "WHERE (f.ingest_id > s.ingest_id OR (s.feedback_until IS NOT NULL "
        "AND f.created_at > s.feedback_until)) "
        "AND NOT EXISTS (SELECT 1 FROM served_late_feedback l "
        "WHERE l.feedback_id = f.feedback_id)",
        [LATE_PAST_WINDOW, LATE_AFTER_FOLD, now]) or 0)
