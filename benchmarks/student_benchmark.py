"""Benchmark: every trained student's latency, throughput, training time and size (SPEC 10).

    workbench demo && workbench experiment rq1          # trains the three students
    python benchmarks/student_benchmark.py [--db PATH] [--out benchmarks/results/students.json]

For the latest run of each student in the database: single-intent latency (p50, p95 over
`--repeats` calls on test intents, after a warm-up), batch throughput on the whole test split,
the recorded training time and the model size. CPU only unless a GPU is present.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "students.json")
    args = parser.parse_args()

    import torch

    from workbench.store import Store
    from workbench.store.runs import list_runs, load_run
    from workbench.store.versions import Split, version_rows

    store = Store.at(args.db)
    latest: dict[str, dict] = {}
    for run in list_runs(store):
        latest[run["student"]] = run
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch "
                          f"{torch.__version__}, {torch.get_num_threads()} threads, "
                          f"{'cuda' if torch.cuda.is_available() else 'cpu'}",
               "students": {}}
    for kind, run in latest.items():
        _, student = load_run(store, run["run_id"])
        with store.session() as session:
            intents = [row["intent_text"] for row in
                       version_rows(session, run["version_id"], Split.TEST)]
        for text in intents[:5]:  # warm-up
            student.predict([text])
        timings = []
        for i in range(args.repeats):
            started = time.perf_counter()
            student.predict([intents[i % len(intents)]])
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        started = time.perf_counter()
        student.predict(intents)
        batch_s = time.perf_counter() - started
        results["students"][kind] = {
            "run_id": run["run_id"], "n_train": run["n_train"],
            "training_s": round(run["duration_s"], 1), "device": run["device"],
            "size_mib": round(run["size_bytes"] / 2**20, 1),
            "latency_p50_ms": round(statistics.median(timings), 1),
            "latency_p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 1),
            "batch_intents": len(intents),
            "throughput_per_s": round(len(intents) / batch_s, 1),
        }
        print(kind, json.dumps(results["students"][kind]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
