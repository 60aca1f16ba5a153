"""Benchmark: embedding and dedup throughput for augmentation candidates (SPEC 10).

    python benchmarks/dedup_benchmark.py [--existing 100000] [--candidates 5000]

- embedding: candidates/s through the bundled all-MiniLM-L6-v2 (batch 256) on intent-like texts;
- dedup: candidates/s checked against `--existing` training intents and 1,000 test intents
  (the vectors are random unit vectors of the encoder's width: the cost does not depend on
  what they say), plus the candidates among themselves;
- cache: reading `--existing` cached vectors back from DuckDB, and writing them.
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

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--existing", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=5_000)
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
    embed(encoder, texts[:256])  # warm-up
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
    decisions = deduplicate(candidates, train, test, 0.9)
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
        "dedup_candidates_per_s": round(args.candidates / dedup_s, 1),
        "dedup_s": round(dedup_s, 2),
        "kept": sum(d.kept for d in decisions),
        "cache_write_s": round(write_s, 2), "cache_read_s": round(read_s, 2),
    }
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
