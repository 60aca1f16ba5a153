"""The teacher prompt and the reading of its replies: tool calls, JSON in text, both, refusals,
unknown tools, bad arguments; the safe repairs and the failures that are never repaired. Then the
LLM client's tools support against the fake teacher: tools sent, tool_calls read, the tools in
the cache key, the paraphraser's keys unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fake_teacher import FakeTeacher, fake_teacher, good_calls
from workbench import tools
from workbench.llm import (
    LLMClient,
    LLMConfig,
    Purpose,
    ToolCall,
    ToolReply,
    cache_key,
    read_tool_reply,
    tool_reply_text,
)
from workbench.store import Store
from workbench.teacher import (
    EXAMPLE_CALLS,
    ReplyProblem,
    parse_teacher_reply,
    teacher_messages,
    teacher_tools,
)


def reply(content: str | None = None, calls: list[tuple[str | None, str | None]] = (),
          refusal: str | None = None) -> str:
    return tool_reply_text(ToolReply(content, tuple(ToolCall(n, a) for n, a in calls), refusal))


def args(value: Any) -> str:
    return json.dumps(value)


# --- the prompt -------------------------------------------------------------------------------

def test_the_prompt_has_the_papers_shape():
    system, user = teacher_messages("  cool   morning ")
    assert system["role"] == "system" and user == {"role": "user",
                                                   "content": 'The intent: "cool morning"'}
    text = system["content"]
    assert "reasoning" in text and text.index("reasoning") < text.index("Then call the tools")
    assert 'Example. The intent "golden hour".' in text
    # the worked example is itself a valid answer
    assert tools.parse_answer(EXAMPLE_CALLS).filter == tools.FilterCall("warm_Golden", 45)
    assert [t["function"]["name"] for t in teacher_tools()] == list(tools.TOOLS)


# --- replies that become answers --------------------------------------------------------------

def test_tool_calls_become_an_answer_with_the_reasoning():
    read = parse_teacher_reply(reply("Warm, low sun.", [
        ("adjust", args({"temperature": 30})), ("filter", args({"name": "warm_Golden",
                                                                  "intensity": 40}))]))
    assert read.answer == tools.parse_answer({"adjust": {"temperature": 30},
                                              "filter": {"name": "warm_Golden", "intensity": 40}})
    assert read.answer.selective_adjust is None
    assert read.reasoning == "Warm, low sun." and read.repairs == () and read.via == "tool_calls"


def test_json_in_text_is_read_when_there_are_no_tool_calls():
    text = ('Reasoning: cold and blue.\n```json\n{"adjust": {"temperature": -40}, '
            '"selective_adjust": null, "filter": null}\n```')
    read = parse_teacher_reply(reply(text))
    assert read.answer == tools.parse_answer({"adjust": {"temperature": -40}})
    assert read.reasoning == "cold and blue." and read.via == "json in text"
    # plain text (a reply cached without tools) reads the same
    assert parse_teacher_reply(text).answer == read.answer


def test_call_objects_in_text_are_read_as_calls():
    text = ('Cold. <tool_call>{"name": "adjust", "arguments": {"temperature": -40}}</tool_call>'
            '<tool_call>{"name": "filter", "arguments": "{\\"name\\": \\"cool_Arctic\\", '
            '\\"intensity\\": 30}"}</tool_call>')
    read = parse_teacher_reply(reply(text))
    assert read.answer == tools.parse_answer({"adjust": {"temperature": -40},
                                              "filter": {"name": "cool_Arctic", "intensity": 30}})
    assert read.reasoning == "Cold."


def test_with_both_the_tool_calls_win_over_json_in_the_text():
    read = parse_teacher_reply(reply('Think. {"adjust": {"temperature": 99}}',
                                     [("adjust", args({"temperature": 10}))]))
    assert read.answer.adjust is not None and read.answer.adjust["temperature"] == 10


def test_safe_repairs_are_made_and_named():
    read = parse_teacher_reply(reply("ok", [
        ("adjust", args({"temperature": "-20", "exposure": 5.0, "tint": None, "hue": " +7 "})),
        ("selective_adjust", args({"red": None, "blue": {"saturation": "30.0"}})),
        ("filter", args({"name": "WARM_golden", "intensity": "40"}))]))
    expected = tools.parse_answer({
        "adjust": {"temperature": -20, "exposure": 5, "hue": 7},
        "selective_adjust": {"blue": {"saturation": 30}},
        "filter": {"name": "warm_Golden", "intensity": 40}})
    assert read.answer == expected
    assert read.repairs == (
        'adjust.temperature "-20" (a string) read as -20', "adjust.tint null read as 0",
        'adjust.hue " +7 " (a string) read as 7', "selective_adjust.red null read as 0",
        'selective_adjust.blue.saturation "30.0" (a string) read as 30',
        "filter.name \"WARM_golden\" read as 'warm_Golden'",
        'filter.intensity "40" (a string) read as 40')


def test_empty_arguments_are_no_arguments():
    read = parse_teacher_reply(reply(None, [("adjust", "")]))
    assert read.answer.adjust == dict.fromkeys(tools.ADJUST_KEYS, 0)


# --- replies that are failures, with the reason -----------------------------------------------

@pytest.mark.parametrize(("text", "reason"), [
    (reply(None, [("adjust", '{"temperature": 30,')]),
     "the arguments of adjust are not JSON (Expecting property name enclosed in double quotes"),
    (reply(None, [("vignette", args({"amount": 3}))]),
     "unknown tool 'vignette'; the tools are adjust, selective_adjust, filter"),
    (reply(None, [(None, args({}))]), "a tool call has no function name"),
    (reply(None, refusal="I can't help with that."), "the model refused: I can't help with that."),
    (reply("Sorry, I can't do that.", [("adjust", args({}))], refusal="policy"),
     "the model refused: policy"),
    (reply("What a lovely idea!"),
     "the reply has no tool calls and no JSON answer in its text (it said 'What a lovely idea!')"),
    (reply(None), "the reply has no tool calls and no text"),
    (reply(None, [("adjust", args({"temperature": 10})), ("adjust", args({"temperature": 20}))]),
     "adjust was called 2 times; an answer calls each tool at most once"),
    (reply(None, [("adjust", args({"temperature": 150}))]),
     "adjust.temperature: must be in [-100, 100] (got 150)"),
    (reply(None, [("adjust", args({"temperature": "150"}))]),
     "adjust.temperature: must be in [-100, 100] (got 150)"),
    (reply(None, [("adjust", args({"temperature": 20.5}))]),
     "adjust.temperature: must be an integer (got 20.5)"),
    (reply(None, [("adjust", args({"temperature": "twenty"}))]),
     'adjust.temperature: must be an integer (got "twenty")'),
    (reply(None, [("adjust", args({"warmth": 20}))]),
     "adjust.warmth: unknown key 'warmth'"),
    (reply(None, [("adjust", args([1, 2]))]), "adjust: must be an object"),
    (reply(None, [("filter", args({"name": "no_SuchLook", "intensity": 50}))]),
     'filter.name: is not in the filter catalogue (got "no_SuchLook")'),
    (reply(None, [("filter", args({"name": "warm_Golden", "intensity": 101}))]),
     "filter.intensity: must be in [0, 100] (got 101)"),
    (reply('{"adjust": {"temperature": 1}, "vignette": {}}'),
     "unknown tool 'vignette' in the JSON answer"),
    (reply('{"name": "vignette", "arguments": {}}'), "unknown tool 'vignette'"),
])
def test_what_is_not_safely_repairable_fails_with_a_reason(text: str, reason: str):
    with pytest.raises(ReplyProblem) as raised:
        parse_teacher_reply(text)
    assert str(raised.value).startswith(reason)


def test_a_reply_envelope_reads_back_as_written():
    message = ToolReply("why", (ToolCall("adjust", '{"a": 1}'), ToolCall(None, None)), None)
    assert read_tool_reply(tool_reply_text(message)) == message
    assert read_tool_reply("plain text") == ToolReply("plain text")
    assert read_tool_reply('{"adjust": {}}') == ToolReply('{"adjust": {}}')


# --- the client with tools, against the fake teacher ------------------------------------------

@pytest.fixture
def teacher() -> Iterator[FakeTeacher]:
    with fake_teacher() as fake:
        yield fake


def config(fake: FakeTeacher, **overrides: Any) -> LLMConfig:
    settings: dict[str, Any] = {"base_url": fake.base_url, "model": "fake-teacher",
                                "timeout_s": 5.0, "max_retries": 0, "max_total_s": 10.0}
    return LLMConfig(**(settings | overrides))


def test_the_client_sends_the_tools_and_reads_tool_calls(teacher: FakeTeacher, store: Store):
    with LLMClient(config(teacher), store) as client:
        got = client.complete(teacher_messages("cool morning"), parse_teacher_reply,
                              purpose=Purpose.LABEL, tools=teacher_tools())
    assert got.error is None and got.value is not None
    assert got.value.answer == tools.parse_answer(good_calls("cool morning"))
    [request] = teacher.requests
    assert request["tools"] == teacher_tools()
    assert request["messages"] == teacher_messages("cool morning")
    # the raw reply kept is the whole message
    assert read_tool_reply(got.text or "").tool_calls[0].name == "adjust"
    rows = store.query("SELECT purpose, status FROM llm_calls")
    assert rows == [{"purpose": "label", "status": "ok"}]


def test_arguments_sent_as_an_object_are_read_too(teacher: FakeTeacher, store: Store):
    teacher.modes["as object"] = "object_arguments"
    with LLMClient(config(teacher), store) as client:
        got = client.complete(teacher_messages("as object"), parse_teacher_reply,
                              purpose=Purpose.LABEL, tools=teacher_tools())
    assert got.value is not None
    assert got.value.answer == tools.parse_answer(good_calls("as object"))


def test_the_tools_are_part_of_the_cache_key(teacher: FakeTeacher, store: Store):
    settings = config(teacher)
    messages = teacher_messages("x")
    plain = cache_key(settings, messages, None)
    with_tools = cache_key(settings, messages, None, teacher_tools())
    fewer_tools = cache_key(settings, messages, None, teacher_tools()[:2])
    assert len({plain, with_tools, fewer_tools}) == 3
    # a key without tools is what it always was (the paraphraser's cache still holds)
    material = json.dumps({"base_url": settings.base_url, "model": "fake-teacher",
                           "messages": messages, "temperature": 0.7, "n": None},
                          sort_keys=True, ensure_ascii=False)
    import hashlib
    assert plain == hashlib.sha256(material.encode()).hexdigest()


def test_a_malformed_tool_reply_is_unparseable_with_the_raw_message(teacher: FakeTeacher,
                                                                    store: Store):
    teacher.modes["bad"] = "malformed"
    with LLMClient(config(teacher), store) as client:
        got = client.complete(teacher_messages("bad"), parse_teacher_reply,
                              purpose=Purpose.LABEL, tools=teacher_tools())
    assert got.value is None
    assert got.error is not None and "the arguments of adjust are not JSON" in got.error
    assert "reply began" not in got.error   # the JSON wrapping is no help; the raw text is kept
    assert read_tool_reply(got.text or "").tool_calls == (
        ToolCall("adjust", '{"temperature": 30,'),)
    assert store.query("SELECT status FROM llm_calls") == [{"status": "unparseable"}]
    assert store.query("SELECT count(*) AS n FROM llm_cache") == [{"n": 0}]
