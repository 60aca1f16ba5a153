"""Dedup (SPEC 6): hand-made vectors with known cosines, then hand-picked real phrasings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from workbench.dedup import DropReason, deduplicate


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def rows(*vectors: np.ndarray) -> np.ndarray:
    return np.stack(vectors) if vectors else np.zeros((0, 3), np.float32)


X, Y, Z = unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)
NEAR_X = unit(1, 0.1, 0)      # cosine to X = 1 / sqrt(1.01) = 0.995
BETWEEN_XY = unit(1, 1, 0)    # cosine 0.707 to X and to Y


def test_a_candidate_equal_to_a_test_intent_is_dropped_for_the_test_split_first() -> None:
    # X is both a training and a test intent: leakage is the reason reported.
    [decision] = deduplicate(rows(X), train=rows(Y, X), test=rows(Z, X), threshold=0.9)
    assert not decision.kept
    assert decision.reason is DropReason.NEAR_TEST
    assert (decision.nearest_kind, decision.nearest_index) == ("test", 1)
    assert decision.similarity == pytest.approx(1.0)


def test_near_training_intents_and_earlier_kept_candidates_drop_a_candidate() -> None:
    decisions = deduplicate(rows(NEAR_X, BETWEEN_XY, unit(1, 1.05, 0)), train=rows(X),
                            test=rows(Z), threshold=0.9)
    near_train, kept, near_kept = decisions
    assert near_train.reason is DropReason.NEAR_TRAIN and near_train.nearest_index == 0
    assert near_train.similarity == pytest.approx(1 / np.sqrt(1.01), abs=1e-6)
    assert kept.kept and kept.reason is None
    assert near_kept.reason is DropReason.NEAR_CANDIDATE
    assert (near_kept.nearest_kind, near_kept.nearest_index) == ("candidate", 1)


def test_only_kept_candidates_block_later_ones() -> None:
    # The first candidate is dropped for being near X; the second equals the first but is kept.
    first, second = deduplicate(rows(NEAR_X, NEAR_X), train=rows(X), test=rows(Z),
                                threshold=0.999)
    assert first.reason is None and first.kept  # 0.995 < 0.999
    assert second.reason is DropReason.NEAR_CANDIDATE
    only_kept_block = deduplicate(rows(NEAR_X, NEAR_X), train=rows(X), test=rows(Z),
                                  threshold=0.99)
    assert [d.reason for d in only_kept_block] == [DropReason.NEAR_TRAIN, DropReason.NEAR_TRAIN]


def test_the_threshold_is_inclusive_and_kept_candidates_report_their_nearest() -> None:
    [at] = deduplicate(rows(BETWEEN_XY), train=rows(X), test=rows(Z),
                       threshold=float(BETWEEN_XY @ X))
    assert at.reason is DropReason.NEAR_TRAIN
    [kept] = deduplicate(rows(BETWEEN_XY), train=rows(X), test=rows(Z), threshold=0.9)
    assert kept.kept and kept.nearest_kind == "train"
    assert kept.similarity == pytest.approx(np.sqrt(0.5), abs=1e-6)


def test_empty_inputs_and_bad_thresholds() -> None:
    assert deduplicate(rows(), rows(X), rows(Z), 0.9) == []
    [alone] = deduplicate(rows(X), rows(), rows(), 0.9)
    assert alone.kept and alone.nearest_kind is None and alone.similarity is None
    for threshold in (0, -0.5, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            deduplicate(rows(X), rows(Y), rows(Z), threshold)


def test_blocks_give_the_same_answer_as_one_product(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = np.random.default_rng(0)
    candidates, train, test = (generator.normal(size=(n, 32)).astype(np.float32)
                               for n in (50, 300, 40))
    candidates[10], candidates[20], candidates[30] = train[5], test[7], candidates[3]
    for matrix in (candidates, train, test):
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    whole = deduplicate(candidates, train, test, 0.6)
    monkeypatch.setattr("workbench.dedup.BLOCK", 7)
    blocked = deduplicate(candidates, train, test, 0.6)
    assert [(d.kept, d.reason, d.nearest_kind, d.nearest_index) for d in blocked] == \
        [(d.kept, d.reason, d.nearest_kind, d.nearest_index) for d in whole]
    assert [d.similarity for d in blocked] == pytest.approx([d.similarity for d in whole],
                                                            abs=1e-5)
    assert {d.reason for d in whole} == {None, *DropReason}  # every path was exercised


# -- real phrasings through the bundled all-MiniLM-L6-v2 ----------------------------------------

@pytest.fixture(scope="module")
def encoder() -> Any:
    from workbench.embeddings import load_encoder

    return load_encoder()


def test_hand_picked_near_duplicates_go_and_new_phrasings_stay(encoder: Any) -> None:
    from workbench.embeddings import embed

    train = ["golden hour", "cool morning", "black and white"]
    test = ["moody rainy night"]
    candidates = ["Golden  Hour!", "very cool morning", "MOODY RAINY NIGHT",
                  "chilly dawn", "monochrome", "warm sunset glow", "chilly  dawn"]
    decisions = deduplicate(embed(encoder, candidates), embed(encoder, train),
                            embed(encoder, test), threshold=0.9)
    assert [d.reason for d in decisions] == [
        DropReason.NEAR_TRAIN, DropReason.NEAR_TRAIN, DropReason.NEAR_TEST,
        None, None, None, DropReason.NEAR_CANDIDATE]
    assert [d.nearest_index for d in decisions[:3]] == [0, 1, 0]
    assert decisions[6].nearest_index == 3
