"""The teacher LLM's prompt in the paper's shape, and its replies read back into answers.

The prompt: the three tools as function definitions (`workbench.tool_schema`), one worked
example with its reasoning, and a short reasoning step asked for before the calls. A reply is
read from its `tool_calls`, or, from a model that cannot call tools, from JSON in its text.
What is safely repairable is repaired, and each repair is named; anything else is a
`ReplyProblem` whose message says what was wrong (the caller keeps the raw reply with it).

Safe repairs, and only these:
- a number written as a string ("-20", "35.0") is read as that integer;
- a float with no fraction (35.0) is that integer (the validator accepts it as it is);
- a slider given as null, or left out, is 0; a colour given as null has both values 0;
- a filter name in the wrong case ("warm_golden") is the one catalogue name it matches;
- a call with empty arguments has no arguments ({}).
Never repaired: a value out of range (150 is a failure, not 100: clamping would hide a teacher
that misreads the scale), a fraction (20.5), an unknown key or filter name, a tool called twice,
an unknown tool, a refusal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from workbench.llm import ToolCall, read_tool_reply
from workbench.tool_schema import tool_definitions
from workbench.tools import (
    FILTER_CATALOGUE,
    TOOLS,
    Answer,
    FilterCall,
    ToolValidationError,
    parse_adjust,
    parse_filter,
    parse_selective_adjust,
)

TEACHER_SYSTEM = (
    "You are the colour-grading assistant of a video app. A user types the look they want for "
    "their video, such as \"golden hour\", \"cool morning\" or \"Morocco\", and you set it up "
    "with the editing tools: adjust (global sliders), selective_adjust (one colour range at a "
    "time) and filter (a named look at an intensity). Call only the tools the look needs, each "
    "at most once; a tool you do not call is not used. Sliders are whole numbers from -100 to "
    "100 (0, or a slider you leave out, means unchanged); a filter's intensity is a whole "
    "number from 0 to 100 and its name must be one of the catalogue's.\n"
    "First write one or two short sentences of reasoning: the light, colour and mood the intent "
    "asks for. Then call the tools.\n"
    "If you cannot call tools, write the reasoning and then one JSON object instead, "
    "{\"adjust\": {...} or null, \"selective_adjust\": {...} or null, \"filter\": {...} or null}.")

EXAMPLE_INTENT = "golden hour"
EXAMPLE_REASONING = (
    "Golden hour is the warm, low sun just before sunset: warmer and slightly brighter, soft "
    "lifted shadows, a gentle glow, and the oranges a little richer; the warm_Golden look fits "
    "at a moderate strength.")
EXAMPLE_CALLS: dict[str, dict[str, Any]] = {
    "adjust": {"exposure": 5, "temperature": 35, "shadows": 15, "bloom": 10},
    "selective_adjust": {"orange": {"saturation": 15}},
    "filter": {"name": "warm_Golden", "intensity": 45},
}


def _example() -> str:
    calls = "\n".join(f"- {tool} with {json.dumps(arguments)}"
                      for tool, arguments in EXAMPLE_CALLS.items())
    return (f"Example. The intent {json.dumps(EXAMPLE_INTENT)}.\n"
            f"Reasoning: {EXAMPLE_REASONING}\n"
            f"Then the calls:\n{calls}")


def teacher_messages(intent: str) -> list[dict[str, str]]:
    """The chat messages that ask the teacher for one intent's answer (tools sent beside)."""
    quoted = json.dumps(" ".join(intent.split()), ensure_ascii=False)
    return [{"role": "system", "content": f"{TEACHER_SYSTEM}\n\n{_example()}"},
            {"role": "user", "content": f"The intent: {quoted}"}]


def teacher_tools() -> list[dict[str, Any]]:
    """The function definitions sent with every teacher request."""
    return tool_definitions()


def typical_reply_chars() -> int:
    """Characters of a typical reply: the worked example's reasoning and calls (the cost
    estimate's completion size)."""
    return len(EXAMPLE_REASONING) + sum(len(tool) + len(json.dumps(arguments))
                                        for tool, arguments in EXAMPLE_CALLS.items())


class ReplyProblem(ValueError):
    """A teacher reply that is not an answer; the message says why."""


@dataclass(frozen=True)
class TeacherAnswer:
    """A reply read into an answer: how it was read, the model's reasoning, what was repaired."""

    answer: Answer
    reasoning: str
    repairs: tuple[str, ...] = ()
    via: str = "tool_calls"          # or "json in text"


def parse_teacher_reply(text: str) -> TeacherAnswer:
    """Read a teacher reply (as `LLMClient` gives it: `tool_reply_text`, or plain text) into an
    answer; raises ReplyProblem saying why it is not one."""
    reply = read_tool_reply(text)
    content = (reply.content or "").strip()
    if reply.refusal:
        raise ReplyProblem(f"the model refused: {_short(reply.refusal)}")
    if reply.tool_calls:
        calls = [_call_from_tool_call(call) for call in reply.tool_calls]
        return _answer(calls, reasoning=content, via="tool_calls")
    if not content:
        raise ReplyProblem("the reply has no tool calls and no text")
    found = _answer_in_text(content)
    if found is None:
        raise ReplyProblem(f"the reply has no tool calls and no JSON answer in its text "
                           f"(it said {_short(content)!r})")
    calls, reasoning = found
    return _answer(calls, reasoning=reasoning, via="json in text")


# ------------------------------------------------------------------------------ reading calls

def _short(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def _call_from_tool_call(call: ToolCall) -> tuple[str, Any]:
    """(tool name, arguments object) of one tool call; ReplyProblem for a bad name or JSON."""
    if not call.name:
        raise ReplyProblem("a tool call has no function name")
    if call.name not in TOOLS:
        raise ReplyProblem(f"unknown tool {call.name!r}; the tools are {', '.join(TOOLS)}")
    if call.arguments is None or not call.arguments.strip():
        return call.name, {}
    try:
        arguments = json.loads(call.arguments)
    except json.JSONDecodeError as error:
        raise ReplyProblem(f"the arguments of {call.name} are not JSON ({error.msg} at "
                           f"character {error.pos}: {_short(call.arguments, 60)!r})") from None
    return call.name, arguments


def _json_objects(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(start, object) of each top-level JSON object in `text`, prose and fences around them."""
    decoder = json.JSONDecoder()
    position = 0
    while (start := text.find("{", position)) != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            position = start + 1  # a brace in prose, or a broken object: look further
            continue
        if isinstance(value, dict):
            yield start, value
        position = end


def _answer_in_text(content: str) -> tuple[list[tuple[str, Any]], str] | None:
    """The calls a text reply gives, and the text before them (the reasoning): an answer object
    with tool names as keys, else call objects {"name": tool, "arguments": {...}} (the shape
    local models print when they cannot call tools); None when there is neither."""
    calls: list[tuple[str, Any]] = []
    first = -1
    for start, value in _json_objects(content):
        if any(tool in value for tool in TOOLS):
            unknown = sorted(set(value) - set(TOOLS))
            if unknown:
                raise ReplyProblem(f"unknown tool {unknown[0]!r} in the JSON answer; the tools "
                                   f"are {', '.join(TOOLS)}")
            used = [(tool, value[tool]) for tool in TOOLS if value.get(tool) is not None]
            return used, _reasoning_before(content, start)
        name = value.get("name")
        if isinstance(name, str) and ("arguments" in value or "parameters" in value):
            if name not in TOOLS:
                raise ReplyProblem(f"unknown tool {name!r}; the tools are {', '.join(TOOLS)}")
            arguments = value.get("arguments", value.get("parameters"))
            if isinstance(arguments, str):
                arguments = _call_from_tool_call(ToolCall(name, arguments))[1]
            calls.append((name, {} if arguments is None else arguments))
            first = start if first < 0 else first
    if not calls:
        return None
    return calls, _reasoning_before(content, first)


def _reasoning_before(content: str, start: int) -> str:
    text = content[:start].strip()
    # an opening fence or tag just before the JSON
    text = re.sub(r"(?:```(?:json)?|<tool_call>)\s*$", "", text).strip()
    return re.sub(r"^(?:reasoning|thought)s?\s*:\s*", "", text, flags=re.IGNORECASE)


# ------------------------------------------------------------------------------ repairs

_WHOLE_NUMBER = re.compile(r"[+-]?\d+(?:\.0*)?")


def _number(value: Any, path: str, repairs: list[str]) -> Any:
    """A slider or intensity, repaired when it is a whole number written as a string."""
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        number = int(float(value.strip()))
        repairs.append(f"{path} {json.dumps(value)} (a string) read as {number}")
        return number
    return value


def _numbers(value: Any, path: str, repairs: list[str]) -> Any:
    """An object of sliders with string numbers repaired and null sliders left out (= 0)."""
    if not isinstance(value, Mapping):
        return value  # the validator says what is wrong with it
    fixed = {}
    for key, item in value.items():
        if item is None:
            repairs.append(f"{path}.{key} null read as 0")
            continue
        fixed[key] = _number(item, f"{path}.{key}", repairs)
    return fixed


def _repair_selective(value: Any, repairs: list[str]) -> Any:
    if not isinstance(value, Mapping):
        return value
    fixed: dict[str, Any] = {}
    for colour, channels in value.items():
        if channels is None:
            repairs.append(f"selective_adjust.{colour} null read as 0")
            channels = {}
        fixed[colour] = _numbers(channels, f"selective_adjust.{colour}", repairs)
    return fixed


def _repair_filter(value: Any, repairs: list[str]) -> Any:
    if not isinstance(value, Mapping):
        return value
    fixed = dict(value)
    name = fixed.get("name")
    if isinstance(name, str) and name not in FILTER_CATALOGUE:
        matches = [known for known in FILTER_CATALOGUE if known.lower() == name.strip().lower()]
        if len(matches) == 1:
            repairs.append(f"filter.name {json.dumps(name)} read as {matches[0]!r}")
            fixed["name"] = matches[0]
    if "intensity" in fixed:
        fixed["intensity"] = _number(fixed["intensity"], "filter.intensity", repairs)
    return fixed


_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "adjust": parse_adjust, "selective_adjust": parse_selective_adjust, "filter": parse_filter}


def _answer(calls: list[tuple[str, Any]], reasoning: str, via: str) -> TeacherAnswer:
    """The answer the calls make, repaired where that is safe; ReplyProblem otherwise."""
    seen: dict[str, int] = {}
    for tool, _ in calls:
        seen[tool] = seen.get(tool, 0) + 1
    twice = [tool for tool, count in seen.items() if count > 1]
    if twice:
        raise ReplyProblem(f"{twice[0]} was called {seen[twice[0]]} times; an answer calls each "
                           "tool at most once")
    repairs: list[str] = []
    parsed: dict[str, Any] = {}
    for tool, arguments in calls:
        if arguments is None:
            arguments = {}
        if tool == "adjust":
            arguments = _numbers(arguments, "adjust", repairs)
        elif tool == "selective_adjust":
            arguments = _repair_selective(arguments, repairs)
        else:
            arguments = _repair_filter(arguments, repairs)
        try:
            parsed[tool] = _PARSERS[tool](arguments, tool)
        except ToolValidationError as error:
            raise ReplyProblem(str(error)) from None
    filter_: FilterCall | None = parsed.get("filter")
    answer = Answer(adjust=parsed.get("adjust"), selective_adjust=parsed.get("selective_adjust"),
                    filter=filter_)
    return TeacherAnswer(answer, reasoning=reasoning.strip(), repairs=tuple(repairs), via=via)
