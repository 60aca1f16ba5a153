"""Requests of several edits, answered clause by clause ("brighter and less saturated").

A student reads a request as one piece: the heads student's sentence embedding of "brighter and
less saturated" sits between the two edits and its bag of words sums both, and about one
direction failure in three of the heads student was such a request losing one of its edits
(`tests/directions.jsonl`). Each clause alone is a request the student answers well, so:
split the request where people join edits (",", ";", "and", "but", "then", "plus", "also",
"&"), answer every clause, and give each adjust slider the value of the clause that moves it
most (the largest magnitude, its sign kept): "brighter" sets the exposure, "less saturated" the
saturation, and neither drags the other's slider back to its own jitter. Selective adjust and
the filter stay those of the whole request (a filter names a look, not one clause's edit).

A look name that contains a joining word ("black and white", "teal and orange") is split too;
its halves name colours that the clause answers move the same way, and on the paper-scale demo
test split the heads student's Overall did not fall (.7954 whole, .7985 by clauses) while its
share of directions right rose from 89.2% to 91.4% (the measurements in the README). The
seq2seq student gained nothing from it (85.3% -> 84.9%), so only the heads student uses it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from workbench.tools import ADJUST_KEYS, Answer, parse_answer

_JOINS = re.compile(r"\s*(?:[,;&]|\b(?:and|but|then|plus|also)\b)\s*", re.IGNORECASE)


def split_clauses(text: str) -> list[str]:
    """The clauses of a request, in order; one clause (the text) when nothing joins two."""
    parts = [part.strip() for part in _JOINS.split(text)]
    return [part for part in parts if part] or [text]


def merge_adjust(whole: Answer, parts: Sequence[Answer]) -> Answer:
    """`whole` with each adjust slider taken from the part that moves it most (ties: the
    earlier part); `whole` itself when no part uses adjust."""
    adjusting = [part.adjust for part in parts if part.adjust is not None]
    if not adjusting:
        return whole
    sliders = {}
    for key in ADJUST_KEYS:
        values = [adjust.get(key, 0) for adjust in adjusting]
        sliders[key] = max(values, key=abs)
    merged = whole.to_dict()
    merged["adjust"] = sliders
    return parse_answer(merged)


def answer_by_clauses(intents: Sequence[str], whole: Sequence[Answer],
                      predict: Callable[[Sequence[str]], list[Answer]]) -> list[Answer]:
    """The answers of `intents`, those of several clauses merged from their clauses' answers
    (`predict` is called once, on all the clauses together); `whole` are the answers to the
    requests as a whole."""
    split = [split_clauses(text) for text in intents]
    clauses = [clause for parts in split if len(parts) > 1 for clause in parts]
    if not clauses:
        return list(whole)
    answered = iter(predict(clauses))
    merged = []
    for answer, parts in zip(whole, split, strict=True):
        if len(parts) == 1:
            merged.append(answer)
        else:
            merged.append(merge_adjust(answer, [next(answered) for _ in parts]))
    return merged
