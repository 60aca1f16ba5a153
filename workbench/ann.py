"""A cosine nearest-neighbour index over unit float32 rows, for dedup against large sets.

The index proposes, the exact cosine decides. A query's top `k` hits from the index are scored
again with the dot product of the stored float32 unit rows and returned in that exact order, so
every similarity this module returns is an exact cosine and a threshold on it means what it
says. What approximation leaves is only a miss: a true neighbour the search did not
propose. In dedup a miss can only KEEP a candidate that should have been dropped (its neighbour
at or above the threshold went unseen); it can never DROP one wrongly, because every drop rests
on an exact cosine at or above the threshold.

The library is faiss-cpu, chosen over usearch by measurement on the same synthetic clustered
384-wide rows and queries (`benchmarks/ann_benchmark.py`, `benchmarks/results/ann.json`; 100,000
rows, 2 shared cores): faiss's HNSW graph answered 4,647 queries/s against usearch's 2,359
(float32) to 3,458 (float16) at the same recall, usearch's int8 graph ranked by a coarse copy
(recall@10 0.88), and usearch 2.26 inserting on several threads left rows no query reached.

The index is faiss's inverted file (IndexIVFFlat: k-means lists over float32 inner products,
PROBES lists searched per query), not its HNSW graph, by measurement at 1M rows (benchmarks/
dedup_benchmark.py, 5,000 candidates): the graph took 29 minutes to build and, on rows in tight
clusters, even searched 64 deep changed 13 of 1,000 dedup decisions (50 at depth 16, for 3,226
candidates/s), where the lists were learnt in 74 s, built in 133 s, and changed none at 2
probes with more candidates/s. Lists are learnt from the rows at build time; rows added later
join the nearest list, and `persisted_index` learns them anew once the rows have grown
REBUILD_AFTER-fold. Below FLAT_UNTIL rows the index is flat: exact, and nothing to learn.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError

DEFAULT_K = 10          # hits per query re-checked with the exact cosine
FLAT_UNTIL = 10_000     # a build over fewer rows keeps an exact flat index (no lists to learn)
LISTS_PER_ROOT = 4      # an inverted-file index of 4 * sqrt(N) lists over N rows ...
TRAIN_PER_LIST = 39     # ... learnt (k-means, 10 rounds) from 39 sampled rows a list
PROBES = 16             # lists searched per query ("nprobe"). On clustered rows at 1M, 2 gave
# the exact decisions on 1,000 candidates (benchmarks/dedup_benchmark.py); on uniformly random
# rows (no clusters: the hardest case, tests/test_ann.py) 16 changed 5 of 3,000 and 32 none
REBUILD_AFTER = 4.0     # persisted_index relearns the lists once the rows are 4x those learnt on
UNIT_TOLERANCE = 1e-3   # |norm - 1| allowed for a "unit" row
RECHECK_BLOCK = 4096    # queries re-checked at a time: (B, k, D) float32 gathered rows
ROWS_FILE, GRAPH_FILE, MANIFEST_FILE = "rows.npy", "lists.faiss", "index.json"
TEXTS_FILE = "texts.json"   # persisted_index: the text of each row, in id order


def _unit_rows(rows: Any, dimension: int, what: str) -> np.ndarray:
    """`rows` as a C-contiguous (N, dimension) float32 matrix of unit rows, or a clear error."""
    matrix = np.ascontiguousarray(rows, dtype=np.float32)
    if matrix.ndim == 1 and matrix.size == 0:
        matrix = matrix.reshape(0, dimension)
    if matrix.ndim != 2:
        raise WorkbenchError(f"{what} must be a matrix (rows, {dimension}); "
                             f"got an array of shape {matrix.shape}")
    if matrix.shape[1] != dimension:
        raise WorkbenchError(f"{what} are {matrix.shape[1]} wide but the index holds "
                             f"{dimension}-wide vectors: were they made by another encoder?")
    if len(matrix):
        norms = np.linalg.norm(matrix, axis=1)
        bad = np.flatnonzero(~(np.abs(norms - 1) <= UNIT_TOLERANCE))
        if len(bad):
            raise WorkbenchError(f"{what} must be unit vectors (cosine is their dot product); "
                                 f"row {bad[0]} has norm {norms[bad[0]]:.4g}"
                                 + (f" and {len(bad) - 1} more" if len(bad) > 1 else ""))
    return matrix


class CosineIndex:
    """Approximate nearest neighbours by cosine over unit rows, ids 0..N-1 in the order added,
    with each query's top hits re-checked exactly (see the module docstring)."""

    def __init__(self, dimension: int, *, probes: int = PROBES) -> None:
        """An empty index: exact (flat) until `build` learns lists for a large set."""
        import faiss

        if dimension < 1:
            raise WorkbenchError(f"an index needs vectors at least 1 wide, got {dimension}")
        self._dimension = dimension
        # Inner product of unit rows = cosine. faiss keeps its own float32 copy of the rows.
        self._found: Any = faiss.IndexFlatIP(dimension)
        self._probes = probes
        self._learnt_on = 0                  # rows the lists were learnt from (0: flat)
        self._rows = np.zeros((0, dimension), dtype=np.float32)   # (capacity, D)
        self._count = 0

    @classmethod
    def build(cls, rows: Any, *, lists: int | None = None, probes: int = PROBES,
              seed: int = 0) -> CosineIndex:
        """An index over `rows` (N, D) unit float32; row i gets id i. From FLAT_UNTIL rows (or
        when `lists` is given) an inverted file of `lists` lists (default LISTS_PER_ROOT *
        sqrt(N)) learnt from a seeded sample of the rows, searched `probes` lists deep."""
        import faiss

        matrix = np.asarray(rows)
        if matrix.ndim != 2:
            raise WorkbenchError("rows to index must be a matrix (rows, width); "
                                 f"got an array of shape {matrix.shape}")
        index = cls(matrix.shape[1], probes=probes)
        if lists is None and len(matrix) >= FLAT_UNTIL:
            lists = int(LISTS_PER_ROOT * math.sqrt(len(matrix)))
        if lists is not None:
            unit = _unit_rows(matrix, index.dimension, "rows to index")
            lists = max(1, min(lists, len(unit) // TRAIN_PER_LIST))
            picked = np.random.default_rng(seed).choice(
                len(unit), size=min(len(unit), lists * TRAIN_PER_LIST), replace=False)
            ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(index.dimension), index.dimension, lists,
                                     faiss.METRIC_INNER_PRODUCT)
            ivf.cp.niter = 10
            ivf.cp.seed = seed
            ivf.train(np.ascontiguousarray(unit[np.sort(picked)]))
            ivf.nprobe = probes
            index._found, index._learnt_on = ivf, len(unit)
        index.add(matrix)
        return index

    def relearn_for(self, rows: int) -> bool:
        """Whether an index to hold `rows` rows is better built afresh than extended: a flat
        one that would reach FLAT_UNTIL rows, or lists learnt on under 1 / REBUILD_AFTER of
        them."""
        if not self._learnt_on:
            return rows >= FLAT_UNTIL
        return rows > REBUILD_AFTER * self._learnt_on

    @property
    def probes(self) -> int:
        """Lists searched per query (a flat index searches everything)."""
        return self._probes

    @probes.setter
    def probes(self, value: int) -> None:
        if value < 1:
            raise WorkbenchError(f"probes must be at least 1, got {value}")
        self._probes = value
        if self._learnt_on:
            self._found.nprobe = value

    @property
    def dimension(self) -> int:
        return self._dimension

    def __len__(self) -> int:
        return self._count

    @property
    def rows(self) -> np.ndarray:
        """The stored unit rows (N, D), a read-only view: row i is id i."""
        view = self._rows[:self._count]
        view.flags.writeable = False
        return view

    def add(self, rows: Any) -> range:
        """Append unit rows (M, D); returns their ids (the next M after those held)."""
        matrix = _unit_rows(rows, self._dimension, "rows to index")
        start, stop = self._count, self._count + len(matrix)
        if not len(matrix):
            return range(start, stop)
        if stop > len(self._rows):                     # amortised growth of the exact rows
            grown = np.empty((max(stop, 2 * len(self._rows)), self._dimension), np.float32)
            grown[:start] = self._rows[:start]
            self._rows = grown
        self._rows[start:stop] = matrix
        self._found.add(matrix)                        # faiss numbers them start..stop-1
        self._count = stop
        return range(start, stop)

    def search(self, queries: Any, k: int = DEFAULT_K) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids), both (Q, k): each query's top `k` hits by EXACT cosine, best
        first (ties by lower id). Where fewer than k hits exist: similarity -inf, id -1."""
        if k < 1:
            raise WorkbenchError(f"k must be at least 1, got {k}")
        matrix = _unit_rows(queries, self._dimension, "queries")
        sims = np.full((len(matrix), k), -np.inf, dtype=np.float32)
        ids = np.full((len(matrix), k), -1, dtype=np.int64)
        if not len(matrix) or not self._count:
            return sims, ids
        _, found = self._found.search(matrix, min(k, self._count))          # (Q, k') ids
        valid = found >= 0                              # faiss pads a short answer with -1
        candidates = np.where(valid, found, 0).astype(np.int64)              # (Q, k')
        for start in range(0, len(matrix), RECHECK_BLOCK):
            stop = start + RECHECK_BLOCK
            gathered = self._rows[candidates[start:stop]]                    # (B, k', D)
            exact = np.matmul(gathered, matrix[start:stop, :, None])[:, :, 0]  # (B, k')
            exact = np.where(valid[start:stop], exact, -np.inf).astype(np.float32)
            # Exact order: similarity descending, then id ascending (as argmax breaks ties).
            order = np.lexsort((candidates[start:stop], -exact), axis=1)
            width = order.shape[1]
            sims[start:stop, :width] = np.take_along_axis(exact, order, axis=1)
            chosen = np.take_along_axis(candidates[start:stop], order, axis=1)
            ids[start:stop, :width] = np.where(
                np.isfinite(sims[start:stop, :width]), chosen, -1)
        return sims, ids

    def nearest(self, queries: Any, k: int = DEFAULT_K) -> tuple[np.ndarray, np.ndarray]:
        """(best cosine (Q,), its id (Q,)) among the top `k` re-checked hits; -inf / -1 for an
        empty index (the contract of dedup's exact `_nearest`)."""
        sims, ids = self.search(queries, k)
        return sims[:, 0].copy(), ids[:, 0].copy()

    # -- persistence -------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write the index into `folder` (created): the faiss index, the exact rows, a manifest."""
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / ROWS_FILE, self._rows[:self._count])
        faiss.write_index(self._found, str(folder / GRAPH_FILE))
        (folder / MANIFEST_FILE).write_text(json.dumps({
            "dimension": self._dimension, "count": self._count, "probes": self._probes,
            "learnt_on": self._learnt_on, "library": f"faiss-cpu {faiss.__version__}"},
            indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> CosineIndex:
        """The index `save` wrote into `folder`; `add` keeps extending it."""
        try:
            manifest = json.loads((folder / MANIFEST_FILE).read_text())
            rows = np.load(folder / ROWS_FILE)
            count, dimension = int(manifest["count"]), int(manifest["dimension"])
            probes, learnt_on = int(manifest["probes"]), int(manifest["learnt_on"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise WorkbenchError(f"no readable nearest-neighbour index in {folder}: {error}; "
                                 "delete the folder to have it rebuilt") from error
        if rows.shape != (count, dimension):
            raise WorkbenchError(f"the nearest-neighbour index in {folder} is inconsistent "
                                 f"(rows {rows.shape}, manifest {count} x {dimension}); delete "
                                 "the folder to rebuild it")
        import faiss

        index = cls(dimension, probes=probes)
        try:
            found = faiss.read_index(str(folder / GRAPH_FILE))
        except (OSError, RuntimeError) as error:      # faiss reports a bad file as RuntimeError
            raise WorkbenchError(f"the nearest-neighbour lists in {folder} cannot be read: "
                                 f"{error}; delete the folder to rebuild it") from error
        if not isinstance(found, faiss.IndexFlatIP | faiss.IndexIVFFlat):
            raise WorkbenchError(f"{folder / GRAPH_FILE} is a {type(found).__name__}, not an "
                                 "index this module writes; delete the folder to rebuild it")
        if found.ntotal != len(rows) or found.d != index.dimension:
            raise WorkbenchError(f"the nearest-neighbour index in {folder} holds "
                                 f"{found.ntotal} vectors {found.d} wide for {len(rows)} rows; "
                                 "delete the folder to rebuild it")
        if isinstance(found, faiss.IndexIVFFlat):
            found.nprobe = probes
        index._found, index._learnt_on = found, learnt_on
        index._rows, index._count = rows.astype(np.float32, copy=False), len(rows)
        return index


@dataclass(frozen=True)
class PersistedIndex:
    """An index kept on disk and the text of each of its rows: `texts[i]` is id i."""
    index: CosineIndex
    texts: list[str]


def persisted_index(folder: Path, texts: Sequence[str], rows: Any) -> PersistedIndex:
    """The index over `rows` (row i embeds texts[i], texts distinct) kept in `folder` between
    calls, in the order ITS rows were added (`PersistedIndex.texts`), which need not be the
    caller's.

    Loaded when the folder holds exactly these texts; loaded, extended with the texts it lacks
    and saved again when it holds some of them and no others (intents added since: the common
    case as training sets grow version by version); built and saved otherwise (nothing there,
    a text no longer wanted, another width, a damaged folder). The new state is written beside
    the folder and swapped in by renames, so a reader never loads half of one, under an
    exclusive lock on `<folder>.lock`, so two processes extending it do not interleave."""
    import fcntl

    matrix = np.asarray(rows, dtype=np.float32)
    wanted = list(texts)
    if len(wanted) != len(matrix):
        raise WorkbenchError(f"{len(wanted)} texts for {len(matrix)} rows to index")
    position = {text: i for i, text in enumerate(wanted)}
    if len(position) != len(wanted):
        raise WorkbenchError("the texts to index must be distinct: each is one row")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(f"{folder.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        held, index = _held_index(folder, position, matrix)
        if index is not None and len(held) == len(wanted):
            return PersistedIndex(index, held)
        if index is not None and index.relearn_for(len(wanted)):
            index = None             # learn lists for today's rows rather than extend
        if index is None:
            held, index = wanted, CosineIndex.build(matrix)
        else:
            have = set(held)
            added = [text for text in wanted if text not in have]
            index.add(matrix[[position[text] for text in added]])
            held = held + added
        _save_swapped(folder, index, held)
        return PersistedIndex(index, held)


def _held_index(folder: Path, wanted: dict[str, int],
                matrix: np.ndarray) -> tuple[list[str], CosineIndex | None]:
    """(texts, index) the folder holds when they are a usable start for `wanted`, else
    ([], None)."""
    try:
        held = json.loads((folder / TEXTS_FILE).read_text())
        if (matrix.ndim != 2 or not isinstance(held, list)
                or not all(isinstance(text, str) and text in wanted for text in held)):
            return [], None
        index = CosineIndex.load(folder)
    except (OSError, ValueError, TypeError, WorkbenchError):
        return [], None     # nothing usable there: the caller builds afresh
    if len(index) != len(held) or index.dimension != matrix.shape[1]:
        return [], None
    return held, index


def _save_swapped(folder: Path, index: CosineIndex, texts: list[str]) -> None:
    """Write `index` and its texts beside `folder`, then swap them in by two renames (under the
    caller's lock, so what a killed writer left beside the folder is removed first)."""
    for leftover in folder.parent.glob(f"{folder.name}.new-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in folder.parent.glob(f"{folder.name}.old-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    staging = folder.with_name(f"{folder.name}.new-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    index.save(staging)
    (staging / TEXTS_FILE).write_text(json.dumps(texts))
    retired = folder.with_name(f"{folder.name}.old-{os.getpid()}")
    if folder.exists():
        folder.rename(retired)
    staging.rename(folder)
    shutil.rmtree(retired, ignore_errors=True)
