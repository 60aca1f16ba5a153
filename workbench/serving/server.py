"""`workbench serve`'s HTTP app: trained students and the teacher behind the OpenAI Chat
Completions API with tools, every answer logged to the spool.

An app sends the user's intent as the user message and gets the answer as `tool_calls`
(`workbench.serving.models` is the wire format). `model` names a run (`student:<run id>`,
`student:latest`: the newest run when the server started) or `teacher`, which is proxied to the
configured OpenAI-compatible endpoint with the labelling prompt of `workbench.teacher` (its
reply parsed and safely repaired the same way), so an app switches from the teacher to a student
by changing the base URL and the model name. Without a model (or with `default`) the A/B split
picks the arm by a sticky hash of the session id (`workbench.serving.ab.assign`), else the
server's default model answers.

Concurrency, on purpose:
- One model call at a time per worker process: a student's `predict` runs under one lock, so
  the CPU threads of torch / ONNX Runtime serve one call at a time instead of thrashing; the
  HTTP side stays concurrent (the model call runs in the thread pool, off the event loop).
  Under load one call is one batch (`workbench.serving.batching`): the requests that arrived
  while the student was busy are answered together by its next `predict` (up to `max_batch`),
  which costs far less CPU per request than one call each; an idle student answers at once.
  Teacher calls wait on the network, not the CPU, so they run side by side, each bounded by
  `teacher_timeout_s` of wall clock (502 when the endpoint is down or answers badly, 504 when
  it is slow), and students keep serving meanwhile.
- N workers (`workbench serve --workers N`): uvicorn starts N processes from the app factory
  `app_from_environment`; each loads its own students (once, on first use, then cached for the
  life of the process) and writes its own spool segments. A worker exits when its supervisor
  does.
- The database is opened read-only, and only to list the runs and to load a student; it is
  closed again at once. The server never writes it: the spool is its only output.

Every request that parsed and reached a model is appended to the spool as a request record (the
log contract of SPEC 3 with its arm, session, latency and status) before its answer is sent, so
a client never holds an answer the spool lacks. Export feedback (`POST /v1/feedback`) is
appended as a feedback record. `workbench ingest SPOOL` brings both into the store.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from workbench.errors import WorkbenchError
from workbench.llm import LLMConfig, llm_config, safe_url, scrub
from workbench.serving.ab import assign
from workbench.serving.batching import DEFAULT_MAX_BATCH, Batcher
from workbench.serving.models import (
    MAX_BODY_BYTES,
    Completion,
    RequestProblem,
    chat_completion,
    error_body,
    model_card,
    parse_chat,
    parse_feedback,
    served_answer,
)
from workbench.serving.spool import Spool
from workbench.store import Store, runs
from workbench.store.serving import SIMULATION_HEADER, SIMULATION_PREFIX
from workbench.tools import TOOLS, Answer

if TYPE_CHECKING:
    from workbench.students import Student

log = logging.getLogger(__name__)

CONFIG_ENV = "WORKBENCH_SERVE_CONFIG"   # the ServeConfig as JSON, for every worker process
TEACHER = "teacher"
STUDENT_PREFIX = "student:"
LATEST = "student:latest"
RUNS_REFRESH_S = 5.0                    # the run list is read again at most this often
PARENT_CHECK_S = 0.5                    # how often a worker checks that its supervisor lives
DB_LOCK_TIMEOUT_S = 10.0                # a read-only open waits this long for a writer
DRAIN_BYTES = 16 * MAX_BODY_BYTES       # an oversized body is read (and dropped) up to this


@dataclass(frozen=True)
class ServeConfig:
    """What every worker needs to serve; `workbench serve` checks it before starting."""

    db: str                                   # the DuckDB file (read-only, runs only)
    spool: str                                # the spool folder
    default_model: str | None                 # `teacher` or `student:<run id>`; None: --ab
    latest_run: str | None = None             # what `student:latest` means for this server
    arms: dict[str, float] = field(default_factory=dict)   # A/B arms; empty: no split
    teacher_timeout_s: float = 20.0
    spool_max_bytes: int = 64 * 2**20
    spool_max_age_s: float = 300.0
    supervisor_pid: int | None = None         # with several workers: exit when it is gone
    threads: int | None = None                # torch / ONNX Runtime threads; None: theirs
    max_batch: int = DEFAULT_MAX_BATCH        # intents per student call under load; 1: none
    preload: bool = True                      # load the routed students before serving

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        return cls(**json.loads(text))


def new_request_id() -> str:
    return f"req_{secrets.token_hex(16)}"


def new_feedback_id() -> str:
    return f"fb_{secrets.token_hex(16)}"


def teacher_settings(timeout_s: float) -> LLMConfig | None:
    """The configured teacher endpoint with this server's wall-clock limit, or None."""
    config = llm_config()
    return None if config is None else replace(config, timeout_s=timeout_s,
                                               max_total_s=timeout_s)


def ask_teacher(config: LLMConfig, intent: str) -> Answer:
    """The teacher's answer to one intent: the labelling prompt, sent once (no retries: the
    caller's client retries), within `config.timeout_s` of wall clock; RequestProblem 502 when
    the endpoint is down, fails or answers with something that is not an answer, 504 when it
    is too slow. A reply is read exactly as `workbench label` reads it."""
    from workbench.llm import CallFailed, CallTimedOut, ask_once
    from workbench.teacher import (
        ReplyProblem,
        parse_teacher_reply,
        teacher_messages,
        teacher_tools,
    )

    try:
        text = ask_once(config, teacher_messages(intent), teacher_tools())
    except CallTimedOut:
        raise RequestProblem(504, "teacher_timeout",
                             f"the teacher ({safe_url(config.base_url)}) gave no complete answer "
                             f"within {config.timeout_s:g} s") from None
    except CallFailed as failure:
        raise RequestProblem(502, "teacher_unavailable",
                             f"the teacher failed: {failure}") from None
    if text is None:
        raise RequestProblem(502, "teacher_bad_reply",
                             "the teacher's reply is not a chat completion with tool calls")
    try:
        return parse_teacher_reply(text).answer
    except ReplyProblem as problem:
        raise RequestProblem(502, "teacher_bad_reply", scrub(
            f"the teacher's reply is not an answer: {problem}", config.api_key)) from None


def pin_threads(student: Student, threads: int) -> None:
    """Run this process's torch and the student's ONNX Runtime session on `threads` threads.

    Their defaults take one thread per core each; with several workers on few cores (or the
    HTTP side and clients on the same cores) those threads wait on each other: on a busy
    2-core machine one heads prediction took ~24 ms p50 with the defaults and ~5 ms with one
    thread (benchmarks/serve_benchmark.py says more)."""
    import torch

    from workbench.onnx_encoder import OnnxEncoder

    torch.set_num_threads(threads)
    onnx = getattr(student, "onnx", None)
    if isinstance(onnx, OnnxEncoder):
        student.onnx = onnx.with_threads(threads)   # type: ignore[attr-defined]


class Gateway:
    """One worker's models, locks and spool: resolves a model name, answers, logs."""

    def __init__(self, config: ServeConfig, spool: Spool, teacher: LLMConfig | None):
        self.config = config
        self.spool = spool
        self.teacher = teacher
        self.store = Store(Path(config.db), lock_timeout=DB_LOCK_TIMEOUT_S, read_only=True)
        self._students: dict[str, Student] = {}
        self._batchers: dict[str, Batcher[Answer]] = {}   # run id -> its student's batcher
        self._load_lock = threading.Lock()       # one student loads at a time
        self._predict_lock = threading.Lock()    # one student call (batch) at a time
        self._runs_lock = threading.Lock()
        self._runs: dict[str, dict] = {}         # run id -> its row
        self._runs_read_at = -float("inf")

    # -- the runs -----------------------------------------------------------------------------

    def run_rows(self, refresh: bool = False) -> dict[str, dict]:
        """Every run of the database by id (read again when `refresh` and not read for
        RUNS_REFRESH_S; a busy database keeps the list read last)."""
        with self._runs_lock:
            due = time.monotonic() - self._runs_read_at >= RUNS_REFRESH_S
            if due and (refresh or not self._runs):
                self._runs_read_at = time.monotonic()
                if self.store.exists:
                    try:
                        self._runs = {row["run_id"]: row for row in runs.list_runs(self.store)}
                    except WorkbenchError as error:
                        log.warning("could not read the runs: %s", error)
            return self._runs

    def _run_id(self, name: str) -> str | None:
        """The run a `student:...` name means, or None when there is none."""
        if name == LATEST:
            return self.config.latest_run
        run_id = name.removeprefix(STUDENT_PREFIX)
        if run_id in self._runs:     # known: no lock, so a slow re-read never holds it up
            return run_id
        return run_id if run_id in self.run_rows(refresh=True) else None

    def resolve(self, name: str) -> str:
        """The model that answers for `name`: `teacher` or `student:<run id>`; 404 otherwise."""
        if name == TEACHER:
            if self.teacher is None:
                raise RequestProblem(404, "model_not_found",
                                     "the model 'teacher' is not available: no teacher endpoint "
                                     "is configured for this server", param="model")
            return TEACHER
        if name.startswith(STUDENT_PREFIX):
            run_id = self._run_id(name)
            if run_id is not None:
                return STUDENT_PREFIX + run_id
        raise RequestProblem(404, "model_not_found",
                             f"the model {name!r} does not exist: name a run as "
                             "'student:<run id>' (GET /v1/models lists them), 'student:latest' "
                             "or 'teacher'", param="model")

    def student(self, run_id: str) -> Student:
        """The run's student, loaded on first use and kept for the life of the process."""
        found = self._students.get(run_id)
        if found is not None:
            return found
        with self._load_lock:
            if run_id not in self._students:
                _, student = runs.load_run(self.store, run_id)
                if self.config.threads is not None:
                    pin_threads(student, self.config.threads)
                self._students[run_id] = student
                log.info("loaded the student of run %s", run_id)
            return self._students[run_id]

    def batcher(self, run_id: str, student: Student) -> Batcher[Answer]:
        """The run's batcher; every student's calls share the worker's one predict lock."""
        found = self._batchers.get(run_id)
        if found is None:
            with self._load_lock:
                found = self._batchers.setdefault(run_id, Batcher(
                    self._locked(student), self.config.max_batch))
        return found

    def _locked(self, student: Student) -> Callable[[Sequence[str]], list[Answer]]:
        def predict(intents: Sequence[str]) -> list[Answer]:
            with self._predict_lock:
                return student.predict(list(intents))
        return predict

    # -- answering ----------------------------------------------------------------------------

    def route(self, completion: Completion, request_id: str) -> tuple[str, str | None]:
        """(model name asked, arm): the caller's model, else the A/B arm of the session (the
        request id when there is no session: not sticky), else the default model."""
        if completion.model is not None:
            return completion.model, None
        if self.config.default_model is None:
            arm = assign(completion.session_id or request_id, self.config.arms)
            return arm, arm
        return self.config.default_model, None

    def recorded_name(self, model: str) -> str:
        """A resolved model as the spool and the response name it: `teacher:<model name>` for
        the teacher, the student's `student:<run id>` as it is."""
        if model == TEACHER and self.teacher is not None:
            return f"{TEACHER}:{self.teacher.model}"
        return model

    def answer(self, model: str, intent: str) -> Answer:
        """The answer of a resolved model."""
        if model == TEACHER and self.teacher is not None:
            return ask_teacher(self.teacher, intent)
        run_id = model.removeprefix(STUDENT_PREFIX)
        try:
            student = self.student(run_id)
        except WorkbenchError as error:     # its folder is gone, the database is busy, ...
            raise RequestProblem(503, "model_unavailable",
                                 f"the student {model} could not be loaded: {error}") from None
        try:
            answer = self.batcher(run_id, student)(intent)
        except Exception as error:   # any failure of the model: answered with 500, and logged
            log.exception("the student of %s failed", model)
            raise RequestProblem(500, "student_failed",
                                 f"the student {model} failed on this intent "
                                 f"({type(error).__name__})") from None
        return answer

    def complete(self, completion: Completion, request_id: str, created_at: datetime,
                 started: float) -> dict[str, Any]:
        """The ChatCompletion for a parsed request, after its record is in the spool; a failed
        model call is recorded too (status `error:<code>`) and raised as its RequestProblem."""
        asked, arm = self.route(completion, request_id)
        model = self.resolve(asked)
        name = self.recorded_name(model)
        try:
            answer = self.answer(model, completion.intent)
        except RequestProblem as problem:
            self._record(request_id, created_at, completion, name, arm, None,
                         f"error:{problem.code}", started)
            raise
        served = served_answer(answer, completion.tools)
        self._record(request_id, created_at, completion, name, arm, served, "ok", started)
        return chat_completion(request_id, name, served)

    def _record(self, request_id: str, created_at: datetime, completion: Completion,
                model: str, arm: str | None, answer: Answer | None, status: str,
                started: float) -> None:
        record = {"kind": "request", "request_id": request_id,
                  "created_at": created_at.isoformat(), "intent": completion.intent,
                  "teacher": None if answer is None else answer.to_dict(),
                  "exports": dict.fromkeys(TOOLS, 0), "teacher_model": model, "arm": arm,
                  "session_id": completion.session_id,
                  "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                  "status": status}
        self._append(record)

    def _append(self, record: dict[str, Any]) -> None:
        try:
            self.spool.append(record)
        except (WorkbenchError, OSError) as error:
            log.error("could not write to the spool: %s", error)
            raise RequestProblem(503, "spool_unavailable",
                                 "the request could not be logged, so it was not answered; "
                                 "the server's spool folder is not writable") from None

    def feedback(self, body: Any) -> dict[str, Any]:
        """Export feedback validated and appended to the spool; what POST /v1/feedback says."""
        feedback = parse_feedback(body)
        feedback_id = new_feedback_id()
        self._append({"kind": "feedback", "feedback_id": feedback_id,
                      "request_id": feedback.request_id,
                      "created_at": datetime.now(UTC).isoformat(),
                      "exports": feedback.exports.model_dump()})
        return {"object": "feedback", "feedback_id": feedback_id,
                "request_id": feedback.request_id, "status": "accepted"}

    # -- what is offered ----------------------------------------------------------------------

    def models(self) -> dict[str, Any]:
        """GET /v1/models: the teacher (when configured), student:latest, then every run."""
        cards = [model_card(TEACHER)] if self.teacher is not None else []
        if self.config.latest_run is not None:
            cards.append(model_card(LATEST))
        rows = sorted(self.run_rows(refresh=True).values(), key=lambda row: row["started_at"])
        cards += [model_card(STUDENT_PREFIX + row["run_id"], int(row["started_at"].timestamp()))
                  for row in rows]
        return {"object": "list", "data": cards}

    def _routed(self) -> list[str]:
        """The models requests that name none go to: the default model, or the A/B arms."""
        default = [self.config.default_model] if self.config.default_model else []
        return [*default, *self.config.arms]

    def preload(self) -> None:
        """Load every student the server routes to without a name (the default model, the A/B
        arms) and answer one intent with it, so that the first caller does not wait seconds for
        the load and ONNX Runtime's first run. A student that cannot be loaded is logged and
        left to answer 503 when asked, as it would without preloading."""
        for name in self._routed():
            try:
                model = self.resolve(name)
                if model == TEACHER:
                    continue
                self.answer(model, "warm up")
                log.info("preloaded %s", model)
            except RequestProblem as problem:
                log.error("could not preload %s: %s", name, problem.message)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether every model the server routes to without a name resolves and the spool
        folder can be written; the problems when not."""
        problems = []
        for name in self._routed():
            try:
                self.resolve(name)
            except RequestProblem as problem:
                problems.append(problem.message)
        folder = Path(self.config.spool)
        if not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
            problems.append(f"the spool folder {folder} is not a writable folder")
        if problems:
            return False, {"status": "not ready", "problems": problems}
        return True, {"status": "ready", "default_model": self.config.default_model,
                      "arms": self.config.arms, "pid": os.getpid(),
                      "students_loaded": sorted(STUDENT_PREFIX + run for run in self._students)}


# ------------------------------------------------------------------------------ the app

def _refuse_posing_as_simulated(session_id: str | None, headers: Any) -> None:
    """A session id with the simulation prefix from a caller that is not `workbench
    simulate-traffic` (no SIMULATION_HEADER) is refused: its requests would be left out of the
    logs that train students and flagged as simulated on the Online page."""
    if (session_id is not None and session_id.startswith(SIMULATION_PREFIX)
            and headers.get(SIMULATION_HEADER) != "1"):
        raise RequestProblem(400, "reserved_session_id",
                             f"session ids starting with {SIMULATION_PREFIX!r} are reserved for "
                             "`workbench simulate-traffic`; use another session id",
                             param="user")


async def _read_json(request: Request) -> Any:
    """The decoded JSON body; 413 past MAX_BODY_BYTES, 400 if not JSON.

    Past the limit nothing more is kept, but up to DRAIN_BYTES are still read and dropped, so
    that a client still sending its body gets the 413 rather than a broken connection."""
    declared = request.headers.get("content-length", "")
    too_large = RequestProblem(413, "request_too_large",
                               f"the body is over the limit of {MAX_BODY_BYTES:,} bytes")
    if declared.isdigit() and int(declared) > DRAIN_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > DRAIN_BYTES:
            raise too_large
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
    if size > MAX_BODY_BYTES:
        raise too_large
    try:
        body = json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RequestProblem(400, "invalid_json", f"the body is not valid JSON ({error})") \
            from None
    except RecursionError:
        raise RequestProblem(400, "invalid_json", "the body is nested too deeply") from None
    try:    # JSON may escape a lone surrogate ("\\ud800"), which no UTF-8 log line can hold
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise RequestProblem(400, "invalid_request", "the body has text that is not valid "
                             "Unicode (a lone surrogate escape such as \\ud800)") from None
    return body


def _problem_response(problem: RequestProblem, request_id: str | None = None) -> JSONResponse:
    headers = {"x-request-id": request_id} if request_id else None
    return JSONResponse(problem.body(), status_code=problem.status, headers=headers)


def _watch_parent(parent: int, stop: threading.Event) -> None:
    """Stop this worker (SIGTERM to itself: a clean shutdown) once its supervisor is gone."""
    while not stop.wait(PARENT_CHECK_S):
        if os.getppid() != parent:
            log.warning("the supervisor %d is gone; this worker stops", parent)
            os.kill(os.getpid(), signal.SIGTERM)
            return


def create_app(config: ServeConfig) -> FastAPI:
    """The app of one worker process: its spool opens at startup and closes at shutdown."""
    state: dict[str, Gateway] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        spool = Spool(config.spool, max_bytes=config.spool_max_bytes,
                      max_age_s=config.spool_max_age_s)
        teacher = teacher_settings(config.teacher_timeout_s)
        if teacher is not None:
            # The openai package takes a second or two to import: at startup, not in the first
            # teacher request's time.
            importlib.import_module("openai")
        state["gateway"] = Gateway(config, spool, teacher)
        if config.preload:     # before the first request is accepted (readyz waits for it too)
            await run_in_threadpool(state["gateway"].preload)
        stop = threading.Event()
        if config.supervisor_pid is not None:
            threading.Thread(target=_watch_parent, args=(config.supervisor_pid, stop),
                             name="workbench-serve-parent", daemon=True).start()
        try:
            yield
        finally:
            stop.set()
            spool.close()

    app = FastAPI(title="workbench serve", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)

    @app.exception_handler(RequestProblem)
    async def on_problem(request: Request, problem: RequestProblem) -> JSONResponse:
        return _problem_response(problem)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(error_body(f"{request.method} {request.url.path}: {error.detail}",
                                       "invalid_request_error", code),
                            status_code=error.status_code)

    @app.exception_handler(Exception)
    async def on_bug(request: Request, error: Exception) -> JSONResponse:
        log.error("internal error on %s %s: %s: %s", request.method, request.url.path,
                  type(error).__name__, error)
        return JSONResponse(error_body("internal server error; the server's log has the details",
                                       "api_error", "internal_error"), status_code=500)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> JSONResponse:
        started = time.perf_counter()
        created_at = datetime.now(UTC)
        request_id = new_request_id()
        try:
            completion = parse_chat(await _read_json(request),
                                    request.headers.get("x-session-id"))
            _refuse_posing_as_simulated(completion.session_id, request.headers)
            body = await run_in_threadpool(state["gateway"].complete, completion, request_id,
                                           created_at, started)
        except RequestProblem as problem:
            return _problem_response(problem, request_id)
        return JSONResponse(body, headers={"x-request-id": request_id})

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> JSONResponse:
        body = await _read_json(request)
        accepted = await run_in_threadpool(state["gateway"].feedback, body)
        return JSONResponse(accepted, status_code=202)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return state["gateway"].models()

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "pid": os.getpid()}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        ready, body = state["gateway"].readiness()
        return JSONResponse(body, status_code=200 if ready else 503)

    return app


def app_from_environment() -> FastAPI:
    """The app factory uvicorn calls in each worker: the config `workbench serve` left in
    the WORKBENCH_SERVE_CONFIG environment variable."""
    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise WorkbenchError(f"{CONFIG_ENV} is not set: start the server with `workbench serve`")
    return create_app(ServeConfig.from_json(text))
