"""The LLM client against a tiny OpenAI-compatible server on 127.0.0.1, scripted per test.

Covers good replies and their cost, unparseable replies, 429 with and without Retry-After, 500
forever, a server that hangs, the reply cache, the connection check, configuration from the
environment and secrets.toml, and that the API key never shows up anywhere. Raw-socket servers
that drip or never finish their answers check that every call is bounded by the wall clock, and
a batch by its round budget and circuit breaker. The client is driven through `LLMParaphraser`,
its one caller; the paraphraser's own prompt and reply parsing are in test_paraphrase_llm.py.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from workbench import llm
from workbench.errors import WorkbenchError
from workbench.llm import LLMClient, LLMConfig, cache_key, llm_config, usage_summary
from workbench.paraphrase import Paraphraser
from workbench.paraphrase.llm import LLMParaphraser, paraphrase_messages
from workbench.store import Store

KEY = "sk-test-Zq8vK3mW7pL2xR9tDISTINCTIVE"
MODEL = "test-model"
GOOD = json.dumps({"intents": ["cool tone", "chilly dawn look", "COOL  morning", "Cool Tone",
                               "blue hour calm"]})


# --- the fake endpoint ------------------------------------------------------------------------

@dataclass
class Answer:
    """What the fake endpoint does for one chat request."""

    status: int = 200
    body: dict[str, Any] | str | None = None  # None: a chat completion of `FakeLLM.content`
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0                        # sleep this long first (cut short at teardown)


def completion(content: str, prompt_tokens: int = 100, completion_tokens: int = 20) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def error_body(message: str) -> dict:
    return {"error": {"message": message, "type": "test_error", "code": None}}


@dataclass
class FakeLLM:
    base_url: str = ""
    script: list[Answer] = field(default_factory=list)  # for the next chat requests, in order
    default: Answer = field(default_factory=Answer)     # once the script is used up
    content: Callable[[str], str] = lambda user_message: GOOD
    models: list[str] = field(default_factory=lambda: [MODEL])
    chat_requests: list[dict] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)  # of every request, GET included
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_answer(self, request: dict, authorization: str) -> Answer:
        with self.lock:
            self.chat_requests.append(request)
            self.authorizations.append(authorization)
            return self.script.pop(0) if self.script else self.default


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean; the tests count requests themselves

        def _send(self, status: int, body: dict | str, headers: dict[str, str]) -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            try:
                self.send_response(status)
                kind = "text/plain" if isinstance(body, str) else "application/json"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up waiting (the hang test) and closed the connection

        def do_GET(self) -> None:
            fake.headers.append(dict(self.headers))
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [
                    {"id": name, "object": "model", "created": 0, "owned_by": "test"}
                    for name in fake.models]}, {})
            else:
                self._send(404, error_body("no such path"), {})

        def do_POST(self) -> None:
            fake.headers.append(dict(self.headers))
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, error_body("no such path"), {})
                return
            answer = fake.next_answer(request, self.headers.get("Authorization", ""))
            if answer.hang_s:
                fake.release.wait(answer.hang_s)
            if answer.body is None:
                user_message = request["messages"][-1]["content"]
                body: dict | str = completion(fake.content(user_message))
            else:
                body = answer.body
            self._send(answer.status, body, answer.headers)

    return Handler


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = False  # server_close() joins every handler thread
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield fake
    fake.release.set()  # wake hanging handlers so they finish now
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def config_for(fake: FakeLLM, **overrides: Any) -> LLMConfig:
    settings: dict[str, Any] = {"base_url": fake.base_url, "model": MODEL, "api_key": KEY,
                                    "timeout_s": 5.0, "max_retries": 2, "max_total_s": 10.0,
                                    "backoff_s": 1.0}
    settings.update(overrides)
    return LLMConfig(**settings)


@dataclass
class Harness:
    client: LLMClient
    paraphraser: LLMParaphraser
    waits: list[float]


@pytest.fixture
def make(store: Store) -> Iterator[Callable[..., Harness]]:
    """Build a client whose backoff waits are recorded instead of slept (unless real_sleep)."""
    clients: list[LLMClient] = []

    def build(config: LLMConfig, real_sleep: bool = False) -> Harness:
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            if real_sleep:
                time.sleep(seconds)

        client = LLMClient(config, store, sleep=sleep)
        clients.append(client)
        return Harness(client, LLMParaphraser(client), waits)

    yield build
    for client in clients:
        client.close()


def calls(store: Store) -> list[dict]:
    return store.query("SELECT * FROM llm_calls ORDER BY call_id")


# --- good replies, cost, cache ----------------------------------------------------------------

def test_good_reply_gives_new_candidates_and_records_cost(fake: FakeLLM, make, store: Store):
    config = config_for(fake, input_usd_per_1k_tokens=0.5, output_usd_per_1k_tokens=1.5)
    harness = make(config)
    paraphraser: Paraphraser = harness.paraphraser
    assert paraphraser.name == "llm:test-model"

    [result] = paraphraser.paraphrase(["cool morning"], n=3)

    # "COOL  morning" is the source and "Cool Tone" a repeat; the first 3 of the rest are kept.
    assert result.candidates == ("cool tone", "chilly dawn look", "blue hour calm")
    assert result.error is None and not result.cached
    # 100 prompt tokens at $0.5/1k + 20 completion tokens at $1.5/1k = 0.05 + 0.03
    assert result.usage == {"prompt_tokens": 100, "completion_tokens": 20,
                            "cost_usd": pytest.approx(0.08)}
    [request] = fake.chat_requests
    assert request["model"] == MODEL and request["temperature"] == 0.7
    assert '"cool morning"' in request["messages"][-1]["content"]
    assert "3" in request["messages"][-1]["content"]
    assert fake.authorizations == [f"Bearer {KEY}"]
    [row] = calls(store)
    assert (row["status"], row["http_status"], row["purpose"], row["model"]) == \
        ("ok", 200, "paraphrase", MODEL)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (100, 20)
    assert row["cost_usd"] == pytest.approx(0.08) and row["error"] is None
    summary = usage_summary(store)
    assert summary["calls"] == 1 and summary["by_status"] == {"ok": 1}
    assert (summary["prompt_tokens"], summary["completion_tokens"]) == (100, 20)
    assert summary["cost_usd"] == pytest.approx(0.08) and summary["unpriced_calls"] == 0


def test_unknown_prices_record_null_cost(fake: FakeLLM, make, store: Store):
    [result] = make(config_for(fake)).paraphraser.paraphrase(["cool morning"], n=2)
    assert result.usage == {"prompt_tokens": 100, "completion_tokens": 20}
    assert calls(store)[0]["cost_usd"] is None
    assert usage_summary(store)["unpriced_calls"] == 1


def test_second_run_is_answered_from_the_cache(fake: FakeLLM, make, store: Store):
    config = config_for(fake, input_usd_per_1k_tokens=1.0, output_usd_per_1k_tokens=1.0)
    first = make(config).paraphraser.paraphrase(["cool morning", "golden hour"], n=2)
    assert len(fake.chat_requests) == 2

    # A new client (as a rerun would make) with the same prompts: no HTTP request at all.
    second = make(config).paraphraser.paraphrase(["cool morning", "golden hour"], n=2)
    assert len(fake.chat_requests) == 2
    assert [result.cached for result in second] == [True, True]
    assert [result.candidates for result in second] == [result.candidates for result in first]
    assert all(result.usage["cost_usd"] == 0 for result in second)
    assert [row["status"] for row in calls(store)] == ["ok", "ok", "cached", "cached"]
    assert usage_summary(store)["cost_usd"] == pytest.approx(2 * 0.12)

    # Another n is another prompt.
    make(config).paraphraser.paraphrase(["cool morning"], n=3)
    assert len(fake.chat_requests) == 3


def test_the_same_intent_twice_in_a_batch_is_asked_once(fake: FakeLLM, make, store: Store):
    first, second = make(config_for(fake)).paraphraser.paraphrase(
        ["cool morning", "cool morning"], n=2)
    assert len(fake.chat_requests) == 1
    assert (first.cached, second.cached) == (False, True)
    assert second.candidates == first.candidates
    assert [row["status"] for row in calls(store)] == ["ok", "cached"]


def test_progress_is_reported_after_each_intent(fake: FakeLLM, make):
    seen: list[tuple[str, int, int | None]] = []
    make(config_for(fake)).paraphraser.paraphrase(
        ["a", "b", "c"], n=2, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert seen == [("paraphrase", 1, 3), ("paraphrase", 2, 3), ("paraphrase", 3, 3)]


# --- replies that do not parse (the parser itself: tests/test_paraphrase_llm.py) -------------

def test_unparseable_reply_is_an_error_result_and_the_batch_goes_on(
        fake: FakeLLM, make, store: Store):
    fake.content = lambda user: "I cannot answer in JSON." if "broken" in user else GOOD
    harness = make(config_for(fake))

    broken, good = harness.paraphraser.paraphrase(["broken look", "cool morning"], n=2)

    assert broken.candidates == () and broken.error is not None
    assert broken.error.startswith("unparseable reply: no JSON object")
    assert "I cannot answer in JSON." in broken.error  # the start of the reply, to recognise it
    assert broken.usage["prompt_tokens"] == 100         # it was paid for all the same
    assert good.error is None and good.candidates == ("cool tone", "chilly dawn look")
    assert [(row["status"], row["http_status"]) for row in calls(store)] == \
        [("unparseable", 200), ("ok", 200)]
    assert harness.waits == []  # a bad reply is not retried

    # Only the good reply was cached: a rerun asks again for the broken one only.
    again = make(config_for(fake)).paraphraser.paraphrase(["broken look", "cool morning"], n=2)
    assert len(fake.chat_requests) == 3
    assert [result.cached for result in again] == [False, True]


@pytest.mark.parametrize("answer", [
    Answer(body={"object": "chat.completion", "choices": []}),    # no choices
    Answer(body={"unexpected": "shape"}),                         # not a completion at all
    Answer(body="plain text, not JSON"),                          # not JSON
    Answer(body=completion(json.dumps({"intents": [1, 2]}))),     # JSON of the wrong shape
])
def test_answers_that_are_not_chat_completions_are_error_results(
        fake: FakeLLM, make, answer: Answer):
    fake.script = [answer]
    broken, good = make(config_for(fake)).paraphraser.paraphrase(["cool morning", "dusk"], n=2)
    assert broken.candidates == () and broken.error is not None
    assert good.error is None and good.candidates


# --- retries and bounded time ----------------------------------------------------------------

@pytest.mark.parametrize("headers, expected_wait", [
    ({"Retry-After": "2"}, (2.0, 2.0)),
    ({"retry-after-ms": "1500"}, (1.5, 1.5)),
    ({}, (0.5, 1.5)),  # backoff_s=1 with jitter of 0.5x to 1.5x
])
def test_rate_limited_then_ok_retries_once(fake: FakeLLM, make, store: Store,
                                          headers: dict[str, str],
                                          expected_wait: tuple[float, float]):
    fake.script = [Answer(429, error_body("slow down"), headers)]
    harness = make(config_for(fake))

    [result] = harness.paraphraser.paraphrase(["cool morning"], n=2)

    assert result.error is None and result.candidates
    [wait] = harness.waits
    assert expected_wait[0] <= wait <= expected_wait[1]
    rows = calls(store)
    assert [(row["status"], row["http_status"], row["attempt"]) for row in rows] == \
        [("retry", 429, 1), ("ok", 200, 2)]
    assert "rate-limiting" in rows[0]["error"] and "slow down" in rows[0]["error"]


def test_retry_after_beyond_the_budget_gives_up_at_once(fake: FakeLLM, make, store: Store):
    fake.default = Answer(429, error_body("slow down"), {"Retry-After": "120"})
    harness = make(config_for(fake, max_total_s=5.0))
    [result] = harness.paraphraser.paraphrase(["cool morning"], n=2)
    assert result.error is not None and "asked to wait 120.0 s" in result.error
    assert harness.waits == [] and len(fake.chat_requests) == 1
    assert [row["status"] for row in calls(store)] == ["failed"]


def test_out_of_credit_is_not_retried(fake: FakeLLM, make):
    fake.default = Answer(429, {"error": {"message": "You exceeded your current quota",
                                          "code": "insufficient_quota"}})
    [result] = make(config_for(fake)).paraphraser.paraphrase(["cool morning"], n=2)
    assert result.error is not None and "no credit left" in result.error
    assert len(fake.chat_requests) == 1


def test_server_error_forever_fails_after_max_retries_in_bounded_time(
        fake: FakeLLM, make, store: Store):
    fake.default = Answer(500, error_body("the model is on fire"))
    harness = make(config_for(fake, max_retries=3, backoff_s=0.01), real_sleep=True)

    start = time.monotonic()
    bad, also_bad = harness.paraphraser.paraphrase(["cool morning", "golden hour"], n=2)
    elapsed = time.monotonic() - start

    # Bounded: tiny backoffs; the time goes on 8 requests and 8 short database writes.
    assert elapsed < 5.0
    assert len(fake.chat_requests) == 2 * 4  # first attempt + 3 retries, per intent
    for result in (bad, also_bad):
        assert result.candidates == () and result.error is not None
        assert "HTTP 500" in result.error and "the model is on fire" in result.error
        assert "after 4 attempt(s)" in result.error
    assert [row["status"] for row in calls(store)] == (["retry"] * 3 + ["failed"]) * 2
    # exponential: 0.01 * 2**k with jitter in [0.5, 1.5]
    for k, wait in enumerate(harness.waits[:3]):
        assert 0.005 * 2 ** k <= wait <= 0.015 * 2 ** k


def test_a_hanging_server_times_out_within_the_total_budget(fake: FakeLLM, make, store: Store):
    fake.default = Answer(hang_s=5.0)
    config = config_for(fake, timeout_s=0.5, max_total_s=2.0, max_retries=10, backoff_s=0.05)
    harness = make(config, real_sleep=True)  # real waits: the budget is wall time

    start = time.monotonic()
    [result] = harness.paraphraser.paraphrase(["cool morning"], n=2)
    elapsed = time.monotonic() - start

    # 2 s of budget (+ the last row's write); unbounded it would be 11 attempts of 0.5 s or more.
    assert 0.5 <= elapsed < 3.5
    assert result.error is not None and "no complete answer" in result.error
    assert "max_total_s=2 s" in result.error
    rows = calls(store)
    assert 2 <= len(rows) <= 4 and rows[-1]["status"] == "failed"
    assert all(row["http_status"] is None for row in rows)


def test_a_rejected_key_is_not_retried_and_says_so(fake: FakeLLM, make, store: Store):
    fake.default = Answer(401, error_body("Incorrect API key provided"))
    [result] = make(config_for(fake)).paraphraser.paraphrase(["cool morning"], n=2)
    assert result.error is not None and "rejected the API key" in result.error
    assert "WORKBENCH_LLM_API_KEY" in result.error
    assert len(fake.chat_requests) == 1
    assert [(row["status"], row["http_status"]) for row in calls(store)] == [("failed", 401)]


def closed_port_url() -> str:
    """The URL of a port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_an_unreachable_endpoint_is_a_connection_error(make, store: Store):
    url = closed_port_url()
    config = LLMConfig(base_url=url, model=MODEL, max_retries=1,
                       backoff_s=0.01, timeout_s=2.0)
    [result] = make(config).paraphraser.paraphrase(["cool morning"], n=2)
    assert result.error is not None and f"could not connect to {url}" in result.error
    assert [row["status"] for row in calls(store)] == ["retry", "failed"]


# --- the key never shows ----------------------------------------------------------------------

def test_the_api_key_never_appears_in_errors_logs_or_the_database(
        fake: FakeLLM, make, store: Store, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)  # everything, the openai and HTTP libraries' logs included
    echo = f"Incorrect API key provided: {KEY} (Authorization: Bearer {KEY})"
    fake.script = [
        Answer(),                                                         # good
        Answer(401, error_body(echo)),                                    # echoes the key
        Answer(400, error_body(echo)),
        Answer(500, error_body(echo)), Answer(500, error_body(echo)), Answer(500, error_body(echo)),
        Answer(body=completion(f"your key is {KEY}")),                    # reply echoes it
    ]
    harness = make(config_for(fake, backoff_s=0.01, max_consecutive_failures=10))
    results = harness.paraphraser.paraphrase(
        ["cool morning", "a", "b", "c", "d"], n=2)
    fake.models = []  # force the chat fallback of the connection check, then echo there too
    fake.script = [Answer(403, error_body(echo))]
    check = llm.test_connection(harness.client.config, store)

    errors = [result.error for result in results if result.error] + [check.message]
    assert len(errors) == 5
    assert {row["status"] for row in calls(store)} >= {"ok", "failed", "retry", "unparseable"}
    for text in [*errors, caplog.text, repr(harness.client.config), str(harness.client.config),
                 json.dumps(harness.client.config.public_dict())]:
        assert KEY not in text
    # Every text column of every table, then the raw bytes of the database files.
    with store.session() as session:
        columns = session.query(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'VARCHAR'")
        for column in columns:
            found = session.value(
                f'SELECT count(*) FROM "{column["table_name"]}" '
                f'WHERE contains("{column["column_name"]}", ?)', [KEY])
            assert found == 0, column
    for path in store.path.parent.glob(store.path.name + "*"):
        assert KEY.encode() not in path.read_bytes(), path
    assert "[api key]" in errors[1]  # the 400's echo was scrubbed, not just lost


def test_config_repr_masks_the_key():
    config = LLMConfig(base_url="https://user:pw@example.com/v1", model="m", api_key=KEY)
    for text in (repr(config), str(config), f"{config}"):
        assert KEY not in text and "api_key=set" in text and "pw" not in text
    assert "api_key=unset" in repr(LLMConfig(base_url="http://localhost:8000/v1", model="m"))


@pytest.mark.parametrize("settings, complaint", [
    ({"base_url": "localhost:8000", "model": "m"}, "http:// or https://"),
    ({"base_url": "http://x/v1", "model": " "}, "model name is empty"),
    ({"base_url": "http://x/v1", "model": "m", "timeout_s": 0}, "timeout_s"),
    ({"base_url": "http://x/v1", "model": "m", "max_retries": -1}, "max_retries"),
    ({"base_url": "http://x/v1", "model": "m", "temperature": 3}, "temperature"),
    ({"base_url": "http://x/v1", "model": "m", "max_round_s": 0}, "max_round_s"),
    ({"base_url": "http://x/v1", "model": "m", "max_consecutive_failures": 0},
     "max_consecutive_failures"),
    ({"base_url": "http://x/v1", "model": "m", "api_key": KEY + "\n"}, "line break"),
    ({"base_url": "http://x/v1", "model": "m", "api_key": "sk-two words-here"}, "spaces"),
])
def test_bad_settings_are_clear_errors(settings: dict[str, Any], complaint: str):
    with pytest.raises(WorkbenchError, match=complaint) as raised:
        LLMConfig(**settings)
    assert KEY not in str(raised.value)


# --- the connection check ---------------------------------------------------------------------

def test_connection_check_ok_when_the_model_is_listed(fake: FakeLLM, store: Store):
    check = llm.test_connection(config_for(fake), store)
    assert check.ok and check.latency_ms is not None
    assert "test-model" in check.message and "available" in check.message
    assert fake.chat_requests == []  # the model list was enough
    [row] = calls(store)
    assert (row["purpose"], row["status"]) == ("test_connection", "ok")


def test_connection_check_falls_back_to_a_one_token_chat(fake: FakeLLM):
    fake.models = ["some-other-model"]
    check = llm.test_connection(config_for(fake))
    assert check.ok and "answered" in check.message
    [request] = fake.chat_requests
    assert request["max_tokens"] == 1


def test_connection_check_reports_an_unknown_model_with_what_is_offered(fake: FakeLLM):
    fake.models = ["llama-3", "qwen-2"]
    fake.script = [Answer(404, error_body("model 'test-model' not found"))]
    check = llm.test_connection(config_for(fake))
    assert not check.ok and check.latency_ms is None
    assert "HTTP 404" in check.message and "llama-3, qwen-2" in check.message


def test_connection_check_is_bounded_by_the_timeout(fake: FakeLLM, store: Store):
    fake.models = []
    fake.default = Answer(hang_s=5.0)
    start = time.monotonic()
    check = llm.test_connection(config_for(fake, timeout_s=0.5), store)
    assert time.monotonic() - start < 1.5
    assert not check.ok and "no complete answer" in check.message
    assert calls(store)[0]["status"] == "failed"


def test_connection_check_of_a_closed_port():
    check = llm.test_connection(LLMConfig(base_url=closed_port_url(), model=MODEL))
    assert not check.ok and "could not connect" in check.message


# --- configuration ----------------------------------------------------------------------------

def write_secrets(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".streamlit" / "secrets.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


NO_FILE = Path("/nonexistent/secrets.toml")


def test_config_from_the_environment():
    config = llm_config({"WORKBENCH_LLM_BASE_URL": "http://localhost:8000/v1",
                         "WORKBENCH_LLM_MODEL": "llama", "WORKBENCH_LLM_API_KEY": KEY}, NO_FILE)
    assert config is not None
    assert (config.base_url, config.model, config.api_key) == \
        ("http://localhost:8000/v1", "llama", KEY)
    assert (config.timeout_s, config.max_retries, config.max_total_s, config.temperature) == \
        (30.0, 4, 90.0, 0.7)


def test_config_falls_back_to_the_openai_variables():
    config = llm_config({"OPENAI_BASE_URL": "https://api.openai.com/v1", "OPENAI_API_KEY": KEY,
                         "WORKBENCH_LLM_MODEL": "gpt-4o-mini"}, NO_FILE)
    assert config is not None and config.api_key == KEY
    assert config.base_url == "https://api.openai.com/v1"


def test_config_from_secrets_toml_with_tuning(tmp_path: Path):
    path = write_secrets(tmp_path, f"""
[llm]
base_url = "http://localhost:11434/v1"
model = "qwen2.5"
api_key = "{KEY}"
timeout_s = 10
input_usd_per_1k_tokens = 0.00015
max_round_s = 600
max_consecutive_failures = 5
""")
    config = llm_config({}, path)
    assert config is not None
    assert (config.base_url, config.model, config.api_key, config.timeout_s) == \
        ("http://localhost:11434/v1", "qwen2.5", KEY, 10.0)
    assert config.input_usd_per_1k_tokens == 0.00015
    assert (config.max_round_s, config.max_consecutive_failures) == (600.0, 5)
    assert (LLMConfig(base_url="http://x/v1", model="m").max_round_s,
            LLMConfig(base_url="http://x/v1", model="m").max_consecutive_failures) == (3600.0, 3)


def test_environment_wins_over_secrets_and_secrets_over_openai_variables(tmp_path: Path):
    path = write_secrets(tmp_path, '[llm]\nbase_url = "http://file/v1"\nmodel = "file-model"\n'
                                   'api_key = ""\n')
    config = llm_config({"WORKBENCH_LLM_MODEL": "env-model", "OPENAI_API_KEY": KEY,
                         "OPENAI_BASE_URL": "https://api.openai.com/v1"}, path)
    assert config is not None
    assert (config.base_url, config.model) == ("http://file/v1", "env-model")
    # The file says "no key" for its endpoint: the general OpenAI key is not sent there.
    assert config.api_key == ""


def test_nothing_configured_is_none(tmp_path: Path):
    assert llm_config({}, NO_FILE) is None
    assert llm_config({"OPENAI_API_KEY": KEY}, NO_FILE) is None  # set for other tools
    assert llm_config({}, write_secrets(tmp_path, '[other]\nx = 1\n')) is None


@pytest.mark.parametrize("environ, complaint", [
    ({"WORKBENCH_LLM_API_KEY": KEY}, "API key is set but no endpoint"),
    ({"WORKBENCH_LLM_BASE_URL": "http://x/v1"}, "model is missing"),
    ({"WORKBENCH_LLM_MODEL": "m", "WORKBENCH_LLM_API_KEY": KEY}, "base URL is missing"),
])
def test_half_a_configuration_says_what_is_missing(environ: dict[str, str], complaint: str):
    with pytest.raises(WorkbenchError, match=complaint) as raised:
        llm_config(environ, NO_FILE)
    assert "WORKBENCH_LLM_BASE_URL" in str(raised.value) and KEY not in str(raised.value)


@pytest.mark.parametrize("text, complaint", [
    ("[llm\nbase_url = 1", "not valid TOML"),
    ('[llm]\nbase_url = "http://x/v1"\nmodle = "m"\n', "unknown keys.*modle"),
    ('[llm]\nbase_url = "http://x/v1"\nmodel = 3\n', "model .* must be a string"),
    ('[llm]\nbase_url = "http://x/v1"\nmodel = "m"\ntimeout_s = "10"\n', "must be a number"),
    ('llm = "http://x/v1"\n', "must be a table"),
])
def test_bad_secrets_files_are_clear_errors(tmp_path: Path, text: str, complaint: str):
    with pytest.raises(WorkbenchError, match=complaint):
        llm_config({}, write_secrets(tmp_path, text))


def test_importing_the_module_does_not_import_openai():
    # openai takes about a second to import; the CLI and app must not pay it unless they ask.
    code = "import sys, workbench.llm; print('openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_usage_summary_of_a_missing_database_is_empty(tmp_path: Path):
    summary = usage_summary(Store(tmp_path / "none.duckdb"))
    assert summary["calls"] == 0 and summary["by_status"] == {}
    assert not (tmp_path / "none.duckdb").exists()


# --- wall-clock bounds: servers that drip, stall or never finish -------------------------------

REQUEST_THREAD = "workbench-llm-request"  # the name of workbench.llm's per-attempt worker


class Misbehaving:
    """A raw TCP server on 127.0.0.1 that answers every request in one bad way (`mode`):

    drip_body     the headers at once, then a body of 10,000 promised bytes, one every 0.2 s
    no_end        the headers and the first byte of the body, then nothing (the socket stays open)
    silent        accepts and reads the request, never answers
    drip_headers  the status line, then header bytes one every 0.2 s, never ending the headers

    Each connection gives up after `give_up_s`, so that a client without a wall-clock deadline
    makes its test fail late instead of hanging it; `close()` stops the server, closes every
    socket and joins every thread.
    """

    def __init__(self, mode: str, give_up_s: float = 8.0) -> None:
        self.mode = mode
        self.give_up_s = give_up_s
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept)
        self.acceptor.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"

    def close(self) -> None:
        self.stop.set()
        self.acceptor.join()
        self.listener.close()
        for thread in self.threads:
            thread.join()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(connection,))
            self.threads.append(thread)
            thread.start()

    def _receive(self, connection: socket.socket) -> bytes | None:
        """More bytes of the request; None when the client is gone or the server stops."""
        while not self.stop.is_set():
            try:
                return connection.recv(65536) or None
            except TimeoutError:
                continue
        return None

    def _read_request(self, connection: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self._receive(connection)
            if chunk is None:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length:\s*(\d+)", head)
        while length is not None and len(body) < int(length.group(1)):
            chunk = self._receive(connection)
            if chunk is None:
                return False
            body += chunk
        return True

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(0.05)
            if not self._read_request(connection):
                return
            give_up = time.monotonic() + self.give_up_s
            try:
                if self.mode in ("drip_body", "no_end"):
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                       b"Content-Length: 10000\r\n\r\n{")
                elif self.mode == "drip_headers":
                    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while time.monotonic() < give_up and not self.stop.wait(0.2):
                    if self.mode == "drip_body":
                        connection.sendall(b" ")
                    elif self.mode == "drip_headers":
                        connection.sendall(b"a")
            except OSError:
                pass  # the client hung up, as a client with a deadline does


def request_threads_alive(wait_s: float = 3.0) -> list[threading.Thread]:
    """The LLM client's request threads still alive after waiting up to `wait_s` for them."""
    deadline = time.monotonic() + wait_s
    while True:
        alive = [t for t in threading.enumerate() if t.name == REQUEST_THREAD and t.is_alive()]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.02)


@pytest.fixture
def misbehaving() -> Iterator[Callable[[str], Misbehaving]]:
    servers: list[Misbehaving] = []

    def start(mode: str) -> Misbehaving:
        servers.append(Misbehaving(mode))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
    # An abandoned request thread ends once its connection is gone: none outlives its test.
    assert request_threads_alive() == []


MODES = ["drip_body", "no_end", "silent", "drip_headers"]


@pytest.mark.parametrize("mode", MODES)
def test_every_prompt_is_bounded_by_the_wall_clock(mode: str, misbehaving, make, store: Store):
    server = misbehaving(mode)
    config = LLMConfig(base_url=server.base_url, model=MODEL, api_key=KEY, timeout_s=0.5,
                       max_total_s=2.0, max_retries=10, backoff_s=0.05)
    harness = make(config, real_sleep=True)

    start = time.monotonic()
    [result] = harness.paraphraser.paraphrase(["cool morning"], n=2)
    elapsed = time.monotonic() - start

    # max_total_s=2 and a few short database writes. Socket timeouts alone never end a drip:
    # the call would last until the server gives up (8 s).
    assert 1.0 <= elapsed < 3.0
    assert result.error is not None and "no complete answer" in result.error
    assert "max_total_s=2 s is spent" in result.error
    rows = calls(store)
    assert len(rows) >= 2 and [row["status"] for row in rows][-1] == "failed"
    assert all(row["duration_ms"] < 800 for row in rows)  # each attempt cut at 0.5 s


@pytest.mark.parametrize("mode", MODES)
def test_the_connection_check_is_bounded_by_the_wall_clock(mode: str, misbehaving,
                                                          store: Store):
    server = misbehaving(mode)
    config = LLMConfig(base_url=server.base_url, model=MODEL, api_key=KEY, timeout_s=1.0)
    start = time.monotonic()
    check = llm.test_connection(config, store)
    assert time.monotonic() - start < 1.6
    assert not check.ok and "no complete answer" in check.message
    assert "within 1.0 s" in check.message
    assert [row["status"] for row in calls(store)] == ["failed"]


def test_a_batch_stops_when_the_round_budget_is_spent(fake: FakeLLM, make, store: Store):
    fake.default = Answer(hang_s=5.0)
    config = config_for(fake, timeout_s=0.3, max_total_s=0.3, max_retries=0, max_round_s=1.0,
                        max_consecutive_failures=100)
    harness = make(config, real_sleep=True)

    start = time.monotonic()
    results = harness.paraphraser.paraphrase([f"look {i}" for i in range(12)], n=2)
    elapsed = time.monotonic() - start

    # max_round_s=1 and the rows' writes; without a round budget, 12 prompts of 0.3 s = 3.6 s.
    assert elapsed < 2.0
    asked = len(fake.chat_requests)
    assert 2 <= asked <= 4
    assert all(r.error is not None and "no complete answer" in r.error for r in results[:asked])
    for result in results[asked:]:
        assert result.error is not None and result.error.startswith(
            "not sent: the round's LLM time budget max_round_s=1 s is spent")
    assert len(calls(store)) == asked  # a prompt never sent has no row


def test_a_batch_stops_after_failures_in_a_row_and_says_why(fake: FakeLLM, make, store: Store):
    make(config_for(fake)).paraphraser.paraphrase(["cached look"], n=2)  # in the cache now
    fire = Answer(500, error_body("the model is on fire"))
    fake.script = [fire, Answer(), fire]
    fake.default = fire
    config = config_for(fake, max_retries=0, max_consecutive_failures=2)

    results = make(config).paraphraser.paraphrase(["a", "b", "c", "d", "e", "cached look"], n=2)

    # a fails, b answers (the count starts again), c and d fail: two in a row, so e is not sent;
    # the cached reply costs nothing and is still used.
    assert len(fake.chat_requests) == 1 + 4
    assert [result.error is None for result in results] == [False, True, False, False, False,
                                                             True]
    assert results[5].cached and results[5].candidates
    stop = results[4].error
    assert stop is not None and stop.startswith(
        "not sent: the round stopped after 2 failed intents in a row "
        "(max_consecutive_failures=2)")
    assert "HTTP 500" in stop and "the model is on fire" in stop


# --- the key goes only where it belongs -------------------------------------------------------

LOCAL = "http://127.0.0.1:8000/v1"
ENV_BASE = "WORKBENCH_LLM_BASE_URL"


@pytest.mark.parametrize("environ, sent", [
    # The attacker's setup: a local endpoint, and an OpenAI key set for other tools.
    ({ENV_BASE: LOCAL, "OPENAI_API_KEY": KEY}, ""),
    ({ENV_BASE: LOCAL, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": "https://api.openai.com/v1"}, ""),
    # OpenAI's own host (or a regional one), over https only; not a look-alike.
    ({ENV_BASE: "https://api.openai.com/v1", "OPENAI_API_KEY": KEY}, KEY),
    ({ENV_BASE: "https://eu.api.openai.com/v1", "OPENAI_API_KEY": KEY}, KEY),
    ({ENV_BASE: "http://api.openai.com/v1", "OPENAI_API_KEY": KEY}, ""),
    ({ENV_BASE: "https://api.openai.com.example.net/v1", "OPENAI_API_KEY": KEY}, ""),
    ({ENV_BASE: "https://notopenai.com/v1", "OPENAI_API_KEY": KEY}, ""),
    # The OPENAI_BASE_URL the key was set beside (a proxy the user paired it with).
    ({"OPENAI_BASE_URL": LOCAL, "OPENAI_API_KEY": KEY}, KEY),
    ({ENV_BASE: LOCAL + "/", "OPENAI_BASE_URL": LOCAL, "OPENAI_API_KEY": KEY}, KEY),
    # The project's own key always wins.
    ({ENV_BASE: LOCAL, "WORKBENCH_LLM_API_KEY": "sk-project-0042", "OPENAI_API_KEY": KEY},
     "sk-project-0042"),
])
def test_the_openai_key_goes_only_to_openai_or_the_base_url_beside_it(
        environ: dict[str, str], sent: str):
    config = llm_config({**environ, "WORKBENCH_LLM_MODEL": MODEL}, NO_FILE)
    assert config is not None and config.api_key == sent


def test_a_local_endpoint_never_receives_the_openai_key_or_account(
        fake: FakeLLM, store: Store, monkeypatch: pytest.MonkeyPatch):
    # The openai package reads these from the environment by itself.
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-Distinctive123")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_Distinctive456")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", f"Authorization: Bearer {KEY}\nX-Api-Key: {KEY}")
    config = llm_config({ENV_BASE: fake.base_url, "WORKBENCH_LLM_MODEL": MODEL,
                         "OPENAI_API_KEY": KEY}, NO_FILE)
    assert config is not None and config.api_key == ""

    with LLMClient(config, store) as client:
        [result] = LLMParaphraser(client).paraphrase(["cool morning"], n=2)
    fake.models = []  # the check lists the models, then asks for one token
    check = llm.test_connection(config, store)

    assert result.error is None and check.ok
    assert fake.authorizations == ["Bearer no-key", "Bearer no-key"]
    assert len(fake.headers) == 3
    for headers in fake.headers:
        assert KEY not in json.dumps(headers) and "Distinctive" not in json.dumps(headers)


def test_a_reply_that_echoes_the_key_is_scrubbed_before_it_is_stored_or_shown(
        fake: FakeLLM, make, store: Store):
    fake.content = lambda user: json.dumps({"intents": [f"cool {KEY} tone", "icy dawn"]})
    [result] = make(config_for(fake)).paraphraser.paraphrase(["cool morning"], n=2)
    assert result.candidates == ("cool [api key] tone", "icy dawn")
    [cached] = store.query("SELECT reply FROM llm_cache")
    assert KEY not in cached["reply"] and "[api key]" in cached["reply"]

    # A reply cached before replies were scrubbed is scrubbed when it is read.
    messages = paraphrase_messages("golden hour", 2)
    with store.atomic() as session:
        session.execute("INSERT INTO llm_cache VALUES (?, ?, ?, now())",
                        [cache_key(config_for(fake), messages, 2), MODEL,
                         json.dumps({"intents": [f"gold {KEY}", "amber glow"]})])
    [old] = make(config_for(fake)).paraphraser.paraphrase(["golden hour"], n=2)
    assert old.cached and old.candidates == ("gold [api key]", "amber glow")


def test_urls_and_reprs_never_show_a_key():
    config = LLMConfig(base_url=f"https://gw.example/v1?api-key={KEY}", model="m", api_key=KEY)
    client = LLMClient(config, Store(Path("/nonexistent/w.duckdb")))
    for text in (llm.safe_url(config.base_url), repr(config), repr(client),
                 repr(LLMParaphraser(client)), json.dumps(config.public_dict())):
        assert KEY not in text
    assert llm.safe_url(config.base_url) == "https://gw.example/v1?[redacted]"
    client.close()


def test_a_reply_cached_meanwhile_by_another_writer_does_not_fail_this_one(
        fake: FakeLLM, make, store: Store):
    """Two rounds asking the same prompt at once: the other caches its reply between this one's
    read of the cache and its write; both succeed and one reply is cached."""
    other = make(config_for(fake))
    raced: list[bool] = []

    def content(user_message: str) -> str:
        if not raced:  # the first request: let the other writer finish the same prompt first
            raced.append(True)
            [result] = other.paraphraser.paraphrase(["cool morning"], n=2)
            assert result.error is None
        return GOOD

    fake.content = content
    [result] = make(config_for(fake)).paraphraser.paraphrase(["cool morning"], n=2)
    assert result.error is None and result.candidates
    assert len(store.query("SELECT * FROM llm_cache")) == 1
    assert [row["status"] for row in calls(store)] == ["ok", "ok"]
