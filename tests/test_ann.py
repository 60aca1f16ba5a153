"""The nearest-neighbour index (workbench.ann) and dedup through it: hand-worked cases, the exact
re-check, and parity with the exact matrix product on 20,000 existing intents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workbench.ann import CosineIndex
from workbench.dedup import DropReason, deduplicate
from workbench.errors import WorkbenchError


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


X, Y, Z = unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)
NEAR_X = unit(1, 0.1, 0)      # cosine to X = 1 / sqrt(1.01) = 0.99504
BETWEEN_XY = unit(1, 1, 0)    # cosine 1 / sqrt(2) = 0.70711 to X and to Y


# -- the index, worked by hand -----------------------------------------------------------------

def test_hits_come_back_with_exact_cosines_best_first() -> None:
    index = CosineIndex.build(np.stack([X, Y, NEAR_X, Z]))
    sims, ids = index.search(X[None, :], k=2)
    assert ids.tolist() == [[0, 2]]
    assert sims[0] == pytest.approx([1.0, 1 / np.sqrt(1.01)], abs=1e-6)
    # BETWEEN_XY . NEAR_X = 1.1 / (sqrt(2) sqrt(1.01)) = 0.77399; . X = . Y = 0.70711 (a tie:
    # the lower id first)
    sims, ids = index.search(BETWEEN_XY[None, :], k=3)
    assert ids.tolist() == [[2, 0, 1]]
    assert sims[0] == pytest.approx([1.1 / np.sqrt(2.02), 1 / np.sqrt(2), 1 / np.sqrt(2)],
                                    abs=1e-6)
    best, where = index.nearest(np.stack([Z, NEAR_X]))
    assert where.tolist() == [3, 2] and best == pytest.approx([1.0, 1.0], abs=1e-6)


def test_equal_cosines_rank_by_lower_id_and_short_answers_are_padded() -> None:
    index = CosineIndex.build(np.stack([Y, X, X]))
    sims, ids = index.search(X[None, :], k=5)
    assert ids.tolist() == [[1, 2, 0, -1, -1]]
    assert sims[0, :3] == pytest.approx([1, 1, 0], abs=1e-6)
    assert np.isneginf(sims[0, 3:]).all()


def test_an_empty_index_finds_nothing() -> None:
    index = CosineIndex(3)
    assert len(index) == 0
    sims, ids = index.search(np.stack([X, Y]), k=2)
    assert ids.tolist() == [[-1, -1], [-1, -1]] and np.isneginf(sims).all()
    best, where = index.nearest(np.zeros((0, 3), np.float32))
    assert best.shape == where.shape == (0,)
    [alone] = deduplicate(X[None, :], train=index, test=CosineIndex(3), threshold=0.9)
    assert alone.kept and alone.nearest_kind is None and alone.similarity is None


def test_rows_added_later_get_the_next_ids_and_are_found() -> None:
    index = CosineIndex(3)
    assert index.add(np.stack([Y, Z])) == range(2)
    assert index.add(X[None, :]) == range(2, 3)
    assert len(index) == 3 and index.rows.shape == (3, 3)
    assert index.nearest(NEAR_X[None, :])[1].tolist() == [2]


def test_mismatched_or_malformed_vectors_are_clear_errors() -> None:
    index = CosineIndex.build(np.stack([X, Y]))
    with pytest.raises(WorkbenchError, match="queries are 4 wide but the index holds 3-wide"):
        index.search(np.ones((2, 4), np.float32) / 2)
    with pytest.raises(WorkbenchError, match="rows to index are 2 wide"):
        index.add(np.ones((1, 2), np.float32))
    with pytest.raises(WorkbenchError, match="unit vectors.*row 1 has norm 2"):
        index.add(np.stack([X, 2 * Y]))
    with pytest.raises(WorkbenchError, match="matrix"):
        index.search(np.ones((2, 3, 1), np.float32))
    with pytest.raises(WorkbenchError, match="k must be at least 1"):
        index.search(X[None, :], k=0)
    with pytest.raises(WorkbenchError, match="4 wide"):
        deduplicate(np.ones((1, 4), np.float32) / 2, train=index, test=np.zeros((0, 4)),
                    threshold=0.9)


def test_saved_index_loads_and_keeps_growing(tmp_path: Path) -> None:
    CosineIndex.build(np.stack([Y, Z])).save(tmp_path / "ann")
    loaded = CosineIndex.load(tmp_path / "ann")
    assert len(loaded) == 2 and loaded.dimension == 3
    assert loaded.add(NEAR_X[None, :]) == range(2, 3)
    assert loaded.nearest(X[None, :])[1].tolist() == [2]
    with pytest.raises(WorkbenchError, match="no readable nearest-neighbour index"):
        CosineIndex.load(tmp_path / "missing")


# -- the re-check: whatever the index proposes, similarities are exact -------------------------

class _WorstIndex:
    """A stand-in for the faiss index that proposes only the two FARTHEST rows (the worst
    misses), whatever the count asked for."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def search(self, queries: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(queries @ self.rows.T, axis=1)[:, :2]           # ascending cosine
        ids = np.pad(order, ((0, 0), (0, count - 2)), constant_values=-1)  # (Q, count)
        return np.zeros(ids.shape, np.float32), ids


def test_a_missed_neighbour_can_keep_a_candidate_but_never_drop_one() -> None:
    train = np.stack([X, Y, Z, BETWEEN_XY])
    index = CosineIndex.build(train)
    index._found = _WorstIndex(train)
    sims, ids = index.search(NEAR_X[None, :], k=2)
    # The two farthest of the four (Z at 0, Y at 0.0995), exact and best first.
    assert ids.tolist() == [[1, 2]]
    assert sims[0] == pytest.approx([0.1 / np.sqrt(1.01), 0.0], abs=1e-6)
    exact = deduplicate(np.stack([NEAR_X, unit(0.1, 0, 1)]), train, np.zeros((0, 3)), 0.9)
    missed = deduplicate(np.stack([NEAR_X, unit(0.1, 0, 1)]), index, np.zeros((0, 3)), 0.9)
    assert [d.reason for d in exact] == [DropReason.NEAR_TRAIN, DropReason.NEAR_TRAIN]
    assert all(d.kept and d.reason is None for d in missed)


# -- parity with the exact product at 20,000 intents ---------------------------------------------

def _unit_rows(generator: np.random.Generator, n: int, width: int) -> np.ndarray:
    matrix = generator.standard_normal((n, width)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def _at_cosines(sources: np.ndarray, cosines: np.ndarray,
                generator: np.random.Generator) -> np.ndarray:
    """Unit rows at the given cosines to `sources`: cos * source + sin * an orthogonal unit."""
    direction = generator.standard_normal(sources.shape).astype(np.float32)
    direction -= (direction * sources).sum(axis=1, keepdims=True) * sources
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    made = cosines[:, None] * sources + np.sqrt(1 - cosines ** 2)[:, None] * direction
    return (made / np.linalg.norm(made, axis=1, keepdims=True)).astype(np.float32)


THRESHOLD = 0.9
WIDTH = 32      # narrow rows build fast; random pairs (cosine sd 0.18) rarely reach 0.85
# Planted cosines straddle the threshold, none closer to it than float32 rounding could flip.
STRADDLE = np.array([0.85, 0.88, 0.895, 0.898, 0.902, 0.905, 0.92, 0.97], dtype=np.float32)


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """20,000 training and 2,000 test intents (random unit rows, WIDTH wide), and 3,000
    candidates: near copies of training rows, of test rows, of earlier candidates at the
    STRADDLE cosines, and fresh random rows, shuffled."""
    generator = np.random.default_rng(17)
    train, test = _unit_rows(generator, 20_000, WIDTH), _unit_rows(generator, 2_000, WIDTH)
    fresh = _unit_rows(generator, 1_200, WIDTH)

    def near(pool: np.ndarray, n: int) -> np.ndarray:
        return _at_cosines(pool[generator.integers(0, len(pool), n)],
                           generator.choice(STRADDLE, n), generator)
    candidates = np.concatenate([near(train, 800), near(test, 400), fresh])
    candidates = candidates[generator.permutation(len(candidates))]
    # Near copies of earlier candidates go after their source, so order matters for them.
    later = near(candidates[:1_500], 600)
    return np.concatenate([candidates, later]), train, test


def test_the_index_gives_the_exact_products_decisions_on_20k_intents(
        planted: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    candidates, train, test = planted
    exact = deduplicate(candidates, train, test, THRESHOLD, use_index=False)
    # Uniformly random rows have no clusters for the lists to follow, the hardest case: 32
    # probes of the 565 lists find every neighbour here (the default 16 missed 5 of 3,000).
    indexed = deduplicate(candidates, CosineIndex.build(train, probes=32),
                          CosineIndex.build(test, probes=32), THRESHOLD)
    assert [(d.kept, d.reason) for d in indexed] == [(d.kept, d.reason) for d in exact]
    for mine, oracle in zip(indexed, exact, strict=True):
        if not oracle.kept:       # a drop names the same neighbour at the same cosine
            assert (mine.nearest_kind, mine.nearest_index) == \
                (oracle.nearest_kind, oracle.nearest_index)
            assert mine.similarity == pytest.approx(oracle.similarity, abs=1e-5)
    reasons = [d.reason for d in exact]
    # Every path is exercised, with plenty of each, and the planted cosines do straddle.
    assert min(reasons.count(reason) for reason in DropReason) >= 100
    assert reasons.count(None) >= 1_000


def test_every_drop_through_the_index_rests_on_an_exact_cosine(
        planted: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    candidates, train, test = planted
    # Deliberately weak lists (many, one searched) miss more; it may keep more but each drop is
    # still at or above the threshold by the exact dot product of the rows.
    weak = CosineIndex.build(train, lists=1_000, probes=1)
    decisions = deduplicate(candidates, weak, test, THRESHOLD)
    matrices = {"train": train, "test": test, "candidate": candidates}
    for i, decision in enumerate(decisions):
        if decision.reason is not None:
            assert decision.nearest_kind is not None and decision.nearest_index is not None
            row = matrices[decision.nearest_kind][decision.nearest_index]
            cosine = float(np.dot(candidates[i].astype(np.float64), row.astype(np.float64)))
            assert cosine >= THRESHOLD - 1e-6
            assert decision.similarity == pytest.approx(cosine, abs=1e-5)
    exact = deduplicate(candidates, train, test, THRESHOLD)
    # Dropped for the data: a subset of the exact drops (misses only ever keep).
    near_data = {i for i, d in enumerate(decisions)
                 if d.reason in (DropReason.NEAR_TRAIN, DropReason.NEAR_TEST)}
    assert near_data <= {i for i, d in enumerate(exact) if not d.kept}
    # ... and the weak lists did miss (hundreds, here), so the property was really put to test.
    assert len(near_data) < sum(d.reason in (DropReason.NEAR_TRAIN, DropReason.NEAR_TEST)
                                for d in exact) - 50


# -- kept candidates: the exact greedy, in blocks ----------------------------------------------

def _greedy(candidates: np.ndarray, train: np.ndarray, threshold: float) -> list[Any]:
    """The rule written out one pair at a time: (kept, reason, kind, index) per candidate."""
    out: list[Any] = []
    kept: list[int] = []
    for i, row in enumerate(candidates.astype(np.float64)):
        to_train = [float(row @ other) for other in train.astype(np.float64)]
        to_kept = [float(row @ candidates[j].astype(np.float64)) for j in kept]
        best_train = int(np.argmax(to_train))
        best_kept = kept[int(np.argmax(to_kept))] if kept else None
        if to_train[best_train] >= threshold:
            out.append((False, DropReason.NEAR_TRAIN, "train", best_train))
        elif to_kept and max(to_kept) >= threshold:
            out.append((False, DropReason.NEAR_CANDIDATE, "candidate", best_kept))
        else:
            kept.append(i)
            nearest = ("candidate", best_kept) if to_kept and max(to_kept) > to_train[best_train] \
                else ("train", best_train)
            out.append((True, None, *nearest))
    return out


def test_kept_candidates_block_later_ones_the_same_in_any_block_size(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # 8-wide rows at a threshold of 0.8: plenty of candidates close to each other.
    generator = np.random.default_rng(5)
    candidates, train = _unit_rows(generator, 300, 8), _unit_rows(generator, 40, 8)
    expected = _greedy(candidates, train, 0.8)
    assert 50 <= sum(kind == "candidate" and not kept for kept, _, kind, _ in expected)
    for block in (512, 7, 1):
        monkeypatch.setattr("workbench.dedup.CANDIDATE_BLOCK", block)
        decisions = deduplicate(candidates, train, np.zeros((0, 8), np.float32), 0.8)
        assert [(d.kept, d.reason, d.nearest_kind, d.nearest_index) for d in decisions] == \
            expected


# -- kept beside the database: loaded, extended, rebuilt ---------------------------------------

@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row counts of every CosineIndex.build from here on (the builds still happen)."""
    sizes: list[int] = []
    real_build = CosineIndex.build.__func__                      # type: ignore[attr-defined]

    def counting_build(cls: type[CosineIndex], rows: Any, **settings: int) -> CosineIndex:
        sizes.append(len(rows))
        return real_build(cls, rows, **settings)
    monkeypatch.setattr(CosineIndex, "build", classmethod(counting_build))
    return sizes


def test_a_persisted_index_is_reused_extended_or_rebuilt(tmp_path: Path,
                                                         built: list[int]) -> None:
    from workbench import ann

    folder = tmp_path / "ann" / "model-train"

    first = ann.persisted_index(folder, ["x", "y"], np.stack([X, Y]))
    assert len(first.index) == 2 and first.texts == ["x", "y"] and built == [2]
    again = ann.persisted_index(folder, ["y", "x"], np.stack([Y, X]))
    assert again.texts == ["x", "y"] and built == [2]           # loaded, in its own order
    grown = ann.persisted_index(folder, ["z", "x", "y"], np.stack([Z, X, Y]))
    assert grown.texts == ["x", "y", "z"] and built == [2]      # extended, not rebuilt
    assert grown.index.nearest(Z[None, :])[1].tolist() == [2]
    reloaded = ann.persisted_index(folder, ["x", "y", "z"], np.stack([X, Y, Z]))
    assert reloaded.texts == ["x", "y", "z"] and built == [2]
    assert reloaded.index.nearest(NEAR_X[None, :])[1].tolist() == [0]
    fewer = ann.persisted_index(folder, ["z", "x"], np.stack([Z, X]))   # "y" is gone: rebuilt
    assert built == [2, 2] and fewer.texts == ["z", "x"]
    assert fewer.index.nearest(Z[None, :])[1].tolist() == [0]
    (folder / "lists.faiss").write_bytes(b"damaged")
    assert len(ann.persisted_index(folder, ["z", "x"], np.stack([Z, X])).index) == 2
    assert built == [2, 2, 2]                                   # a damaged folder is rebuilt
    (folder / "texts.json").write_text('{"not": "a list"}')
    assert ann.persisted_index(folder, ["z", "x"], np.stack([Z, X])).texts == ["z", "x"]
    assert built == [2, 2, 2, 2]
    (folder.parent / "model-train.new-999999").mkdir()           # what a killed writer left
    ann.persisted_index(folder, ["z", "x", "y"], np.stack([Z, X, Y]))
    assert sorted(path.name for path in folder.parent.iterdir()) == [
        "model-train", "model-train.lock"]
    assert (folder / "lists.faiss").is_file()
    with pytest.raises(WorkbenchError, match="2 texts for 1 rows"):
        ann.persisted_index(folder, ["x", "y"], X[None, :])
    with pytest.raises(WorkbenchError, match="distinct"):
        ann.persisted_index(folder, ["x", "x"], np.stack([X, X]))


def test_a_persisted_index_learns_lists_when_it_outgrows_the_ones_it_has(
        tmp_path: Path, built: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench import ann

    monkeypatch.setattr(ann, "FLAT_UNTIL", 4)
    monkeypatch.setattr(ann, "REBUILD_AFTER", 2.0)
    rows = _unit_rows(np.random.default_rng(3), 11, 8)
    texts = [f"t{i}" for i in range(11)]
    folder = tmp_path / "ann"

    def held(n: int) -> ann.PersistedIndex:
        return ann.persisted_index(folder, texts[:n], rows[:n])

    assert held(2).index._learnt_on == 0 and built == [2]       # flat: nothing to learn
    assert held(3).index._learnt_on == 0 and built == [2]       # extended
    assert held(5).index._learnt_on == 5 and built == [2, 5]    # reached FLAT_UNTIL: lists
    grown = held(10)
    assert grown.index._learnt_on == 5 and built == [2, 5]      # 10 <= 2 x 5: extended
    assert grown.index.nearest(rows[9][None, :])[1].tolist() == [9]
    assert held(11).index._learnt_on == 11 and built == [2, 5, 11]   # past it: learnt anew


def test_an_index_is_built_for_the_call_only_when_the_sizes_make_it_pay(
        monkeypatch: pytest.MonkeyPatch, built: list[int]) -> None:
    monkeypatch.setattr("workbench.dedup.INDEX_FROM", 3)
    monkeypatch.setattr("workbench.dedup.BUILD_FOR", 2)
    train, test = np.stack([X, Y, Z]), np.stack([Y, Z])
    deduplicate(np.stack([NEAR_X]), train, test, 0.9)               # one candidate: exact
    assert built == []
    both = deduplicate(np.stack([NEAR_X, BETWEEN_XY]), train, test, 0.9)
    assert built == [3]                                             # the 2-row test set: exact
    assert [d.reason for d in both] == [DropReason.NEAR_TRAIN, None]
    deduplicate(np.stack([NEAR_X, BETWEEN_XY]), train, test, 0.9, use_index=False)
    assert built == [3]
    deduplicate(np.stack([NEAR_X]), train, test, 0.9, use_index=True)
    assert built == [3, 2, 3]                                       # test first, then train
