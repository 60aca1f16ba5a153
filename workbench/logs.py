"""The log contract (SPEC 3): one record per teacher call, validated at the edge.

`parse_record` turns a raw mapping (from JSONL, CSV or Parquet) into a `LogRecord` or raises
`RecordError` with a reason that names the field and the value. Inside the store, records are
trusted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workbench.tools import TOOLS, Answer, ToolValidationError, parse_answer

INTENT_MAX_CHARS = 500
REQUIRED_FIELDS: tuple[str, ...] = ("request_id", "intent", "created_at", "teacher", "exports")
OPTIONAL_FIELDS: tuple[str, ...] = ("teacher_model", "latency_ms", "cost_usd", "session_id")


def intent_key(text: str) -> str:
    """Intent identity: lower-cased, whitespace collapsed (and trimmed)."""
    return " ".join(text.lower().split())


class RecordError(ValueError):
    """A log record that breaks the contract; the message is the quarantine reason."""


class _Envelope(BaseModel):
    """Everything but the tool parameters, which `workbench.tools` validates with its own messages."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    request_id: str = Field(min_length=1)
    intent: str = Field(min_length=1, max_length=INTENT_MAX_CHARS)
    created_at: datetime
    teacher: Any
    exports: Any
    teacher_model: str | None = None
    latency_ms: float | None = Field(default=None, ge=0)
    cost_usd: float | None = Field(default=None, ge=0)
    session_id: str | None = None

    @field_validator("created_at", mode="before")
    @classmethod
    def _timestamp_text(cls, value: Any) -> Any:
        # Pydantic alone would read a number (or numeric text, as every CSV cell is) as a Unix
        # time; the contract says ISO 8601, so text goes through fromisoformat.
        if isinstance(value, datetime):
            return value
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 timestamp")  # noqa: TRY004 (pydantic wants ValueError)
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("must be an ISO 8601 timestamp") from None


@dataclass(frozen=True)
class LogRecord:
    """A validated request."""

    request_id: str
    intent: str
    created_at: datetime  # timezone-aware, UTC when the input had no offset
    teacher: Answer
    exports: dict[str, int]
    teacher_model: str | None
    latency_ms: float | None
    cost_usd: float | None
    session_id: str | None

    @property
    def intent_key(self) -> str:
        return intent_key(self.intent)

    def content_hash(self) -> str:
        """Hash of the validated content: re-ingesting the same request is recognised as such."""
        # repr() of each field, joined: unambiguous and much cheaper than a JSON dump.
        parts = (self.request_id, self.intent, self.created_at.isoformat(),
                 *(self.teacher.tool_json(tool) for tool in TOOLS),
                 *(self.exports[tool] for tool in TOOLS), self.teacher_model, self.latency_ms,
                 self.cost_usd, self.session_id)
        return hashlib.sha1(repr(parts).encode()).hexdigest()


def _describe(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else f"{text[:57]}... ({len(str(value))} characters)"


def _envelope_reason(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "record"
        if item["type"] == "missing":
            parts.append(f"{where}: missing required field")
        elif item["type"] == "string_too_long" and where == "intent":
            length = len(str(item.get("input", "")).strip())
            parts.append(f"intent: {length} characters after trimming, the limit is "
                         f"{INTENT_MAX_CHARS}")
        else:
            parts.append(f"{where}: {item['msg']} (got {_describe(item.get('input'))})")
    return "; ".join(parts)


def _exports(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise RecordError(f"exports: must be an object with per-tool counts (got {_describe(value)})")
    for key in value:
        if key not in TOOLS:
            raise RecordError(f"exports.{key}: unknown tool; expected one of {', '.join(TOOLS)} "
                              f"(got {_describe(value[key])})")
    counts = {}
    for tool in TOOLS:
        count = value.get(tool, 0)
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise RecordError(f"exports.{tool}: must be an integer 0 or more (got {_describe(count)})")
        counts[tool] = count
    return counts


def parse_record(raw: Mapping[str, Any]) -> LogRecord:
    """Validate one raw record. Raises RecordError naming the field and the value."""
    try:
        envelope = _Envelope.model_validate(raw)
    except ValidationError as error:
        raise RecordError(_envelope_reason(error)) from None
    try:
        teacher = parse_answer(envelope.teacher, path="teacher")
    except ToolValidationError as error:
        raise RecordError(str(error)) from None
    created_at = envelope.created_at
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    return LogRecord(
        request_id=envelope.request_id, intent=envelope.intent,
        created_at=created_at.astimezone(UTC), teacher=teacher,
        exports=_exports(envelope.exports), teacher_model=envelope.teacher_model or None,
        latency_ms=envelope.latency_ms, cost_usd=envelope.cost_usd,
        session_id=envelope.session_id or None,
    )

