"""The wire format of `workbench serve`: the OpenAI Chat Completions request and response with
tools, export feedback, the model list, and OpenAI-style error bodies.

Requests are validated here, at the edge (pydantic), into what the gateway needs: the intent
(the last user message's text), the model asked for, the tools offered and the session id.
Fields of the OpenAI request that do not change a tool-call answer (temperature, max_tokens,
seed, ...) are accepted and ignored, so an unchanged app keeps working. Each problem is a
`RequestProblem` carrying the HTTP status and OpenAI's error `type` and `code`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from workbench.log_records import EXPORTS_MAX, ID_MAX_CHARS, INTENT_MAX_CHARS
from workbench.tools import TOOLS, Answer

MAX_BODY_BYTES = 2**20                 # 1 MiB: a longer body is refused with 413 unread
# An intent is served only when the log contract (SPEC 3) can keep it: 1 to 500 characters
# after trimming, so no answered request is later quarantined by ingest.
MAX_INTENT_CHARS = INTENT_MAX_CHARS
REQUEST_ID = re.compile(r"^req_[0-9a-f]{32}$")
DEFAULT_MODEL_ALIAS = "default"        # `model="default"`: the A/B split, else the default model


class RequestProblem(Exception):
    """A request the gateway refuses or could not answer; becomes an OpenAI error body."""

    def __init__(self, status: int, code: str, message: str, *, param: str | None = None,
                 kind: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        # OpenAI's error types: the caller's fault, or ours / the upstream's.
        self.kind = kind or ("invalid_request_error" if status < 500 else "api_error")

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.kind, self.code, self.param)


def error_body(message: str, kind: str, code: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# ------------------------------------------------------------------------------ requests

class _Open(BaseModel):
    """A part of an OpenAI request: fields we do not use are allowed and ignored."""

    model_config = ConfigDict(extra="allow")


class ContentPart(_Open):
    type: str
    text: str | None = None


class ChatMessage(_Open):
    role: str
    content: str | list[ContentPart] | None = None


class ToolFunction(_Open):
    name: str


class ToolDefinition(_Open):
    type: str = "function"
    function: ToolFunction


class ChatRequest(_Open):
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[ToolDefinition] | None = None
    stream: bool | None = None
    n: int | None = None
    user: str | None = None


class Exports(BaseModel):
    """Per tool, how many times the served answer was exported (missing tools: 0)."""

    model_config = ConfigDict(extra="forbid")

    adjust: StrictInt = Field(default=0, ge=0, le=EXPORTS_MAX)     # the log contract's bounds
    selective_adjust: StrictInt = Field(default=0, ge=0, le=EXPORTS_MAX)
    filter: StrictInt = Field(default=0, ge=0, le=EXPORTS_MAX)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=REQUEST_ID.pattern)
    exports: Exports


@dataclass(frozen=True)
class Completion:
    """What a chat request asks for, once validated."""

    intent: str                        # the last user message's text, trimmed
    model: str | None                  # None: the A/B split or the default model decides
    tools: tuple[str, ...]             # the tools the caller offered (all three when none)
    session_id: str | None


def _first_problem(error: ValidationError) -> tuple[str, str]:
    """(dotted field path, message) of a pydantic error's first problem."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return where, f"{where}: {first['msg']}"


def parse_chat(body: Any, session_header: str | None) -> Completion:
    """The completion a decoded JSON body asks for; RequestProblem (400) says what is wrong.

    The session id is the `user` field, else the `x-session-id` header."""
    if not isinstance(body, dict):
        raise RequestProblem(400, "invalid_request", "the body must be a JSON object")
    try:
        request = ChatRequest.model_validate(body)
    except ValidationError as error:
        param, message = _first_problem(error)
        raise RequestProblem(400, "invalid_request", message, param=param) from None
    if request.stream:
        raise RequestProblem(400, "stream_not_supported",
                             "streaming is not supported: send stream=false (the answer is "
                             "tool calls, returned whole)", param="stream")
    if request.n not in (None, 1):
        raise RequestProblem(400, "invalid_request", f"n must be 1, got {request.n}", param="n")
    session_id = request.user or session_header or None
    if session_id is not None and (len(session_id) > ID_MAX_CHARS or "\x00" in session_id):
        raise RequestProblem(400, "invalid_request",
                             f"the session id (`user` or x-session-id) must have at most "
                             f"{ID_MAX_CHARS} characters and no NUL", param="user")
    return Completion(intent=_intent(request.messages), model=_model(request.model),
                      tools=_offered_tools(request.tools), session_id=session_id)


def _intent(messages: list[ChatMessage]) -> str:
    """The last user message's text (text parts joined by a space), trimmed and checked."""
    users = [message for message in messages if message.role == "user"]
    if not users:
        raise RequestProblem(400, "no_user_message",
                             "the messages hold no user message: send the intent as the "
                             "content of a message with role \"user\"", param="messages")
    content = users[-1].content
    if isinstance(content, list):
        kinds = sorted({part.type for part in content if part.type != "text"})
        if kinds:
            raise RequestProblem(400, "invalid_request",
                                 f"the user message has {', '.join(kinds)} parts; only text "
                                 "parts are understood", param="messages")
        content = " ".join(part.text or "" for part in content)
    text = (content or "").strip()
    if not text:
        raise RequestProblem(400, "no_user_message", "the last user message has no text",
                             param="messages")
    if "\x00" in text:
        raise RequestProblem(400, "invalid_request", "the user message contains a NUL character",
                             param="messages")
    if len(text) > MAX_INTENT_CHARS:
        raise RequestProblem(400, "message_too_long",
                             f"the user message has {len(text):,} characters; an intent may "
                             f"have at most {MAX_INTENT_CHARS:,} (the log contract's limit)",
                             param="messages")
    return text


def _model(name: str | None) -> str | None:
    if name is None or not name.strip() or name.strip() == DEFAULT_MODEL_ALIAS:
        return None
    return name.strip()


def _offered_tools(tools: list[ToolDefinition] | None) -> tuple[str, ...]:
    """The tool names offered, in SPEC order; all three when `tools` is absent or empty."""
    if not tools:
        return TOOLS
    for tool in tools:
        if tool.type != "function" or tool.function.name not in TOOLS:
            raise RequestProblem(
                400, "unsupported_tool",
                f"unknown tool {tool.function.name!r} (type {tool.type!r}): this endpoint "
                f"answers with the functions {', '.join(TOOLS)} only", param="tools")
    offered = {tool.function.name for tool in tools}
    return tuple(name for name in TOOLS if name in offered)


def parse_feedback(body: Any) -> FeedbackRequest:
    """Export feedback from a decoded JSON body; RequestProblem (400) says what is wrong."""
    if not isinstance(body, dict):
        raise RequestProblem(400, "invalid_request", "the body must be a JSON object")
    try:
        return FeedbackRequest.model_validate(body)
    except ValidationError as error:
        param, message = _first_problem(error)
        raise RequestProblem(400, "invalid_request", message, param=param) from None


# ------------------------------------------------------------------------------ responses

def served_answer(answer: Answer, offered: tuple[str, ...]) -> Answer:
    """The answer limited to the tools the caller offered (a tool not offered is not called)."""
    return Answer(**{tool: getattr(answer, tool) if tool in offered else None for tool in TOOLS})


def chat_completion(request_id: str, model: str, answer: Answer) -> dict[str, Any]:
    """An OpenAI ChatCompletion whose message is one tool call per tool the answer uses.

    The arguments are each tool's canonical parameters (SPEC 2) as JSON text; the call ids are
    the request id's hex with the tool's position, so they are unique and reproducible. An
    answer that uses no tool is a message with empty content and finish_reason "stop"."""
    hex_id = request_id.removeprefix("req_")
    calls = [{"id": f"call_{hex_id[:24]}{index:08x}", "type": "function",
              "function": {"name": tool, "arguments": answer.tool_json(tool)}}
             for index, tool in enumerate(TOOLS) if answer.uses(tool)]
    message: dict[str, Any] = {"role": "assistant", "content": None if calls else "",
                               "tool_calls": calls or None, "refusal": None}
    finish: Literal["tool_calls", "stop"] = "tool_calls" if calls else "stop"
    return {"id": request_id, "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                         "logprobs": None}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


def model_card(name: str, created: int = 0) -> dict[str, Any]:
    """One entry of GET /v1/models."""
    return {"id": name, "object": "model", "created": created, "owned_by": "workbench"}
