"""The paper's offline metrics (SPEC 5), exactly, plus per-intent scores for error analysis
and a per-intent loss over the three tools that mining ranks by (`intent_losses`).

For each tool, over a set of intents, with the teacher's ground truth as truth:
- tool selection: F1 of "tool used" (TP both used, FP only the student, FN only the teacher),
  computed as 2TP / (2TP + FP + FN), which equals the harmonic mean of precision and recall
  wherever those exist; undefined only when no side ever used the tool;
- quality over TP intents: the plain mean cosine of the parameter vectors (adjust,
  selective_adjust; two all-zero vectors have cosine 1, one all-zero and one not 0), negatives
  included: an opposite answer (warm for cool, cosine -1) counts as it is, so quality lies in
  [-1, 1]; or, for the filter, name accuracy in [0, 1];
- final: the harmonic mean of selection and quality when both are positive, and 0 otherwise
  (so a quality of 0 or below gives 0, and the final stays in [0, 1]);
- overall: mean of the three finals.
A number whose denominator is zero is None ("undefined"), never 0 or 1.
Imports `tools` only: no duckdb, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from workbench.tools import TOOLS, Answer, adjust_vector, selective_adjust_vector

VECTOR_TOOLS = ("adjust", "selective_adjust")


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity with SPEC 5's conventions for all-zero vectors."""
    norm_a = math.sqrt(sum(x * x for x in a))
    norm_b = math.sqrt(sum(x * x for x in b))
    if norm_a == 0 and norm_b == 0:
        return 1.0
    if norm_a == 0 or norm_b == 0:
        return 0.0
    value = sum(x * y for x, y in zip(a, b, strict=True)) / (norm_a * norm_b)
    return max(-1.0, min(1.0, value))  # rounding can overshoot by an ulp


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


def harmonic_mean(a: float | None, b: float | None) -> float | None:
    """SPEC 5's final: 2ab / (a + b) when both are positive, 0 when either is 0 or below (a
    negative quality must not turn into a positive or undefined final), None when either is."""
    if a is None or b is None:
        return None
    return 2 * a * b / (a + b) if a > 0 and b > 0 else 0.0


def _vector(answer: Answer, tool: str) -> list[int]:
    return adjust_vector(answer) if tool == "adjust" else selective_adjust_vector(answer)


@dataclass(frozen=True)
class IntentScore:
    """One intent, one tool. `similarity` is the signed cosine (vector tools, in [-1, 1]) or 1/0
    for a filter name match, computed whenever both sides used the tool; `cosine` is the signed
    vector cosine with an unused tool as the zero vector (the augmentation rule compares it with
    the tool's mean)."""

    intent_key: str
    tool: str
    teacher_used: bool
    student_used: bool
    similarity: float | None
    cosine: float | None = None          # vector tools only
    intensity_error: int | None = None   # filter only, when both used it

    @property
    def outcome(self) -> str:
        return {(True, True): "TP", (False, True): "FP", (True, False): "FN",
                (False, False): "TN"}[(self.teacher_used, self.student_used)]


def score_intent(intent_key: str, teacher: Answer, student: Answer) -> list[IntentScore]:
    """Per-tool scores of one student answer against the teacher's ground truth."""
    scores = []
    for tool in TOOLS:
        t_used, s_used = teacher.uses(tool), student.uses(tool)
        if tool in VECTOR_TOOLS:
            # Signed: an opposite look (cosine < 0) is worse than an unrelated one (0).
            value = cosine(_vector(teacher, tool), _vector(student, tool))
            scores.append(IntentScore(intent_key, tool, t_used, s_used,
                                      value if t_used and s_used else None, value))
        elif teacher.filter is not None and student.filter is not None:
            scores.append(IntentScore(
                intent_key, tool, True, True, float(teacher.filter.name == student.filter.name),
                intensity_error=abs(teacher.filter.intensity - student.filter.intensity)))
        else:
            scores.append(IntentScore(intent_key, tool, t_used, s_used, None))
    return scores


@dataclass(frozen=True)
class ToolScore:
    tool: str
    n: int
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None
    selection: float | None
    quality: float | None
    final: float | None
    intensity_error: float | None = None  # filter: mean |intensity difference| over TP intents

    def triple(self) -> tuple[float | None, float | None, float | None]:
        return self.selection, self.quality, self.final


def tool_score(tool: str, scores: Sequence[IntentScore]) -> ToolScore:
    """Aggregate one tool's per-intent scores (all of them for this tool)."""
    counts = {"TP": 0, "FP": 0, "FN": 0, "TN": 0}
    for score in scores:
        counts[score.outcome] += 1
    tp, fp, fn = counts["TP"], counts["FP"], counts["FN"]
    similarities = [s.similarity for s in scores if s.outcome == "TP" and s.similarity is not None]
    quality = _ratio(sum(similarities), len(similarities))
    selection = _ratio(2 * tp, 2 * tp + fp + fn)
    intensity = [s.intensity_error for s in scores if s.intensity_error is not None]
    return ToolScore(
        tool=tool, n=len(scores), tp=tp, fp=fp, fn=fn, tn=counts["TN"],
        precision=_ratio(tp, tp + fp), recall=_ratio(tp, tp + fn), selection=selection,
        quality=quality, final=harmonic_mean(selection, quality),
        intensity_error=_ratio(sum(intensity), len(intensity)) if tool == "filter" else None)


@dataclass(frozen=True)
class SubsetScore:
    """SPEC 5 for one set of intents (All, r_3, r_5): a ToolScore per tool and the overall."""

    name: str
    n_intents: int
    tools: dict[str, ToolScore] = field(default_factory=dict)

    @property
    def overall(self) -> float | None:
        finals = [score.final for score in self.tools.values()]
        if not finals or any(final is None for final in finals):
            return None
        return sum(f for f in finals if f is not None) / len(finals)


def subset_score(name: str, scores: Sequence[IntentScore],
                 n_intents: int | None = None) -> SubsetScore:
    """`n_intents` defaults to the distinct keys in `scores` (pass it when keys are samples)."""
    by_tool: dict[str, list[IntentScore]] = {tool: [] for tool in TOOLS}
    for score in scores:
        by_tool[score.tool].append(score)
    if n_intents is None:
        n_intents = len({score.intent_key for score in scores})
    return SubsetScore(name, n_intents, {tool: tool_score(tool, by_tool[tool]) for tool in TOOLS})


def mean_cosines(scores: Sequence[IntentScore]) -> dict[str, float | None]:
    """Per vector tool, the mean signed cosine over TP intents (the tool's quality)."""
    result = {}
    for tool in VECTOR_TOOLS:
        values = [s.similarity for s in scores
                  if s.tool == tool and s.outcome == "TP" and s.similarity is not None]
        result[tool] = _ratio(sum(values), len(values))
    return result


def flagged_for_augmentation(scores: Sequence[IntentScore],
                             means: dict[str, float | None]) -> dict[str, set[str]]:
    """SPEC 6: per tool, the intents the student gets wrong.

    filter: the predicted filter differs from the teacher's (a wrong name, or used on one side
    only); adjust / selective_adjust: the intent's cosine (unused = zero vector) is below the
    tool's mean cosine `means[tool]` (both signed: with a negative mean, only intents more
    opposed than the average are flagged).
    """
    flags: dict[str, set[str]] = {tool: set() for tool in TOOLS}
    for score in scores:
        if score.tool == "filter":
            if score.outcome in ("FP", "FN") or (score.outcome == "TP" and score.similarity == 0):
                flags["filter"].add(score.intent_key)
        else:
            mean = means.get(score.tool)
            if mean is not None and score.cosine is not None and score.cosine < mean:
                flags[score.tool].add(score.intent_key)
    return flags


def tool_loss(score: IntentScore) -> float:
    """How wrong one intent is on one tool, in [0, 1] (0: the teacher's answer), for mining.

    Neither side used the tool: 0. One side only (FP or FN): 1, a wrong decision about the
    tool, which costs the tool-selection half of the final whatever the values.
    Both used it: adjust and selective_adjust (1 - cosine) / 2 with the signed cosine, so the
    same direction is 0, an unrelated one 0.5 and the opposite (warm for cool) 1; the filter
    0 for the teacher's name and 1 for any other, as the paper's name accuracy counts it (a
    filter of the same family is as wrong there as any other, and intensity is not scored)."""
    if score.outcome == "TN":
        return 0.0
    if score.outcome != "TP":
        return 1.0
    if score.tool == "filter":
        return 0.0 if score.similarity == 1 else 1.0
    cosine = score.similarity if score.similarity is not None else 0.0
    return (1.0 - cosine) / 2


def intent_losses(scores: Sequence[IntentScore]) -> dict[str, float]:
    """{intent key: the mean of its `tool_loss`es over the three tools}, in [0, 1].

    The tools weigh the same, as they do in the Overall (the plain mean of the three tools'
    finals): weighing one tool more would rank intents by a number the paper does not report."""
    total: dict[str, float] = {}
    count: dict[str, int] = {}
    for score in scores:
        total[score.intent_key] = total.get(score.intent_key, 0.0) + tool_loss(score)
        count[score.intent_key] = count.get(score.intent_key, 0) + 1
    return {key: total[key] / count[key] for key in total}
