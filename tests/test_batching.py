"""The serving batcher: requests that wait for a busy student go together in its next call."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from workbench.serving.batching import Batcher


class Gated:
    """A fake student: upper-cases intents, records its calls, blocks the first call until
    released, fails on intents containing 'boom'."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def __call__(self, intents: Sequence[str]) -> list[str]:
        self.calls.append(list(intents))
        self.entered.set()
        self.release.wait(10)
        if any("boom" in intent for intent in intents):
            raise ValueError("boom")
        return [intent.upper() for intent in intents]


def queued(batcher: Batcher, n: int) -> None:
    """Wait (bounded) until `n` requests wait behind the busy student."""
    for _ in range(1000):
        if len(batcher._pending) >= n:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"{len(batcher._pending)} requests queued, expected {n}")


def behind_a_busy_student(pool: ThreadPoolExecutor, student: Gated, batcher: Batcher,
                          intents: list[str]) -> tuple[Future, list[Future]]:
    """"first" keeps the student busy while `intents` queue behind it; then it is released.
    The futures of "first" and of the intents, in order."""
    student.release.clear()
    first = pool.submit(batcher, "first")
    assert student.entered.wait(10)          # the student is busy with "first"
    rest = [pool.submit(batcher, intent) for intent in intents]
    queued(batcher, len(intents))
    student.release.set()
    return first, rest


def test_an_idle_student_answers_one_intent_in_its_own_call() -> None:
    student = Gated()
    batcher = Batcher(student)
    assert batcher("warm") == "WARM"
    assert batcher("cool") == "COOL"
    assert student.calls == [["warm"], ["cool"]]


def test_requests_that_wait_for_a_busy_student_go_together_in_its_next_call() -> None:
    student = Gated()
    batcher = Batcher(student)
    with ThreadPoolExecutor(8) as pool:
        first, rest = behind_a_busy_student(pool, student, batcher,
                                            [f"intent {i}" for i in range(6)])
        assert first.result(10) == "FIRST"
        assert [f.result(10) for f in rest] == [f"INTENT {i}" for i in range(6)]
    assert student.calls[0] == ["first"]
    assert sorted(student.calls[1]) == sorted(f"intent {i}" for i in range(6))
    assert len(student.calls) == 2


def test_a_batch_is_never_larger_than_max_batch() -> None:
    student = Gated()
    batcher = Batcher(student, max_batch=4)
    with ThreadPoolExecutor(12) as pool:
        first, rest = behind_a_busy_student(pool, student, batcher, [f"i{i}" for i in range(10)])
        assert [f.result(10) for f in [first, *rest]] == ["FIRST"] + [f"I{i}" for i in range(10)]
    assert [len(call) for call in student.calls] == [1, 4, 4, 2]


def test_an_intent_that_breaks_the_student_fails_alone() -> None:
    student = Gated()
    batcher = Batcher(student)
    with ThreadPoolExecutor(8) as pool:
        first, rest = behind_a_busy_student(pool, student, batcher, ["a", "b boom", "c"])
        assert first.result(10) == "FIRST"
        assert rest[0].result(10) == "A" and rest[2].result(10) == "C"
        with pytest.raises(ValueError, match="boom"):
            rest[1].result(10)
    # the batch of three failed, then each was tried alone
    assert sorted(map(tuple, student.calls[2:])) == [("a",), ("b boom",), ("c",)]


def test_a_student_that_returns_the_wrong_number_of_answers_is_an_error() -> None:
    batcher = Batcher(lambda intents: ["only one", "two"])
    with pytest.raises(RuntimeError, match="2 answers for 1 intents"):
        batcher("x")


def test_an_interrupted_call_leaves_nobody_waiting() -> None:
    def interrupted(intents: Sequence[str]) -> list[str]:
        raise KeyboardInterrupt

    batcher: Batcher[str] = Batcher(interrupted)
    with pytest.raises(KeyboardInterrupt):
        batcher("x")
    assert batcher._pending == []


def test_many_threads_each_get_their_own_answer() -> None:
    batcher = Batcher(lambda intents: [f"<{intent}>" for intent in intents], max_batch=7)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(batcher, [str(i) for i in range(500)]))
    assert answers == [f"<{i}>" for i in range(500)]


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Batcher(lambda intents: intents, max_batch=0)
