"""`workbench label` against the local fake teacher (tests/fake_teacher.py): 100 new intents
labelled with the estimate printed before any call, a rerun served from the cache with no call
and no second label, replies that are not answers kept as failures with their reasons and raw
text, --max-usd, the endpoint down or slow, the intents chosen from a file or a version's split,
and a trained run's predictions stored as student suggestions."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines import label
from tests.conftest import curated_store
from tests.fake_teacher import (
    COMPLETION_TOKENS,
    MODEL,
    PROMPT_TOKENS,
    FakeTeacher,
    fake_teacher,
    good_calls,
)
from workbench import tools
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.llm import LLMConfig
from workbench.store import Store
from workbench.store.versions import Split
from workbench.teacher import EXAMPLE_CALLS, EXAMPLE_REASONING, teacher_messages, teacher_tools

IN_PRICE, OUT_PRICE = 0.5, 1.5          # dollars per 1k tokens
REPLY_USD = (PROMPT_TOKENS * IN_PRICE + COMPLETION_TOKENS * OUT_PRICE) / 1000   # 0.72


@pytest.fixture
def teacher() -> Iterator[FakeTeacher]:
    with fake_teacher() as fake:
        yield fake


def settings(fake: FakeTeacher, **overrides: Any) -> LLMConfig:
    values: dict[str, Any] = {"base_url": fake.base_url, "model": MODEL, "timeout_s": 5.0,
                              "max_retries": 0, "max_total_s": 10.0, "temperature": 0.0,
                              "input_usd_per_1k_tokens": IN_PRICE,
                              "output_usd_per_1k_tokens": OUT_PRICE}
    return LLMConfig(**(values | overrides))


def intents_file(folder: Path, intents: list[str], name: str = "intents.txt") -> Path:
    path = folder / name
    path.write_text("".join(f"{text}\n" for text in intents), encoding="utf-8")
    return path


def new_intents(n: int) -> list[str]:
    return [f"brand new look number {i}" for i in range(n)]


def from_file(path: Path, **config: Any) -> label.LabelConfig:
    return label.LabelConfig(selection=label.IntentSelection(intents_file=path), **config)


def stored_labels(store: Store) -> list[dict]:
    return store.query("SELECT intent_key, intent_text, kind, author, source, adjust, "
                       "selective_adjust, filter, note FROM labels ORDER BY label_id")


def expected_columns(intent: str) -> tuple[str | None, str | None, str | None]:
    answer = tools.parse_answer(good_calls(intent))
    return answer.tool_json("adjust"), answer.tool_json("selective_adjust"), \
        answer.tool_json("filter")


def estimated_prompt_tokens(intent: str) -> int:
    """The documented rule, worked out here on its own: characters / 4, plus 4 a message."""
    messages = teacher_messages(intent)
    chars = sum(len(m["content"]) for m in messages) + len(json.dumps(teacher_tools()))
    return math.ceil(chars / 4) + 4 * len(messages)


def estimated_completion_tokens() -> int:
    chars = len(EXAMPLE_REASONING) + sum(len(tool) + len(json.dumps(arguments))
                                         for tool, arguments in EXAMPLE_CALLS.items())
    return math.ceil(chars / 4)


# --- the run: 100 new intents ----------------------------------------------------------

def test_100_new_intents_are_labelled_after_the_estimate_and_a_rerun_is_served_from_the_cache(
        teacher: FakeTeacher, store: Store, tmp_path: Path):
    texts = new_intents(100)
    path = intents_file(tmp_path, texts)
    seen: list[tuple[label.Estimate, int]] = []

    def on_estimate(estimate: label.Estimate) -> None:
        seen.append((estimate, teacher.calls))

    result = label.run(from_file(path), store, llm=settings(teacher), on_estimate=on_estimate)

    # the estimate came first, before any call, and is the documented rule's
    [(estimate, calls_then)] = seen
    assert calls_then == 0
    prompt = sum(estimated_prompt_tokens(text) for text in texts)
    completion = 100 * estimated_completion_tokens()
    assert (estimate.intents, estimate.cached, estimate.to_send) == (100, 0, 100)
    assert (estimate.prompt_tokens, estimate.completion_tokens) == (prompt, completion)
    assert estimate.cost_usd == pytest.approx((prompt * IN_PRICE + completion * OUT_PRICE) / 1000)

    assert teacher.calls == 100
    assert all(request["tools"] == teacher_tools() for request in teacher.requests)
    assert (result.labelled, result.reused, result.cached) == (100, 0, 0)
    assert result.failures == () and result.unanswered == ()
    assert result.spent_usd == pytest.approx(100 * REPLY_USD)
    rows = stored_labels(store)
    assert [row["intent_text"] for row in rows] == texts
    assert {row["source"] for row in rows} == {f"teacher:{MODEL}"}
    assert {(row["kind"], row["author"]) for row in rows} == {("teacher", MODEL)}
    for row in rows:
        assert (row["adjust"], row["selective_adjust"], row["filter"]) == \
            expected_columns(row["intent_text"])
    assert rows[0]["note"] == f"{texts[0]} wants a look; here are the calls."

    # the rerun: estimate says all cached, no call, no second label (the first ones reused)
    seen.clear()
    again = label.run(from_file(path), store, llm=settings(teacher), on_estimate=on_estimate)
    assert teacher.calls == 100
    assert seen[0][0].cached == 100 and seen[0][0].cost_usd == 0
    assert (again.labelled, again.reused, again.cached) == (0, 100, 100)
    assert again.spent_usd == 0
    assert sorted(again.label_ids) == sorted(result.label_ids)
    assert len(stored_labels(store)) == 100


def test_replies_cached_by_an_interrupted_run_become_labels_without_a_call(
        teacher: FakeTeacher, store: Store, tmp_path: Path):
    from workbench.llm import LLMClient, Purpose
    from workbench.teacher import parse_teacher_reply

    texts = new_intents(3)
    # a run that was killed after its replies were cached, before its labels were written
    with LLMClient(settings(teacher), store) as client:
        client.complete_many([teacher_messages(t) for t in texts], parse_teacher_reply,
                             purpose=Purpose.LABEL, tools=teacher_tools())
    assert teacher.calls == 3 and stored_labels(store) == []
    result = label.run(from_file(intents_file(tmp_path, texts)), store, llm=settings(teacher))
    assert teacher.calls == 3
    assert (result.labelled, result.cached, result.reused) == (3, 3, 0)
    assert [row["intent_text"] for row in stored_labels(store)] == texts


def test_the_cli_prints_the_estimate_first_and_lists_failures_with_reasons(
        teacher: FakeTeacher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]):
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml of the checkout
    monkeypatch.setenv("WORKBENCH_LLM_BASE_URL", teacher.base_url)
    monkeypatch.setenv("WORKBENCH_LLM_MODEL", MODEL)
    monkeypatch.delenv("WORKBENCH_LLM_API_KEY", raising=False)
    texts = new_intents(40)
    bad = {"bad malformed": "malformed", "bad unknown tool": "unknown_tool",
           "bad refusal": "refusal", "bad twice": "twice", "bad out of range": "out_of_range"}
    teacher.modes.update(bad)
    for i, text in enumerate(bad):          # spread out: never three failures in a row
        texts.insert(3 + 8 * i, text)
    path = intents_file(tmp_path, texts)
    db = tmp_path / "w.duckdb"

    assert main(["label", "--db", str(db), "--intents", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"estimate: 45 intents for {MODEL} at {teacher.base_url} "
                             "(0 cached, 45 to send): about ")
    assert "cost unknown" in out[0]
    assert out[1] == (f"teacher:{MODEL}: 40 new label(s), 0 already there (reused), 5 failed, "
                      "0 not answered; 0 answer(s) from the cache, 0 repaired")
    assert "failed replies (kept with the raw reply; no label):" in out
    listed = "\n".join(out)
    assert "'bad malformed': unparseable reply: the arguments of adjust are not JSON" in listed
    assert "'bad unknown tool': unparseable reply: unknown tool 'vignette'" in listed
    assert "'bad refusal': unparseable reply: the model refused: I can't help" in listed
    assert "'bad twice': unparseable reply: adjust was called 2 times" in listed
    assert ("'bad out of range': unparseable reply: adjust.temperature: must be in [-100, 100] "
            "(got 150)") in listed

    store = Store(db)
    assert len(stored_labels(store)) == 40
    failures = store.query("SELECT intent_text, model, reason, raw FROM label_failures "
                           "ORDER BY failure_id")
    assert [f["intent_text"] for f in failures] == list(bad)
    assert {f["model"] for f in failures} == {MODEL}
    malformed = json.loads(failures[0]["raw"])
    assert malformed["tool_calls"] == [{"name": "adjust", "arguments": '{"temperature": 30,'}]
    assert json.loads(failures[2]["raw"])["refusal"] == "I can't help with that request."

    # the rerun: only the failures are asked again (nothing of theirs was cached); as every
    # intent it sends fails, the client's circuit breaker stops it after three in a row
    assert main(["label", "--db", str(db), "--intents", str(path), "--no-progress",
                 "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("estimate: 45 intents for")   # beside --json: on stderr
    assert "(40 cached, 5 to send)" in captured.err
    result = json.loads(captured.out)
    assert (result["labelled"], result["reused"], result["cached"]) == (0, 40, 40)
    assert [f["intent"] for f in result["failures"]] == list(bad)[:3]
    assert [u["intent"] for u in result["unanswered"]] == list(bad)[3:]
    assert result["stopped"].startswith("the round stopped after 3 failed intents in a row")
    assert teacher.intents_asked()[45:] == list(bad)[:3]


# --- replies --------------------------------------------------------------------------------

def test_json_in_text_both_and_repairable_replies_give_labels_with_the_repairs_noted(
        teacher: FakeTeacher, store: Store, tmp_path: Path):
    teacher.modes.update({"as text": "json_text", "with both": "both", "in strings": "strings"})
    path = intents_file(tmp_path, ["as text", "with both", "in strings"])
    result = label.run(from_file(path), store, llm=settings(teacher))
    assert (result.labelled, result.repaired, result.failures) == (3, 1, ())
    rows = {row["intent_text"]: row for row in stored_labels(store)}
    for text in ("as text", "with both"):   # the calls win over the JSON in the text
        assert (rows[text]["adjust"], rows[text]["selective_adjust"], rows[text]["filter"]) == \
            expected_columns(text)
    repaired = rows["in strings"]
    assert json.loads(repaired["adjust"])["temperature"] == -20
    assert json.loads(repaired["adjust"])["exposure"] == 5
    assert json.loads(repaired["filter"]) == {"name": "warm_Golden", "intensity": 40}
    assert repaired["note"] == (
        'in strings wants a look; here are the calls. | repaired: adjust.temperature "-20" (a '
        'string) read as -20; filter.name "WARM_golden" read as \'warm_Golden\'; '
        'filter.intensity "40" (a string) read as 40')


def test_a_chatty_reply_is_a_failure_and_gives_no_label(teacher: FakeTeacher, store: Store,
                                                         tmp_path: Path):
    teacher.modes["chat"] = "chatty"
    path = intents_file(tmp_path, ["chat", "fine"])
    result = label.run(from_file(path), store, llm=settings(teacher))
    assert result.labelled == 1
    [failure] = result.failures
    assert failure.intent == "chat"
    assert "no tool calls and no JSON answer in its text (it said 'What a lovely idea!" \
        in failure.reason
    assert json.loads(failure.raw or "")["content"].startswith("What a lovely idea!")
    assert [row["intent_text"] for row in stored_labels(store)] == ["fine"]


def test_another_model_or_temperature_is_another_teacher_source_and_cache_entry(
        teacher: FakeTeacher, store: Store, tmp_path: Path):
    path = intents_file(tmp_path, ["one"])
    label.run(from_file(path), store, llm=settings(teacher))
    other = label.run(from_file(path, model="other-model"), store, llm=settings(teacher))
    warmer = label.run(from_file(path, temperature=1.0), store, llm=settings(teacher))
    assert [r["model"] for r in teacher.requests] == [MODEL, "other-model", MODEL]
    assert [r["temperature"] for r in teacher.requests] == [0.0, 0.0, 1.0]
    assert other.source == "teacher:other-model" and other.labelled == 1
    # the same answer from the same model at another temperature: the label is reused
    assert (warmer.labelled, warmer.reused, warmer.cached) == (0, 1, 0)
    assert [row["source"] for row in stored_labels(store)] == [f"teacher:{MODEL}",
                                                               "teacher:other-model"]


# --- cost ---------------------------------------------------------------------------------------

def test_max_usd_stops_before_the_limit_would_be_passed(teacher: FakeTeacher, store: Store,
                                                        tmp_path: Path):
    texts = new_intents(10)
    path = intents_file(tmp_path, texts)
    each = [(estimated_prompt_tokens(t) * IN_PRICE + estimated_completion_tokens() * OUT_PRICE)
            / 1000 for t in texts]
    limit = 3.0
    # send while what was really spent plus the next intent's estimate stays within the limit
    sent = 0
    while sent < len(texts) and sent * REPLY_USD + each[sent] <= limit:
        sent += 1
    assert 0 < sent < len(texts)

    result = label.run(from_file(path, max_usd=limit), store, llm=settings(teacher))
    assert teacher.calls == sent
    assert result.labelled == sent
    assert result.spent_usd == pytest.approx(sent * REPLY_USD)
    assert result.spent_usd <= limit
    assert [item.intent for item in result.unanswered] == texts[sent:]
    assert result.stopped is not None and result.stopped.startswith("--max-usd 3 would be passed")
    assert "raise --max-usd" in result.stopped


def test_max_usd_needs_prices_and_is_refused_before_any_call(teacher: FakeTeacher, store: Store,
                                                             tmp_path: Path):
    path = intents_file(tmp_path, ["one"])
    unpriced = settings(teacher, input_usd_per_1k_tokens=0, output_usd_per_1k_tokens=0)
    with pytest.raises(WorkbenchError, match="--max-usd needs the endpoint's prices"):
        label.run(from_file(path, max_usd=1.0), store, llm=unpriced)
    assert teacher.calls == 0


def test_a_dry_run_prints_the_estimate_and_sends_nothing(teacher: FakeTeacher, store: Store,
                                                         tmp_path: Path):
    path = intents_file(tmp_path, ["one", "two"])
    result = label.run(from_file(path, dry_run=True), store, llm=settings(teacher))
    assert result.dry_run and result.estimate.to_send == 2
    assert teacher.calls == 0 and not store.exists


# --- the endpoint down or slow --------------------------------------------------------------

def test_the_endpoint_going_down_keeps_the_answered_labels_and_lists_the_rest(
        teacher: FakeTeacher, store: Store, tmp_path: Path):
    texts = new_intents(10)
    teacher.modes.update({text: "down" for text in texts[4:]})
    path = intents_file(tmp_path, texts)
    result = label.run(from_file(path), store, llm=settings(teacher))
    assert result.labelled == 4
    assert [row["intent_text"] for row in stored_labels(store)] == texts[:4]
    assert [item.intent for item in result.unanswered] == texts[4:]
    # three failed in a row (each already retried as configured), then the round stopped
    assert teacher.calls == 4 + 3
    assert "server error (HTTP 503)" in result.unanswered[0].reason
    assert result.stopped is not None and "stopped after 3 failed intents in a row" in \
        result.stopped
    assert store.query("SELECT count(*) AS n FROM label_failures") == [{"n": 0}]
    lines = label.describe(result)
    assert any(line.startswith("not answered, nothing stored for them: 6 intent(s)")
               for line in lines)


def test_an_endpoint_that_answers_nothing_is_a_clear_error_and_writes_no_label(
        teacher: FakeTeacher, store: Store, tmp_path: Path):
    teacher.modes.update({text: "down" for text in ("a", "b", "c", "d")})
    path = intents_file(tmp_path, ["a", "b", "c", "d"])
    with pytest.raises(label.LabellingError,
                       match=r"the teacher answered none of the 4 intents; nothing was written"):
        label.run(from_file(path), store, llm=settings(teacher))
    assert store.query("SELECT count(*) AS n FROM labels") == [{"n": 0}]


def test_the_cli_says_so_in_one_line_when_the_endpoint_is_down(
        teacher: FakeTeacher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]):
    monkeypatch.chdir(tmp_path)  # the endpoint from .streamlit/secrets.toml, no retries
    for name in ("WORKBENCH_LLM_BASE_URL", "WORKBENCH_LLM_MODEL", "WORKBENCH_LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        f'[llm]\nbase_url = "{teacher.base_url}"\nmodel = "{MODEL}"\nmax_retries = 0\n')
    teacher.modes.update({"a": "down", "b": "down", "c": "down"})
    path = intents_file(tmp_path, ["a", "b", "c"])
    db = tmp_path / "w.duckdb"
    assert main(["label", "--db", str(db), "--intents", str(path), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith("estimate: 3 intents")
    [line] = captured.err.splitlines()
    assert line.startswith("error: the teacher answered none of the 3 intents; nothing was "
                           "written. The first reason: the endpoint had a server error (HTTP 503)")
    assert Store(db).query("SELECT count(*) AS n FROM labels") == [{"n": 0}]


def test_a_slow_endpoint_is_cut_off_in_bounded_time(teacher: FakeTeacher, store: Store,
                                                    tmp_path: Path):
    teacher.modes["slow one"] = "slow"
    teacher.slow_s = 30
    path = intents_file(tmp_path, ["quick one", "slow one", "quick two"])
    start = time.monotonic()
    result = label.run(from_file(path), store,
                       llm=settings(teacher, timeout_s=0.5, max_total_s=1.0))
    assert time.monotonic() - start < 10
    assert result.labelled == 2
    [slow] = result.unanswered
    assert slow.intent == "slow one" and "no complete answer" in slow.reason


def test_no_endpoint_configured_says_how_to_work_offline(store: Store, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    for name in ("WORKBENCH_LLM_BASE_URL", "WORKBENCH_LLM_MODEL", "WORKBENCH_LLM_API_KEY",
                 "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    path = intents_file(tmp_path, ["one"])
    with pytest.raises(label.LabellingError, match="workbench label --student RUN"):
        label.run(from_file(path), store)


# --- which intents ------------------------------------------------------------------------------

def test_intents_files_one_a_line_or_jsonl_each_intent_once(tmp_path: Path):
    plain = intents_file(tmp_path, ["Cool  Morning", "", "cool morning", "warm dusk"])
    assert label.read_intents_file(plain) == ["Cool Morning", "cool morning", "warm dusk"]
    chosen = label.select_intents(label.IntentSelection(intents_file=plain), Store(tmp_path / "x"))
    assert [(i.key, i.text) for i in chosen] == [("cool morning", "Cool Morning"),
                                                 ("warm dusk", "warm dusk")]
    jsonl = tmp_path / "intents.jsonl"
    jsonl.write_text('{"intent": "golden hour", "id": 1}\n\n{"intent": "noir"}\n')
    assert label.read_intents_file(jsonl) == ["golden hour", "noir"]
    limited = label.IntentSelection(intents_file=plain, limit=1)
    assert [i.text for i in label.select_intents(limited, Store(tmp_path / "x"))] == \
        ["Cool Morning"]


@pytest.mark.parametrize(("content", "complaint"), [
    ('{"intent": "ok"}\nnot json\n{"text": "x"}\n',
     r"2 bad line\(s\):\n  line 2: not JSON .*\n  line 3: needs an \"intent\" string"),
    ("x" * 501 + "\n", "line 1: the intent has 501 characters, the limit is 500"),
    ("\n \n", "no intents in the file"),
])
def test_bad_intents_files_are_clear_errors_before_any_call(
        content: str, complaint: str, teacher: FakeTeacher, store: Store, tmp_path: Path):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(WorkbenchError, match=complaint):
        label.run(from_file(path), store, llm=settings(teacher))
    assert teacher.calls == 0


def test_a_missing_file_and_a_missing_choice_are_clear_errors(tmp_path: Path, store: Store):
    with pytest.raises(WorkbenchError, match="no such file"):
        label.read_intents_file(tmp_path / "nope.txt")
    with pytest.raises(WorkbenchError, match="say which intents to label"):
        label.select_intents(label.IntentSelection(), store)
    with pytest.raises(WorkbenchError, match="--version goes with --split train|test or --queue"):
        label.select_intents(label.IntentSelection(intents_file=tmp_path / "x", version=1), store)
    with pytest.raises(WorkbenchError, match="unknown label queue reason 'vibes'; choose one of "
                                             "teacher_disagreement, few_requests"):
        label.select_intents(label.IntentSelection(queue="vibes"), store)


def test_a_versions_split_is_labelled(teacher: FakeTeacher, tmp_path: Path):
    store = curated_store(tmp_path)
    tests = [row["intent_text"] for row in store.query(
        "SELECT intent_text FROM dataset_rows WHERE version_id = 1 AND split = 'test' "
        "ORDER BY intent_key")]
    assert len(tests) == 3
    result = label.run(label.LabelConfig(selection=label.IntentSelection(
        split=Split.TEST, version=1)), store, llm=settings(teacher))
    assert result.labelled == 3 and teacher.intents_asked() == tests
    assert result.selection == "the test split of dataset version 1"
    teacher_rows = [row for row in stored_labels(store) if row["kind"] == "teacher"]
    assert [row["intent_text"] for row in teacher_rows] == tests


def test_the_label_queue_is_labelled_most_needing_first(teacher: FakeTeacher, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]):
    from pipelines.label_queue import QueueConfig, QueueReason, select

    store = curated_store(tmp_path, second_outputs=True)  # every intent: two teacher outputs
    queue = select(store, QueueConfig(reason=QueueReason.TEACHER_DISAGREEMENT))
    assert len(queue.entries) > 2
    result = label.run(label.LabelConfig(selection=label.IntentSelection(
        queue="teacher_disagreement", limit=2)), store, llm=settings(teacher))
    assert teacher.intents_asked() == [entry.intent_text for entry in queue.entries[:2]]
    assert result.labelled == 2
    assert result.selection == ("the label queue (teacher_disagreement) of dataset version "
                                "(current)")
    with pytest.raises(SystemExit):
        main(["label", "--db", str(tmp_path / "w.duckdb"), "--queue", "vibes"])
    assert "invalid choice: 'vibes'" in capsys.readouterr().err


# --- student suggestions ----------------------------------------------------------------------

def test_a_runs_predictions_become_student_suggestions_once(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]):
    from pipelines import train

    store = curated_store(tmp_path)
    trained = train.run(train.TrainConfig(student="retrieval"), store)
    training = store.query(
        "SELECT intent_text, adjust, selective_adjust, filter FROM dataset_rows "
        "WHERE version_id = 1 AND split = 'train' ORDER BY intent_key LIMIT 4")
    path = intents_file(tmp_path, [row["intent_text"] for row in training])
    db = str(tmp_path / "w.duckdb")

    assert main(["label", "--db", db, "--student", trained.run_id[:8], "--intents", str(path),
                 "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith(
        f"student:{trained.run_id}: 4 new suggestion(s), 0 already there (reused)")
    rows = [row for row in stored_labels(store) if row["kind"] == "student"]
    assert {row["source"] for row in rows} == {f"student:{trained.run_id}"}
    # the retrieval student answers its own training intents with their ground truth
    assert [(r["intent_text"], r["adjust"], r["selective_adjust"], r["filter"]) for r in rows] == \
        [(r["intent_text"], r["adjust"], r["selective_adjust"], r["filter"]) for r in training]
    assert rows[0]["note"].startswith(f"predicted by run {trained.run_id} (retrieval")

    again = label.run_student(label.StudentLabelConfig(
        run=trained.run_id, selection=label.IntentSelection(intents_file=path)), store)
    assert (again.labelled, again.reused) == (0, 4)
    assert main(["label", "--db", db, "--student", trained.run_id, "--intents", str(path),
                 "--max-usd", "1"]) == 2
    assert "--max-usd apply to teacher labelling, not to --student" in capsys.readouterr().err
