"""Benchmark: server-side render time of the app's Intents and Errors pages (issue 7).

    python benchmarks/app_benchmark.py --db PAPER_DB --db BIG_DB [--repeats 5]

Each database needs a dataset version; one without a student evaluation gets one first: a
retrieval student is trained on a seeded 1% (at least 2,000 intents) of the training split,
as a subsample version that shares the test split, and evaluated there, so the Errors page has
the same 1,000-intent evaluation to show at any scale. Work on copies: this writes to the files.

Times are Streamlit AppTest script runs (query, dataframe building, widgets, charts; the
browser's drawing is not included): the first run after start, then the median and worst of
`--repeats` reruns, plus a rerun with a search typed into the Intents page. Modules are imported
once beforehand, so "first" is a page's first run on a database (nothing in st.cache_data), not
Python's imports. Results go to benchmarks/results/app.json.
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


def time_page(view: str, db: Path, repeats: int, search: str | None = None) -> dict:
    from streamlit.testing.v1 import AppTest

    os.environ["WORKBENCH_DB"] = str(db)
    test = AppTest.from_function(_page_script, args=(view,), default_timeout=600)
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
    result = {"first_ms": round(first * 1000), "rerun_p50_ms": round(
        statistics.median(reruns) * 1000), "rerun_max_ms": round(max(reruns) * 1000)}
    if search is not None:
        started = time.perf_counter()
        test.text_input(key="intents_search").set_value(search).run()
        result["search_ms"] = round((time.perf_counter() - started) * 1000)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, action="append", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "app.json")
    args = parser.parse_args()

    from workbench.store import Store
    from workbench.store.requests import log_counts

    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "databases": []}
    for db in args.db:
        ensure_evaluation(db)
    # Import Streamlit, plotly and the pages once, so that "first" is a page's first run on a
    # database (empty st.cache_data) rather than the interpreter's first import of everything.
    for view in ("intents", "errors"):
        time_page(view, args.db[0], repeats=1)
    for db in args.db:
        with Store(db).session() as session:
            counts = log_counts(session)
        entry = {"requests": counts["requests"], "intents": counts["intents"],
                 "intents_page": time_page("intents", db, args.repeats, search="golden"),
                 "errors_page": time_page("errors", db, args.repeats)}
        results["databases"].append(entry)
        print(json.dumps(entry, indent=2), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
