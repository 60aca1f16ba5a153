"""SPEC 5 metrics on hand-worked cases, plus properties."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import answers
from workbench.metrics import (
    VECTOR_TOOLS,
    cosine,
    flagged_for_augmentation,
    harmonic_mean,
    mean_cosines,
    score_intent,
    subset_score,
)
from workbench.tools import Answer, adjust_vector, parse_answer, selective_adjust_vector


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
    # SPEC 5: 0 unless both parts are positive. A plain 2ab / (a + b) would give 0 / 0 here and
    # 2 * .8 * -.2 / .6 = -.53 (a negative final) or, with both negative, a positive one.
    assert harmonic_mean(0.5, -0.5) == 0.0
    assert harmonic_mean(0.8, -0.2) == 0.0
    assert harmonic_mean(-0.5, -0.5) == 0.0
    assert harmonic_mean(1.0, 0.0) == 0.0


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


# Issue 15: a negative cosine counts as it is. Warm vs cool: teacher temperature +40, the
# student -40 only: the vectors point opposite ways, cosine -1 (not 0, as when it was clamped).
WARM_VS_COOL = ("warm vs cool", answer({"temperature": 40}), answer({"temperature": -40}))
RIGHT = ("golden", answer({"temperature": 40}), answer({"temperature": 40}))       # cosine 1
# (40, 30) vs (40, -30): (1600 - 900) / (50 * 50) = 700 / 2500 = .28
MOSTLY_RIGHT = ("mostly right", answer({"temperature": 40, "contrast": 30}),
                answer({"temperature": 40, "contrast": -30}))
# (40, 30) vs (-40, 30): (-1600 + 900) / 2500 = -.28
MOSTLY_WRONG = ("mostly wrong", answer({"temperature": 40, "contrast": 30}),
                answer({"temperature": -40, "contrast": 30}))


def test_warm_vs_cool_scores_cosine_minus_one_per_intent():
    adjust, selective, filter_ = score_intent(*WARM_VS_COOL)
    assert (adjust.tool, adjust.outcome) == ("adjust", "TP")
    assert adjust.similarity == pytest.approx(-1.0) and adjust.cosine == pytest.approx(-1.0)
    # selective_adjust unused by both: two zero vectors, cosine 1, no similarity (not TP).
    assert (selective.outcome, selective.similarity, selective.cosine) == ("TN", None, 1.0)
    assert (filter_.outcome, filter_.similarity) == ("TN", None)
    [partly] = [s for s in score_intent(*MOSTLY_WRONG) if s.tool == "adjust"]
    assert partly.similarity == pytest.approx(-0.28) and partly.cosine == pytest.approx(-0.28)


def test_an_opposite_answer_cancels_a_right_one_and_the_final_is_zero():
    subset = subset_score("All", all_scores([WARM_VS_COOL, RIGHT]))
    adjust = subset.tools["adjust"]
    # TP on both intents: selection 2 * 2 / (2 * 2) = 1; quality (-1 + 1) / 2 = 0 (clamped it
    # was (0 + 1) / 2 = .5); the final is 0 since quality is not positive.
    assert (adjust.tp, adjust.fp, adjust.fn, adjust.tn) == (2, 0, 0, 0)
    assert adjust.selection == 1.0
    assert adjust.quality == pytest.approx(0.0, abs=1e-12)
    assert adjust.final == 0.0
    # Nobody used selective_adjust or the filter: undefined, so the overall is too.
    assert subset.overall is None


def test_quality_is_negative_when_the_student_is_mostly_opposed():
    adjust = subset_score("All", all_scores([WARM_VS_COOL])).tools["adjust"]
    assert adjust.quality == pytest.approx(-1.0) and adjust.final == 0.0
    adjust = subset_score("All", all_scores([WARM_VS_COOL, RIGHT, MOSTLY_WRONG])).tools["adjust"]
    assert adjust.quality == pytest.approx((-1 + 1 - 0.28) / 3)         # -.0933...
    assert adjust.selection == 1.0 and adjust.final == 0.0


def test_a_positive_mean_with_a_negative_cosine_in_it():
    subset = subset_score("All", all_scores([WARM_VS_COOL, RIGHT, MOSTLY_RIGHT]))
    adjust = subset.tools["adjust"]
    quality = (-1 + 1 + 0.28) / 3                                        # .0933..., not .4267
    assert adjust.quality == pytest.approx(quality)
    assert adjust.final == pytest.approx(2 * 1.0 * quality / (1.0 + quality))   # .1707...
    assert adjust.final == pytest.approx(0.56 / 3.28)


def test_an_opposite_answer_in_the_overall():
    # The four CASES plus warm vs cool (adjust TP at -1; selective and filter unused by both).
    subset = subset_score("All", all_scores([*CASES, WARM_VS_COOL]))
    adjust = subset.tools["adjust"]
    # adjust: TP i1, i2, i4, warm vs cool; FP i3: selection 8 / 9.
    assert (adjust.tp, adjust.fp) == (4, 1) and adjust.selection == pytest.approx(8 / 9)
    assert adjust.quality == pytest.approx((1 + 0 + 24 / 25 - 1) / 4)     # .24
    adjust_final = 2 * (8 / 9) * 0.24 / (8 / 9 + 0.24)                    # .3780...
    assert adjust.final == pytest.approx(adjust_final)
    # selective (1, 1, 1, 1, TN) and filter (TP i1, i2; FN i4; TN i3 and warm vs cool) are as
    # in test_overall_is_the_mean_of_finals: finals 2/3 and .8 / 1.3.
    assert subset.overall == pytest.approx((adjust_final + 2 / 3 + 0.8 / 1.3) / 3)


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


def test_augmentation_flags_compare_signed_cosines():
    scores = all_scores([WARM_VS_COOL, RIGHT, MOSTLY_RIGHT, MOSTLY_WRONG])
    means = mean_cosines(scores)
    # adjust cosines -1, 1, .28, -.28: the mean is 0 (clamped it was (0 + 1 + .28 + 0) / 4 = .32,
    # which flagged mostly right's .28 as well).
    assert means["adjust"] == pytest.approx(0.0, abs=1e-12)
    flags = flagged_for_augmentation(scores, means)
    assert flags["adjust"] == {"warm vs cool", "mostly wrong"}
    # With only opposite answers the mean is -1 and no intent lies below it.
    only = all_scores([WARM_VS_COOL])
    assert mean_cosines(only)["adjust"] == pytest.approx(-1.0)
    assert flagged_for_augmentation(only, mean_cosines(only))["adjust"] == set()


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
        # Vector tools: a mean of signed cosines, in [-1, 1]; the filter: an accuracy.
        low = -1.0 if tool in VECTOR_TOOLS else 0.0
        assert tool_score.quality is None or low <= tool_score.quality <= 1.0
        # The final is positive exactly when both parts are; otherwise 0 (or undefined).
        if tool_score.selection is None or tool_score.quality is None:
            assert tool_score.final is None
        elif tool_score.selection > 0 and tool_score.quality > 0:
            assert tool_score.final is not None and tool_score.final > 0
        else:
            assert tool_score.final == 0.0
        assert again.tools[tool] == tool_score
    overall = subset.overall
    assert overall is None or 0.0 <= overall <= 1.0


def _vector(answer: Answer, tool: str) -> list[int]:
    return adjust_vector(answer) if tool == "adjust" else selective_adjust_vector(answer)


def _cosine_by_hand(a: list[int], b: list[int]) -> float:
    """The cosine worked out here, not by the code under test (SPEC 5's zero conventions)."""
    norm_a, norm_b = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
    if norm_a == 0 or norm_b == 0:
        return 1.0 if norm_a == norm_b else 0.0
    return sum(x * y for x, y in zip(a, b, strict=True)) / (norm_a * norm_b)


@given(st.lists(st.tuples(answers, answers), min_size=1, max_size=20))
def test_vector_quality_is_the_plain_mean_of_signed_cosines(pairs):
    scores = [s for i, (t, p) in enumerate(pairs) for s in score_intent(f"i{i}", t, p)]
    subset = subset_score("All", scores)
    for tool in VECTOR_TOOLS:
        cosines = [_cosine_by_hand(_vector(t, tool), _vector(p, tool)) for t, p in pairs
                   if t.uses(tool) and p.uses(tool)]
        quality = subset.tools[tool].quality
        if not cosines:
            assert quality is None
        else:
            assert quality == pytest.approx(sum(cosines) / len(cosines), abs=1e-9)


def _negated(answer: Answer) -> Answer:
    """The same tools with every slider's sign flipped (still valid: sliders are in
    [-100, 100])."""
    raw = answer.to_dict()
    if raw["adjust"] is not None:
        raw["adjust"] = {key: -value for key, value in raw["adjust"].items()}
    if raw["selective_adjust"] is not None:
        raw["selective_adjust"] = {colour: {channel: -value for channel, value in channels.items()}
                                   for colour, channels in raw["selective_adjust"].items()}
    return parse_answer(raw)


@given(answers, answers)
def test_the_opposite_answer_has_the_opposite_cosine(teacher, student):
    straight = score_intent("x", teacher, student)
    opposite = score_intent("x", teacher, _negated(student))
    for before, after in zip(straight, opposite, strict=True):
        if before.tool not in VECTOR_TOOLS:
            continue
        assert after.outcome == before.outcome
        teacher_zero = not any(_vector(teacher, before.tool))
        student_zero = not any(_vector(student, before.tool))
        if teacher_zero or student_zero:        # the zero-vector conventions: no sign to flip
            assert after.cosine == before.cosine
        else:
            assert before.cosine is not None and after.cosine is not None
            assert after.cosine == pytest.approx(-before.cosine, abs=1e-12)
            assert -1.0 <= after.cosine <= 1.0
