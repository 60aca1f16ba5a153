"""Benchmark: server-side render time of the app's Intents and Errors pages (issues 7, 17).

    python benchmarks/app_benchmark.py --db PAPER_DB --db BIG_DB [--grow 10000000] [--repeats 20]

Each database needs a dataset version; one without a student evaluation gets one first: a
retrieval student is trained on a seeded 1% (at least 2,000 intents) of the training split,
as a subsample version that shares the test split, and evaluated there, so the Errors page has
the same 1,000-intent evaluation to show at any scale. Work on copies: this writes to the files.

`--grow N` adds a SYNTHETIC database: a copy of the last --db (after its evaluation) whose logs
are repeated in SQL, with new request ids and intent keys (the copy's number appended, as in
"golden hour ~3"), until it holds N requests; the new intents go to the training split of the
curated version, so the test split and the evaluation stay the source's. It stands in for ten
million real requests, which the Python ingest would take hours to load here; it is made once
(`<last db>-grown-N.duckdb` beside it, reused when present) and says what it is in its ingest
record, so the app shows its synthetic-data notice.

Times are Streamlit AppTest script runs (query, dataframe building, widgets, charts; the
browser's drawing is not included), in one process as the app serves them, so reruns share the
app's read-only connection: the first run after start (the database opened, nothing in
st.cache_data), then the median, 95th percentile and worst of `--repeats` reruns, plus a rerun
with a search typed into the Intents page, and how often the file was opened meanwhile. Modules
are imported once beforehand, so "first" is not Python's imports. Results go to
benchmarks/results/app.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _page_script(view: str) -> None:  # runs inside AppTest
    import importlib

    importlib.import_module(f"workbench.app.views.{view}").render()


def ensure_evaluation(db: Path) -> None:
    from pipelines import evaluate, train
    from workbench.store import Store
    from workbench.store.evaluations import count_evaluations
    from workbench.store.versions import (
        Split,
        current_version_id,
        set_current_version,
        subsample_version,
        version_rows,
    )

    store = Store(db)
    with store.session() as session:
        found = count_evaluations(session, "run")
        base = current_version_id(session)
        n_train = len(version_rows(session, base, Split.TRAIN)) if not found else 0
    if found:
        return
    fraction = min(1.0, max(0.01, 2000 / max(n_train, 1)))
    with store.atomic() as session:
        small = subsample_version(session, base, fraction, seed=0,
                                  note="app benchmark: a small training set for the Errors page")
        set_current_version(session, base)
    run = train.run(train.TrainConfig(student="retrieval", version=small,
                                      note="app benchmark"), store)
    evaluate.evaluate_run(run.run_id, small, store)


GROWN_NOTE = ("synthetic-demo-grown (benchmarks/app_benchmark.py --grow: the logs above repeated "
              "in SQL with new ids; SYNTHETIC)")


def grow(source: Path, requests: int) -> Path:
    """A copy of `source` whose logs are repeated until it holds about `requests` requests (see
    the module's docstring and `workbench.store.synthetic_growth`); made once, then reused."""
    import shutil
    from datetime import UTC, datetime

    from workbench.store import Store
    from workbench.store import requests as request_rows
    from workbench.store import synthetic_growth as growth

    target = source.with_name(f"{source.stem}-grown-{requests}.duckdb")
    if target.exists():
        with Store(target).session(read_only=True) as session:
            if growth.has_ingest_named(session, GROWN_NOTE):
                return target
        target.unlink()
    with Store(source).session() as session:          # migrated, then closed, before copying
        n = request_rows.log_counts(session)["requests"]
    copies = max(1, math.ceil(requests / n)) - 1
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(source, partial)
    started, begun = time.perf_counter(), datetime.now(UTC)
    grown = Store(partial)
    with grown.session() as session:
        version = growth.curated_version(session)
        ingest = request_rows.next_ingest_id(session)
    for number in range(1, copies + 1):               # one copy per transaction: bounded memory
        with grown.atomic() as session:
            growth.add_copy(session, number, ingest, GROWN_NOTE, version)
        print(f"grow: copy {number} of {copies} ({time.perf_counter() - started:.0f} s)",
              flush=True)
    with grown.atomic() as session:
        if version is not None:
            growth.recount_training_split(session, version)
        total = request_rows.requests_of_ingests(session, [ingest])["requests"]
        request_rows.record_ingest(session, ingest_id=ingest, source_file=GROWN_NOTE,
                                   format="sql", started_at=begun, finished_at=datetime.now(UTC),
                                   n_read=total, n_ingested=total, n_duplicates=0,
                                   n_quarantined=0, error=None)
    partial.rename(target)
    print(f"grow: {target} in {time.perf_counter() - started:.0f} s", flush=True)
    return target


def time_page(view: str, db: Path, repeats: int, search: str | None = None) -> dict:
    from streamlit.testing.v1 import AppTest

    from workbench.store.connection import shared_reader

    os.environ["WORKBENCH_DB"] = str(db)
    test = AppTest.from_function(_page_script, args=(view,), default_timeout=600)
    opened = shared_reader(db).opens
    started = time.perf_counter()
    test.run()
    first = time.perf_counter() - started
    if test.exception:
        raise RuntimeError(f"{view} on {db}: {test.exception[0].message}")
    reruns = []
    for _ in range(repeats):
        started = time.perf_counter()
        test.run()
        reruns.append(time.perf_counter() - started)
    ms = sorted(round(seconds * 1000) for seconds in reruns)
    result = {"first_ms": round(first * 1000), "rerun_p50_ms": round(statistics.median(ms)),
              # the nearest-rank 95th percentile of the reruns
              "rerun_p95_ms": ms[max(0, math.ceil(0.95 * len(ms)) - 1)],
              "rerun_max_ms": ms[-1], "reruns": len(ms)}
    if search is not None:
        started = time.perf_counter()
        test.text_input(key="intents_search").set_value(search).run()
        result["search_ms"] = round((time.perf_counter() - started) * 1000)
    result["database_opens"] = shared_reader(db).opens - opened
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, action="append", required=True)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--grow", type=int, metavar="REQUESTS",
                        help="also a SYNTHETIC copy of the last --db grown to this many requests")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "app.json")
    args = parser.parse_args()

    from workbench.store import Store
    from workbench.store.requests import log_counts

    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "databases": []}
    for db in args.db:
        ensure_evaluation(db)
    databases = list(args.db)
    if args.grow:
        databases.append(grow(args.db[-1], args.grow))
    # Import Streamlit, plotly and the pages once, so that "first" is a page's first run on a
    # database (empty st.cache_data) rather than the interpreter's first import of everything.
    for view in ("intents", "errors"):
        time_page(view, args.db[0], repeats=1)
    for db in databases:
        with Store(db).session() as session:
            counts = log_counts(session)
        entry = {"requests": counts["requests"], "intents": counts["intents"],
                 "synthetic_growth": db not in args.db,
                 "intents_page": time_page("intents", db, args.repeats, search="golden"),
                 "errors_page": time_page("errors", db, args.repeats)}
        results["databases"].append(entry)
        print(json.dumps(entry, indent=2), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
