"""SPEC 5 metrics on hand-worked cases, plus properties."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import answers
from workbench.metrics import (
    cosine,
    flagged_for_augmentation,
    harmonic_mean,
    mean_cosines,
    score_intent,
    subset_score,
)
from workbench.tools import parse_answer


def answer(adjust=None, selective=None, filter_=None):
    return parse_answer({"adjust": adjust, "selective_adjust": selective, "filter": filter_})


NOIR = {"name": "mono_Noir", "intensity": 80}
# (intent, teacher, student)
CASES = [
    # i1: adjust identical (cos 1); filter same name, intensity 80 vs 60; selective unused by both.
    ("i1", answer({"temperature": 30}, None, NOIR),
     answer({"temperature": 30, "tint": 0}, None, {"name": "mono_Noir", "intensity": 60})),
    # i2: adjust orthogonal (cos 0); filter wrong name (intensity equal); selective only teacher.
    ("i2", answer({"exposure": 10}, {"red": {"saturation": 20}}, {"name": "warm_Golden", "intensity": 40}),
     answer({"contrast": 10}, None, {"name": "mono_Noir", "intensity": 40})),
    # i3: adjust only student; selective only student; filter unused by both.
    ("i3", answer(), answer({"exposure": 5}, {"red": {"saturation": 10}})),
    # i4: adjust (3, 4) vs (4, 3): cos 24/25; selective equal; filter only teacher.
    ("i4", answer({"exposure": 3, "contrast": 4}, {"blue": {"luminance": 10}},
                  {"name": "mono_Noir", "intensity": 50}),
     answer({"exposure": 4, "contrast": 3}, {"blue": {"luminance": 10}})),
]


def all_scores(cases=CASES):
    return [s for key, teacher, student in cases for s in score_intent(key, teacher, student)]


def test_cosine_conventions():
    assert cosine([0, 0], [0, 0]) == 1.0
    assert cosine([0, 0], [0, 3]) == 0.0
    assert cosine([3, 4], [4, 3]) == pytest.approx(24 / 25)
    assert cosine([1, 0], [-1, 0]) == pytest.approx(-1.0)


def test_harmonic_mean():
    assert harmonic_mean(0.5, 1.0) == pytest.approx(2 / 3)
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(None, 1.0) is None


def test_adjust_by_hand():
    adjust = subset_score("All", all_scores()).tools["adjust"]
    # TP i1, i2, i4; FP i3.
    assert (adjust.tp, adjust.fp, adjust.fn, adjust.tn) == (3, 1, 0, 0)
    assert adjust.precision == pytest.approx(3 / 4)
    assert adjust.recall == pytest.approx(1.0)
    assert adjust.selection == pytest.approx(6 / 7)
    quality = (1 + 0 + 24 / 25) / 3
    assert adjust.quality == pytest.approx(quality)
    assert adjust.final == pytest.approx(2 * (6 / 7) * quality / (6 / 7 + quality))
    assert adjust.intensity_error is None


def test_selective_adjust_by_hand():
    selective = subset_score("All", all_scores()).tools["selective_adjust"]
    # TP i4, FP i3, FN i2, TN i1.
    assert (selective.tp, selective.fp, selective.fn, selective.tn) == (1, 1, 1, 1)
    assert (selective.precision, selective.recall, selective.selection) == (0.5, 0.5, 0.5)
    assert selective.quality == pytest.approx(1.0)
    assert selective.final == pytest.approx(2 / 3)


def test_filter_by_hand():
    filter_ = subset_score("All", all_scores()).tools["filter"]
    # TP i1 (right name), i2 (wrong name); FN i4; TN i3.
    assert (filter_.tp, filter_.fp, filter_.fn, filter_.tn) == (2, 0, 1, 1)
    assert filter_.precision == 1.0
    assert filter_.recall == pytest.approx(2 / 3)
    assert filter_.selection == pytest.approx(4 / 5)
    assert filter_.quality == 0.5
    assert filter_.final == pytest.approx(2 * 0.8 * 0.5 / 1.3)
    assert filter_.intensity_error == pytest.approx((20 + 0) / 2)


def test_overall_is_the_mean_of_finals():
    subset = subset_score("All", all_scores())
    quality = (1 + 0 + 24 / 25) / 3
    adjust_final = 2 * (6 / 7) * quality / (6 / 7 + quality)
    assert subset.overall == pytest.approx((adjust_final + 2 / 3 + 0.8 / 1.3) / 3)
    assert subset.n_intents == 4


def test_opposite_sliders_count_as_zero_similarity():
    scores = score_intent("warm vs cool", answer({"temperature": 30}), answer({"temperature": -30}))
    adjust = subset_score("All", scores).tools["adjust"]
    assert adjust.quality == 0.0 and adjust.final == 0.0


def test_augmentation_flags_by_hand():
    scores = all_scores()
    means = mean_cosines(scores)
    assert means["adjust"] == pytest.approx((1 + 0 + 24 / 25) / 3)
    assert means["selective_adjust"] == pytest.approx(1.0)
    flags = flagged_for_augmentation(scores, means)
    # adjust cosines: i1 1, i2 0, i3 0 (teacher unused = zero vector), i4 .96 (above the mean .65).
    assert flags["adjust"] == {"i2", "i3"}
    # selective cosines: i1 1 (both zero), i2 0, i3 0, i4 1; the mean is 1.
    assert flags["selective_adjust"] == {"i2", "i3"}
    # filter: i2 wrong name, i4 missed.
    assert flags["filter"] == {"i2", "i4"}


def test_empty_set_is_undefined_everywhere():
    subset = subset_score("r_5", [])
    assert subset.n_intents == 0 and subset.overall is None
    for score in subset.tools.values():
        assert score.precision is None and score.recall is None
        assert score.selection is None and score.quality is None and score.final is None


def test_tool_never_used_by_anyone_is_undefined_not_perfect():
    subset = subset_score("All", score_intent("only", answer({"exposure": 1}), answer({"exposure": 1})))
    selective = subset.tools["selective_adjust"]
    assert selective.tn == 1 and selective.selection is None and selective.final is None
    assert subset.overall is None
    assert subset.tools["adjust"].final == 1.0


def test_student_never_uses_a_tool_the_teacher_uses():
    subset = subset_score("All", score_intent("one", answer({"exposure": 1}), answer()))
    adjust = subset.tools["adjust"]
    assert adjust.precision is None and adjust.recall == 0.0 and adjust.selection == 0.0
    assert adjust.quality is None and adjust.final is None


@given(st.lists(answers, min_size=1, max_size=20))
def test_perfect_predictions_score_one(truths):
    scores = [s for i, t in enumerate(truths) for s in score_intent(f"i{i}", t, t)]
    for tool_score in subset_score("All", scores).tools.values():
        if tool_score.tp:
            assert tool_score.selection == 1.0 and tool_score.final == pytest.approx(1.0)
            assert tool_score.quality == pytest.approx(1.0)
        assert tool_score.fp == tool_score.fn == 0


@given(st.lists(st.tuples(answers, answers), min_size=1, max_size=20), st.randoms())
def test_scores_are_bounded_and_order_free(pairs, rng: random.Random):
    scores = [s for i, (t, p) in enumerate(pairs) for s in score_intent(f"i{i}", t, p)]
    subset = subset_score("All", scores)
    shuffled = list(scores)
    rng.shuffle(shuffled)
    again = subset_score("All", shuffled)
    for tool, tool_score in subset.tools.items():
        for value in (tool_score.precision, tool_score.recall, tool_score.selection,
                      tool_score.final):
            assert value is None or 0.0 <= value <= 1.0
        assert tool_score.quality is None or 0.0 <= tool_score.quality <= 1.0
        assert again.tools[tool] == tool_score
