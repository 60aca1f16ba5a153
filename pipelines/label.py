"""Teacher (re)labelling and student suggestions (SPEC 11): `workbench label`.

`run` sends intents (a file of new intents, the label queue, or a version's split) to the
teacher LLM through `workbench.llm.LLMClient` (its retries, deadlines, circuit breaker, cache
and call log) with the prompt of `workbench.teacher`, and stores each answer as a
`teacher:<model>` label. Before any call it works out a token and cost estimate and hands it to
`on_estimate` (the CLI prints it); a run stops before it would pass `max_usd`. A reply that is
not an answer (unparseable, an unknown tool, a refusal) is stored as a labelling failure with
the raw reply and the reason, and gives no label; an intent the endpoint never answered (down,
slow, the round stopped) is listed as not answered and nothing is stored for it. A rerun is
served from the reply cache and adds no second identical label: the label already there is
reused.

`run_student` stores a trained run's predictions as `student:<run>` labels: suggestions, which
the default precedence of a new dataset version never uses.

The estimate: a token is about 4 characters (OpenAI's rule of thumb for English text); a
prompt's tokens are its messages' characters and the tool definitions' JSON characters over 4,
plus 4 tokens per message; a reply's tokens are the characters of the worked example's
reasoning and calls over 4. Prices come from the LLM config; cached prompts cost nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines import label_queue
from pipelines.label_queue import QueueConfig, QueueReason
from pipelines.labels import NOTE_MAX_CHARS, new_label
from workbench.errors import WorkbenchError, listing
from workbench.llm import ChatReply, LLMClient, LLMConfig, Purpose, llm_config, safe_url
from workbench.log_records import INTENT_MAX_CHARS, intent_key
from workbench.progress import Progress
from workbench.store import Store, labels, versions
from workbench.store.labels import LabelFilter, LabelKind
from workbench.store.versions import Split
from workbench.teacher import (
    TeacherAnswer,
    parse_teacher_reply,
    teacher_messages,
    teacher_tools,
    typical_reply_chars,
)
from workbench.tools import Answer

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
_NOTE_CHARS = 400           # of the teacher's reasoning kept in the label's note
_SHOWN_PROBLEMS = 10


class LabellingError(WorkbenchError):
    """Teacher labelling could not label anything: no endpoint, no intents, nothing answered."""


# ------------------------------------------------------------------------------ which intents

@dataclass(frozen=True)
class IntentSelection:
    """Which intents to label: a file, a label-queue reason, or a dataset version's split.
    Exactly one of `intents_file`, `queue` and `split` is given; `version` goes with `split` or
    `queue` (None: the current version)."""

    intents_file: Path | None = None
    queue: str | None = None
    split: Split | None = None
    version: int | None = None
    limit: int | None = None

    def check(self) -> None:
        given = [name for name, value in (("--intents", self.intents_file),
                                          ("--queue", self.queue), ("--split", self.split))
                 if value is not None]
        if len(given) != 1:
            raise WorkbenchError(
                "say which intents to label with one of --intents FILE (one intent a line, or "
                "JSONL with \"intent\"), --queue REASON, or --split train|test (with "
                f"--version V){'' if not given else f'; got {chr(32).join(given)}'}")
        if self.version is not None and self.intents_file is not None:
            raise WorkbenchError("--version goes with --split train|test or --queue REASON, "
                                 "not with --intents")
        if self.split is Split.ALL:
            raise WorkbenchError("--split must be train or test")
        if self.limit is not None and self.limit < 1:
            raise WorkbenchError(f"--limit must be at least 1, got {self.limit}")

    def describe(self) -> str:
        if self.intents_file is not None:
            return f"the intents of {self.intents_file}"
        version = str(self.version) if self.version is not None else "(current)"
        if self.queue is not None:
            return f"the label queue ({self.queue}) of dataset version {version}"
        return f"the {self.split.value if self.split else ''} split of dataset version {version}"


@dataclass(frozen=True)
class Intent:
    key: str
    text: str


def read_intents_file(path: Path) -> list[str]:
    """The intents of a file: one a line, or JSONL with an "intent" string a line (when its
    first line that is not blank starts with "{"). Blank lines are skipped; an error lists
    every bad line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise WorkbenchError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise WorkbenchError(f"{path}: is a folder, not a file of intents") from None
    except UnicodeDecodeError:
        raise WorkbenchError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except OSError as error:
        raise WorkbenchError(f"{path}: cannot be read ({error.strerror or error})") from None
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)
             if line.strip()]
    jsonl = bool(lines) and lines[0][1].startswith("{")
    intents: list[str] = []
    problems: list[str] = []
    for number, line in lines:
        value: Any = line
        if jsonl:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                problems.append(f"line {number}: not JSON ({error.msg})")
                continue
            value = record.get("intent") if isinstance(record, dict) else None
            if not isinstance(value, str) or not value.strip():
                problems.append(f"line {number}: needs an \"intent\" string")
                continue
        value = " ".join(value.split())
        if len(value) > INTENT_MAX_CHARS:
            problems.append(f"line {number}: the intent has {len(value)} characters, the limit "
                            f"is {INTENT_MAX_CHARS}")
            continue
        intents.append(value)
    if problems:
        raise WorkbenchError(listing(f"{path}: {len(problems)} bad line(s)", problems))
    if not intents:
        raise WorkbenchError(f"{path}: no intents in the file")
    return intents


def _unique(texts: Sequence[str], limit: int | None) -> list[Intent]:
    """One Intent per identity (SPEC 3), the first spelling kept, at most `limit`."""
    found: dict[str, Intent] = {}
    for text in texts:
        key = intent_key(text)
        if key and key not in found:
            found[key] = Intent(key, text)
    chosen = list(found.values())
    return chosen if limit is None else chosen[:limit]


def select_intents(selection: IntentSelection, store: Store) -> list[Intent]:
    """The intents a selection names, in order, each once."""
    selection.check()
    if selection.intents_file is not None:
        return _unique(read_intents_file(selection.intents_file), selection.limit)
    if selection.queue is not None:
        return _queue_intents(selection.queue, selection.version, store, selection.limit)
    assert selection.split is not None  # check() made sure
    with store.session(read_only=True) as session:
        version_id = versions.resolve_version(session, selection.version)
        rows = versions.version_rows(session, version_id, selection.split)
    return _unique([row["intent_text"] for row in rows], selection.limit)


def _queue_intents(reason: str, version: int | None, store: Store,
                   limit: int | None) -> list[Intent]:
    """The label queue's intents for a reason, most needing a person first (no claims: a
    teacher run takes them all at once, and a curator's label later still wins)."""
    try:
        chosen = QueueReason(reason)
    except ValueError:
        raise WorkbenchError(f"unknown label queue reason {reason!r}; choose one of "
                             f"{', '.join(r.value for r in QueueReason)}") from None
    queue = label_queue.select(store, QueueConfig(reason=chosen, version=version))
    if not queue.entries:
        raise WorkbenchError(f"the label queue ({chosen.value}) of dataset version "
                             f"{queue.version_id} is empty: nothing to label")
    return _unique([entry.intent_text for entry in queue.entries], limit)


# ------------------------------------------------------------------------------ the estimate

def prompt_tokens_estimate(messages: Sequence[Mapping[str, str]],
                           tools: Sequence[Mapping[str, Any]]) -> int:
    """Prompt tokens of one request: characters / 4, plus 4 per message (see the module doc)."""
    chars = sum(len(message["content"]) for message in messages) + len(json.dumps(tools))
    return math.ceil(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(messages)


def completion_tokens_estimate() -> int:
    """Tokens of a typical reply: the worked example's reasoning and calls."""
    return math.ceil(typical_reply_chars() / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Estimate:
    """What a labelling run will cost, worked out before any call."""

    model: str
    endpoint: str
    intents: int
    cached: int                       # answered already: no call, no cost
    prompt_tokens: int                # of the intents to send
    completion_tokens: int
    cost_usd: float | None            # None: prices not configured
    max_usd: float | None

    @property
    def to_send(self) -> int:
        return self.intents - self.cached

    def describe(self) -> str:
        cost = (f"about ${self.cost_usd:.4f}" if self.cost_usd is not None else
                "cost unknown (set input_usd_per_1k_tokens and output_usd_per_1k_tokens in the "
                "[llm] settings)")
        limit = "" if self.max_usd is None else f", stops before ${self.max_usd:g} (--max-usd)"
        return (f"estimate: {self.intents} intents for {self.model} at {self.endpoint} "
                f"({self.cached} cached, {self.to_send} to send): about {self.prompt_tokens:,} "
                f"prompt + {self.completion_tokens:,} completion tokens, {cost}{limit} "
                f"({CHARS_PER_TOKEN} characters a token)")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "to_send": self.to_send}


def estimate(config: LLMConfig, prompts: Sequence[Sequence[Mapping[str, str]]],
             tools: Sequence[Mapping[str, Any]], cached: Sequence[bool],
             max_usd: float | None = None) -> tuple[Estimate, list[float]]:
    """The run's estimate, and each prompt's own estimated cost (0 for a cached one)."""
    completion = completion_tokens_estimate()
    prompt_total = completion_total = 0
    each: list[float] = []
    for messages, hit in zip(prompts, cached, strict=True):
        if hit:
            each.append(0.0)
            continue
        tokens = prompt_tokens_estimate(messages, tools)
        prompt_total += tokens
        completion_total += completion
        each.append(config.cost_usd(tokens, completion) or 0.0)
    return Estimate(model=config.model, endpoint=safe_url(config.base_url),
                    intents=len(prompts), cached=sum(cached), prompt_tokens=prompt_total,
                    completion_tokens=completion_total,
                    cost_usd=config.cost_usd(prompt_total, completion_total),
                    max_usd=max_usd), each


def _spent(reply: ChatReply[Any], estimated: float) -> float:
    """What one reply cost: its real cost; the estimate when the endpoint answered without
    usage; nothing when cached or never answered."""
    if reply.cached:
        return 0.0
    if reply.cost_usd is not None:
        return reply.cost_usd
    return estimated if reply.text is not None else 0.0


def budget_stop(max_usd: float, each: Sequence[float]
                ) -> Callable[[int, Sequence[ChatReply[Any]]], str | None]:
    """`LLMClient.complete_many`'s `stop_before`: stop before a prompt whose estimated cost,
    added to what the replies so far really cost, would pass `max_usd`."""
    def stop(index: int, replies: Sequence[ChatReply[Any]]) -> str | None:
        spent = sum(_spent(reply, each[i]) for i, reply in enumerate(replies))
        if spent + each[index] > max_usd:
            return (f"--max-usd {max_usd:g} would be passed (spent ${spent:.4f}, the next "
                    f"intent costs about ${each[index]:.4f}); raise --max-usd to go on")
        return None
    return stop


# ------------------------------------------------------------------------------ the run

@dataclass(frozen=True)
class LabelConfig:
    selection: IntentSelection
    max_usd: float | None = None      # stop before spending more than this
    dry_run: bool = False             # the estimate only: no call, nothing stored
    model: str | None = None          # None: the configured model
    temperature: float | None = None  # None: the configured temperature


@dataclass(frozen=True)
class LabelFailure:
    """A reply that gave no label: the reason, and the raw reply."""

    intent: str
    reason: str
    raw: str | None


@dataclass(frozen=True)
class Unanswered:
    """An intent the endpoint did not answer (down, slow, the round stopped): nothing stored."""

    intent: str
    reason: str


@dataclass(frozen=True)
class LabelResult:
    source: str                                     # teacher:<model>
    selection: str
    estimate: Estimate
    dry_run: bool = False
    labelled: int = 0                               # new labels
    reused: int = 0                                 # the same answer was a label already
    cached: int = 0                                 # answers served from the reply cache
    repaired: int = 0                               # answers with a safe repair
    failures: tuple[LabelFailure, ...] = ()
    unanswered: tuple[Unanswered, ...] = ()
    spent_usd: float | None = None                  # None: prices not configured
    prompt_tokens: int = 0
    completion_tokens: int = 0
    label_ids: tuple[int, ...] = ()
    failure_ids: tuple[int, ...] = ()
    stopped: str | None = None                      # why the intents left were not sent

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["estimate"] = self.estimate.to_dict()
        return values


def _llm_settings(config: LabelConfig, llm: LLMConfig | None) -> LLMConfig:
    settings = llm if llm is not None else llm_config()
    if settings is None:
        raise LabellingError(
            "no LLM endpoint is configured: set WORKBENCH_LLM_BASE_URL and WORKBENCH_LLM_MODEL "
            "(and WORKBENCH_LLM_API_KEY), or base_url and model in the [llm] table of "
            ".streamlit/secrets.toml; offline, load a trained run's predictions as "
            "suggestions with `workbench label --student RUN`")
    changes: dict[str, Any] = {}
    if config.model is not None:
        changes["model"] = config.model
    if config.temperature is not None:
        changes["temperature"] = config.temperature
    settings = replace(settings, **changes) if changes else settings
    if config.max_usd is not None:
        if config.max_usd <= 0:
            raise WorkbenchError(f"--max-usd must be more than 0, got {config.max_usd:g}")
        if not settings.priced:
            raise WorkbenchError(
                "--max-usd needs the endpoint's prices: set input_usd_per_1k_tokens and "
                "output_usd_per_1k_tokens in the [llm] table of .streamlit/secrets.toml")
    return settings


def _note(read: TeacherAnswer) -> str:
    reasoning = " ".join(read.reasoning.split())
    if len(reasoning) > _NOTE_CHARS:
        reasoning = reasoning[:_NOTE_CHARS - 3] + "..."
    parts = [reasoning] if reasoning else []
    if read.repairs:
        parts.append("repaired: " + "; ".join(read.repairs))
    note = " | ".join(parts)
    return note if len(note) <= NOTE_MAX_CHARS else note[:NOTE_MAX_CHARS - 3] + "..."


@dataclass
class _Written:
    label_ids: list[int] = field(default_factory=list)
    new: int = 0
    reused: int = 0


def _store_labels(session: Any, kind: LabelKind, author: str,
                  answered: Sequence[tuple[Intent, Answer, str]], now: datetime) -> _Written:
    """New labels for the answers, reusing a label of the same source, intent and answer."""
    written = _Written()
    if not answered:
        return written
    keys = {intent.key for intent, _, _ in answered}
    have: dict[tuple[str, tuple[str | None, ...]], int] = {}
    for row in labels.all_labels(session, LabelFilter(kinds=(kind,), author=author)):
        if row["intent_key"] in keys:
            columns = (row["adjust"], row["selective_adjust"], row["filter"])
            have.setdefault((row["intent_key"], columns), row["label_id"])
    for intent, answer, note in answered:
        label = new_label(intent.text, answer, kind, author, note)
        columns = (label.adjust, label.selective_adjust, label.filter)
        found = have.get((intent.key, columns))
        if found is not None:
            written.reused += 1
            written.label_ids.append(found)
            continue
        label_id = labels.add_label(session, label, now)
        have[(intent.key, columns)] = label_id
        written.new += 1
        written.label_ids.append(label_id)
    return written


def _check_labels(intents: Sequence[Intent], kind: LabelKind, author: str) -> None:
    """Raise now, before any call is paid for, when an intent or the author could not be
    stored as a label."""
    for intent in intents:
        new_label(intent.text, Answer(), kind, author)


def run(config: LabelConfig, store: Store, progress: Progress | None = None,
        llm: LLMConfig | None = None,
        on_estimate: Callable[[Estimate], None] | None = None) -> LabelResult:
    """Label the selected intents with the teacher; see the module doc. `llm` overrides the
    configured endpoint (tests); `on_estimate` is called with the estimate before any call."""
    settings = _llm_settings(config, llm)
    intents = select_intents(config.selection, store)
    _check_labels(intents, LabelKind.TEACHER, settings.model)
    prompts = [teacher_messages(intent.text) for intent in intents]
    tools = teacher_tools()
    source = labels.source_of(LabelKind.TEACHER, settings.model)
    with LLMClient(settings, store) as client:
        cached = client.cached(prompts, tools=tools)
        planned, each = estimate(settings, prompts, tools, cached, config.max_usd)
        if on_estimate is not None:
            on_estimate(planned)
        if config.dry_run:
            return LabelResult(source=source, selection=config.selection.describe(),
                               estimate=planned, dry_run=True)
        stop = None if config.max_usd is None else budget_stop(config.max_usd, each)
        replies = client.complete_many(prompts, parse_teacher_reply, purpose=Purpose.LABEL,
                                       tools=tools, progress=progress, stop_before=stop)
    answered: list[tuple[Intent, Answer, str]] = []
    failed: list[tuple[Intent, LabelFailure]] = []
    unanswered: list[Unanswered] = []
    for intent, reply in zip(intents, replies, strict=True):
        if reply.value is not None:
            answered.append((intent, reply.value.answer, _note(reply.value)))
        elif reply.text is not None:
            failed.append((intent, LabelFailure(intent.text, reply.error or "unparseable reply",
                                                reply.text)))
        else:
            unanswered.append(Unanswered(intent.text, reply.error or "no answer"))
    if not answered and not failed:
        first = unanswered[0].reason if unanswered else "no reply"
        raise LabellingError(f"the teacher answered none of the {len(intents)} intents; nothing "
                             f"was written. The first reason: {first}")
    now = datetime.now(UTC)
    with store.atomic(create=True) as session:
        written = _store_labels(session, LabelKind.TEACHER, settings.model, answered, now)
        failure_ids = [labels.add_failure(session, intent.key, intent.text, settings.model,
                                          failure.reason, failure.raw, now)
                       for intent, failure in failed]
    costs = [reply.cost_usd for reply in replies if not reply.cached and reply.text is not None]
    stopped = next((item.reason.removeprefix("not sent: ") for item in unanswered
                    if item.reason.startswith("not sent: ")), None)
    return LabelResult(
        source=source, selection=config.selection.describe(), estimate=planned,
        labelled=written.new, reused=written.reused,
        cached=sum(reply.cached for reply in replies if reply.value is not None),
        repaired=sum(bool(reply.value.repairs) for reply in replies if reply.value is not None),
        failures=tuple(failure for _, failure in failed), unanswered=tuple(unanswered),
        spent_usd=None if not settings.priced else sum(cost or 0.0 for cost in costs),
        prompt_tokens=sum(reply.prompt_tokens or 0 for reply in replies if not reply.cached),
        completion_tokens=sum(reply.completion_tokens or 0 for reply in replies
                              if not reply.cached),
        label_ids=tuple(written.label_ids), failure_ids=tuple(failure_ids), stopped=stopped)


def describe(result: LabelResult) -> list[str]:
    """The result in a few lines for the terminal."""
    if result.dry_run:
        return [f"dry run: nothing sent, nothing stored ({result.selection})"]
    lines = [(f"{result.source}: {result.labelled} new label(s), {result.reused} already there "
              f"(reused), {len(result.failures)} failed, {len(result.unanswered)} not answered; "
              f"{result.cached} answer(s) from the cache, {result.repaired} repaired")]
    spent = ("cost unknown (no prices configured)" if result.spent_usd is None
             else f"${result.spent_usd:.4f}")
    lines.append(f"spent: {spent}; {result.prompt_tokens:,} prompt + "
                 f"{result.completion_tokens:,} completion tokens")
    if result.failures:
        lines.append("failed replies (kept with the raw reply; no label):")
        lines += [f"  {failure.intent!r}: {failure.reason}"
                  for failure in result.failures[:_SHOWN_PROBLEMS]]
        if len(result.failures) > _SHOWN_PROBLEMS:
            lines.append(f"  ... and {len(result.failures) - _SHOWN_PROBLEMS} more "
                         "(workbench labels failures)")
    if result.unanswered:
        reason = result.stopped or result.unanswered[0].reason
        lines.append(f"not answered, nothing stored for them: {len(result.unanswered)} "
                     f"intent(s) ({reason})")
        lines += [f"  {item.intent!r}" for item in result.unanswered[:_SHOWN_PROBLEMS]]
        if len(result.unanswered) > _SHOWN_PROBLEMS:
            lines.append(f"  ... and {len(result.unanswered) - _SHOWN_PROBLEMS} more")
        lines.append("rerun to send them (the answers so far are cached and cost nothing)")
    return lines


# ------------------------------------------------------------------------------ student labels

@dataclass(frozen=True)
class StudentLabelConfig:
    run: str | None                   # a run id or unique prefix; None: the latest run
    selection: IntentSelection


@dataclass(frozen=True)
class StudentLabelResult:
    run_id: str
    source: str                       # student:<run>
    selection: str
    intents: int
    labelled: int
    reused: int
    label_ids: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_student(config: StudentLabelConfig, store: Store,
                progress: Progress | None = None) -> StudentLabelResult:
    """Store a trained run's predictions for the selected intents as `student:<run>` labels
    (suggestions, never chosen by the default precedence); an identical one is reused."""
    from workbench.store import runs

    intents = select_intents(config.selection, store)
    row, student = runs.load_run(store, config.run)
    run_id = str(row["run_id"])
    _check_labels(intents, LabelKind.STUDENT, run_id)
    if progress is not None:
        progress("predict", 0, len(intents))
    answers = student.predict([intent.text for intent in intents])
    if progress is not None:
        progress("predict", len(intents), len(intents))
    note = f"predicted by run {run_id} ({row['student']}, trained on dataset version " \
           f"{row['version_id']})"
    with store.atomic() as session:
        written = _store_labels(session, LabelKind.STUDENT, run_id,
                                [(intent, answer, note)
                                 for intent, answer in zip(intents, answers, strict=True)],
                                datetime.now(UTC))
    return StudentLabelResult(run_id=run_id, source=labels.source_of(LabelKind.STUDENT, run_id),
                              selection=config.selection.describe(), intents=len(intents),
                              labelled=written.new, reused=written.reused,
                              label_ids=tuple(written.label_ids))
