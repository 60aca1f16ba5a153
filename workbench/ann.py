"""A cosine nearest-neighbour index over unit float32 rows, for dedup against large sets.

The index proposes, the exact cosine decides. A query's top `k` hits from the graph are scored
again with the dot product of the stored float32 unit rows and returned in that exact order, so
every similarity this module returns is an exact cosine and a threshold on it means what it
says. What approximation leaves is only a miss: a true neighbour the graph search did not
propose. In dedup a miss can only KEEP a candidate that should have been dropped (its neighbour
at or above the threshold went unseen); it can never DROP one wrongly, because every drop rests
on an exact cosine at or above the threshold.

The library is faiss-cpu (IndexHNSWFlat: an HNSW graph over float32 inner products), chosen over
usearch by measurement on the same synthetic clustered 384-wide rows and queries
(`benchmarks/ann_benchmark.py`, `benchmarks/results/ann.json`; 100,000 rows, 2 shared cores):
with the same graph settings it answered 4,647 queries/s against usearch's 2,359 (float32),
3,458 (float16) and 3,215 (int8), and built in 59 s against 62 to 101 s, at the same recall
(recall@10 0.998; 99.7% of the planted near-duplicates found, usearch float32 99.8%). usearch's
int8 graph takes a third of the memory (55 against 174 MB) but ranks by a coarse copy (recall@10
0.88, fine for dedup after the re-check, poor for search by meaning), and usearch 2.26 inserting
on several threads left rows unreachable by any query, so it had to build on one thread. faiss's
IVF index answered faster still on these rows (5,708 queries/s) but learns its lists from the
first rows and needs retraining as intents drift; the graph needs no training, takes rows one
batch at a time under the next ids, and is written to and read from one file, which is what an
index kept beside the database and extended as intents are embedded needs.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError

DEFAULT_K = 10          # hits per query re-checked with the exact cosine
CONNECTIVITY = 16       # HNSW links per node ("M"; twice that on the base layer); fixed at birth
EXPANSION_ADD = 128     # search depth while inserting ("efConstruction"); 64 missed more
EXPANSION_SEARCH = 64   # search depth while querying ("efSearch"); at least k is searched anyway.
# At 1M rows 64 changed 11 of 500 dedup decisions (none at 100K): to be raised and measured.
UNIT_TOLERANCE = 1e-3   # |norm - 1| allowed for a "unit" row
RECHECK_BLOCK = 4096    # queries re-checked at a time: (B, k, D) float32 gathered rows
ROWS_FILE, GRAPH_FILE, MANIFEST_FILE = "rows.npy", "graph.faiss", "index.json"
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

    def __init__(self, dimension: int, *, connectivity: int = CONNECTIVITY,
                 expansion_add: int = EXPANSION_ADD,
                 expansion_search: int = EXPANSION_SEARCH) -> None:
        import faiss

        if dimension < 1:
            raise WorkbenchError(f"an index needs vectors at least 1 wide, got {dimension}")
        self._dimension = dimension
        # Inner product of unit rows = cosine. The graph keeps its own float32 copy of the rows.
        self._graph = faiss.IndexHNSWFlat(dimension, connectivity, faiss.METRIC_INNER_PRODUCT)
        self._graph.hnsw.efConstruction = expansion_add
        self._graph.hnsw.efSearch = expansion_search
        self._rows = np.zeros((0, dimension), dtype=np.float32)   # (capacity, D)
        self._count = 0

    @classmethod
    def build(cls, rows: Any, **settings: int) -> CosineIndex:
        """An index over `rows` (N, D) unit float32; row i gets id i."""
        matrix = np.asarray(rows)
        if matrix.ndim != 2:
            raise WorkbenchError("rows to index must be a matrix (rows, width); "
                                 f"got an array of shape {matrix.shape}")
        index = cls(matrix.shape[1], **settings)
        index.add(matrix)
        return index

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
        self._graph.add(matrix)                        # faiss numbers them start..stop-1
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
        _, found = self._graph.search(matrix, min(k, self._count))          # (Q, k') ids
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
        """Write the index into `folder` (created): the graph, the exact rows, a manifest."""
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / ROWS_FILE, self._rows[:self._count])
        faiss.write_index(self._graph, str(folder / GRAPH_FILE))
        (folder / MANIFEST_FILE).write_text(json.dumps({
            "dimension": self._dimension, "count": self._count,
            "library": f"faiss-cpu {faiss.__version__}"}, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> CosineIndex:
        """The index `save` wrote into `folder`; `add` keeps extending it."""
        try:
            manifest = json.loads((folder / MANIFEST_FILE).read_text())
            rows = np.load(folder / ROWS_FILE)
        except (OSError, ValueError) as error:
            raise WorkbenchError(f"no readable nearest-neighbour index in {folder}: {error}; "
                                 "delete the folder to have it rebuilt") from error
        if rows.shape != (manifest["count"], manifest["dimension"]):
            raise WorkbenchError(f"the nearest-neighbour index in {folder} is inconsistent "
                                 f"(rows {rows.shape}, manifest {manifest['count']} x "
                                 f"{manifest['dimension']}); delete the folder to rebuild it")
        import faiss

        index = cls(int(manifest["dimension"]))
        try:
            graph = faiss.read_index(str(folder / GRAPH_FILE))
        except (OSError, RuntimeError) as error:      # faiss reports a bad file as RuntimeError
            raise WorkbenchError(f"the nearest-neighbour graph in {folder} cannot be read: "
                                 f"{error}; delete the folder to rebuild it") from error
        if not isinstance(graph, faiss.IndexHNSWFlat):
            raise WorkbenchError(f"{folder / GRAPH_FILE} is a {type(graph).__name__}, not the "
                                 "HNSW graph this module writes; delete the folder to rebuild it")
        if graph.ntotal != len(rows) or graph.d != index.dimension:
            raise WorkbenchError(f"the nearest-neighbour index in {folder} holds "
                                 f"{graph.ntotal} vectors {graph.d} wide for {len(rows)} rows; "
                                 "delete the folder to rebuild it")
        graph.hnsw.efSearch = EXPANSION_SEARCH
        index._graph = graph
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
