"""`workbench serve` as a user runs it: a subprocess on a free loopback port, called with the
real `openai` client (and with raw HTTP where the exact bytes matter), its spool read back.

The main server has a tiny retrieval run (the curated three-look world of conftest) and the
fake teacher of tests/fake_teacher.py, with an A/B split between them. Smaller servers that
serve only a teacher that is down show the bounded 502, `--workers 2`, and how SIGTERM and a
killed supervisor close the spool. Every server is stopped by its pid in teardown.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import curated_store
from tests.fake_teacher import MODEL as FAKE_MODEL
from tests.fake_teacher import FakeTeacher, fake_teacher, good_calls, intent_of
from workbench import processes
from workbench.processes import child_pids, pid_alive
from workbench.tools import ADJUST_KEYS, TOOLS

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 90.0          # a busy 2-core machine imports torch slowly
STOP_TIMEOUT_S = 20.0
# After a clean shutdown on SIGTERM, uvicorn's single-process server raises the signal again
# so the parent sees what stopped it (exit -15); its multi-worker supervisor exits with 0.
CLEAN_STOP = (0, -signal.SIGTERM)
REQUEST_ID = re.compile(r"^req_[0-9a-f]{32}$")
FEEDBACK_ID = re.compile(r"^fb_[0-9a-f]{32}$")
CALL_ID = re.compile(r"^call_[0-9a-f]{32}$")
DOWN, SLOW = "the teacher is down for this one", "the teacher is slow for this one"


# ------------------------------------------------------------------------------ servers

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_environment(teacher_url: str | None) -> dict[str, str]:
    """This environment without any LLM settings of the machine, plus the teacher given."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("WORKBENCH_LLM_", "OPENAI_"))}
    environment.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT),
                       OMP_NUM_THREADS="1")
    if teacher_url is not None:
        environment.update(WORKBENCH_LLM_BASE_URL=teacher_url, WORKBENCH_LLM_MODEL=FAKE_MODEL)
    return environment


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    spool: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it has not gone within STOP_TIMEOUT_S; its exit code."""
        return processes.stop(self.process, STOP_TIMEOUT_S)

    def records(self) -> list[dict[str, Any]]:
        """Every record of the spool, open segments included (each line is whole: it was
        written before its answer was sent)."""
        lines = [line for path in sorted(self.spool.glob("spool-*"))
                 for line in path.read_text(encoding="utf-8").splitlines()]
        return [json.loads(line) for line in lines]

    def record(self, request_id: str) -> dict[str, Any]:
        found = [r for r in self.records() if r.get("request_id") == request_id
                 and r["kind"] == "request"]
        assert len(found) == 1, (request_id, found)
        return found[0]


def start_server(folder: Path, args: list[str], teacher_url: str | None) -> Server:
    """`workbench serve ARGS` on a free port, once /healthz answers (bounded wait)."""
    port = free_port()
    spool = folder / f"spool-{port}"
    log = folder / f"serve-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "serve", "--port", str(port),
             "--spool", str(spool), *args],
            cwd=folder, env=server_environment(teacher_url), stdout=output,
            stderr=subprocess.STDOUT)
    server = Server(process, port, spool, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the server exited with {process.returncode}:\n"
                                     + log.read_text(errors="replace"))
            try:
                with urllib.request.urlopen(server.url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return server
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server did not answer /healthz in time:\n"
                                     + log.read_text(errors="replace"))
            time.sleep(0.2)
    except BaseException:
        server.stop()
        raise


def http(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], Any]:
    """(status, headers, decoded JSON body) of one raw request."""
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def post_json(url: str, value: Any, headers: dict[str, str] | None = None
              ) -> tuple[int, dict[str, Any], Any]:
    return http("POST", url, json.dumps(value).encode(), headers)


def wait_gone(pids: list[int], timeout_s: float = STOP_TIMEOUT_S) -> list[int]:
    """The pids still alive after waiting up to `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while any(map(pid_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if pid_alive(pid)]


def arm_of(session_id: str) -> str:
    """The contract of the split, worked out here: the first 8 bytes of sha256(session id) as
    a fraction of 2**64; below 0.5 (the first arm's share of 50:50) is the first arm."""
    point = int.from_bytes(hashlib.sha256(session_id.encode()).digest()[:8], "big") / 2**64
    return "first" if point < 0.5 else "second"


def full_adjust(**sliders: int) -> dict[str, int]:
    """An adjust call's arguments as served: all 14 sliders in SPEC order, 0 unless given."""
    return {key: sliders.get(key, 0) for key in ADJUST_KEYS}


def calls_of(completion: Any) -> dict[str, Any]:
    """tool name -> decoded arguments of a ChatCompletion from the openai client."""
    calls = completion.choices[0].message.tool_calls or []
    return {call.function.name: json.loads(call.function.arguments) for call in calls}


# ------------------------------------------------------------------------------ the main server

@dataclass
class World:
    server: Server
    teacher: FakeTeacher
    run_id: str
    client: Any          # openai.OpenAI with no retries
    ready_at_start: dict[str, Any]   # /readyz before any request


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import openai

    from pipelines import train

    folder = tmp_path_factory.mktemp("serve")
    store = curated_store(folder)
    run = train.run(train.TrainConfig(student="retrieval",
                                      student_config={"runtime": "torch", "device": "cpu"}),
                    store)
    record_ghost_run(store, folder / "runs" / GHOST)
    with fake_teacher() as teacher:
        teacher.modes.update({DOWN: "down", SLOW: "slow"})
        server = start_server(folder, ["--db", str(store.path), "--teacher-timeout", "1",
                                       "--ab", f"teacher=50,student:{run.run_id}=50"],
                              teacher.base_url)
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0,
                               timeout=120)
        try:
            ready = http("GET", server.url + "/readyz")[2]
            yield World(server, teacher, run.run_id, client, ready)
        finally:
            client.close()
            server.stop()


slow = pytest.mark.slow   # the main server's world trains a (tiny) retrieval run
GHOST = "20200101-000000-heads-gone"      # a run whose model folder has been deleted


def record_ghost_run(store: Any, folder: Path) -> None:
    """A run row, older than the real one, whose model folder does not exist."""
    from datetime import UTC, datetime

    from workbench.store import runs

    when = datetime(2020, 1, 1, tzinfo=UTC)
    with store.atomic() as session:
        runs.record_run(session, run_id=GHOST, student="heads", config="{}", version_id=1,
                        n_train=1, started_at=when, finished_at=when, duration_s=1.0,
                        device="cpu", size_bytes=1, artifact_path=str(folder), note="")


def ask(world: World, intent: str, **options: Any) -> Any:
    """A chat completion from the server through the openai client, with its raw response."""
    return world.client.chat.completions.with_raw_response.create(
        messages=[{"role": "system", "content": "You grade videos."},
                  {"role": "user", "content": intent}], **options)


@slow
def test_a_student_answers_with_tool_calls_through_the_openai_client(world: World) -> None:
    from workbench.tool_schema import tool_definitions

    raw = ask(world, "warm golden sunset", model=f"student:{world.run_id}",
              tools=tool_definitions(), user="ana")
    completion = raw.parse()
    message = completion.choices[0].message
    # The look of "warm golden sunset" in the tiny world: temperature 40, warm_Golden at 50,
    # no selective_adjust (every phrasing of a look has that answer).
    assert calls_of(completion) == {"adjust": full_adjust(temperature=40),
                                    "filter": {"name": "warm_Golden", "intensity": 50}}
    assert [call.function.name for call in message.tool_calls] == ["adjust", "filter"]
    assert all(CALL_ID.match(call.id) and call.type == "function"
               for call in message.tool_calls)
    assert message.content is None
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.model == f"student:{world.run_id}"
    assert REQUEST_ID.match(completion.id) and raw.headers["x-request-id"] == completion.id
    assert completion.usage.total_tokens == 0

    record = world.server.record(completion.id)
    assert record["intent"] == "warm golden sunset"
    assert record["teacher"] == {"adjust": full_adjust(temperature=40), "selective_adjust": None,
                                 "filter": {"name": "warm_Golden", "intensity": 50}}
    assert record["exports"] == {"adjust": 0, "selective_adjust": 0, "filter": 0}
    assert (record["teacher_model"], record["arm"], record["session_id"], record["status"]) \
        == (f"student:{world.run_id}", None, "ana", "ok")
    assert record["latency_ms"] > 0


@slow
def test_student_latest_the_tools_offered_and_the_session_header(world: World) -> None:
    completion = ask(world, "cold blue winter", model="student:latest",
                     tools=[{"type": "function", "function": {"name": "filter"}}],
                     extra_headers={"x-session-id": "from-the-header"}).parse()
    assert completion.model == f"student:{world.run_id}"
    # Only the tool offered is called; the spool keeps the answer as served.
    assert calls_of(completion) == {"filter": {"name": "cool_Arctic", "intensity": 60}}
    record = world.server.record(completion.id)
    assert record["teacher"] == {"adjust": None, "selective_adjust": None,
                                 "filter": {"name": "cool_Arctic", "intensity": 60}}
    assert record["session_id"] == "from-the-header"


@slow
def test_the_teacher_is_proxied_with_the_labelling_prompt(world: World) -> None:
    intent = "misty forest morning"
    asked_before = world.teacher.calls
    completion = ask(world, intent, model="teacher").parse()
    expected = good_calls(intent)       # the fake's answer for this intent
    assert calls_of(completion) == {"adjust": full_adjust(**expected["adjust"]),
                                    **({"filter": expected["filter"]} if "filter" in expected
                                       else {})}
    assert completion.model == f"teacher:{FAKE_MODEL}"
    sent = world.teacher.requests[asked_before]
    assert intent_of(sent) == intent
    assert [tool["function"]["name"] for tool in sent["tools"]] == list(TOOLS)
    assert world.server.record(completion.id)["teacher_model"] == f"teacher:{FAKE_MODEL}"


@slow
def test_a_teacher_down_or_slow_fails_in_bounded_time_and_students_keep_serving(
        world: World) -> None:
    import openai

    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as down:
        ask(world, DOWN, model="teacher")
    assert down.value.status_code == 502 and time.monotonic() - started < 5
    assert down.value.body["code"] == "teacher_unavailable"      # the client unwraps "error"
    assert "HTTP 503" in down.value.body["message"]

    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as slow_:
        ask(world, SLOW, model="teacher")
    elapsed = time.monotonic() - started
    assert slow_.value.status_code == 504 and 0.9 <= elapsed < 5     # --teacher-timeout 1
    assert slow_.value.body["code"] == "teacher_timeout"

    completion = ask(world, "black and white noir", model=f"student:{world.run_id}").parse()
    assert calls_of(completion)["filter"] == {"name": "mono_Noir", "intensity": 80}

    failed = {r["intent"]: r for r in world.server.records() if r["intent"] in (DOWN, SLOW)}
    assert {intent: (r["status"], r["teacher"], r["teacher_model"])
            for intent, r in failed.items()} == {
        DOWN: ("error:teacher_unavailable", None, f"teacher:{FAKE_MODEL}"),
        SLOW: ("error:teacher_timeout", None, f"teacher:{FAKE_MODEL}")}
    assert down.value.response.headers["x-request-id"] == failed[DOWN]["request_id"]


@slow
def test_a_run_whose_model_is_gone_gets_503_and_is_logged(world: World) -> None:
    import openai

    with pytest.raises(openai.APIStatusError) as gone:
        ask(world, "warm golden sunset", model=f"student:{GHOST}")
    assert (gone.value.status_code, gone.value.body["code"]) == (503, "model_unavailable")
    assert "is missing" in gone.value.body["message"]
    record = world.server.record(gone.value.response.headers["x-request-id"])
    assert (record["status"], record["teacher_model"]) == ("error:model_unavailable",
                                                           f"student:{GHOST}")


@slow
def test_the_ab_split_is_sticky_per_session_and_an_explicit_model_wins(world: World) -> None:
    arms = {"first": "teacher", "second": f"student:{world.run_id}"}
    sessions = [f"user-{i}" for i in range(8)]
    assert {arm_of(s) for s in sessions} == {"first", "second"}    # both arms are exercised
    seen: dict[str, set[tuple[str, str]]] = {}
    for _ in range(3):
        for session in sessions:
            completion = ask(world, "warm golden sunset", model="default", user=session).parse()
            record = world.server.record(completion.id)
            seen.setdefault(session, set()).add((record["arm"], completion.model))
    expected_model = {"teacher": f"teacher:{FAKE_MODEL}", arms["second"]: arms["second"]}
    assert seen == {s: {(arms[arm_of(s)], expected_model[arms[arm_of(s)]])} for s in sessions}

    explicit = ask(world, "warm golden sunset", model=f"student:{world.run_id}",
                   user=sessions[0]).parse()
    assert world.server.record(explicit.id)["arm"] is None


@slow
def test_models_health_and_readiness(world: World) -> None:
    models = [model.id for model in world.client.models.list().data]
    assert models == ["teacher", "student:latest", f"student:{GHOST}",
                      f"student:{world.run_id}"]
    assert http("GET", world.server.url + "/healthz")[0] == 200
    status, _, body = http("GET", world.server.url + "/readyz")
    assert status == 200 and body["status"] == "ready"
    # The A/B arm's student was loaded (and warmed up) before the first request: --preload.
    assert world.ready_at_start["students_loaded"] == [f"student:{world.run_id}"]
    assert not any(r.get("intent") == "warm up" for r in world.server.records())


@slow
def test_feedback_is_accepted_and_spooled(world: World) -> None:
    completion = ask(world, "warm golden sunset", model="student:latest").parse()
    status, _, body = post_json(world.server.url + "/v1/feedback", {
        "request_id": completion.id, "exports": {"adjust": 2, "filter": 1}})
    assert status == 202 and FEEDBACK_ID.match(body["feedback_id"])
    assert body["request_id"] == completion.id
    feedback = [r for r in world.server.records() if r["kind"] == "feedback"
                and r["feedback_id"] == body["feedback_id"]]
    assert len(feedback) == 1
    assert feedback[0]["request_id"] == completion.id
    assert feedback[0]["exports"] == {"adjust": 2, "selective_adjust": 0, "filter": 1}
    assert feedback[0]["created_at"].endswith("+00:00")


@slow
@pytest.mark.parametrize(("body", "param"), [
    ({"request_id": "nope", "exports": {"adjust": 1}}, "request_id"),
    ({"request_id": "req_" + "0" * 32, "exports": {"adjust": -1}}, "exports.adjust"),
    ({"request_id": "req_" + "0" * 32, "exports": {"adjust": True}}, "exports.adjust"),
    ({"request_id": "req_" + "0" * 32, "exports": {"vignette": 1}}, "exports.vignette"),
    # Past the log contract's bound (1e9), which ingest would quarantine: refused now.
    ({"request_id": "req_" + "0" * 32, "exports": {"filter": 10**30}}, "exports.filter"),
    ({"request_id": "req_" + "0" * 32}, "exports"),
])
def test_bad_feedback_is_refused_with_the_field_named(world: World, body: dict,
                                                      param: str) -> None:
    before = len(world.server.records())
    status, _, answer = post_json(world.server.url + "/v1/feedback", body)
    assert status == 400
    assert answer["error"]["param"] == param and answer["error"]["type"] == \
        "invalid_request_error"
    assert len(world.server.records()) == before


@slow
@pytest.mark.parametrize(("body", "status", "code"), [
    ({"model": "student:latest", "messages": [{"role": "system", "content": "hi"}]}, 400,
     "no_user_message"),
    ({"model": "student:latest", "messages": [{"role": "user", "content": "   "}]}, 400,
     "no_user_message"),
    ({"model": "student:latest", "messages": [{"role": "user", "content": "x" * 501}]}, 400,
     "message_too_long"),
    ({"model": "student:latest", "messages": []}, 400, "invalid_request"),
    ({"model": "student:latest", "messages": [{"role": "user", "content": "warm"}],
      "user": "s" * 257}, 400, "invalid_request"),
    # Text the log contract refuses (ingest would quarantine it): refused before any model.
    ({"model": "student:latest", "messages": [{"role": "user", "content": "warm \ud800 up"}]},
     400, "invalid_request"),
    ({"model": "student:latest", "messages": [{"role": "user", "content": "warm \x00 up"}]},
     400, "invalid_request"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": "warm"}]}, 404,
     "model_not_found"),
    ({"model": "student:no-such-run", "messages": [{"role": "user", "content": "warm"}]}, 404,
     "model_not_found"),
    ({"model": "student:latest", "messages": [{"role": "user", "content": "warm"}],
      "tools": [{"type": "function", "function": {"name": "vignette"}}]}, 400,
     "unsupported_tool"),
    ({"model": "student:latest", "messages": [{"role": "user", "content": "warm"}],
      "stream": True}, 400, "stream_not_supported"),
    ({"model": "student:latest", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x"}}]}]}, 400, "invalid_request"),
    (["not", "an", "object"], 400, "invalid_request"),
])
def test_malformed_requests_get_openai_error_bodies(world: World, body: Any, status: int,
                                                    code: str) -> None:
    before = len(world.server.records())
    got, headers, answer = post_json(world.server.url + "/v1/chat/completions", body)
    assert (got, answer["error"]["code"]) == (status, code)
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert answer["error"]["type"] == "invalid_request_error"
    assert "Traceback" not in answer["error"]["message"]
    assert REQUEST_ID.match(headers["x-request-id"])
    assert len(world.server.records()) == before       # nothing reached a model: not logged


@slow
def test_invalid_json_an_oversized_body_and_unknown_routes(world: World) -> None:
    url = world.server.url
    status, _, body = http("POST", url + "/v1/chat/completions", b'{"messages": [')
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    deep = b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"     # 200 KB, nested
    status, _, body = http("POST", url + "/v1/chat/completions", deep)
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    huge = json.dumps({"model": "student:latest", "messages": [
        {"role": "user", "content": "x" * 2**20}]}).encode()
    status, _, body = http("POST", url + "/v1/chat/completions", huge)
    assert (status, body["error"]["code"]) == (413, "request_too_large")
    status, _, body = http("GET", url + "/v1/embeddings")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, _, body = http("GET", url + "/v1/chat/completions")
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")


@slow
def test_the_openai_client_sees_4xx_as_its_own_errors(world: World) -> None:
    import openai

    with pytest.raises(openai.NotFoundError) as missing:
        ask(world, "warm", model="gpt-4o")
    assert missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as streamed:
        world.client.chat.completions.create(
            model="student:latest", messages=[{"role": "user", "content": "warm"}], stream=True)
    assert streamed.value.body["code"] == "stream_not_supported"


@slow
def test_only_simulate_traffic_may_use_simulated_session_ids(world: World) -> None:
    import openai

    for where in ({"user": "sim-1-0001"}, {"extra_headers": {"x-session-id": "sim-x"}}):
        with pytest.raises(openai.BadRequestError) as posing:
            ask(world, "warm golden sunset", model=f"student:{world.run_id}", **where)
        assert (posing.value.body["code"], posing.value.body["param"]) == (
            "reserved_session_id", "user")
    completion = ask(world, "warm golden sunset", model=f"student:{world.run_id}",
                     user="sim-1-0001",
                     extra_headers={"x-workbench-simulation": "1"}).parse()
    assert world.server.record(completion.id)["session_id"] == "sim-1-0001"
    similar = ask(world, "warm golden sunset", model=f"student:{world.run_id}",
                  user="simon").parse()                      # only the prefix is reserved
    assert world.server.record(similar.id)["session_id"] == "simon"


# ------------------------------------------------------------------------------ workers, signals

def test_workers_answer_502_at_once_when_the_teacher_is_down_and_sigterm_closes_the_spool(
        tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"      # nothing listens there
    server = start_server(tmp_path, ["--db", str(tmp_path / "none.duckdb"), "--model",
                                     "teacher", "--workers", "2"], closed)
    try:
        workers = child_pids(server.process.pid)
        for n in range(4):
            started = time.monotonic()
            status, headers, body = post_json(server.url + "/v1/chat/completions", {
                "model": "teacher", "messages": [{"role": "user", "content": f"warm {n}"}]},
                headers={"x-session-id": "s"})
            assert (status, body["error"]["code"]) == (502, "teacher_unavailable")
            assert time.monotonic() - started < 5
            record = server.record(headers["x-request-id"])
            assert (record["status"], record["teacher"], record["teacher_model"]) == \
                ("error:teacher_unavailable", None, f"teacher:{FAKE_MODEL}")
        assert http("GET", server.url + "/v1/models")[2]["data"] == [
            {"id": "teacher", "object": "model", "created": 0, "owned_by": "workbench"}]
        status, _, body = post_json(server.url + "/v1/chat/completions", {
            "model": "student:latest", "messages": [{"role": "user", "content": "warm"}]})
        assert (status, body["error"]["code"]) == (404, "model_not_found")
        assert any(path.name.endswith(".open") for path in server.spool.iterdir())
    finally:
        code = server.stop()
    assert code in CLEAN_STOP, server.log.read_text(errors="replace")
    assert wait_gone(workers) == []
    segments = sorted(path.name for path in server.spool.iterdir())
    assert segments and not any(name.endswith(".open") for name in segments)
    assert len(server.records()) == 4


def test_a_worker_stops_and_closes_its_segment_when_its_supervisor_is_killed(
        tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    server = start_server(tmp_path, ["--db", str(tmp_path / "none.duckdb"), "--model",
                                     "teacher", "--workers", "2"], closed)
    try:
        workers = child_pids(server.process.pid)
        for n in range(4):
            post_json(server.url + "/v1/chat/completions", {
                "model": "teacher", "messages": [{"role": "user", "content": f"cool {n}"}]})
        server.process.kill()
        server.process.wait(timeout=STOP_TIMEOUT_S)
        assert wait_gone(workers) == []
    finally:
        server.stop()
    assert not any(path.name.endswith(".open") for path in server.spool.iterdir())
    assert len(server.records()) == 4


def test_a_single_worker_closes_its_segment_on_sigterm(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    server = start_server(tmp_path, ["--db", str(tmp_path / "none.duckdb"), "--model",
                                     "teacher"], closed)
    try:
        status, _, _ = post_json(server.url + "/v1/chat/completions", {
            "messages": [{"role": "user", "content": "warm"}]})     # no model: the default
        assert status == 502
        assert [path.suffix for path in server.spool.iterdir()] == [".open"]
    finally:
        code = server.stop()
    assert code in CLEAN_STOP
    assert "Application shutdown complete" in server.log.read_text(errors="replace")
    assert [path.suffix for path in server.spool.iterdir()] == [".jsonl"]
    assert [r["status"] for r in server.records()] == ["error:teacher_unavailable"]


# ------------------------------------------------------------------------------ the command

@pytest.fixture
def no_llm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No teacher configured: no LLM variables, and a folder without .streamlit/secrets.toml."""
    for name in list(os.environ):
        if name.startswith(("WORKBENCH_LLM_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "student:latest"], "no database at"),
    (["--model", "gpt-4o"], "unknown model 'gpt-4o'"),
    (["--model", "teacher"], "the model 'teacher' needs a teacher endpoint"),
    (["--ab", "teacher=50,student:latest=50"], "needs a teacher endpoint"),
    (["--ab", "teacher=0"], "must be a positive number"),
])
def test_serve_refuses_what_it_cannot_serve_in_one_line(cli: Any, no_llm: None, tmp_path: Path,
                                                        args: list[str], message: str) -> None:
    code, out, err = cli("serve", "--db", tmp_path / "none.duckdb", "--port", free_port(), *args)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert out == ""


def test_serve_refuses_a_port_in_use_and_a_spool_that_is_a_file(
        cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_llm: None) -> None:
    monkeypatch.setenv("WORKBENCH_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("WORKBENCH_LLM_MODEL", "m")
    base = ["serve", "--db", tmp_path / "none.duckdb", "--model", "teacher"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, _, err = cli(*base, "--port", taken.getsockname()[1])
    assert code == 2 and "cannot listen on 127.0.0.1" in err and "choose another --port" in err
    (tmp_path / "a-file").write_text("x")
    code, _, err = cli(*base, "--port", free_port(), "--spool", tmp_path / "a-file")
    assert code == 2 and "is not a folder" in err


def test_serve_has_help(cli: Any) -> None:
    with pytest.raises(SystemExit) as done:
        cli("serve", "--help")
    assert done.value.code == 0


def _nodelay_of_accepted(listener: socket.socket) -> int:
    """TCP_NODELAY on the server side of a connection accepted by asyncio on `listener`."""
    import asyncio

    async def accept_one() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                conn = transport.get_extra_info("socket")
                accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(accepted, 10)
        finally:
            writer.close()
            server.close()

    return asyncio.run(accept_one())


def test_the_listening_socket_turns_nagle_off_on_every_connection() -> None:
    from workbench.cli.serve import _listen

    # The socket uvicorn 0.54 binds for several workers (protocol 0): asyncio leaves Nagle on,
    # which costs a keep-alive client ~40 ms per request (uvicorn issue #3149).
    uvicorn_like = socket.socket(socket.AF_INET)
    uvicorn_like.bind(("127.0.0.1", 0))
    assert _nodelay_of_accepted(uvicorn_like) == 0
    listener = _listen("127.0.0.1", 0)
    assert listener.proto == socket.IPPROTO_TCP and listener.get_inheritable()
    assert _nodelay_of_accepted(listener) != 0
