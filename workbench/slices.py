"""Slices: training intents clustered by meaning, each cluster scored with the paper's metrics
(SPEC 5), so a curator sees where a student is weak ("requests about skin tones") and not only a
list of single intents; the `slices` mining strategy paraphrases the weak ones.

    cluster  k-means on the intents' unit embeddings, seeded; k = round(sqrt(n / 2)) clipped
             to [2, 60]
    score    per cluster, the three tools' finals and their mean (the slice's Overall)
    flag     a slice whose Overall is `gap` or more below the student's on all the intents
    describe size, worst tool, distinctive words, the five intents nearest the centre

Pure: keys, texts, vectors and per-intent scores in, slices out (scikit-learn imported inside
`cluster`). Embedding the intents and reading a mining evaluation are `pipelines.slices`'.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from workbench.errors import WorkbenchError
from workbench.metrics import (
    IntentScore,
    flagged_for_augmentation,
    harmonic_mean,
    intent_losses,
    mean_cosines,
    tool_score,
)
from workbench.tools import TOOLS

DEFAULT_GAP = 0.05
MIN_CLUSTERS, MAX_CLUSTERS = 2, 60
EXAMPLES = 5                  # intents nearest the centre shown per slice
TOP_WORDS = 5
MINIBATCH_ABOVE = 50_000      # intents: above this, MiniBatchKMeans (one pass is cheap)
_FILTER_OUTCOMES: dict[str, str | None] = {"FP": "extra", "FN": "missed", "TN": None}
_TOLERANCE = 1e-9             # "at least gap below", not lost to float rounding
_WORD = re.compile(r"[^\W\d_]{2,}")
# Function words say nothing about a slice; content words (even "make", "photo") stay, since a
# slice of "make it ..." requests is worth knowing about.
STOPWORDS = frozenset({"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from",
                       "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "so",
                       "that", "the", "this", "to", "with"})


@dataclass(frozen=True)
class SliceIntent:
    """One intent of a slice with its scores on the mining evaluation."""

    intent_key: str
    intent_text: str
    loss: float                          # `metrics.intent_losses`, in [0, 1]
    n_flagged: int                       # tools the paper's rule flags it for
    adjust_cosine: float | None          # signed; an unused tool counts as the zero vector
    selective_adjust_cosine: float | None
    filter: str | None                   # "right", "wrong name", "extra" (only the student
                                         # used one), "missed" (only the teacher); None: neither


@dataclass(frozen=True)
class Slice:
    """One cluster of training intents. `rank` 1 is the worst slice (lowest Overall)."""

    rank: int
    size: int
    overall: float | None                # mean of the defined `finals` (see `slice_finals`)
    finals: dict[str, float | None]      # per tool; None where neither side used the tool
    worst_tool: str | None               # the tool with the lowest final
    top_words: tuple[str, ...]
    examples: tuple[str, ...]            # up to five intent texts nearest the centre
    intent_keys: tuple[str, ...]         # paper-flagged first, then the larger loss, then key
    n_flagged: int                       # intents the paper's rule flags (any tool)
    flagged: bool                        # Overall at least `gap` below the student's
    intents: tuple[SliceIntent, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SlicesResult:
    run_id: str | None
    evaluation_id: int | None            # the mining evaluation the scores come from
    version_id: int | None
    n_intents: int
    k: int                               # clusters asked for (at most n_intents)
    seed: int
    gap: float
    student_overall: float | None        # over the whole training split, as `slice_finals`
    slices: list[Slice]

    @property
    def n_flagged_intents(self) -> int:
        return sum(found.size for found in self.slices if found.flagged)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "n_flagged_intents": self.n_flagged_intents}


# ------------------------------------------------------------------------------ pure parts

def default_clusters(n_intents: int) -> int:
    """k for `n_intents` training intents: round(sqrt(n / 2)), clipped to [2, 60] and to n.

    The rule of thumb (k ~ sqrt(n/2)) gives slices of about sqrt(2n) intents: 2,000 training
    intents make 32 slices of about 63, enough intents for each tool's F1 and mean cosine to
    mean something per slice, while the slices stay many and specific enough to name a
    weakness. 60 caps what a curator can read in one table (the paper's 8,252 training intents
    would make 64: 60 slices of about 140)."""
    k = round(math.sqrt(n_intents / 2))
    return max(1, min(n_intents, max(MIN_CLUSTERS, min(MAX_CLUSTERS, k))))


def slice_finals(scores: Sequence[IntentScore]) -> tuple[float | None, dict[str, float | None]]:
    """(Overall, {tool: final}) of a set of intents in the paper's terms (SPEC 5), with two
    rules for a small set in which a tool may not occur:

    - a tool neither side used on any of these intents has nothing to get wrong here: its
      final is None and it does not count (it is not invented as 0 or 1);
    - a tool used, but never by both on one intent (no TP: every use a wrong one), scores 0:
      its selection F1 is 0, so the harmonic mean is 0 whatever the undefined quality.
    Otherwise the final is the paper's harmonic mean of selection and quality. The Overall is
    the mean of the finals that count (None when none does): on a set where every tool has a
    TP, exactly the paper's Overall."""
    finals: dict[str, float | None] = {}
    for tool in TOOLS:
        score = tool_score(tool, [s for s in scores if s.tool == tool])
        if score.tp + score.fp + score.fn == 0:
            finals[tool] = None
        elif score.tp == 0:
            finals[tool] = 0.0
        else:
            finals[tool] = harmonic_mean(score.selection, score.quality)
    counted = [value for value in finals.values() if value is not None]
    return (sum(counted) / len(counted) if counted else None), finals


def words(text: str) -> set[str]:
    """The distinct words of a text for `top_words`: letters only, casefolded, at least two
    letters, function words left out."""
    return {word for word in _WORD.findall(text.casefold()) if word not in STOPWORDS}


def top_words(members: Sequence[str], others: Sequence[str], n: int = TOP_WORDS) -> tuple[str, ...]:
    """The words that set a slice apart: frequent in it, rarer outside.

    For each word, the share of the slice's intents that contain it minus the share of the
    other training intents that do; a word counts when that difference is positive and at
    least two of the slice's intents contain it (one, for a slice of one). The `n` largest
    differences, ties by more intents in the slice, then alphabetically."""
    inside: Counter[str] = Counter(word for text in members for word in words(text))
    outside: Counter[str] = Counter(word for text in others for word in words(text))
    return _distinctive(inside, len(members), outside, len(others), n)


def _distinctive(inside: Counter[str], n_inside: int, outside: Counter[str], n_outside: int,
                 n: int) -> tuple[str, ...]:
    """`top_words` from document counts: intents containing each word, in and out of the
    slice."""
    least = min(2, n_inside)
    ranked = []
    for word, count in inside.items():
        difference = count / n_inside - (outside[word] / n_outside if n_outside else 0.0)
        if count >= least and difference > 0:
            ranked.append((-difference, -count, word))
    return tuple(word for _, _, word in sorted(ranked)[:n])


def cluster(vectors: Any, k: int, seed: int) -> tuple[Any, Any]:
    """k-means of unit vectors (N, D): (labels (N,), centres (k, D)). On unit vectors the
    Euclidean distance k-means minimises orders pairs as the cosine does."""
    import warnings

    import numpy as np
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    model = (MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
             if len(vectors) > MINIBATCH_ABOVE
             else KMeans(n_clusters=k, random_state=seed, n_init=4))
    # float64: scikit-learn computes float32 distances in upcast chunks, slower. One BLAS
    # thread: its many small products are ten times faster without thread hand-offs (0.8 s
    # against 5 s for 2,379 intents and k = 34 on two cores).
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # Fewer distinct points than k (duplicate embeddings): some clusters stay empty, and
        # an empty cluster is simply no slice.
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = model.fit_predict(np.asarray(vectors, dtype=np.float64))
    return labels, model.cluster_centers_


def build_slices(keys: Sequence[str], texts: Sequence[str], vectors: Any,
                 scores: Sequence[IntentScore], k: int | None = None, seed: int = 0,
                 gap: float = DEFAULT_GAP) -> tuple[int, float | None, list[Slice]]:
    """Cluster the intents `keys` (texts, unit vectors (N, D)) and score each cluster from
    `scores` (per intent and tool; the intent key is the sample id): (k used, the student's
    Overall over all the intents, the slices worst first)."""
    import numpy as np

    if len(keys) != len(texts) or len(keys) != len(vectors):
        raise WorkbenchError(f"slices need one text and one vector per intent: {len(keys)} "
                             f"keys, {len(texts)} texts, {len(vectors)} vectors")
    if len(keys) < MIN_CLUSTERS:
        raise WorkbenchError(f"slices need at least {MIN_CLUSTERS} training intents, got "
                             f"{len(keys)}")
    if k is not None and k < MIN_CLUSTERS:
        raise WorkbenchError(f"slices need at least {MIN_CLUSTERS} clusters, got {k}")
    k = min(len(keys), k) if k is not None else default_clusters(len(keys))
    vectors = np.asarray(vectors, dtype=np.float32)                              # (N, D)
    labels, centres = cluster(vectors, k, seed)

    by_key: dict[str, list[IntentScore]] = {}
    for score in scores:
        by_key.setdefault(score.intent_key, []).append(score)
    missing = [key for key in keys if key not in by_key]
    if missing:
        raise WorkbenchError(f"{len(missing)} intent(s) have no scores in the evaluation, "
                             f"e.g. {missing[0]!r}")
    known = [score for key in keys for score in by_key[key]]
    student_overall, _ = slice_finals(known)
    losses = intent_losses(known)
    paper = flagged_for_augmentation(known, mean_cosines(known))
    n_flags = Counter(key for flagged in paper.values() for key in flagged)

    def member(index: int) -> SliceIntent:
        key = keys[index]
        found = {score.tool: score for score in by_key[key]}
        filter_score = found.get("filter")
        return SliceIntent(
            key, texts[index], losses[key], n_flags.get(key, 0),
            found["adjust"].cosine if "adjust" in found else None,
            found["selective_adjust"].cosine if "selective_adjust" in found else None,
            None if filter_score is None else _filter_outcome(filter_score))

    # Each intent's words once; a slice's outside counts are the totals less its own.
    word_sets = [words(text) for text in texts]
    totals: Counter[str] = Counter(word for found in word_sets for word in found)
    unranked = []
    for label in sorted(set(labels.tolist())):
        rows = np.flatnonzero(labels == label)                                   # (M,)
        indices: list[int] = rows.tolist()
        overall, finals = slice_finals([score for i in indices for score in by_key[keys[i]]])
        counted = {tool: final for tool, final in finals.items() if final is not None}
        worst = min(counted, key=lambda tool: (counted[tool], TOOLS.index(tool))) \
            if counted else None
        distance = np.linalg.norm(vectors[rows] - centres[label], axis=1).tolist()  # (M,)
        nearest = sorted(range(len(indices)), key=lambda j: (distance[j], keys[indices[j]]))
        members = sorted((member(i) for i in indices),
                         key=lambda m: (-m.n_flagged, -m.loss, m.intent_key))
        inside: Counter[str] = Counter(word for i in indices for word in word_sets[i])
        flagged = (overall is not None and student_overall is not None
                   and overall <= student_overall - gap + _TOLERANCE)
        unranked.append(Slice(
            0, len(indices), overall, finals, worst,
            _distinctive(inside, len(indices), totals - inside, len(texts) - len(indices),
                         TOP_WORDS),
            tuple(texts[indices[j]] for j in nearest[:EXAMPLES]),
            tuple(m.intent_key for m in members), sum(1 for m in members if m.n_flagged),
            flagged, tuple(members)))
    # Worst first: the lowest Overall (a slice without one last), then the larger slice.
    unranked.sort(key=lambda s: (s.overall is None, s.overall if s.overall is not None else 0.0,
                                 -s.size, s.intent_keys[0]))
    return k, student_overall, [replace(found, rank=rank)
                                for rank, found in enumerate(unranked, start=1)]


def _filter_outcome(score: IntentScore) -> str | None:
    """`SliceIntent.filter` of one filter score."""
    if score.outcome == "TP":
        return "right" if score.similarity == 1 else "wrong name"
    return _FILTER_OUTCOMES[score.outcome]


def stored_scores(rows: Sequence[dict[str, Any]]) -> list[IntentScore]:
    """`IntentScore`s from `evaluations.evaluation_intent_scores` rows."""
    return [IntentScore(row["sample_id"], row["tool"], bool(row["teacher_used"]),
                        bool(row["student_used"]), row["similarity"], row["cosine"],
                        row["intensity_error"]) for row in rows]
