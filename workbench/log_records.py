"""The log contract (SPEC 3): one record per teacher call, validated at the edge.

`parse_record` turns a raw mapping (from JSONL, CSV or Parquet) into a `LogRecord` or raises
`RecordError` with a reason that names the field and the value. Inside the store, records are
trusted.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workbench.tools import TOOLS, Answer, ToolValidationError, parse_answer

INTENT_MAX_CHARS = 500
ID_MAX_CHARS = 256            # request_id, session_id, teacher_model
EXPORTS_MAX = 1_000_000_000   # per tool and request; sums over billions of rows still fit int64
LATENCY_MS_MAX = 3_600_000.0  # one hour
COST_USD_MAX = 100.0          # per teacher call
REQUIRED_FIELDS: tuple[str, ...] = ("request_id", "intent", "created_at", "teacher", "exports")
OPTIONAL_FIELDS: tuple[str, ...] = ("teacher_model", "latency_ms", "cost_usd", "session_id")

# Invisible characters that make look-alike spellings differ: zero-width space, non-joiner and
# joiner, word joiner, zero-width no-break space (the byte-order mark), Mongolian vowel
# separator, soft hyphen.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u180e\u00ad"
_DROP_ZERO_WIDTH = dict.fromkeys(map(ord, ZERO_WIDTH))


def intent_key(text: str) -> str:
    """Intent identity (SPEC 3): Unicode-normalised (NFKC, zero-width characters removed),
    lower-cased, whitespace collapsed and trimmed. Applying it twice changes nothing."""
    if text.isascii():  # the common case: nothing to normalise
        return " ".join(text.lower().split())
    text = unicodedata.normalize("NFKC", text.translate(_DROP_ZERO_WIDTH))
    # Lower-casing can leave a string that NFKC composes further (rarely); normalise again.
    text = unicodedata.normalize("NFKC", text.lower())
    return " ".join(text.split())


class RecordError(ValueError):
    """A log record that breaks the contract; the message is the quarantine reason."""


class _Envelope(BaseModel):
    """Everything but the tool parameters, which `workbench.tools` validates with its own messages."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    request_id: str = Field(min_length=1, max_length=ID_MAX_CHARS)
    intent: str = Field(min_length=1, max_length=INTENT_MAX_CHARS)
    created_at: datetime
    teacher: Any
    exports: Any
    teacher_model: str | None = Field(default=None, max_length=ID_MAX_CHARS)
    latency_ms: float | None = Field(default=None, ge=0, le=LATENCY_MS_MAX, allow_inf_nan=False)
    cost_usd: float | None = Field(default=None, ge=0, le=COST_USD_MAX, allow_inf_nan=False)
    session_id: str | None = Field(default=None, max_length=ID_MAX_CHARS)

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

    @cached_property
    def teacher_json(self) -> tuple[str | None, ...]:
        """The canonical JSON of each tool's parameters, in TOOLS order (None: unused); worked
        out once, since ingest needs it for the hash and for the stage."""
        return tuple(self.teacher.tool_json(tool) for tool in TOOLS)

    def content_hash(self) -> str:
        """Hash of the validated content: re-ingesting the same request is recognised as such."""
        # repr() of each field, joined: unambiguous and much cheaper than a JSON dump.
        parts = (self.request_id, self.intent, self.created_at.isoformat(), *self.teacher_json,
                 *(self.exports[tool] for tool in TOOLS), self.teacher_model, self.latency_ms,
                 self.cost_usd, self.session_id)
        return hashlib.sha1(repr(parts).encode()).hexdigest()


def _describe(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):  # an int of thousands of digits, a very deep value
        text = f"a {type(value).__name__} too large to show"
    if len(text) <= 60:
        return text
    try:
        size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    except TypeError:
        size = ""
    return f"{text[:57]}...{size}"


_LIMITS = {"latency_ms": f"a finite number from 0 to {LATENCY_MS_MAX:.0f}",
           "cost_usd": f"a finite number from 0 to {COST_USD_MAX:.0f}"}


def _envelope_reason(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "record"
        if item["type"] == "missing":
            parts.append(f"{where}: missing required field")
        elif item["type"] == "string_too_long":
            length = len(str(item.get("input", "")).strip())
            limit = item.get("ctx", {}).get("max_length", "?")
            parts.append(f"{where}: {length} characters after trimming, the limit is {limit}")
        elif where in _LIMITS and item["type"] != "float_parsing":
            parts.append(f"{where}: must be {_LIMITS[where]} (got {_describe(item.get('input'))})")
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
        given = count = value.get(tool, 0)
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= EXPORTS_MAX:
            raise RecordError(f"exports.{tool}: must be an integer from 0 to {EXPORTS_MAX:,} "
                              f"(got {_describe(given)})")
        counts[tool] = count
    return counts


def _text_problem(name: str, value: str | None) -> str | None:
    """Why a text field is refused beyond what pydantic checks (it already refuses lone
    surrogates, text that is not Unicode): a NUL character. None when it is fine."""
    if value is not None and "\x00" in value:
        return f"{name}: contains a NUL character (got {_describe(value)})"
    return None


def _created_at_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise RecordError(f"created_at: outside the years 1 to 9999 once converted to UTC "
                          f"(got {_describe(value.isoformat())})") from None


def parse_record(raw: Mapping[str, Any]) -> LogRecord:
    """Validate one raw record. Raises RecordError naming the field and the value."""
    try:
        envelope = _Envelope.model_validate(raw)
    except ValidationError as error:
        raise RecordError(_envelope_reason(error)) from None
    for name in ("request_id", "intent", "teacher_model", "session_id"):
        problem = _text_problem(name, getattr(envelope, name))
        if problem is not None:
            raise RecordError(problem)
    if not intent_key(envelope.intent):
        raise RecordError(f"intent: nothing left after removing zero-width characters and "
                          f"whitespace (got {_describe(envelope.intent)})")
    try:
        teacher = parse_answer(envelope.teacher, path="teacher")
    except ToolValidationError as error:
        raise RecordError(str(error)) from None
    except RecursionError:
        raise RecordError("teacher: nested too deeply to be tool parameters") from None
    return LogRecord(
        request_id=envelope.request_id, intent=envelope.intent,
        created_at=_created_at_utc(envelope.created_at), teacher=teacher,
        exports=_exports(envelope.exports), teacher_model=envelope.teacher_model or None,
        latency_ms=envelope.latency_ms, cost_usd=envelope.cost_usd,
        session_id=envelope.session_id or None,
    )

