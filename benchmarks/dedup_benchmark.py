"""Benchmark: embedding and dedup throughput for augmentation candidates (SPEC 10).

    python benchmarks/dedup_benchmark.py [--existing 100000] [--candidates 5000]
                                         [--index-sizes 100000 1000000] [--exact-candidates 1000]

- embedding: candidates/s through the bundled all-MiniLM-L6-v2 (batch 256) on intent-like texts,
  as `embed` runs it for them (its ONNX Runtime twin, exported beforehand), and in torch on the
  first BULK_FROM - 1 of them (below BULK_FROM, `embed` keeps torch);
- dedup: candidates/s checked against `--existing` training intents and 1,000 test intents
  (the vectors are random unit vectors of the encoder's width: the cost does not depend on
  what they say), plus the candidates among themselves;
- cache: reading `--existing` cached vectors back from DuckDB, and writing them;
- index: dedup through the nearest-neighbour index (workbench.ann) against each of
  `--index-sizes` existing intents. These are SYNTHETIC unit vectors, 384 wide, in clusters
  (benchmarks/ann_benchmark.py's `clustered_unit_rows`): embedding a million intents takes about
  45 minutes here, and the cost of an index depends on the geometry, not on what the texts say;
  the candidates are a third planted near-duplicates of existing rows (cosine 0.85 to 0.98) and
  the rest new rows of the same clusters. Measured: building the index, `--candidates`
  candidates/s with the index built (as a kept index is used), the same counting the build (a
  round that builds its own), at each of `--probes` (lists searched per candidate), and the
  exact product's candidates/s on `--exact-candidates` of them, with how many of those got a
  different decision through the index.
Results go to benchmarks/results/dedup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--existing", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=5_000)
    parser.add_argument("--index-sizes", type=int, nargs="*", default=[100_000, 1_000_000],
                        help="existing intents to dedup against through the index (none: skip)")
    parser.add_argument("--exact-candidates", type=int, default=1_000,
                        help="candidates the exact product checks at each index size")
    parser.add_argument("--probes", type=int, nargs="*", default=[2, 16],
                        help="lists searched per candidate, each measured on the same index")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dedup.json")
    args = parser.parse_args()

    import numpy as np

    from workbench.dedup import deduplicate
    from workbench.embeddings import embed, load_encoder
    from workbench.paraphrase.offline import OfflineParaphraser
    from workbench.store import Store
    from workbench.store.embeddings import cache_vectors, cached_vectors

    encoder = load_encoder()
    seeds = ["golden hour", "cool morning", "black and white", "moody rainy night",
             "vintage 70s film", "teal and orange", "soft pastel spring", "neon city at night"]
    texts: list[str] = []
    paraphraser = OfflineParaphraser(seed=1)
    round_ = 0
    while len(texts) < args.candidates:
        for result in paraphraser.paraphrase([f"{s} {round_}" for s in seeds], 8):
            texts.extend(result.candidates)
        round_ += 1
    texts = texts[:args.candidates]
    from workbench import embeddings

    # Warm-ups: torch, and the ONNX twin's export (once per process, outside the timing).
    embed(encoder, texts[:256])
    embeddings.bulk_twin(encoder)
    started = time.perf_counter()
    embed(encoder, texts[:embeddings.BULK_FROM - 1])           # below BULK_FROM: torch
    torch_s = time.perf_counter() - started
    started = time.perf_counter()
    candidates = embed(encoder, texts)
    embed_s = time.perf_counter() - started

    generator = np.random.default_rng(0)
    dimension = candidates.shape[1]

    def unit_rows(n: int) -> np.ndarray:
        matrix = generator.normal(size=(n, dimension)).astype(np.float32)
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)

    train, test = unit_rows(args.existing), unit_rows(1_000)
    started = time.perf_counter()
    # The exact product (the oracle), as before the index existed: no index at this size.
    decisions = deduplicate(candidates, train, test, 0.9, use_index=False)
    dedup_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "bench.duckdb")
        names = [f"existing intent {i}" for i in range(args.existing)]
        started = time.perf_counter()
        with store.atomic(create=True) as session:
            cache_vectors(session, "bench", names, train)
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        with store.session() as session:
            matrix = np.stack(list(cached_vectors(session, "bench", names).values()))
        read_s = time.perf_counter() - started
        assert matrix.shape == train.shape

    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "candidates": args.candidates, "existing": args.existing, "test": 1_000,
        "embed_candidates_per_s": round(args.candidates / embed_s, 1),
        "embed_candidates_per_s_torch": round((embeddings.BULK_FROM - 1) / torch_s, 1),
        "dedup_candidates_per_s": round(args.candidates / dedup_s, 1),
        "dedup_s": round(dedup_s, 2),
        "kept": sum(d.kept for d in decisions),
        "cache_write_s": round(write_s, 2), "cache_read_s": round(read_s, 2),
        "index": {str(n): index_dedup(n, args.candidates, args.exact_candidates, dimension,
                                      args.probes)
                  for n in args.index_sizes},
    }
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


def index_dedup(existing: int, n_candidates: int, n_exact: int, dimension: int,
                probes: list[int]) -> dict[str, Any]:
    """Dedup through the index against `existing` synthetic clustered intents (module doc), at
    each number of `probes`."""
    import numpy as np
    from ann_benchmark import benchmark_queries, clustered_unit_rows

    from workbench.ann import CosineIndex
    from workbench.dedup import deduplicate

    generator = np.random.default_rng(existing)
    train, centres = clustered_unit_rows(existing, generator, dimension)
    candidates = benchmark_queries(train, centres, n_candidates, generator)
    test, _ = clustered_unit_rows(1_000, generator, dimension, centres=centres)

    started = time.perf_counter()
    index = CosineIndex.build(train)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    exact = deduplicate(candidates[:n_exact], train, test, 0.9, use_index=False)
    exact_s = time.perf_counter() - started
    result: dict[str, Any] = {
        "data": "synthetic clustered unit vectors", "build_s": round(build_s, 1),
        "exact_candidates_per_s": round(n_exact / exact_s, 1), "exact_compared": n_exact,
        "by_probes": {}}
    for count in probes:
        index.probes = count
        deduplicate(candidates[:200], index, test, 0.9)                  # warm
        started = time.perf_counter()
        indexed = deduplicate(candidates, index, test, 0.9)
        indexed_s = time.perf_counter() - started
        # The first n_exact decisions depend only on the first n_exact candidates: they compare.
        differ = sum((mine.kept, mine.reason) != (oracle.kept, oracle.reason)
                     for mine, oracle in zip(indexed, exact, strict=False))
        result["by_probes"][str(count)] = {
            "candidates_per_s_index_built": round(n_candidates / indexed_s, 1),
            "candidates_per_s_with_build": round(n_candidates / (build_s + indexed_s), 1),
            "decisions_differing": differ,
            "kept": sum(d.kept for d in indexed),
            "near_duplicates_dropped": sum(not d.kept for d in indexed)}
    print(existing, json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
