"""A local fake OpenAI-compatible teacher on 127.0.0.1 that answers chat requests with
`tool_calls`, and misbehaves on request, per intent: malformed arguments, an unknown tool, a
refusal, a slow answer, JSON in the text instead of calls, a tool called twice, a value out of
range, numbers as strings, arguments as an object rather than JSON text, a server error.

The intent is read from the last user message (`The intent: "..."`, as `teacher_messages`
writes it); `FakeTeacher.modes` maps an intent to how to answer it, anything else is answered
well with `good_calls(intent)`: a deterministic answer the tests can work out again.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "fake-teacher"
PROMPT_TOKENS = 1200
COMPLETION_TOKENS = 80


def good_calls(intent: str) -> dict[str, dict[str, Any]]:
    """The answer the fake gives a well-behaved intent: temperature and exposure from a hash of
    the text, a filter on every other intent."""
    digest = hashlib.sha256(intent.encode()).digest()
    calls: dict[str, dict[str, Any]] = {
        "adjust": {"temperature": digest[0] % 201 - 100, "exposure": digest[1] % 41 - 20}}
    if digest[2] % 2:
        calls["filter"] = {"name": "cool_Morning", "intensity": digest[3] % 101}
    return calls


def tool_call(name: str, arguments: str, number: int = 0) -> dict[str, Any]:
    return {"id": f"call_{number}", "type": "function",
            "function": {"name": name, "arguments": arguments}}


def chat_completion(message: dict[str, Any]) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "tool_calls" if message.get("tool_calls")
                         else "stop", "message": {"role": "assistant", **message}}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                      "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}}


def message_for(intent: str, mode: str) -> dict[str, Any]:
    """The assistant message for one intent answered in `mode`."""
    calls = good_calls(intent)
    reasoning = f"{intent} wants a look; here are the calls."
    if mode == "ok":
        return {"content": reasoning, "tool_calls": [
            tool_call(name, json.dumps(arguments), i)
            for i, (name, arguments) in enumerate(calls.items())]}
    if mode == "object_arguments":  # some servers send the arguments as an object
        return {"content": reasoning, "tool_calls": [
            {"id": "call_0", "type": "function",
             "function": {"name": name, "arguments": arguments}}
            for name, arguments in calls.items()]}
    if mode == "malformed":
        return {"content": None, "tool_calls": [tool_call("adjust", '{"temperature": 30,')]}
    if mode == "unknown_tool":
        return {"content": None, "tool_calls": [tool_call("vignette", '{"amount": 30}')]}
    if mode == "refusal":
        return {"content": None, "refusal": "I can't help with that request."}
    if mode == "chatty":
        return {"content": "What a lovely idea! I hope your video looks great."}
    if mode == "json_text":
        return {"content": f"Reasoning: {reasoning}\n```json\n{json.dumps(calls)}\n```"}
    if mode == "both":  # the calls win; the JSON in the text is ignored
        return {"content": f"{reasoning} {json.dumps({'adjust': {'temperature': 99}})}",
                "tool_calls": [tool_call(name, json.dumps(arguments), i)
                               for i, (name, arguments) in enumerate(calls.items())]}
    if mode == "twice":
        return {"content": None, "tool_calls": [tool_call("adjust", '{"temperature": 10}', 0),
                                                tool_call("adjust", '{"temperature": 20}', 1)]}
    if mode == "out_of_range":
        return {"content": None, "tool_calls": [tool_call("adjust", '{"temperature": 150}')]}
    if mode == "strings":
        return {"content": reasoning, "tool_calls": [
            tool_call("adjust", json.dumps({"temperature": "-20", "exposure": 5.0})),
            tool_call("filter", json.dumps({"name": "WARM_golden", "intensity": "40"}), 1)]}
    raise ValueError(mode)


@dataclass
class FakeTeacher:
    base_url: str = ""
    modes: dict[str, str] = field(default_factory=dict)   # intent -> mode; else "ok"
    slow_s: float = 5.0                                   # how long "slow" sleeps
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def calls(self) -> int:
        return len(self.requests)

    def intents_asked(self) -> list[str]:
        return [intent_of(request) for request in self.requests]


def intent_of(request: dict[str, Any]) -> str:
    text = request["messages"][-1]["content"]
    match = re.fullmatch(r'The intent: (".*")', text, flags=re.DOTALL)
    return json.loads(match.group(1)) if match else text


def _handler(fake: FakeTeacher) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up waiting and closed the connection

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            with fake.lock:
                fake.requests.append(request)
            intent = intent_of(request)
            mode = fake.modes.get(intent, "ok")
            if mode == "down":
                self._send(503, {"error": {"message": "overloaded", "type": "server_error"}})
                return
            if mode == "slow":
                fake.release.wait(fake.slow_s)
                mode = "ok"
            self._send(200, chat_completion(message_for(intent, mode)))

    return Handler


@contextmanager
def fake_teacher() -> Iterator[FakeTeacher]:
    fake = FakeTeacher()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = False  # server_close() joins every handler thread
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
