"""The records of the spool, validated at the edge (ingest): a served request or export feedback.

A served request is the log contract of SPEC 3 (validated by `workbench.log_records`, so the
intent, the answer and the timestamps follow the same rules as ingested logs) plus `kind`,
`arm` and `status`; its answer may be null only when the call failed, and its exports are zero
(exports arrive later as feedback). Feedback names a request id and carries per-tool export
counts. `parse_spool_record` raises `RecordError` with the quarantine reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from workbench.log_records import (
    EXPORTS_MAX,
    ID_MAX_CHARS,
    RecordError,
    intent_key,
    parse_record,
)
from workbench.tools import TOOLS

REQUEST_ID_RE = re.compile(r"req_[0-9a-f]{32}")
FEEDBACK_ID_RE = re.compile(r"fb_[0-9a-f]{32}")
STATUS_RE = re.compile(r"ok|error:[A-Za-z0-9_.\-]{1,64}")
MODEL_PREFIXES = ("student:", "teacher:")


@dataclass(frozen=True)
class ServedRequest:
    """A validated served request; tool columns are canonical JSON (None: unused or failed)."""

    request_id: str
    created_at: datetime    # UTC
    session_id: str | None
    model: str              # student:<run id> or teacher:<model name>
    arm: str | None
    intent_key: str
    intent_text: str
    adjust: str | None
    selective_adjust: str | None
    filter: str | None
    status: str             # 'ok' or 'error:<code>'
    latency_ms: float | None


@dataclass(frozen=True)
class Feedback:
    """Validated export feedback for one served request."""

    feedback_id: str
    request_id: str
    created_at: datetime    # UTC
    exports_adjust: int
    exports_selective_adjust: int
    exports_filter: int


def _got(value: Any) -> str:
    """A value as the reason shows it: JSON, cut to 60 characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= 60 else text[:57] + "..."


def _id(raw: Mapping[str, Any], name: str, pattern: re.Pattern[str], shape: str) -> str:
    value = raw.get(name)
    if value is None:
        raise RecordError(f"{name}: missing required field")
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise RecordError(f"{name}: must be {shape} (got {_got(value)})")
    return value


def _optional_text(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{name}: must be text or null (got {_got(value)})")
    value = value.strip()
    if not value:
        raise RecordError(f"{name}: must not be empty text; use null")
    if len(value) > ID_MAX_CHARS or "\x00" in value:
        raise RecordError(f"{name}: at most {ID_MAX_CHARS} characters and no NUL "
                          f"(got {_got(value)})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(f"{name}: not valid Unicode text (got {_got(value)})") from None
    return value


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise RecordError(f"created_at: must be an ISO 8601 timestamp (got {_got(value)})")
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RecordError(f"created_at: must be an ISO 8601 timestamp (got {_got(value)})") \
            from None
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=UTC)
    try:
        return stamp.astimezone(UTC)
    except OverflowError:
        raise RecordError(f"created_at: outside the years 1 to 9999 once converted to UTC "
                          f"(got {_got(value)})") from None


def parse_request(raw: Mapping[str, Any]) -> ServedRequest:
    """Validate a `kind: request` record. Raises RecordError naming the field and the value."""
    request_id = _id(raw, "request_id", REQUEST_ID_RE, "req_ and 32 lower-case hex digits")
    status = raw.get("status")
    if not isinstance(status, str) or STATUS_RE.fullmatch(status) is None:
        raise RecordError(f"status: must be 'ok' or 'error:<code>' (got {_got(status)})")
    teacher = raw.get("teacher")
    if status == "ok" and teacher is None:
        raise RecordError("teacher: a request served with status 'ok' must have its answer")
    if status != "ok" and teacher is not None:
        raise RecordError(f"teacher: must be null when the call failed (status {status})")
    model = raw.get("teacher_model")
    if not isinstance(model, str) or not model.startswith(MODEL_PREFIXES) \
            or not model.split(":", 1)[1].strip():
        raise RecordError(f"teacher_model: must be 'student:<run id>' or 'teacher:<model name>' "
                          f"(got {_got(model)})")
    # The SPEC 3 rules for the rest; a failed call has no answer, validated as the empty one.
    record = parse_record({**raw, "teacher": {} if teacher is None else teacher})
    if any(record.exports.values()):
        raise RecordError(f"exports: a served request's exports arrive as feedback and must be "
                          f"0 here (got {_got(raw.get('exports'))})")
    adjust, selective, filter_ = record.teacher_json
    return ServedRequest(
        request_id=request_id, created_at=record.created_at, session_id=record.session_id,
        model=record.teacher_model or model, arm=_optional_text(raw, "arm"),
        intent_key=intent_key(record.intent), intent_text=record.intent, adjust=adjust,
        selective_adjust=selective, filter=filter_, status=status,
        latency_ms=record.latency_ms)


def parse_feedback(raw: Mapping[str, Any]) -> Feedback:
    """Validate a `kind: feedback` record. Raises RecordError naming the field and the value."""
    feedback_id = _id(raw, "feedback_id", FEEDBACK_ID_RE, "fb_ and 32 lower-case hex digits")
    request_id = _id(raw, "request_id", REQUEST_ID_RE, "req_ and 32 lower-case hex digits")
    if "created_at" not in raw:
        raise RecordError("created_at: missing required field")
    created_at = _timestamp(raw["created_at"])
    exports = raw.get("exports")
    if not isinstance(exports, Mapping):
        raise RecordError(f"exports: must be an object with per-tool counts (got {_got(exports)})")
    for key in exports:
        if key not in TOOLS:
            raise RecordError(f"exports.{key}: unknown tool; expected one of {', '.join(TOOLS)}")
    counts: dict[str, int] = {}
    for tool in TOOLS:
        count = exports.get(tool, 0)
        if isinstance(count, bool) or not isinstance(count, int) \
                or not 0 <= count <= EXPORTS_MAX:
            raise RecordError(f"exports.{tool}: must be an integer from 0 to {EXPORTS_MAX:,} "
                              f"(got {_got(count)})")
        counts[tool] = count
    return Feedback(feedback_id=feedback_id, request_id=request_id, created_at=created_at,
                    exports_adjust=counts["adjust"],
                    exports_selective_adjust=counts["selective_adjust"],
                    exports_filter=counts["filter"])


def parse_spool_record(raw: Mapping[str, Any]) -> ServedRequest | Feedback:
    """A served request or feedback, by its `kind`. Raises RecordError with the reason."""
    kind = raw.get("kind")
    if kind == "request":
        return parse_request(raw)
    if kind == "feedback":
        return parse_feedback(raw)
    raise RecordError(f"kind: must be 'request' or 'feedback' (got {_got(kind)})")
