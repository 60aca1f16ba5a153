"""Benchmark: ingest N synthetic requests (default 1M), peak memory, curation, browse latency,
and how long each writer keeps readers (the app) out of the database.

    python benchmarks/ingest_benchmark.py [--requests 1000000] [--validators sql python]
        [--out benchmarks/results/ingest.json]

Each validator (`--validators`, default both: DuckDB's SQL path and the Python reference) ingests
the same file into a database of its own; the rest (re-ingest, curation, browse) runs on the
first one's database.

Ingest, a second ingest of the same file (every request a duplicate) and curation each run in a
child process so that its peak resident memory is its own. While each runs, a reader in this
process opens the database read-only every 20 ms, as the app's pages do, and records the longest
stretch in which it could not get in: that is the writer's hold as a browsing curator feels it.
The browse query is the Intents page's typical one: a text search, an export-rate filter, a sort
by request count, 50 rows; timed with a fresh connection per query, as the app makes them.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _child(step: str, corpus: Path, db: Path) -> None:
    """Runs in a child process; prints one JSON line with its time and peak memory (MiB).
    `step` is curate, or ingest-<validator>."""
    from pipelines import curate, ingest
    from workbench.store import Store

    store = Store(db)
    started = time.perf_counter()
    if step.startswith("ingest"):
        validator = ingest.Validator(step.partition("-")[2] or "sql")
        summary = ingest.ingest_file(corpus, store, validator=validator)
        detail = {"ingested": summary.ingested, "duplicates": summary.duplicates,
                  "quarantined": summary.quarantined, "hold_s": summary.hold_s}
    else:
        result = curate.run(curate.CurateConfig(), store)
        detail = {"intents": result.intents, "train": result.train, "test": result.test}
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_mib, **detail}))


class _Reader(threading.Thread):
    """Opens the database read-only every `interval_s` until stopped; the longest stretch between
    two successful opens (or from the first refusal to the stop) is the hold readers felt."""

    def __init__(self, db: Path, interval_s: float = 0.02):
        super().__init__(daemon=True)
        self.db, self.interval_s = db, interval_s
        self.stopped = threading.Event()
        self.longest_s = 0.0
        self.refused = 0

    def run(self) -> None:
        from workbench.errors import StoreBusyError, StoreMissingError
        from workbench.store import Store

        store = Store(self.db, lock_timeout=0.0)
        last_ok = time.perf_counter()
        while not self.stopped.is_set():
            try:
                with store.session(read_only=True):
                    pass    # opening the file (and checking its schema) is the reader's test
                last_ok = time.perf_counter()
            except StoreMissingError:   # not created yet: nothing to read, nobody kept out
                last_ok = time.perf_counter()
            except StoreBusyError:
                self.refused += 1
                self.longest_s = max(self.longest_s, time.perf_counter() - last_ok)
            time.sleep(self.interval_s)


def _run_child(step: str, corpus: Path, db: Path) -> dict:
    reader = _Reader(db)
    reader.start()
    try:
        output = subprocess.run([sys.executable, __file__, "--child", step, str(corpus), str(db)],
                                check=True, capture_output=True, text=True, cwd=ROOT)
    finally:
        reader.stopped.set()
        reader.join()
    result = json.loads(output.stdout.strip().splitlines()[-1])
    return {**result, "readers_kept_out_max_s": round(reader.longest_s, 2)}


def _browse(db: Path, repeats: int) -> dict:
    from workbench.store import Store
    from workbench.store.requests import IntentFilter, IntentSort, intents_page

    store = Store(db)
    filters = IntentFilter(search="golden", min_export_rate=0.5)
    timings, rows = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        with store.session() as session:
            rows = len(intents_page(session, filters, IntentSort.REQUESTS, limit=50))
        timings.append((time.perf_counter() - started) * 1000)
    query_only = []
    with store.session() as session:
        for _ in range(repeats):
            started = time.perf_counter()
            intents_page(session, filters, IntentSort.REQUESTS, limit=50)
            query_only.append((time.perf_counter() - started) * 1000)
    timings.sort()
    query_only.sort()
    return {"query": "search 'golden' + export_rate >= 0.5 + sort by requests, 50 rows",
            "rows": rows, "repeats": repeats,
            "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 1),
            "query_only_p50_ms": round(statistics.median(query_only), 1),
            "query_only_p95_ms": round(query_only[int(0.95 * (len(query_only) - 1))], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--validators", nargs="+", choices=["sql", "python"],
                        default=["sql", "python"], help="who checks the records (each its own "
                        "ingest into its own database; the first one's is browsed)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ingest.json")
    parser.add_argument("--child", nargs=3, metavar=("STEP", "CORPUS", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return

    from workbench.synthetic import DemoConfig, write_jsonl

    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as folder:
        corpus, db = Path(folder) / "logs.jsonl", Path(folder) / "bench.duckdb"
        config = DemoConfig.at_scale(args.requests)
        started = time.perf_counter()
        write_jsonl(config, corpus)
        generate_s = time.perf_counter() - started
        print(f"generated {args.requests} synthetic requests in {generate_s:.1f} s", file=sys.stderr)
        by_validator = {}
        for validator in args.validators:
            target = db if validator == args.validators[0] else db.with_name(f"{validator}.duckdb")
            by_validator[validator] = result = _run_child(f"ingest-{validator}", corpus, target)
            result["rows_per_second"] = round(result["ingested"] / result["seconds"])
            print(f"ingest ({validator}): {result}", file=sys.stderr)
        ingest = by_validator[args.validators[0]]
        reingest = _run_child(f"ingest-{args.validators[0]}", corpus, db)
        print(f"ingest again (all duplicates): {reingest}", file=sys.stderr)
        curated = _run_child("curate", corpus, db)
        print(f"curate: {curated}", file=sys.stderr)
        browse = _browse(db, args.repeats)
        print(f"browse: {browse}", file=sys.stderr)
        results = {
            "requests": args.requests, "intents": config.intents,
            "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, "
                       f"Python {platform.python_version()}",
            "generate_seconds": round(generate_s, 1),
            "ingest": {**ingest, "validator": args.validators[0]},
            "ingest_by_validator": by_validator,
            "ingest_again_all_duplicates": reingest,
            "curate": curated, "browse": browse,
            "database_mib": round(db.stat().st_size / 2**20, 1),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
