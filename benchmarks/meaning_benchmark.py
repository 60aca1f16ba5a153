"""Benchmark: search by meaning (the Intents page's meaning mode), at paper scale and at 1M.

    python benchmarks/meaning_benchmark.py [--db PAPER_DB] [--million-db MILLION_DB]
                                           [--synthetic] [--queries 60]

- paper scale (`--db`, else the paper-scale demo is built in a temporary folder): every intent
  embedded with the bundled all-MiniLM-L6-v2 into the database's embedding cache (timed when it
  had to be done; a second run finds them cached), the intent vectors loaded into memory, and
  `--queries` searches timed as the page runs them: the check that what it holds in memory is
  current (three counts in one read-only open of the file), embedding the query (ONNX twin), the
  nearest 50 intents (exact cosine over the float32 matrix), and the result rows (from the
  intents' numbers held in memory); and the one-time loads (vectors, intents, the map's PCA);
- `--synthetic`: the same at 1M requests (333,333 intents): a copy of `--million-db` (else
  `workbench demo --requests 1000000` is built, a few minutes) gets a RANDOM unit vector (384
  wide) cached for every intent under a model name of its own ("random-unit-vectors"), since
  embedding 333K intents on two CPU cores takes hours; the cost of the search does not depend on
  what the vectors say. The query is embedded for real.
Results go to benchmarks/results/meaning.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ("black and white", "b&w", "monochrome", "golden hour", "moody rainy night",
           "vintage 70s film", "teal and orange", "soft pastel spring", "neon city at night",
           "make it pop", "warmer and brighter", "cinematic", "faded film look", "cold winter",
           "sunset glow", "high contrast noir", "dreamy haze", "desaturated", "tropical",
           "autumn leaves")
SYNTHETIC_MODEL = "random-unit-vectors"
K = 50


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(p95 * 1000, 2)}


def load_intents(store: Any) -> tuple[Any, float]:
    """Every intent's numbers, split and tools (what the page holds in memory beside the
    vectors, to list results without a query), and the seconds it took."""
    from workbench.store.intent_rows import intent_table

    started = time.perf_counter()
    with store.session(read_only=True) as session:
        frame = intent_table(session, 1).to_pandas().set_index("intent_key", drop=False)
    return frame, time.perf_counter() - started


def time_searches(store: Any, index: Any, intents: Any, encoder: Any, queries: int,
                  model: str | None) -> dict[str, Any]:
    """Per search as the page runs it: the cache-state check (one short read-only open of the
    file), embedding the query, the nearest K, and the K result rows from memory."""
    from pipelines import meaning

    parts: dict[str, list[float]] = {"state_check": [], "embed": [], "nearest": [],
                                     "search": [], "rows": [], "page": []}
    for i in range(queries):
        text = QUERIES[i % len(QUERIES)]
        started = time.perf_counter()
        meaning.cache_state(store, model)
        checked = time.perf_counter()
        vector = encoder(text)
        embedded = time.perf_counter()
        found = meaning.nearest(index, vector, K)
        searched = time.perf_counter()
        intents.reindex([m.intent_key for m in found]).to_dict("records")
        done = time.perf_counter()
        parts["state_check"].append(checked - started)
        parts["embed"].append(embedded - checked)
        parts["nearest"].append(searched - embedded)
        parts["search"].append(searched - checked)
        parts["rows"].append(done - searched)
        parts["page"].append(done - started)
    return {name: percentiles(samples) for name, samples in parts.items()}


def paper_scale(db: Path | None, queries: int, encoder: Any) -> dict[str, Any]:
    from pipelines import demo, meaning
    from workbench.store import Store

    with tempfile.TemporaryDirectory() as folder:
        if db is None:
            db = Path(folder) / "paper.duckdb"
            demo.run(demo.DemoRunConfig(), Store(db))
        store = Store(db)
        started = time.perf_counter()
        embedded = meaning.run(meaning.EmbedIntentsConfig(), store, None, encoder.encoder)
        embed_s = time.perf_counter() - started
        started = time.perf_counter()
        index = meaning.load_index(store)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        meaning.intent_map(index)
        map_s = time.perf_counter() - started
        intents, intents_s = load_intents(store)
        found = [m.intent_text for m in meaning.search(index, encoder, "black and white", 20)]
        return {
            "db": str(db), "intents": len(index),
            "embedded_now": embedded.n_embedded, "embed_s": round(embed_s, 1),
            "embed_intents_per_s": (round(embedded.n_embedded / embed_s, 1)
                                    if embedded.n_embedded else None),
            "load_index_s": round(load_s, 2), "load_intents_s": round(intents_s, 2),
            "map_s": round(map_s, 2), "black_and_white_top20": found,
            **time_searches(store, index, intents, encoder, queries, None)}


def million_scale(db: Path | None, queries: int, encoder: Any) -> dict[str, Any]:
    import numpy as np

    from pipelines import demo, meaning
    from workbench.store import Store, embeddings

    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "million.duckdb"
        if db is None:
            demo.run(demo.DemoRunConfig(requests=1_000_000), Store(copy))
        else:
            shutil.copyfile(db, copy)
        store = Store(copy)
        with store.session(read_only=True) as session:
            texts = embeddings.intents_without_embedding(session, SYNTHETIC_MODEL)
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((len(texts), 384)).astype(np.float32)     # (N, 384)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        started = time.perf_counter()
        for start in range(0, len(texts), 50_000):
            with store.atomic() as session:
                embeddings.cache_vectors(session, SYNTHETIC_MODEL, texts[start:start + 50_000],
                                         vectors[start:start + 50_000])
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        index = meaning.load_index(store, SYNTHETIC_MODEL)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        meaning.intent_map(index)
        map_s = time.perf_counter() - started
        intents, intents_s = load_intents(store)
        return {
            "db": str(db) if db else "built: workbench demo --requests 1000000",
            "intents": len(index), "vectors": "random unit vectors (384 wide)",
            "index_mb": round(index.vectors.nbytes / 2**20, 1),
            "cache_write_s": round(write_s, 1), "load_index_s": round(load_s, 2),
            "load_intents_s": round(intents_s, 2), "map_s": round(map_s, 2),
            **time_searches(store, index, intents, encoder, queries, SYNTHETIC_MODEL)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=None, help="a paper-scale database")
    parser.add_argument("--synthetic", action="store_true",
                        help="also measure at 1M requests with random unit vectors")
    parser.add_argument("--million-db", type=Path, default=None,
                        help="with --synthetic: a 1M-request database (copied, not changed)")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "meaning.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from pipelines import meaning

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        encoder = meaning.load_query_encoder(None, Path(folder))
    encoder_s = time.perf_counter() - started
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "k": K, "queries": args.queries, "onnx_query_encoder": encoder.twin is not None,
        "load_query_encoder_s": round(encoder_s, 1),
        "paper": paper_scale(args.db, args.queries, encoder)}
    if args.synthetic:
        results["million"] = million_scale(args.million_db, args.queries, encoder)
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
