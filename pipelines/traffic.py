"""Simulated demo traffic, labelled as simulation: simulated users send demo intents through a
running `workbench serve` with the official `openai` client and export some answers, so the
online A/B test (`workbench ab`, the app's Online page) has something to show offline.

Nothing here is a real user. Each simulated session (its id starts with "sim-") sends 1 to 6
intents drawn from the test split of a dataset version, weighted by how often each intent was
requested in the logs, with `model="default"` (so the server's A/B split picks the arm) and the
session id as the `user`. After each answer the simulated user exports with a probability that
falls with the distance between the answer and the demo world's *intended look* for the intent:
the intent's ground truth in the dataset version. On the demo corpus that is, for most intents,
the synthetic generator's modal teacher answer (curation picks it because its exports are
highest). The probability is `export_probability`:

    p = 0.15 + 0.7 * max(0, mean over the tools the ground truth uses of the paper's per-tool
                            similarity of the served answer, 0 where the answer lacks the tool)

so an answer that matches the look is exported 85% of the time and one that misses it entirely
(or goes the opposite way) 15%. An exporting user keeps each tool the answer used and posts
`/v1/feedback` with 1 for each of them (0 for the others); an answer that uses no tool leaves
nothing to keep, so it is never exported.

Seeded: the sessions, their intents and the users' random draws are fixed by `seed` before any
request, so the same seed sends the same traffic whatever the concurrency (the same simulated
users, with the same session ids, hence the same arms), and what each user decides depends only
on the answer the server gave. Bounded: every HTTP call has a timeout, and a server that stops
answering ends the run with an error that says how far it got.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.metrics import score_intent
from workbench.progress import Progress
from workbench.store import Store
from workbench.store.serving import SIMULATION_HEADER, SIMULATION_PREFIX
from workbench.store.versions import Split, resolve_version, version_rows
from workbench.tools import TOOLS, Answer, ToolValidationError, answer_from_json, parse_answer

if TYPE_CHECKING:
    import openai

BASE_PROBABILITY = 0.15          # the chance a user exports an answer that misses the look
SPAN_PROBABILITY = 0.70          # added, times the similarity, for one that matches it
MIN_REQUESTS, MAX_REQUESTS = 1, 6   # per simulated session
DEFAULT_URL = "http://127.0.0.1:8000/v1"
DEFAULT_SESSIONS = 200
DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT_S = 30.0         # per HTTP call: above serve's default teacher timeout (20 s)
DEFAULT_MODEL = "default"        # the server's A/B split (else its default model) decides
API_KEY = "simulation"           # the workbench server needs none; the openai client wants one
STAGE = "simulated sessions"


@dataclass(frozen=True)
class TrafficConfig:
    url: str = DEFAULT_URL
    sessions: int = DEFAULT_SESSIONS
    seed: int = 0
    concurrency: int = DEFAULT_CONCURRENCY
    timeout_s: float = DEFAULT_TIMEOUT_S
    version: int | None = None       # the dataset version whose test split is sent (None: current)


@dataclass(frozen=True)
class Look:
    """A test intent as the simulation uses it: its text, how often the logs asked for it, and
    the intended look (its ground truth)."""

    intent: str
    request_count: int
    truth: Answer


@dataclass(frozen=True)
class PlannedRequest:
    look: Look
    draw: float                      # uniform in [0, 1): the user exports when draw < p


@dataclass(frozen=True)
class PlannedSession:
    session_id: str
    requests: tuple[PlannedRequest, ...]


@dataclass
class ModelTally:
    """What one model (as the server named it in its answers) was given and how it fared."""

    answered: int = 0
    exported: int = 0
    share: float | None = None       # exported / answered


@dataclass
class TrafficResult:
    simulated: bool                  # always True: this traffic is a simulation
    url: str
    version_id: int
    seed: int
    sessions: int
    first_session: str
    last_session: str
    requests: int                    # sent
    answered: int
    exported: int                    # answers the simulated users exported (feedback posted)
    errors: dict[str, int] = field(default_factory=dict)   # error code -> requests
    models: dict[str, ModelTally] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------ the user model

def similarity_to_look(truth: Answer, served: Answer) -> float:
    """The mean, over the tools the intended look (`truth`) uses, of the paper's per-tool
    similarity of the served answer (`workbench.metrics.score_intent`: signed cosine for the
    slider tools, 1 or 0 for the filter's name), a tool the answer lacks counting 0. A look that
    uses no tool is matched (1) by an answer that uses none, and missed (0) otherwise."""
    used = [tool for tool in TOOLS if truth.uses(tool)]
    if not used:
        return 0.0 if any(served.uses(tool) for tool in TOOLS) else 1.0
    scores = {score.tool: score.similarity for score in score_intent("", truth, served)}
    return sum(scores[tool] or 0.0 for tool in used) / len(used)


def export_probability(truth: Answer, served: Answer) -> float:
    """The chance a simulated user exports `served` when the intended look is `truth`:
    0.15 + 0.7 * max(0, similarity_to_look), so between 0.15 and 0.85."""
    return BASE_PROBABILITY + SPAN_PROBABILITY * max(0.0, similarity_to_look(truth, served))


def kept_exports(served: Answer) -> dict[str, int]:
    """The per-tool export counts of an exporting user: 1 for each tool the answer used (the
    user keeps it as given), 0 for the others."""
    return {tool: int(served.uses(tool)) for tool in TOOLS}


# ------------------------------------------------------------------------------ the plan

def intended_looks(store: Store, version: int | None) -> tuple[int, list[Look]]:
    """(dataset version, its test intents with their request counts and ground truths)."""
    with store.session(read_only=True) as session:
        version_id = resolve_version(session, version)
        rows = version_rows(session, version_id, Split.TEST)
    if not rows:
        raise WorkbenchError(f"dataset version {version_id} has no test intents to send; "
                             "curate with a test split (`workbench demo` makes one)")
    looks = [Look(row["intent_text"], max(1, int(row["request_count"])),
                  answer_from_json(row["adjust"], row["selective_adjust"], row["filter"]))
             for row in rows]
    return version_id, looks


def plan_sessions(looks: Sequence[Look], sessions: int, seed: int) -> list[PlannedSession]:
    """`sessions` simulated sessions `sim-<seed>-0001`...: each 1 to 6 requests, intents drawn
    with replacement weighted by request count, and one uniform draw per request; all from one
    seeded stream, in session order."""
    if sessions < 1:
        raise WorkbenchError(f"the number of sessions must be at least 1, got {sessions}")
    if not looks:
        raise WorkbenchError("no intents to send")
    rng = random.Random(seed)
    weights = [look.request_count for look in looks]
    width = max(4, len(str(sessions)))
    planned = []
    for index in range(sessions):
        size = rng.randint(MIN_REQUESTS, MAX_REQUESTS)
        chosen = rng.choices(looks, weights=weights, k=size)
        planned.append(PlannedSession(
            f"{SIMULATION_PREFIX}{seed}-{index + 1:0{width}d}",
            tuple(PlannedRequest(look, rng.random()) for look in chosen)))
    return planned


# ------------------------------------------------------------------------------ sending it

class ServerDown(WorkbenchError):
    """The server did not answer (refused, reset or timed out)."""


@dataclass
class _Tally:
    """What the sessions report, under one lock (they run on several threads)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    answered: Counter[str] = field(default_factory=Counter)
    exported: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


def _down(url: str, error: Exception) -> ServerDown:
    return ServerDown(f"no workbench server answers at {url} ({type(error).__name__}: "
                      f"{str(error) or 'no reply'}); start one with `workbench serve` "
                      "(e.g. `workbench serve --ab teacher=50,student:latest=50`) and give its "
                      "address with --url")


def check_server(client: openai.OpenAI, url: str) -> list[str]:
    """The models the server lists; ServerDown when nothing answers at `url`, a WorkbenchError
    when something answers that is not an OpenAI-compatible /v1."""
    import openai

    try:
        return [model.id for model in client.models.list()]
    except (openai.APIConnectionError, openai.APITimeoutError) as error:
        raise _down(url, error) from None
    except openai.APIStatusError as error:
        raise WorkbenchError(f"{url}/models answered HTTP {error.status_code}: is this a "
                             "`workbench serve` address ending in /v1?") from None


def _answer_of(completion: Any) -> Answer:
    """The served answer from a ChatCompletion's tool calls."""
    calls = completion.choices[0].message.tool_calls or []
    return parse_answer({call.function.name: json.loads(call.function.arguments)
                         for call in calls})


def _run_session(planned: PlannedSession, client: openai.OpenAI,
                 tools: list[dict[str, Any]], tally: _Tally, stop: threading.Event) -> None:
    """One simulated user: its requests in order, each followed by its export decision."""
    import openai

    for request in planned.requests:
        if stop.is_set():
            return
        try:
            completion = client.chat.completions.create(
                model=DEFAULT_MODEL, messages=[{"role": "user", "content": request.look.intent}],
                tools=tools, user=planned.session_id)  # type: ignore[arg-type]
        except (openai.APIConnectionError, openai.APITimeoutError) as error:
            stop.set()
            raise _down(str(client.base_url).rstrip("/"), error) from None
        except openai.APIStatusError as error:
            body = error.body if isinstance(error.body, dict) else {}
            body = body.get("error", body) if isinstance(body.get("error"), dict) else body
            code = body.get("code") or f"http_{error.status_code}"
            with tally.lock:
                tally.requests += 1
                tally.errors[str(code)] += 1
            continue
        try:
            served = _answer_of(completion)
        except (ToolValidationError, ValueError, TypeError):
            with tally.lock:
                tally.requests += 1
                tally.errors["bad_answer"] += 1
            continue
        model = str(completion.model)
        kept = kept_exports(served)
        exports = (request.draw < export_probability(request.look.truth, served)
                   and sum(kept.values()) > 0)
        if exports:
            try:
                client.post("/feedback", cast_to=object,
                            body={"request_id": completion.id, "exports": kept})
            except (openai.APIConnectionError, openai.APITimeoutError) as error:
                stop.set()
                raise _down(str(client.base_url).rstrip("/"), error) from None
            except openai.APIStatusError as error:
                stop.set()
                raise WorkbenchError(f"the server refused the feedback for {completion.id}: "
                                     f"HTTP {error.status_code} ({error.message})") from None
        with tally.lock:
            tally.requests += 1
            tally.answered[model] += 1
            tally.exported[model] += exports


def run(config: TrafficConfig, store: Store, progress: Progress | None = None) -> TrafficResult:
    """Send the simulated traffic to the server at `config.url` and say what it did.

    Checks the server first (one clear error when it is down), then runs the planned sessions
    on `concurrency` threads, each session's requests in order. Every call is bounded by
    `timeout_s`; a server that stops answering stops the run (ServerDown, with how far it got)."""
    import openai

    from workbench.tool_schema import tool_definitions

    if config.concurrency < 1:
        raise WorkbenchError(f"the concurrency must be at least 1, got {config.concurrency}")
    if not config.timeout_s > 0:
        raise WorkbenchError(f"the timeout must be positive, got {config.timeout_s}")
    version_id, looks = intended_looks(store, config.version)
    planned = plan_sessions(looks, config.sessions, config.seed)
    url = config.url.rstrip("/")
    tools = tool_definitions()
    tally = _Tally()
    stop = threading.Event()
    with openai.OpenAI(base_url=url, api_key=API_KEY, max_retries=0, timeout=config.timeout_s,
                       default_headers={SIMULATION_HEADER: "1"}) as client:
        check_server(client, url)
        done = 0
        if progress is not None:
            progress(STAGE, 0, len(planned))
        with ThreadPoolExecutor(max_workers=config.concurrency,
                                thread_name_prefix="simulated-user") as pool:
            futures = [pool.submit(_run_session, session, client, tools, tally, stop)
                       for session in planned]
            try:
                for future in as_completed(futures):
                    future.result()
                    done += 1
                    if progress is not None:
                        progress(STAGE, done, len(planned))
            except BaseException as error:
                stop.set()
                for pending in futures:
                    pending.cancel()
                if isinstance(error, ServerDown):
                    raise ServerDown(f"{error} (stopped after {done} of {len(planned)} "
                                     f"simulated sessions, {tally.requests} requests)") from None
                raise
    models = {}
    for model in sorted(tally.answered):
        answered, exported = tally.answered[model], tally.exported[model]
        models[model] = ModelTally(answered, exported, exported / answered if answered else None)
    return TrafficResult(
        simulated=True, url=url, version_id=version_id, seed=config.seed, sessions=len(planned),
        first_session=planned[0].session_id, last_session=planned[-1].session_id,
        requests=tally.requests, answered=sum(tally.answered.values()),
        exported=sum(tally.exported.values()), errors=dict(sorted(tally.errors.items())),
        models=models)
