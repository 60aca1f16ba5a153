"""Typos corrected against the training vocabulary (workbench.students.spelling)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.students.spelling import (
    Speller,
    corrected,
    damerau_levenshtein,
    tokenizer_words,
)

TRAINING = ["increase the contrast", "increase the brightness", "lower the brightness",
            "more contrast", "brighter shadows", "brighter please", "lift the shadows",
            "lift the shadows", "desaturate it", "desaturate a lot", "a cool look",
            "a cooler look", "cooler", "orange teal", "orange vibes"]


@pytest.mark.parametrize(("a", "b", "limit", "distance"), [
    ("contrast", "contrast", 1, 0),
    ("contrats", "contrast", 1, 1),      # two neighbours swapped
    ("incrase", "increase", 1, 1),       # a letter dropped
    ("brigthness", "brightness", 2, 1),
    ("shadwos", "shadows", 1, 1),
    ("desaturte", "desaturate", 1, 1),
    ("kitten", "sitting", 3, 3),         # the textbook case
    ("kitten", "sitting", 1, 2),         # past the limit: limit + 1
    ("ab", "abcdef", 2, 3),              # lengths alone already past the limit
])
def test_damerau_levenshtein(a: str, b: str, limit: int, distance: int) -> None:
    assert damerau_levenshtein(a, b, limit) == distance


def test_unknown_words_become_the_training_word_meant() -> None:
    speller = Speller.from_texts(TRAINING)
    assert speller.correct("incrase the contrats") == "increase the contrast"
    assert speller.correct("lower the brigthness") == "lower the brightness"
    assert speller.correct("lift the shadwos slightly") == "lift the shadows slightly"


def test_what_is_left_as_typed() -> None:
    speller = Speller.from_texts(TRAINING, dictionary=["hint"])
    # known words, short words, numbers, words with no close training word, and dictionary
    # words ("hint" is one edit from nothing here, but it must not be touched anyway)
    for text in ("increase the contrast", "abc +20 xyzzy", "saturation -100", "hint",
                 "Orange Teal"):
        assert speller.correct(text) == text


def test_only_words_seen_twice_are_targets_and_ties_go_to_the_most_used() -> None:
    # "cooer" is 1 edit from "cooler" (used twice) and from "cover" (once: never a target).
    speller = Speller.from_texts([*TRAINING, "cover"])
    assert speller.correct("cooer") == "cooler"
    # "lowe" is 1 edit from "lower" (once) and from "look" (no: 2): nothing to correct to.
    assert speller.correct("lowe") == "lowe"
    # "ligt" is 1 edit from "lift" (used twice) and from "lit" (not a word here): lift. With
    # "lilt" used three times, both are 1 edit away and the more used wins.
    assert speller.correct("ligt") == "lift"
    assert Speller.from_texts([*TRAINING, "lilt", "lilt", "lilt"]).correct("ligt") == "lilt"


def test_a_long_word_may_be_two_edits_away_a_short_one_only_one() -> None:
    speller = Speller.from_texts(TRAINING)
    assert speller.correct("brihgtnes") == "brightness"    # 9 letters: a swap and a drop
    assert speller.correct("shdwos") == "shdwos"           # 6 letters: a drop and a swap, kept


def test_it_saves_and_loads_with_the_run(tmp_path: Path) -> None:
    speller = Speller.from_texts(TRAINING)
    speller.save(tmp_path)
    loaded = Speller.load(tmp_path)
    assert loaded.counts == speller.counts
    assert loaded.correct("incrase the contrats") == "increase the contrast"


def test_corrected_without_a_speller_is_the_input() -> None:
    intents = ["incrase"]
    assert corrected(None, intents) is intents
    assert corrected(Speller.from_texts(TRAINING), intents) == ["increase"]


def test_tokenizer_words_are_whole_words_only() -> None:
    class Tokenizer:
        def get_vocab(self) -> dict[str, int]:
            return {"hint": 0, "##ing": 1, "[CLS]": 2, "\u2581sunset": 3, "42": 4, "\u0120warm": 5}

    assert sorted(tokenizer_words(Tokenizer())) == ["hint", "sunset", "warm"]
    assert tokenizer_words(object()) == []


def test_hostile_text_is_survived(tmp_path: Path) -> None:
    speller = Speller.from_texts([*TRAINING, "odd \ud800 word", "odd \ud800 word"])
    assert speller.correct("x" * 5000) == "x" * 5000          # far from every word: kept
    assert speller.correct("lone \udfff surrogate") == "lone \udfff surrogate"
    speller.save(tmp_path)                                     # escapes what UTF-8 cannot hold
    assert Speller.load(tmp_path).counts == speller.counts
