"""Fold the teacher's served answers into the logs (SPEC 3, 4, 12): closing the loop.

`workbench serve` logs every answer to the spool and `workbench ingest SPOOL_FOLDER` brings
them into `served_requests` and `served_feedback`; curation reads only `requests`. This step,
run at the end of every spool ingest in its own transaction, writes into `requests` what the
TEACHER answered in production, so it reaches curation like any logged teacher call:

- a served request is folded when its model is `teacher:<name>`, its status 'ok', and its
  feedback window has closed (created_at <= now - window). Student answers are never folded
  (they are not teacher outputs), nor failed calls, nor simulated sessions (`sim-...`);
- the record is the log contract's: the same request id, intent, created_at and session id,
  teacher = the answer served, teacher_model = the model without `teacher:`, latency_ms, and
  exports = the per-tool sum of its feedback created up to created_at + window. The content is
  therefore fixed once the window has closed. A window of 0 folds every request ingested so
  far, with every feedback stored now;
- it is written through the log ingest's own path (`pipelines.ingest.stage_records` and
  `write_staged`: validation by `workbench.log_records`, staging, duplicates and conflicts by
  content hash, intents and their statistics, quarantine, the ingest history), one ingest per
  spool segment with format "served", source_file the segment and source_location its line;
- a request is folded at most once (`served_folds`, whatever became of it), so re-running the
  ingest folds nothing new. Feedback that its folded exports leave out (created after the
  window, or ingested after the fold) stays in served_feedback, where the online test counts
  it; it is recorded in `served_late_feedback` and counted in the summary, never silently lost.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

from pipelines import ingest
from workbench.errors import WorkbenchError
from workbench.log_readers import RawRecord
from workbench.store import Store, requests, serving
from workbench.tools import TOOLS

FORMAT = "served"                      # the ingest history's format for folded requests
DEFAULT_FEEDBACK_WINDOW_HOURS = 24.0
MAX_FEEDBACK_WINDOW_HOURS = 876_000.0  # 100 years: further back leaves the calendar
_ATTEMPTS = 3                          # re-reads when another ingest changed things meanwhile


@dataclass(frozen=True)
class FoldConfig:
    feedback_window_hours: float = DEFAULT_FEEDBACK_WINDOW_HOURS   # 0: fold everything now

    def __post_init__(self) -> None:
        hours = self.feedback_window_hours
        if isinstance(hours, bool) or not isinstance(hours, int | float) \
                or not math.isfinite(hours) or not 0 <= hours <= MAX_FEEDBACK_WINDOW_HOURS:
            shown = f"{hours:g}" if isinstance(hours, int | float) else repr(hours)
            raise WorkbenchError(f"the feedback window must be from 0 to "
                                 f"{MAX_FEEDBACK_WINDOW_HOURS:,.0f} hours, got {shown}")

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.feedback_window_hours)


@dataclass
class FoldResult:
    feedback_window_hours: float
    now: datetime
    folded: int = 0          # teacher requests written into `requests`
    with_exports: int = 0    # of those, with at least one export (curation keeps them)
    duplicates: int = 0      # already in `requests` with the same content
    quarantined: int = 0     # invalid as log records, or another request with the same id
    waiting: int = 0         # teacher requests whose feedback window is still open
    late_feedback: int = 0   # feedback found (this time) that came after its request's fold
    segments: list[ingest.FileSummary] = field(default_factory=list)  # one ingest per segment
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**{key: value for key, value in asdict(self).items() if key != "segments"},
                "now": self.now.isoformat(),
                "segments": [asdict(summary) for summary in self.segments]}


def log_record(row: dict[str, Any]) -> dict[str, Any]:
    """The log-contract record (SPEC 3) of a served teacher request (a `fold_candidates` row)."""
    return {
        "request_id": row["request_id"],
        "intent": row["intent_text"],
        "created_at": row["created_at"].astimezone(UTC).isoformat(),
        "teacher": {tool: None if row[tool] is None else json.loads(row[tool])
                    for tool in TOOLS},
        "exports": {tool: int(row[f"exports_{tool}"]) for tool in TOOLS},
        "teacher_model": str(row["model"]).removeprefix(serving.TEACHER_PREFIX),
        "latency_ms": row["latency_ms"],
        "session_id": row["session_id"],
    }


def _raw_records(rows: list[dict[str, Any]]) -> Iterator[RawRecord]:
    for row in rows:
        record = log_record(row)
        yield RawRecord(location=row["source_location"],
                        raw=json.dumps(record, ensure_ascii=False), record=record)


def _window_us(config: FoldConfig) -> int | None:
    """The feedback window in microseconds; None for 0 (every feedback stored now counts)."""
    if config.feedback_window_hours == 0:
        return None
    return config.window // timedelta(microseconds=1)


def _fold(store: Store, config: FoldConfig, now: datetime, result: FoldResult) -> bool:
    """One attempt; False when another ingest changed the candidates between the read and the
    write (nothing is written then)."""
    served_until = now - config.window
    window_us = _window_us(config)
    with store.session() as session:   # read-write: applies the fold's migration if pending
        candidates = serving.fold_candidates(session, served_until, window_us)
    by_segment = [(source, list(rows)) for source, rows
                  in groupby(candidates, key=lambda row: row["source_file"])]
    with ingest.staging_folder(store) as folder:
        staged = []
        for number, (source, rows) in enumerate(by_segment):
            own = folder / str(number)
            own.mkdir()
            staged.append(ingest.stage_records(_raw_records(rows), source, FORMAT, own))
        with store.atomic() as session:
            if serving.fold_candidates(session, served_until, window_us) != candidates:
                return False
            folds: list[dict[str, Any]] = []
            for (_, rows), records in zip(by_segment, staged):
                summary = ingest.write_staged(session, records)
                result.segments.append(summary)
                folds.extend({"request_id": row["request_id"], "ingest_id": summary.ingest_id,
                              "feedback_until": row["feedback_until"],
                              "n_feedback": row["n_feedback"]} for row in rows)
            serving.record_folds(session, folds, now)
            result.late_feedback = serving.record_late_feedback(session, now)
            result.waiting = serving.teacher_requests_waiting(session, served_until)
            counts = requests.requests_of_ingests(
                session, [s.ingest_id for s in result.segments if s.ingest_id is not None])
    result.folded, result.with_exports = counts["requests"], counts["exported"]
    result.duplicates = sum(s.duplicates for s in result.segments)
    result.quarantined = sum(s.quarantined for s in result.segments)
    return True


def run(config: FoldConfig, store: Store, now: datetime | None = None) -> FoldResult:
    """Fold the served teacher requests whose feedback window closed by `now` (default: the
    current time; a test passes its own) into the logs, in one transaction."""
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        raise WorkbenchError(f"the fold's time must carry a time zone, got {now.isoformat()}")
    result = FoldResult(feedback_window_hours=config.feedback_window_hours, now=now)
    if not store.exists:
        return result
    for _ in range(_ATTEMPTS):
        if _fold(store, config, now, result):
            return result
        result.segments = []
    result.error = ("other ingests kept changing the served requests while they were being "
                    "folded into the logs; run the ingest again")
    return result
