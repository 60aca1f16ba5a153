"""Benchmark: faiss-cpu against usearch as the cosine nearest-neighbour index behind dedup.

    python benchmarks/ann_benchmark.py [--existing 100000] [--queries 5000] [--only NAME ...]

Both libraries index the SAME rows and answer the SAME queries, on the same cores:
- rows: `--existing` SYNTHETIC unit vectors of dimension 384 (all-MiniLM-L6-v2's width) with
  clustered structure (`clustered_unit_rows`): embedding a million real intents takes about
  45 minutes here, and what an index costs depends on the geometry (clusters, dimension), not on
  what the texts say. Random vectors without clusters would be the hardest case for a graph
  index and unlike sentence embeddings, so the rows come in clusters of varied tightness;
- queries: `--queries` rows, a third of them planted near-duplicates of indexed rows (cosine
  0.85 to 0.98 to their source, so they straddle the dedup threshold 0.9) and the rest new
  points in the same clusters, as paraphrases of existing intents would be;
- per index: build seconds, query throughput (top 10, batched, every core), recall@10 against
  the exact matrix product, the exact nearest at rank 1, dedup recall (of the queries whose
  exact nearest row is at or above 0.9, the share whose nearest is among the 10 hits), and the
  memory the build added (resident memory before and after; the benchmark's own float32 rows
  not counted, a copy the index keeps is).
Configurations: the two HNSW libraries with the same graph settings (16 links per node, 32 on
the base layer; insertion depth 128; search depth 64): faiss IndexHNSWFlat (float32, inserted
by faiss's OpenMP threads), faiss IndexIVFFlat (4*sqrt(N) lists, 16 probed), usearch with
float32, float16 and int8 storage (inserted on one thread, as workbench.ann does); usearch int8
inserted on every core (to show the rows concurrent insertion leaves unreachable); usearch int8
with half the insertion depth (64). Queries use every core in all of them. `workbench.ann`
(only with --only) measures the chosen one through the module, with its exact re-check.
Results go to benchmarks/results/ann.json (one entry per `--existing`, merged with what the
file holds).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DIMENSION = 384                  # all-MiniLM-L6-v2
THRESHOLD = 0.9                  # the dedup default
K = 10


def _normalised(matrix: np.ndarray) -> np.ndarray:
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix


def clustered_unit_rows(n: int, generator: np.random.Generator, dimension: int = DIMENSION,
                        per_cluster: int = 200, centres: np.ndarray | None = None,
                        chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """(rows (n, D) float32 unit, centres (C, D)): each row is a cluster centre plus noise.

    Noise of norm s per cluster, s drawn from 0.6 to 1.4, gives cosines of about 1/(1+s^2)
    between two rows of a cluster (0.34 to 0.74: related phrasings, rarely near-duplicates)
    and about 0 across clusters. Pass the `centres` of existing rows to draw new rows from the
    same clusters."""
    if centres is None:
        centres = _normalised(generator.standard_normal(
            (max(1, n // per_cluster), dimension), dtype=np.float32))
    spread = generator.uniform(0.6, 1.4, size=len(centres)).astype(np.float32)
    rows = np.empty((n, dimension), dtype=np.float32)
    for start in range(0, n, chunk):                   # bounded temporaries at 1M rows
        stop = min(n, start + chunk)
        which = generator.integers(0, len(centres), size=stop - start)
        noise = generator.standard_normal((stop - start, dimension), dtype=np.float32)
        noise *= (spread[which] / math.sqrt(dimension))[:, None]
        rows[start:stop] = _normalised(centres[which] + noise)
    return rows, centres


def near_copies(sources: np.ndarray, cosines: np.ndarray,
                generator: np.random.Generator) -> np.ndarray:
    """Unit rows at exactly the given cosines to `sources` (a random orthogonal direction)."""
    direction = generator.standard_normal(sources.shape, dtype=np.float32)
    direction -= (direction * sources).sum(axis=1, keepdims=True) * sources
    direction = _normalised(direction)
    sines = np.sqrt(1 - cosines ** 2)
    return _normalised(cosines[:, None] * sources + sines[:, None] * direction).astype(np.float32)


def benchmark_queries(rows: np.ndarray, centres: np.ndarray, n: int,
                      generator: np.random.Generator) -> np.ndarray:
    """A third planted near-duplicates of indexed rows (cosine 0.85 to 0.98), the rest new rows
    from the same clusters, shuffled."""
    planted = n // 3
    sources = rows[generator.integers(0, len(rows), size=planted)]
    near = near_copies(sources, generator.uniform(0.85, 0.98, size=planted).astype(np.float32),
                       generator)
    fresh, _ = clustered_unit_rows(n - planted, generator, centres=centres)
    queries = np.concatenate([near, fresh])
    return queries[generator.permutation(n)]


def exact_top(rows: np.ndarray, queries: np.ndarray, k: int = K,
              block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, ids) (Q, k) of the exact k nearest rows, best first (the oracle)."""
    sims = np.empty((len(queries), k), dtype=np.float32)
    ids = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), block):
        scores = queries[start:start + block] @ rows.T                      # (B, N)
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1)
        ids[start:start + block] = np.take_along_axis(top, order, axis=1)
        sims[start:start + block] = np.take_along_axis(top_scores, order, axis=1)
    return sims, ids


def resident_mib() -> float:
    """This process's resident memory now (MiB), from /proc (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- the configurations: build(rows) -> search(queries, k) -> ids (Q, k) -------------------------

Search = Callable[[np.ndarray, int], np.ndarray]


def faiss_hnsw(rows: np.ndarray) -> Search:
    import faiss

    index = faiss.IndexHNSWFlat(rows.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 128
    index.add(rows)
    index.hnsw.efSearch = 64

    def search(queries: np.ndarray, k: int) -> np.ndarray:
        return index.search(queries, k)[1]
    return search


def faiss_ivf(rows: np.ndarray) -> Search:
    import faiss

    lists = int(4 * math.sqrt(len(rows)))
    quantizer = faiss.IndexFlatIP(rows.shape[1])
    index = faiss.IndexIVFFlat(quantizer, rows.shape[1], lists, faiss.METRIC_INNER_PRODUCT)
    sample = rows[np.random.default_rng(1).choice(len(rows), min(len(rows), 40 * lists),
                                                  replace=False)]
    index.train(sample)
    index.add(rows)
    index.nprobe = 16

    def search(queries: np.ndarray, k: int) -> np.ndarray:
        return index.search(queries, k)[1]
    return search


def usearch_hnsw(dtype: str, add_threads: int = 1,
                 expansion_add: int = 128) -> Callable[[np.ndarray], Search]:
    """usearch's HNSW; rows inserted on `add_threads` threads (0: every core), queried on all."""
    def build(rows: np.ndarray) -> Search:
        from usearch.index import Index

        index = Index(ndim=rows.shape[1], metric="cos", dtype=dtype, connectivity=16,
                      expansion_add=expansion_add, expansion_search=64, multi=False)
        index.add(np.arange(len(rows), dtype=np.uint64), rows, threads=add_threads)

        def search(queries: np.ndarray, k: int) -> np.ndarray:
            found = index.search(queries, k, threads=0)
            return np.asarray(found.keys, dtype=np.int64)
        return search
    return build


def workbench_index(rows: np.ndarray) -> Search:
    """The chosen library as workbench.ann wraps it (with the exact re-check)."""
    from workbench.ann import CosineIndex

    index = CosineIndex.build(rows)

    def search(queries: np.ndarray, k: int) -> np.ndarray:
        return index.search(queries, k)[1]
    return search


CONFIGURATIONS: dict[str, Callable[[np.ndarray], Search]] = {
    "faiss-hnsw-flat": faiss_hnsw, "faiss-ivf-flat": faiss_ivf,
    "usearch-hnsw-f32": usearch_hnsw("f32"), "usearch-hnsw-f16": usearch_hnsw("f16"),
    "usearch-hnsw-i8": usearch_hnsw("i8"),
    "usearch-hnsw-i8-parallel-add": usearch_hnsw("i8", add_threads=0),
    "usearch-hnsw-i8-add64": usearch_hnsw("i8", expansion_add=64),
    "workbench.ann": workbench_index,
}


def measure(name: str, rows: np.ndarray, queries: np.ndarray, exact_sims: np.ndarray,
            exact_ids: np.ndarray) -> dict[str, Any]:
    gc.collect()
    before = resident_mib()
    started = time.perf_counter()
    search = CONFIGURATIONS[name](rows)
    build_s = time.perf_counter() - started
    added_mib = resident_mib() - before
    search(queries[:256], K)                                               # warm-up
    started = time.perf_counter()
    ids = search(queries, K)
    search_s = time.perf_counter() - started
    hits = [len(set(found[found >= 0]) & set(truth)) for found, truth in zip(ids, exact_ids)]
    duplicates = exact_sims[:, 0] >= THRESHOLD
    found_nearest = ids[:, 0] == exact_ids[:, 0]
    # A re-check ranks the top K exactly, so the nearest counts as found anywhere in the top K.
    found_anywhere = (ids == exact_ids[:, :1]).any(axis=1)
    result = {
        "build_s": round(build_s, 2), "queries_per_s": round(len(queries) / search_s, 1),
        "recall_at_10": round(float(np.mean(hits)) / K, 4),
        "nearest_at_rank_1": round(float(found_nearest.mean()), 4),
        "dedup_recall": round(float(found_anywhere[duplicates].mean()), 5),
        "dedup_queries": int(duplicates.sum()),
        "index_memory_mib": round(added_mib, 1),
    }
    print(name, json.dumps(result), flush=True)
    del search
    gc.collect()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--existing", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=5_000)
    parser.add_argument("--only", action="append", choices=sorted(CONFIGURATIONS),
                        help="measure only these configurations (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ann.json")
    args = parser.parse_args()

    generator = np.random.default_rng(0)
    rows, centres = clustered_unit_rows(args.existing, generator)
    queries = benchmark_queries(rows, centres, args.queries, generator)
    started = time.perf_counter()
    exact_sims, exact_ids = exact_top(rows, queries)
    exact_s = time.perf_counter() - started
    print(f"exact top {K}: {len(queries) / exact_s:.1f} queries/s", flush=True)

    import faiss
    try:
        import usearch
        usearch_version = usearch.__version__
    except ImportError:            # not a dependency of the workbench: only for this comparison
        usearch_version = None
        print("usearch is not installed (pip install usearch to compare it); measuring faiss "
              "only", flush=True)
    names = args.only or [name for name in CONFIGURATIONS if name != "workbench.ann"
                          and (usearch_version or not name.startswith("usearch"))]
    if usearch_version is None and any(name.startswith("usearch") for name in names):
        sys.exit("error: --only names a usearch index, and usearch is not installed")
    results = {name: measure(name, rows, queries, exact_sims, exact_ids) for name in names}

    entry = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "data": f"synthetic clustered unit vectors, {DIMENSION} wide",
        "existing": args.existing, "queries": args.queries, "k": K,
        "versions": {"faiss-cpu": faiss.__version__, "usearch": usearch_version},
        "exact_queries_per_s": round(len(queries) / exact_s, 1),
        "indexes": results,
    }
    stored = json.loads(args.out.read_text()) if args.out.exists() else {}
    stored.setdefault(str(args.existing), {}).update(
        {key: value for key, value in entry.items() if key != "indexes"})
    stored[str(args.existing)].setdefault("indexes", {}).update(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(stored, indent=2) + "\n")


if __name__ == "__main__":
    main()
