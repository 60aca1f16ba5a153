"""Near-duplicate filtering of augmentation candidates by sentence-embedding cosine (SPEC 6).

A candidate is dropped when its cosine to any test intent (always checked: no leakage into
evaluation), to any training intent, or to any candidate kept before it is at or above the
threshold. Every candidate keeps its nearest neighbour and the similarity, kept or not.

Two ways to find a candidate's nearest existing intent, with the same decisions:
- the exact blocked matrix product (`_nearest`), the oracle;
- a nearest-neighbour index (workbench.ann.CosineIndex): always when the caller passes one (an
  index kept beside the database, built once), and for a plain matrix of at least INDEX_FROM
  rows when the round has at least BUILD_FOR candidates (below that, building the index costs
  more than the exact product it saves). Its top hits are re-checked with the exact cosine, so
  a drop always rests on an exact cosine at or above the threshold: an approximate miss can only
  keep a candidate that should have been dropped, never drop one wrongly.
Kept candidates are checked exactly: each block of candidates against the matrix of those kept
before it, then in order within the block, so memory stays (CANDIDATE_BLOCK, kept) at any scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from workbench.ann import CosineIndex

BLOCK = 2048  # candidate rows per matrix product: (2048, N) float32 scores at a time
# Candidates decided together against each other: a (512, 512) product per block wastes less on
# pairs in the wrong order than a bigger one, and the rest goes to the (512, kept) products.
CANDIDATE_BLOCK = 512
# When a plain matrix (not a built index) is searched through an index built for the call: at
# least INDEX_FROM existing rows and BUILD_FOR candidates. On 2 shared cores building the
# inverted-file index costs about 0.13 ms per existing row (133 s for 1,000,000) and the exact
# product 9 to 28 ns per candidate and row (benchmarks/results/dedup.json), so a build pays for
# itself only from some 5,000 to 15,000 candidates, whatever the size; a caller holding a built
# index (ann.persisted_index) passes it.
INDEX_FROM = 50_000
BUILD_FOR = 10_000


class DropReason(str, Enum):
    NEAR_TEST = "near_test"
    NEAR_TRAIN = "near_train"
    NEAR_CANDIDATE = "near_candidate"


@dataclass(frozen=True)
class Decision:
    kept: bool
    reason: DropReason | None
    nearest_kind: str | None      # 'test', 'train' or 'candidate'
    nearest_index: int | None     # row in that matrix (or candidate index)
    similarity: float | None      # cosine to the nearest neighbour


def _nearest(queries: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query row, the best cosine and its row in `index` (rows are unit vectors)."""
    if len(index) == 0:
        return np.full(len(queries), -np.inf, dtype=np.float32), np.full(len(queries), -1)
    best = np.empty(len(queries), dtype=np.float32)
    where = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), BLOCK):
        scores = queries[start:start + BLOCK] @ index.T          # (B, N)
        where[start:start + BLOCK] = scores.argmax(axis=1)
        best[start:start + BLOCK] = scores[np.arange(len(scores)), where[start:start + BLOCK]]
    return best, where


def _nearest_existing(queries: np.ndarray, existing: np.ndarray | CosineIndex,
                      use_index: bool | None) -> tuple[np.ndarray, np.ndarray]:
    """`_nearest` through an index when `existing` is one, or `use_index` says so (None: when
    INDEX_FROM rows and BUILD_FOR queries make the build pay)."""
    if isinstance(existing, CosineIndex):
        return existing.nearest(queries)
    matrix = np.asarray(existing, dtype=np.float32)
    if use_index is None:
        use_index = len(matrix) >= INDEX_FROM and len(queries) >= BUILD_FOR
    if use_index and len(matrix) and len(queries):
        return CosineIndex.build(matrix).nearest(queries)
    return _nearest(queries, matrix)


def deduplicate(candidates: np.ndarray, train: np.ndarray | CosineIndex,
                test: np.ndarray | CosineIndex, threshold: float, *,
                use_index: bool | None = None) -> list[Decision]:
    """One decision per candidate row, in order. All inputs are unit rows (N, D) float32;
    `train` and `test` may also be CosineIndex objects over such rows (ids = rows).

    Candidates are considered in order; a later one is compared with the earlier ones that were
    kept. The reason reported is the first that applies of: test, train, candidate. A plain
    matrix is searched through an index built for the call when `use_index` is True, by the
    exact product when False, and by the sizes (INDEX_FROM, BUILD_FOR) when None."""
    if not 0 < threshold <= 1:
        raise ValueError(f"the dedup threshold must be in (0, 1], got {threshold}")
    candidates = np.asarray(candidates, dtype=np.float32)
    test_sim, test_at = _nearest_existing(candidates, test, use_index)
    train_sim, train_at = _nearest_existing(candidates, train, use_index)
    blocked_by_data = (test_sim >= threshold) | (train_sim >= threshold)

    candidate_sim, candidate_at, kept = _kept_in_order(candidates, blocked_by_data, threshold)

    # Per candidate: (M, 3) cosines to the nearest test, train and kept earlier candidate.
    kinds = ("test", "train", "candidate")
    sims = np.stack([test_sim, train_sim, candidate_sim], axis=1)
    rows = np.stack([test_at, train_at, candidate_at], axis=1)
    over = sims >= threshold
    # The first reason that applies names the neighbour; a kept candidate names its nearest
    # of the three (argmax: the first on equal cosines, in the order test, train, candidate).
    chosen = np.where(over.any(axis=1), over.argmax(axis=1), sims.argmax(axis=1))
    reasons = (DropReason.NEAR_TEST, DropReason.NEAR_TRAIN, DropReason.NEAR_CANDIDATE)
    decisions: list[Decision] = []
    for i, which in enumerate(chosen.tolist()):
        similarity, where = float(sims[i, which]), int(rows[i, which])
        found = where >= 0 and np.isfinite(similarity)
        decisions.append(Decision(bool(kept[i]), None if kept[i] else reasons[which],
                                  kinds[which] if found else None, where if found else None,
                                  similarity if found else None))
    return decisions


def _kept_in_order(candidates: np.ndarray, blocked_by_data: np.ndarray,
                   threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(best cosine to a kept earlier candidate (M,), its index or -1 (M,), kept (M,)).

    Greedy in order: a candidate is kept when the data does not block it and no candidate kept
    before it is at or above the threshold. Per block: one (B, K) product against those kept
    before the block, one (B, B) product within it; only candidates with an earlier one of
    their own block too close are decided one by one (the rest are decided already)."""
    count = len(candidates)
    kept = np.zeros(count, dtype=bool)
    best_sim = np.full(count, -np.inf, dtype=np.float32)
    best_at = np.full(count, -1, dtype=np.int64)
    for start in range(0, count, CANDIDATE_BLOCK):
        block = candidates[start:start + CANDIDATE_BLOCK]                  # (B, D)
        size = len(block)
        before = np.flatnonzero(kept[:start])
        if len(before):
            to_before = block @ candidates[before].T                        # (B, K)
            at = to_before.argmax(axis=1)
            before_sim, before_at = to_before[np.arange(size), at], before[at]
        else:
            before_sim = np.full(size, -np.inf, dtype=np.float32)
            before_at = np.full(size, -1, dtype=np.int64)
        within = block @ block.T                                            # (B, B)
        earlier = np.tri(size, k=-1, dtype=bool)            # [j, l]: l comes before j
        close = earlier & (within >= threshold)
        block_kept = ~blocked_by_data[start:start + size] & (before_sim < threshold)
        for j in np.flatnonzero(block_kept & close.any(axis=1)):          # in order
            block_kept[j] = not (close[j] & block_kept).any()   # only l < j are in close[j]
        masked = np.where(earlier & block_kept[None, :], within, -np.inf)   # (B, B)
        at_within = masked.argmax(axis=1)
        within_sim = masked[np.arange(size), at_within]
        use_within = within_sim > before_sim        # equal: the one before the block (lower)
        best_sim[start:start + size] = np.where(use_within, within_sim, before_sim)
        best_at[start:start + size] = np.where(use_within, start + at_within, before_at)
        kept[start:start + size] = block_kept
    return best_sim, best_at, kept
