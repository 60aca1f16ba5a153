"""Requests of several edits answered clause by clause (workbench.students.clauses)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from workbench.students.clauses import answer_by_clauses, merge_adjust, split_clauses
from workbench.tools import ADJUST_KEYS, Answer, parse_answer


@pytest.mark.parametrize(("text", "clauses"), [
    ("brighter and less saturated", ["brighter", "less saturated"]),
    ("warmer but LESS saturated", ["warmer", "LESS saturated"]),
    ("exposure +1, saturation -20", ["exposure +1", "saturation -20"]),
    ("more contrast; less colour & a bit warmer then sharpen",
     ["more contrast", "less colour", "a bit warmer", "sharpen"]),
    ("golden hour", ["golden hour"]),
    ("brandy candle", ["brandy candle"]),          # "and" inside a word is not a join
    ("and", ["and"]),                               # nothing but a join: the text itself
    ("  , warm ,  ", ["warm"]),
])
def test_split_clauses(text: str, clauses: list[str]) -> None:
    assert split_clauses(text) == clauses


def _adjust(**sliders: int) -> dict[str, int]:
    return {key: sliders.get(key, 0) for key in ADJUST_KEYS}


def _answer(adjust: dict[str, int] | None, filter_name: str | None = None) -> Answer:
    return parse_answer({"adjust": adjust, "selective_adjust": None,
                         "filter": {"name": filter_name, "intensity": 40} if filter_name
                         else None})


def test_each_slider_comes_from_the_clause_that_moves_it_most() -> None:
    whole = _answer(_adjust(exposure=9, saturation=-20, temperature=-10), "vivid_Pop")
    brighter = _answer(_adjust(exposure=45, saturation=-4, temperature=-2))
    less_saturated = _answer(_adjust(exposure=2, saturation=-54, temperature=3))
    merged = merge_adjust(whole, [brighter, less_saturated])
    assert merged.adjust == _adjust(exposure=45, saturation=-54, temperature=3)
    assert merged.filter == whole.filter          # the filter is the whole request's


def test_ties_go_to_the_earlier_clause_and_a_clause_without_adjust_is_skipped() -> None:
    whole = _answer(_adjust(contrast=1))
    first = _answer(_adjust(contrast=-7))
    second = _answer(None, "vivid_Pop")
    third = _answer(_adjust(contrast=7))
    assert merge_adjust(whole, [first, second, third]).adjust == _adjust(contrast=-7)
    assert merge_adjust(whole, [second]) == whole   # no clause adjusts: the whole answer


def test_answer_by_clauses_asks_once_for_every_clause_and_keeps_single_requests() -> None:
    calls: list[list[str]] = []
    table = {"brighter": _adjust(exposure=40), "less saturated": _adjust(saturation=-50),
             "warm": _adjust(temperature=30), "sharp": _adjust(sharpen=20)}

    def predict(texts: Sequence[str]) -> list[Answer]:
        calls.append(list(texts))
        return [_answer(table[text]) for text in texts]

    intents = ["brighter and less saturated", "golden hour", "warm, sharp"]
    whole: list[Any] = [_answer(_adjust(exposure=5)), _answer(_adjust(contrast=3)),
                        _answer(None)]
    answers = answer_by_clauses(intents, whole, predict)
    assert calls == [["brighter", "less saturated", "warm", "sharp"]]
    assert answers[0].adjust == _adjust(exposure=40, saturation=-50)
    assert answers[1] is whole[1]
    assert answers[2].adjust == _adjust(temperature=30, sharpen=20)


def test_no_call_when_no_request_has_several_clauses() -> None:
    def predict(texts: Sequence[str]) -> list[Answer]:
        raise AssertionError("not called")

    whole = [_answer(_adjust(exposure=5))]
    assert answer_by_clauses(["golden hour"], whole, predict) == whole
