"""Benchmark: `workbench export --partitioned` on large dataset versions (issue 17).

    python benchmarks/export_benchmark.py [--rows 1000000 10000000] [--out PATH]

For each size, a database holding one dataset version of that many SYNTHETIC rows (90% train;
made directly with the store's `create_version`: curating that many intents from logs would
take far longer than the export being measured) is built in a temporary folder, then
`workbench export --partitioned` runs on it as a user runs it, in a child process: its wall
time and peak resident memory are recorded, and the dataset is read back to count its rows.
Results go to benchmarks/results/export.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The export as `workbench export` runs it, then its own peak resident memory (VmHWM, KiB) on
# stderr: read inside the process, since a forked child's maximum RSS as the parent sees it
# includes the parent's memory it started from.
CHILD = ("import sys\nfrom workbench.cli import main\ncode = main(sys.argv[1:])\n"
         "print([line.split()[1] for line in open('/proc/self/status') "
         "if line.startswith('VmHWM:')][0], file=sys.stderr)\nsys.exit(code)")


def make_database(path: Path, rows: int) -> None:
    """One dataset version of `rows` synthetic intents, labelled so in their text."""
    import pyarrow as pa

    from workbench.store import Store
    from workbench.store.versions import Origin, create_version
    from workbench.tools import ADJUST_KEYS

    generator = random.Random(0)
    keys = [f"synthetic intent {i:08d} warm look" for i in range(rows)]
    adjust = [json.dumps({key: (generator.randint(-100, 100) if j % 5 == i % 5 else 0)
                          for j, key in enumerate(ADJUST_KEYS)}, separators=(",", ":"))
              for i in range(rows)]
    table = pa.table({
        "intent_key": keys, "intent_text": keys,
        "split": ["test" if i % 10 == 0 else "train" for i in range(rows)],
        "request_count": pa.array([1 + i % 7 for i in range(rows)], pa.int64()),
        "adjust": adjust, "selective_adjust": pa.array([None] * rows, pa.string()),
        "filter": [json.dumps({"name": "warm_Golden", "intensity": i % 100},
                              separators=(",", ":")) if i % 3 else None for i in range(rows)],
        "origin": ["logs"] * rows, "source_intent_key": pa.array([None] * rows, pa.string())})
    with Store(path).atomic(create=True) as session:
        create_version(session, table, Origin.CURATION, "export benchmark (synthetic)", {})


def measure(rows: int) -> dict[str, Any]:
    import pyarrow.dataset as ds

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "big.duckdb"
        started = time.perf_counter()
        make_database(db, rows)
        made_s = time.perf_counter() - started
        out = Path(folder) / "export"
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, "export", "--db", str(db),
                               "--partitioned", str(out), "--no-progress"], check=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        export_s = time.perf_counter() - started
        peak_kib = int(done.stderr.strip().splitlines()[-1])
        read_back = ds.dataset(out, format="parquet", partitioning="hive").count_rows()
        files = sum(1 for _ in out.rglob("*.parquet"))
    result = {"rows": rows, "make_database_s": round(made_s, 1),
              "export_s": round(export_s, 1),
              "peak_rss_mib": round(peak_kib / 1024),
              "rows_read_back": read_back, "parquet_files": files}
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "export.json")
    args = parser.parse_args()
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
               "load_average_at_start": os.getloadavg()[0],
               "data": "SYNTHETIC dataset versions",
               "exports": [measure(rows) for rows in sorted(args.rows)]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
