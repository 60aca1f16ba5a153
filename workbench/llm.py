"""The OpenAI-compatible LLM client (SPEC 6): bounded time, a reply cache in DuckDB, token cost.

`llm_config()` finds the endpoint in the environment or in `.streamlit/secrets.toml`;
`LLMClient.complete()` sends one chat request with its own retry loop and logs every attempt to
`llm_calls`; `test_connection()` checks an endpoint for the settings page. The paraphraser
that writes through it lives in `workbench.paraphrase.llm`, the teacher prompt in
`workbench.teacher`.

A request may offer `tools` (function definitions): the reply is then the whole assistant
message (text, tool calls, refusal) written as one JSON text by `tool_reply_text`, which is what
is parsed, cached and kept as the raw reply; `read_tool_reply` reads it back.

Time is bounded by the wall clock, not only by socket timeouts (which a server that drips its
reply one byte at a time never trips): each attempt runs in a worker thread that is abandoned,
its connection closed, at `timeout_s`; one prompt stops at `max_total_s`; one batch of prompts
(an augmentation round) stops at `max_round_s`, or after `max_consecutive_failures` failed
prompts in a row (a circuit breaker), and says so in the error of every prompt it did not ask.

The API key only ever travels in the HTTP header, and only to the endpoint it was meant for: the
config's repr masks it, and every error text and every reply is scrubbed of it before it reaches
an exception, a log line, a database row or the screen.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

from workbench.errors import WorkbenchError
from workbench.progress import Progress
from workbench.store import Store, llm_calls

if TYPE_CHECKING:  # openai takes about a second to import: only the functions that call it do
    import openai

log = logging.getLogger(__name__)

ENV_BASE_URL = "WORKBENCH_LLM_BASE_URL"
ENV_MODEL = "WORKBENCH_LLM_MODEL"
ENV_API_KEY = "WORKBENCH_LLM_API_KEY"
ENV_OPENAI_BASE_URL = "OPENAI_BASE_URL"
ENV_OPENAI_API_KEY = "OPENAI_API_KEY"
DEFAULT_SECRETS_PATH = Path(".streamlit/secrets.toml")
SECRETS_TABLE = "llm"

# Local servers (llama.cpp, vLLM, Ollama) need no key, but the openai client wants a non-empty one.
_NO_KEY = "no-key"
# Hosts that OPENAI_API_KEY is meant for (api.openai.com and its regional variants).
_OPENAI_DOMAIN = "openai.com"
# Headers the openai client would add from OPENAI_ORG_ID / OPENAI_PROJECT_ID: meant for OpenAI.
_OPENAI_ACCOUNT_HEADERS = ("OpenAI-Organization", "OpenAI-Project")
# Keys shorter than this are placeholders ("x", "none"), not secrets; scrubbing them would garble
# every message that happens to contain those letters.
_MIN_SECRET_CHARS = 6
# The last attempt gets at least this long (or timeout_s if shorter): a retry squeezed into the
# final few milliseconds of the budget could not succeed and would only add a row.
_MIN_ATTEMPT_S = 1.0
_MAX_ERROR_CHARS = 300
_BEARER = re.compile(r"(?i)bearer\s+\S+")


class Purpose(StrEnum):
    """Why a request was made; stored with each row of `llm_calls`."""

    PARAPHRASE = "paraphrase"
    LABEL = "label"              # teacher labelling (workbench label)
    TEST_CONNECTION = "test_connection"


class CallStatus(StrEnum):
    """What became of one HTTP attempt or cache lookup."""

    OK = "ok"                    # a reply that parsed; cached
    CACHED = "cached"            # answered from llm_cache, no HTTP request
    RETRY = "retry"              # failed, and another attempt followed
    FAILED = "failed"            # failed, and no attempt followed
    UNPARSEABLE = "unparseable"  # the endpoint answered, but not in the shape asked for


@dataclass(frozen=True)
class LLMConfig:
    """Where the LLM is and how patient to be with it. The key is never shown (see __repr__)."""

    base_url: str
    model: str
    api_key: str = ""                     # may be empty for local servers
    timeout_s: float = 30.0               # one HTTP attempt, wall clock, reply read in full
    max_retries: int = 4                  # retries after the first attempt
    max_total_s: float = 90.0             # one prompt, every attempt and wait included
    backoff_s: float = 1.0                # first wait; doubles per retry, with jitter
    max_round_s: float = 3600.0           # one batch of prompts (an augmentation round)
    max_consecutive_failures: int = 3     # circuit breaker: stop a batch after this many failed
                                          # prompts in a row (each already retried)
    temperature: float = 0.7
    input_usd_per_1k_tokens: float = 0.0  # 0 and 0 = price unknown: cost is recorded as NULL
    output_usd_per_1k_tokens: float = 0.0

    def __post_init__(self) -> None:
        if urlsplit(self.base_url).scheme not in ("http", "https"):
            raise WorkbenchError(
                f"the LLM base URL must start with http:// or https:// (for OpenAI, "
                f"https://api.openai.com/v1), got {safe_url(self.base_url)!r}")
        if not self.model.strip():
            raise WorkbenchError("the LLM model name is empty: set WORKBENCH_LLM_MODEL")
        for name in ("timeout_s", "max_total_s", "max_round_s"):
            if not getattr(self, name) > 0:
                raise WorkbenchError(
                    f"LLM {name} must be more than 0 seconds, got {getattr(self, name)}")
        if self.max_consecutive_failures < 1:
            raise WorkbenchError("LLM max_consecutive_failures must be at least 1, got "
                                 f"{self.max_consecutive_failures}")
        if self.api_key and (self.api_key != self.api_key.strip()
                             or not self.api_key.isprintable() or " " in self.api_key):
            # Never show it: say only what is wrong with it.
            raise WorkbenchError("the LLM API key contains spaces, a line break or other control "
                                 "characters (copied with a newline?); set it again without them")
        for name in ("max_retries", "backoff_s", "input_usd_per_1k_tokens",
                     "output_usd_per_1k_tokens"):
            if getattr(self, name) < 0:
                raise WorkbenchError(f"LLM {name} must be 0 or more, got {getattr(self, name)}")
        if not 0 <= self.temperature <= 2:
            raise WorkbenchError(f"LLM temperature must be between 0 and 2, got {self.temperature}")

    def __repr__(self) -> str:
        shown = [f"{name}={value!r}" for name, value in self.public_dict().items()
                 if name != "api_key"]
        return f"LLMConfig({', '.join(shown)}, api_key={'set' if self.api_key else 'unset'})"

    __str__ = __repr__

    def public_dict(self) -> dict[str, Any]:
        """The settings to store or show: the key is replaced by whether one is set."""
        values = asdict(self)
        values["base_url"] = safe_url(self.base_url)
        values["api_key"] = "set" if self.api_key else "unset"
        return values

    @property
    def priced(self) -> bool:
        return self.input_usd_per_1k_tokens > 0 or self.output_usd_per_1k_tokens > 0

    def cost_usd(self, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        """Dollar cost of one reply, or None when the prices or the token counts are unknown."""
        if not self.priced or prompt_tokens is None or completion_tokens is None:
            return None
        return (prompt_tokens * self.input_usd_per_1k_tokens
                + completion_tokens * self.output_usd_per_1k_tokens) / 1000


# Settings beyond the endpoint that the [llm] table of secrets.toml may hold too.
_TUNING_KEYS: dict[str, type] = {
    "timeout_s": float, "max_retries": int, "max_total_s": float, "backoff_s": float,
    "max_round_s": float, "max_consecutive_failures": int,
    "temperature": float, "input_usd_per_1k_tokens": float, "output_usd_per_1k_tokens": float,
}
_ENDPOINT_KEYS = ("base_url", "model", "api_key")


def llm_config(environ: Mapping[str, str] = os.environ,
               secrets_path: Path = DEFAULT_SECRETS_PATH) -> LLMConfig | None:
    """The configured endpoint, or None when no LLM is configured (the offline paraphraser runs).

    Each of base_url, model and api_key comes from the first place that gives it:
    WORKBENCH_LLM_* in the environment, then the [llm] table of secrets.toml, then OPENAI_BASE_URL
    / OPENAI_API_KEY. The generic OpenAI variables come last because they are often set for other
    tools, and a key meant for one endpoint must not be sent to another that the project names:
    OPENAI_API_KEY is used only when the endpoint is OpenAI's own (https://*.openai.com) or is the
    OPENAI_BASE_URL it was set beside; for any other endpoint, no key is sent.
    """
    table = _secrets_table(secrets_path)

    def pick(env_name: str, key: str, fallback_env: str | None = None) -> str | None:
        if environ.get(env_name):
            return environ[env_name]
        if key in table:
            return str(table[key])
        if fallback_env and environ.get(fallback_env):
            return environ[fallback_env]
        return None

    base_url = pick(ENV_BASE_URL, "base_url", ENV_OPENAI_BASE_URL)
    model = pick(ENV_MODEL, "model")
    project_key = pick(ENV_API_KEY, "api_key")
    api_key = project_key if project_key is not None else ""
    if project_key is None and base_url and _openai_key_belongs_to(base_url, environ):
        api_key = environ.get(ENV_OPENAI_API_KEY, "")
    where = (f"set {ENV_BASE_URL} and {ENV_MODEL}, or base_url and model in the [{SECRETS_TABLE}] "
             f"table of {secrets_path}")
    if not base_url or not model:
        if base_url or model:
            missing = "model" if base_url else "base URL"
            raise WorkbenchError(f"the LLM {missing} is missing: {where}")
        if project_key:  # OPENAI_API_KEY alone is common and means nothing for this project
            raise WorkbenchError(f"an LLM API key is set but no endpoint: {where}")
        return None
    tuning = {key: table[key] for key in _TUNING_KEYS if key in table}
    return LLMConfig(base_url=base_url, model=model, api_key=api_key, **tuning)


def is_openai_endpoint(url: str) -> bool:
    """Whether `url` is OpenAI's own API (https, a host under openai.com)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and (host == _OPENAI_DOMAIN
                                        or host.endswith("." + _OPENAI_DOMAIN))


def _openai_key_belongs_to(base_url: str, environ: Mapping[str, str]) -> bool:
    """Whether OPENAI_API_KEY may go to `base_url`: OpenAI's host, or the OPENAI_BASE_URL that
    was set beside the key."""
    paired = environ.get(ENV_OPENAI_BASE_URL, "")
    return is_openai_endpoint(base_url) or (
        bool(paired) and paired.strip().rstrip("/") == base_url.strip().rstrip("/"))


def _secrets_table(path: Path) -> dict[str, Any]:
    """The [llm] table of secrets.toml, checked; empty when the file or the table is absent."""
    if not path.is_file():
        return {}
    try:
        secrets = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        # The parser's message gives the line and column, never the values (which may be keys).
        raise WorkbenchError(f"{path} is not valid TOML ({error}); fix the file or remove it") \
            from None
    except UnicodeDecodeError:
        raise WorkbenchError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    table = secrets.get(SECRETS_TABLE, {})
    if not isinstance(table, dict):
        raise WorkbenchError(f"[{SECRETS_TABLE}] in {path} must be a table with base_url, model "
                             "and api_key")
    unknown = sorted(set(table) - set(_ENDPOINT_KEYS) - set(_TUNING_KEYS))
    if unknown:
        raise WorkbenchError(f"unknown keys in [{SECRETS_TABLE}] of {path}: {', '.join(unknown)}; "
                             f"known: {', '.join([*_ENDPOINT_KEYS, *_TUNING_KEYS])}")
    for key, value in table.items():
        if key in _ENDPOINT_KEYS and not isinstance(value, str):
            raise WorkbenchError(f"{key} in [{SECRETS_TABLE}] of {path} must be a string in quotes")
        wanted = _TUNING_KEYS.get(key)
        if wanted is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                   or (wanted is int and not isinstance(value, int))):
            raise WorkbenchError(f"{key} in [{SECRETS_TABLE}] of {path} must be a number, got "
                                 f"{value!r}")
    return table


def safe_url(url: str) -> str:
    """The URL without any user:password part or query (gateways put keys there), fit to log
    and show."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None and not parts.query \
            and not parts.fragment:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc, query="[redacted]" if parts.query else "",
                                     fragment=""))


def scrub(text: str, secret: str) -> str:
    """`text` without the secret or any bearer token in it, shortened to show on one line."""
    text = scrub_reply(text, secret)
    text = _BEARER.sub("Bearer [redacted]", text)
    return text if len(text) <= _MAX_ERROR_CHARS else text[:_MAX_ERROR_CHARS - 3] + "..."


def scrub_reply(text: str, secret: str) -> str:
    """A reply without the secret in it (a model or a proxy may echo it), otherwise untouched."""
    if len(secret) >= _MIN_SECRET_CHARS:
        return text.replace(secret, "[api key]")
    return text


Tools = Sequence[Mapping[str, Any]]


def cache_key(config: LLMConfig, messages: Sequence[Mapping[str, str]], n: int | None,
              tools: Tools | None = None) -> str:
    """sha256 of everything that shapes the reply: endpoint, model, messages, temperature, n,
    and the tools offered (left out when none are, so keys cached before tools existed hold)."""
    shape: dict[str, Any] = {"base_url": config.base_url.rstrip("/"), "model": config.model,
                             "messages": list(map(dict, messages)),
                             "temperature": config.temperature, "n": n}
    if tools is not None:
        shape["tools"] = [dict(tool) for tool in tools]
    material = json.dumps(shape, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


_TOOL_REPLY_KIND = "tool_reply"


@dataclass(frozen=True)
class ToolCall:
    """One tool call of a reply: the function's name and its arguments as the model wrote them
    (JSON text, usually; None when the call had none)."""

    name: str | None
    arguments: str | None


@dataclass(frozen=True)
class ToolReply:
    """An assistant message of a request that offered tools."""

    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None


def tool_reply_text(reply: ToolReply) -> str:
    """The message as one JSON text: what is parsed, cached and kept as the raw reply."""
    return json.dumps({"kind": _TOOL_REPLY_KIND, "content": reply.content,
                       "tool_calls": [{"name": call.name, "arguments": call.arguments}
                                      for call in reply.tool_calls],
                       "refusal": reply.refusal}, ensure_ascii=False)


def read_tool_reply(text: str) -> ToolReply:
    """The message `tool_reply_text` wrote; any other text is a message with only that text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return ToolReply(content=text)
    if not isinstance(value, dict) or value.get("kind") != _TOOL_REPLY_KIND:
        return ToolReply(content=text)
    calls = value.get("tool_calls") or []
    return ToolReply(
        content=value.get("content"),
        tool_calls=tuple(ToolCall(call.get("name"), call.get("arguments")) for call in calls
                         if isinstance(call, dict)),
        refusal=value.get("refusal"))


T = TypeVar("T")


@dataclass(frozen=True)
class ChatReply(Generic[T]):
    """The outcome of `LLMClient.complete`: a parsed value, or an error safe to show."""

    value: T | None
    text: str | None = None            # the reply as received (also for unparseable replies)
    error: str | None = None
    cached: bool = False
    attempts: int = 0                  # HTTP requests made for this prompt
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None

    def usage(self) -> dict[str, float]:
        """Tokens and cost that are known (what `ParaphraseResult.usage` holds)."""
        found = {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                 "cost_usd": self.cost_usd}
        return {name: value for name, value in found.items() if value is not None}


@dataclass(frozen=True)
class _Failure:
    message: str                       # safe to show: scrubbed
    retryable: bool
    http_status: int | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str                       # safe to show on screen
    latency_ms: float | None = None


class _Overdue(Exception):
    """An HTTP attempt ran past its wall-clock deadline; its worker was abandoned."""


R = TypeVar("R")


def _within(seconds: float, call: Callable[[], R], abandon: Callable[[], None]) -> R:
    """`call()` in a worker thread, or `_Overdue` after `seconds` of wall-clock time.

    Socket timeouts bound the wait for each read, not the whole reply: a server that sends one
    byte a second (headers or body) never trips them. On the deadline `abandon()` closes the
    worker's connection, so the worker fails at its next read and ends; it is a daemon thread,
    so it never keeps the process alive either.
    """
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def work() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 (raised again in the caller's thread)
            outcome["error"] = error
        finally:
            finished.set()

    worker = threading.Thread(target=work, name="workbench-llm-request", daemon=True)
    worker.start()
    if not finished.wait(max(seconds, 0.0)):
        abandon()
        raise _Overdue
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _openai_client(config: LLMConfig, environ: Mapping[str, str] = os.environ) -> openai.OpenAI:
    """An openai client for this endpoint that sends exactly the key the config holds.

    The openai package fills in headers from the environment (OPENAI_CUSTOM_HEADERS may carry an
    Authorization header of its own, OPENAI_ORG_ID and OPENAI_PROJECT_ID name an OpenAI account):
    the Authorization header is set here explicitly, and for an endpoint that is not OpenAI's own
    the account and custom headers are left out. max_retries=0: our own loop retries, so that the
    time for one prompt stays bounded.
    """
    import openai

    headers: dict[str, Any] = {"Authorization": f"Bearer {config.api_key or _NO_KEY}"}
    if not is_openai_endpoint(config.base_url):
        custom = environ.get("OPENAI_CUSTOM_HEADERS", "")
        names = [line.split(":", 1)[0].strip() for line in custom.split("\n") if ":" in line]
        for name in [*_OPENAI_ACCOUNT_HEADERS, *names]:
            if name and name.lower() != "authorization":
                headers[name] = openai.Omit()
    return openai.OpenAI(base_url=config.base_url, api_key=config.api_key or _NO_KEY,
                         timeout=config.timeout_s, max_retries=0, default_headers=headers)


class CallFailed(WorkbenchError):
    """One call of `ask_once` failed: the endpoint is down, refused or answered with an error."""


class CallTimedOut(CallFailed):
    """One call of `ask_once` gave no complete answer within its wall-clock limit."""


def ask_once(config: LLMConfig, messages: Sequence[Mapping[str, str]],
             tools: Sequence[Mapping[str, Any]] | None = None) -> str | None:
    """One chat completion, with no retry, cache or log (the serving gateway's teacher proxy: its
    caller retries, and it never writes the database): the reply's text (with tools, the whole
    message as `tool_reply_text` writes it), or None when the reply is not a chat completion.
    Bounded by `config.timeout_s` of wall clock; CallTimedOut past it, CallFailed (scrubbed
    message) when the endpoint fails."""
    import openai

    client = _openai_client(config)
    extra: dict[str, Any] = {"tools": list(tools)} if tools else {}
    request = functools.partial(client.chat.completions.create, model=config.model,
                                messages=list(messages), temperature=config.temperature,
                                timeout=config.timeout_s, **extra)
    try:
        completion = _within(config.timeout_s, request, client.close)
    except (_Overdue, openai.APITimeoutError):
        raise CallTimedOut(f"{safe_url(config.base_url)} gave no complete answer within "
                           f"{config.timeout_s:g} s") from None
    except (openai.APIError, ValueError) as error:
        raise CallFailed(_failure(error, config, config.timeout_s).message) from None
    finally:
        client.close()
    text, _, _ = _read_completion(completion, with_tools=bool(tools))
    return text


class LLMClient:
    """Chat requests to one endpoint with bounded time, a reply cache and a log of every call.

    No database connection is held during an HTTP request: the cache is read before it and each
    attempt's row is written after it, each in its own short transaction.
    """

    def __init__(self, config: LLMConfig, store: Store, *,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.config = config
        self.store = store
        self._sleep = sleep
        self._clock = clock
        self._random = rng or random.Random()
        self._openai: openai.OpenAI | None = None  # made on first use, again after an abandon

    def __repr__(self) -> str:
        return f"LLMClient({self.config!r})"

    def close(self) -> None:
        if self._openai is not None:
            self._openai.close()
            self._openai = None

    def _client(self) -> openai.OpenAI:
        if self._openai is None:
            self._openai = _openai_client(self.config)
        return self._openai

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def complete(self, messages: Sequence[Mapping[str, str]], parse: Callable[[str], T], *,
                 purpose: Purpose = Purpose.PARAPHRASE, n: int | None = None,
                 tools: Tools | None = None) -> ChatReply[T]:
        """Ask once (retrying transient failures) and parse the reply; never raises for the call.

        `parse` turns the reply text into a value or raises ValueError (pydantic's
        ValidationError is one); only replies that parse are cached. `n` joins the cache key.
        With `tools` (function definitions, sent as they are and part of the cache key) the text
        parsed is the whole message as `tool_reply_text` writes it (see `read_tool_reply`).
        """
        return self.complete_many([messages], parse, purpose=purpose, n=n, tools=tools)[0]

    def cached(self, prompts: Sequence[Sequence[Mapping[str, str]]], *, n: int | None = None,
               tools: Tools | None = None) -> list[bool]:
        """Whether each prompt's reply is in the cache already (it would cost nothing); one
        read. A cached reply that no longer parses is asked again, so this can undercount."""
        keys = [cache_key(self.config, messages, n, tools) for messages in prompts]
        found = self._cached_texts(keys)
        return [key in found for key in keys]

    def complete_many(self, prompts: Sequence[Sequence[Mapping[str, str]]],
                      parse: Callable[[str], T], *, purpose: Purpose = Purpose.PARAPHRASE,
                      n: int | None = None, tools: Tools | None = None,
                      progress: Progress | None = None,
                      stop_before: Callable[[int, Sequence[ChatReply[T]]], str | None]
                      | None = None) -> list[ChatReply[T]]:
        """`complete` for each prompt in turn, reading the cache for all of them at once.

        A rerun of a large batch is then one read and one write, not two per prompt.
        `progress(purpose, done, total)` is called after each prompt.

        The batch as a whole is bounded too: after `max_round_s`, or after
        `max_consecutive_failures` prompts in a row failed (the endpoint is down, or the model
        cannot answer in the shape asked for), the prompts left are not sent; each gets an error
        saying why (cached replies are still used: they cost nothing). `stop_before(i, replies)`
        is asked before prompt `i` is sent over HTTP, with the replies so far, and stops the
        batch the same way when it returns a reason (a spending limit, say).
        """
        keys = [cache_key(self.config, messages, n, tools) for messages in prompts]
        cached = self._cached_texts(keys)
        hits: list[_Row] = []  # written together, before the next HTTP request or at the end
        replies: list[ChatReply[T]] = []
        round_deadline = self._clock() + self.config.max_round_s
        failed_in_a_row = 0
        last_error = ""
        stopped: str | None = None  # why the prompts left are not sent
        for done, (messages, key) in enumerate(zip(prompts, keys, strict=True), start=1):
            reply = self._from_cache(cached.get(key), key, parse, purpose, hits)
            if reply is None and stopped is None:
                stopped = self._stop_reason(failed_in_a_row, last_error, round_deadline)
                if stopped is None and stop_before is not None:
                    stopped = stop_before(done - 1, replies)
                if stopped is not None:
                    left = sum(key not in cached for key in keys[done - 1:])
                    log.warning("LLM batch stopped, %d prompt(s) not sent: %s", left, stopped)
            if reply is None and stopped is not None:
                reply = ChatReply(value=None, error=f"not sent: {stopped}")
            elif reply is None:
                _write_rows(self.store, self.config, hits)
                hits = []
                reply = self._ask(messages, key, parse, purpose, round_deadline, tools)
                if reply.value is not None and reply.text is not None:
                    cached[key] = reply.text  # the same prompt again in this batch: a hit
                    failed_in_a_row = 0
                else:
                    failed_in_a_row += 1
                    last_error = reply.error or ""
            replies.append(reply)
            if progress is not None:
                progress(str(purpose), done, len(prompts))
        _write_rows(self.store, self.config, hits)
        return replies

    def _stop_reason(self, failed_in_a_row: int, last_error: str,
                     round_deadline: float) -> str | None:
        """Why no more prompts of this batch should be sent, or None to go on."""
        limit = self.config.max_consecutive_failures
        if failed_in_a_row >= limit:
            return (f"the round stopped after {failed_in_a_row} failed intents in a row "
                    f"(max_consecutive_failures={limit}); the last failure: {last_error}")
        if self._clock() >= round_deadline:
            return (f"the round's LLM time budget max_round_s={self.config.max_round_s:g} s is "
                    "spent; raise max_round_s or send fewer intents (--limit)")
        return None

    def test_connection(self) -> ConnectionCheck:
        """`test_connection` for this client's endpoint, logged to its store."""
        return test_connection(self.config, self.store)

    def _cached_texts(self, keys: Sequence[str]) -> dict[str, str]:
        if not keys or not self.store.exists:
            return {}
        with self.store.session() as session:
            return llm_calls.cached_replies(session, keys)

    def _from_cache(self, text: str | None, key: str, parse: Callable[[str], T],
                    purpose: Purpose, hits: list[_Row]) -> ChatReply[T] | None:
        """The cached reply, parsed (its row appended to `hits`), or None to ask the endpoint."""
        if text is None:
            return None
        text = scrub_reply(text, self.config.api_key)  # cached before replies were scrubbed
        start = self._clock()
        started_at = datetime.now(UTC)
        try:
            value = parse(text)
        except ValueError:
            # Cached under an older, more lenient parser: ask again rather than fail forever.
            log.info("cached LLM reply %s no longer parses; asking the endpoint again", key[:12])
            return None
        hits.append(_Row(_Attempt(key, 1, purpose, started_at), CallStatus.CACHED,
                         (self._clock() - start) * 1000, spent=_Spent(None, None, 0.0)))
        return ChatReply(value=value, text=text, cached=True, prompt_tokens=0,
                         completion_tokens=0, cost_usd=0.0)

    def _ask(self, messages: Sequence[Mapping[str, str]], key: str, parse: Callable[[str], T],
             purpose: Purpose, round_deadline: float = float("inf"),
             tools: Tools | None = None) -> ChatReply[T]:
        """The retry loop for one prompt: bounded by max_retries, by max_total_s and by what is
        left of the round's max_round_s; each attempt by timeout_s of wall-clock time."""
        import openai

        first_start = self._clock()
        deadline = min(first_start + self.config.max_total_s, round_deadline)
        budget = (f"max_total_s={self.config.max_total_s:g} s"
                  if deadline < round_deadline else
                  f"the round's max_round_s={self.config.max_round_s:g} s")
        number = 0
        while True:
            number += 1
            timeout = min(self.config.timeout_s, max(deadline - self._clock(), 0.001))
            attempt = _Attempt(key, number, purpose, datetime.now(UTC))
            start = self._clock()
            offered: dict[str, Any] = {} if tools is None else {
                "tools": [dict(tool) for tool in tools]}
            request = functools.partial(
                self._client().chat.completions.create, model=self.config.model,
                # Plain role/content dicts; the SDK's per-role TypedDicts accept them.
                messages=[dict(message) for message in messages],
                temperature=self.config.temperature, timeout=timeout, **offered)
            try:
                completion = _within(timeout, request, self.close)
            except _Overdue:
                failure = _Failure(f"no complete answer from {safe_url(self.config.base_url)} "
                                   f"within {timeout:.1f} s", retryable=True)
            except (openai.APIError, ValueError) as error:
                # ValueError: a 200 whose body is not JSON escapes the openai client unwrapped.
                failure = _failure(error, self.config, timeout)
            else:
                return self._answered(completion, parse, attempt,
                                      (self._clock() - start) * 1000, tools is not None)
            duration_ms = (self._clock() - start) * 1000

            wait, give_up = self._wait_before_retry(failure, number, deadline - self._clock(),
                                                    budget)
            if wait is None:
                elapsed = self._clock() - first_start
                error_text = failure.message if not give_up else (
                    f"{failure.message}; {give_up} after {number} attempt(s) in {elapsed:.1f} s "
                    "(try again later, or raise max_retries / max_total_s)")
                self._write(_Row(attempt, CallStatus.FAILED, duration_ms,
                                 http_status=failure.http_status, error=error_text))
                log.warning("LLM request failed: %s", error_text)
                return ChatReply(value=None, error=error_text, attempts=number)
            self._write(_Row(attempt, CallStatus.RETRY, duration_ms,
                             http_status=failure.http_status, error=failure.message))
            log.info("LLM request failed (%s); retrying in %.1f s", failure.message, wait)
            self._sleep(wait)

    def _answered(self, completion: object, parse: Callable[[str], T], attempt: _Attempt,
                  duration_ms: float, with_tools: bool = False) -> ChatReply[T]:
        """Parse an HTTP 200 answer, log it, and cache it when it parses."""
        text, prompt_tokens, completion_tokens = _read_completion(completion, with_tools)
        if text is not None:
            # Nothing the endpoint says is stored or shown with the key in it.
            text = scrub_reply(text, self.config.api_key)
        spent = _Spent(prompt_tokens, completion_tokens,
                       self.config.cost_usd(prompt_tokens, completion_tokens))
        if text is None:
            problem = ("the endpoint's answer is not a chat completion with message text"
                       + (" or tool calls" if with_tools else ""))
        else:
            try:
                value = parse(text)
            except ValueError as error:
                # A tool reply's JSON wrapping says nothing to a reader; its raw text is kept.
                problem = _parse_problem(error, None if with_tools else text)
            else:
                self._write(_Row(attempt, CallStatus.OK, duration_ms, http_status=200,
                                 spent=spent, reply_to_cache=text))
                return ChatReply(value=value, text=text, attempts=attempt.number,
                                 prompt_tokens=prompt_tokens,
                                 completion_tokens=completion_tokens, cost_usd=spent.cost_usd)
        error_text = scrub(f"unparseable reply: {problem}", self.config.api_key)
        self._write(_Row(attempt, CallStatus.UNPARSEABLE, duration_ms, http_status=200,
                         error=error_text, spent=spent))
        return ChatReply(value=None, text=text, error=error_text, attempts=attempt.number,
                         prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                         cost_usd=spent.cost_usd)

    def _wait_before_retry(self, failure: _Failure, attempts: int, remaining_s: float,
                           budget: str) -> tuple[float | None, str]:
        """Seconds to wait before the next attempt, or (None, why not) to give up now."""
        if not failure.retryable:
            return None, ""
        if attempts > self.config.max_retries:
            return None, "gave up"
        # Leave the next attempt enough time to have a chance.
        room = remaining_s - min(self.config.timeout_s, _MIN_ATTEMPT_S)
        if failure.retry_after_s is not None:
            # The endpoint said when to come back; asking sooner would only be refused again.
            if failure.retry_after_s > room:
                return None, (f"the endpoint asked to wait {failure.retry_after_s:.1f} s, more "
                              f"than the time left of {budget}; gave up")
            return failure.retry_after_s, ""
        if room <= 0:
            return None, f"{budget} is spent; gave up"
        backoff = self.config.backoff_s * 2 ** (attempts - 1) * self._random.uniform(0.5, 1.5)
        return min(backoff, room), ""

    def _write(self, row: _Row) -> None:
        _write_rows(self.store, self.config, [row])


@dataclass(frozen=True)
class _Attempt:
    """One HTTP attempt or cache lookup, as its llm_calls row names it."""

    cache_key: str | None
    number: int                        # 1-based
    purpose: Purpose
    started_at: datetime


@dataclass(frozen=True)
class _Spent:
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None


@dataclass(frozen=True)
class _Row:
    """One row of llm_calls, and the reply to cache with it when it parsed."""

    attempt: _Attempt
    status: CallStatus
    duration_ms: float
    http_status: int | None = None
    error: str | None = None
    spent: _Spent = _Spent(None, None, None)
    reply_to_cache: str | None = None


def _write_rows(store: Store, config: LLMConfig, rows: Sequence[_Row]) -> None:
    """Rows of llm_calls (and their replies into llm_cache), in one short transaction."""
    if not rows:
        return
    calls = [llm_calls.LLMCall(
        cache_key=row.attempt.cache_key, attempt=row.attempt.number,
        purpose=str(row.attempt.purpose), model=config.model, base_url=safe_url(config.base_url),
        started_at=row.attempt.started_at, duration_ms=row.duration_ms, status=str(row.status),
        http_status=row.http_status,
        error=None if row.error is None else scrub(row.error, config.api_key),
        prompt_tokens=row.spent.prompt_tokens, completion_tokens=row.spent.completion_tokens,
        cost_usd=row.spent.cost_usd, reply_to_cache=row.reply_to_cache) for row in rows]
    with store.atomic(create=True) as session:
        llm_calls.record_calls(session, calls, datetime.now(UTC))


def _read_completion(completion: object, with_tools: bool = False
                     ) -> tuple[str | None, int | None, int | None]:
    """(text, prompt tokens, completion tokens) from a chat completion of any shape; with tools,
    the text is the whole message as `tool_reply_text` writes it.

    The openai client builds its models without validation, so a server that answers with the
    wrong JSON yields objects with missing attributes, dicts or a plain string: read defensively.
    """
    choices = getattr(completion, "choices", None)
    message = _field(choices[0], "message") if isinstance(choices, list) and choices else None
    content = _field(message, "content")
    usage = getattr(completion, "usage", None)
    prompt_tokens = getattr(usage, "prompt_tokens", None)
    completion_tokens = getattr(usage, "completion_tokens", None)
    text = content if isinstance(content, str) else None
    if with_tools:
        reply = _read_tool_message(message, text)
        has_something = reply.content or reply.tool_calls or reply.refusal
        text = tool_reply_text(reply) if has_something else None
    return (text,
            prompt_tokens if isinstance(prompt_tokens, int) else None,
            completion_tokens if isinstance(completion_tokens, int) else None)


def _field(value: object, name: str) -> Any:
    """An attribute of an openai model, or a key of the dict it left unconverted."""
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def _read_tool_message(message: object, content: str | None) -> ToolReply:
    """The tool calls and refusal of an assistant message, read as defensively as its text."""
    calls = _field(message, "tool_calls")
    found: list[ToolCall] = []
    for call in calls if isinstance(calls, list) else []:
        function = _field(call, "function")
        name = _field(function, "name")
        arguments = _field(function, "arguments")
        if arguments is not None and not isinstance(arguments, str):
            # Some servers send the arguments as an object rather than JSON text.
            arguments = json.dumps(arguments, ensure_ascii=False, default=str)
        found.append(ToolCall(name if isinstance(name, str) else None, arguments))
    refusal = _field(message, "refusal")
    return ToolReply(content=content, tool_calls=tuple(found),
                     refusal=refusal if isinstance(refusal, str) and refusal.strip() else None)


def _parse_problem(error: ValueError, text: str | None) -> str:
    """A one-line reason a reply did not parse, with the start of the reply (when given) to
    recognise it."""
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "reply"
        reason = f"{where}: {first['msg']}"
    else:
        reason = str(error)
    if text is None:
        return reason
    excerpt = " ".join(text.split())[:80]
    return f"{reason} (reply began {excerpt!r})"


def _failure(error: Exception, config: LLMConfig, timeout: float) -> _Failure:
    """What a failed request means for the user, and whether trying again can help."""
    import openai

    url = safe_url(config.base_url)
    if isinstance(error, openai.APITimeoutError):
        return _Failure(f"no complete answer from {url} within {timeout:.1f} s", retryable=True)
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error
        return _Failure(scrub(f"could not connect to {url} ({cause}); check the base URL and that "
                              "the server is running", config.api_key), retryable=True)
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        detail = _error_detail(error.body)
        said = f": {detail}" if detail else ""
        if status == 429 and "insufficient_quota" in json.dumps(error.body, default=str):
            message = ("the account behind the API key has no credit left (HTTP 429, "
                       "insufficient_quota); add credit or use another key")
            return _Failure(message, retryable=False, http_status=status)
        if status == 429:
            return _Failure(scrub(f"the endpoint is rate-limiting requests (HTTP 429){said}",
                                  config.api_key), retryable=True, http_status=status,
                            retry_after_s=_retry_after_s(error.response.headers))
        if status >= 500:
            return _Failure(scrub(f"the endpoint had a server error (HTTP {status}){said}",
                                  config.api_key), retryable=True, http_status=status,
                            retry_after_s=_retry_after_s(error.response.headers))
        if status == 401:
            message = (f"the endpoint rejected the API key (HTTP 401); check {ENV_API_KEY} or "
                       f"api_key in the [{SECRETS_TABLE}] table of .streamlit/secrets.toml")
        elif status == 403:
            message = (f"the endpoint refused access (HTTP 403){said}; check that the API key may "
                       f"use the model {config.model!r}")
        elif status == 404:
            message = (f"the endpoint has no such model or path (HTTP 404){said}; check the base "
                       f"URL {url} (it usually ends in /v1) and the model name {config.model!r}")
        else:
            message = f"the endpoint rejected the request (HTTP {status}){said}"
        return _Failure(scrub(message, config.api_key), retryable=False, http_status=status)
    if isinstance(error, openai.APIError):
        return _Failure(scrub(f"the endpoint's answer could not be read ({type(error).__name__}: "
                              f"{error})", config.api_key), retryable=False)
    # Not openai's: a body that is not JSON at all, or a bug. Say what it was, keep going.
    return _Failure(scrub(f"the request failed unexpectedly ({type(error).__name__}: {error})",
                          config.api_key), retryable=False)


def _error_detail(body: object) -> str:
    """The server's own words from an error body ({"error": {"message": ...}} or anything)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        return json.dumps(inner, default=str)
    return "" if body is None else str(body)


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait (retry-after-ms, retry-after seconds or date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass  # malformed: fall through to retry-after
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass  # not seconds: an HTTP date
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def test_connection(config: LLMConfig, store: Store | None = None) -> ConnectionCheck:
    """Check the endpoint and model with one or two tiny requests, within `timeout_s` of wall
    clock in all (a server that drips its answer is cut off too).

    Lists the models first (free); when the endpoint has no model list or does not list this
    model (gateways often don't), asks the model for a single token. Logged when `store` is given.
    """
    import openai

    url = safe_url(config.base_url)
    attempt = _Attempt(None, 1, Purpose.TEST_CONNECTION, datetime.now(UTC))
    start = time.monotonic()
    deadline = start + config.timeout_s
    offered: list[str] = []
    failure: _Failure | None = None
    client = _openai_client(config)

    def check_endpoint() -> ConnectionCheck:
        try:
            offered.extend(model.id for model in client.models.list(timeout=config.timeout_s).data)
        except openai.NotFoundError:
            pass  # no /models on this server: the chat request below decides
        if config.model in offered:
            latency = (time.monotonic() - start) * 1000
            return ConnectionCheck(True, f"connected to {url} in {latency:.0f} ms; the model "
                                         f"{config.model!r} is available", latency)
        remaining = max(deadline - time.monotonic(), 0.001)
        chat_start = time.monotonic()
        client.chat.completions.create(
            model=config.model, messages=[{"role": "user", "content": "Say OK."}],
            max_tokens=1, temperature=0, timeout=remaining)
        latency = (time.monotonic() - chat_start) * 1000
        return ConnectionCheck(True, f"connected to {url} in {latency:.0f} ms; the model "
                                     f"{config.model!r} answered", latency)

    try:
        check = _within(config.timeout_s, check_endpoint, client.close)
    except _Overdue:
        failure = _Failure(f"no complete answer from {url} within {config.timeout_s:.1f} s",
                           retryable=True)
        check = ConnectionCheck(False, failure.message)
    except (openai.APIError, ValueError) as error:
        failure = _failure(error, config, config.timeout_s)
        message = failure.message
        if failure.http_status == 404 and offered:
            message += f". The endpoint offers: {', '.join(sorted(offered)[:10])}"
        check = ConnectionCheck(False, scrub(message, config.api_key))
    finally:
        client.close()
    if store is not None:
        _write_rows(store, config, [_Row(
            attempt, CallStatus.OK if check.ok else CallStatus.FAILED,
            (time.monotonic() - start) * 1000,
            http_status=failure.http_status if failure else 200,
            error=None if check.ok else check.message)])
    return check


# pytest would collect this function from any test module that imports it by name.
test_connection.__test__ = False  # type: ignore[attr-defined]


def usage_summary(store: Store) -> dict[str, Any]:
    """Totals over llm_calls: calls, calls by status, tokens, cost, and calls of unknown cost."""
    summary: dict[str, Any] = {"calls": 0, "by_status": {}, "prompt_tokens": 0,
                               "completion_tokens": 0, "cost_usd": 0.0, "unpriced_calls": 0}
    if not store.exists:
        return summary
    with store.session() as session:
        totals, by_status = llm_calls.usage_totals(session)
    summary.update({name: totals[name] for name in ("calls", "prompt_tokens",
                                                     "completion_tokens", "unpriced_calls")})
    summary["cost_usd"] = float(totals["cost_usd"])
    summary["by_status"] = by_status
    return summary
