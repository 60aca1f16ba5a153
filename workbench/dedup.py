"""Near-duplicate filtering of augmentation candidates by sentence-embedding cosine (SPEC 6).

A candidate is dropped when its cosine to any test intent (always checked: no leakage into
evaluation), to any training intent, or to any candidate kept before it is at or above the
threshold. Every candidate keeps its nearest neighbour and the similarity, kept or not.
Matrix products in blocks, so 10k candidates against 100k intents stay within memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

BLOCK = 2048  # candidate rows per matrix product: (2048, N) float32 scores at a time


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


def deduplicate(candidates: np.ndarray, train: np.ndarray, test: np.ndarray,
                threshold: float) -> list[Decision]:
    """One decision per candidate row, in order. All inputs are unit rows (N, D) float32.

    Candidates are considered in order; a later one is compared with the earlier ones that were
    kept. The reason reported is the first that applies of: test, train, candidate."""
    if not 0 < threshold <= 1:
        raise ValueError(f"the dedup threshold must be in (0, 1], got {threshold}")
    candidates = np.asarray(candidates, dtype=np.float32)
    test_sim, test_at = _nearest(candidates, np.asarray(test, dtype=np.float32))
    train_sim, train_at = _nearest(candidates, np.asarray(train, dtype=np.float32))
    blocked_by_data = (test_sim >= threshold) | (train_sim >= threshold)

    # Among candidates: one (M, M) product, then a greedy pass in order over kept rows only.
    pairwise = candidates @ candidates.T if len(candidates) else np.zeros((0, 0), np.float32)
    kept = np.zeros(len(candidates), dtype=bool)
    decisions: list[Decision] = []
    for i in range(len(candidates)):
        earlier = np.flatnonzero(kept[:i])
        cand_sim = pairwise[i, earlier] if len(earlier) else np.zeros(0, np.float32)
        best_cand = int(earlier[cand_sim.argmax()]) if len(earlier) else None
        best_cand_sim = float(cand_sim.max()) if len(earlier) else -np.inf
        options = [("test", float(test_sim[i]), int(test_at[i])),
                   ("train", float(train_sim[i]), int(train_at[i])),
                   ("candidate", best_cand_sim, best_cand)]
        if test_sim[i] >= threshold:
            reason: DropReason | None = DropReason.NEAR_TEST
            nearest = options[0]
        elif train_sim[i] >= threshold:
            reason, nearest = DropReason.NEAR_TRAIN, options[1]
        elif best_cand_sim >= threshold:
            reason, nearest = DropReason.NEAR_CANDIDATE, options[2]
        else:
            reason = None
            nearest = max(options, key=lambda option: option[1])
        kept[i] = reason is None and not blocked_by_data[i]
        kind, similarity, at = nearest
        found = at is not None and at >= 0 and np.isfinite(similarity)
        decisions.append(Decision(bool(kept[i]), reason, kind if found else None,
                                  at if found else None, similarity if found else None))
    return decisions
