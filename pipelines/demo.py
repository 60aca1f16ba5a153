"""Build the SYNTHETIC demo database: generate the corpus, ingest it, curate and split it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipelines import curate, ingest
from workbench.errors import WorkbenchError
from workbench.progress import Progress
from workbench.store import Store
from workbench.synthetic import PAPER_INTENTS, PAPER_REQUESTS, DemoConfig, write_jsonl

# The paper holds out 1,000 of its 9,252 intents; a smaller demo keeps that share instead.
PAPER_TEST_SHARE = curate.DEFAULT_TEST_SIZE / PAPER_INTENTS


@dataclass(frozen=True)
class DemoRunConfig:
    requests: int = PAPER_REQUESTS  # the paper's scale; any larger number scales intents too
    seed: int = 7
    test_size: float | None = None  # None: 1,000 intents, or the paper's share below its scale
    split_seed: int = curate.DEFAULT_SEED
    replace: bool = False           # delete an existing database at the path first


@dataclass(frozen=True)
class DemoResult:
    corpus_path: Path
    ingest: ingest.FileSummary
    curate: curate.CurateResult


def default_test_size(requests: int) -> float:
    """1,000 test intents at the paper's scale and above; the paper's share (10.8%) below it,
    so that a small demo still has training intents."""
    return curate.DEFAULT_TEST_SIZE if requests >= PAPER_REQUESTS else PAPER_TEST_SHARE


def corpus_config(config: DemoRunConfig) -> DemoConfig:
    if config.requests == PAPER_REQUESTS:
        return DemoConfig(seed=config.seed)
    return DemoConfig.at_scale(config.requests, seed=config.seed)


def run(config: DemoRunConfig, store: Store, progress: Progress | None = None) -> DemoResult:
    """`progress` hears of the stages "generate" and "ingest", each counted in requests."""
    if config.requests < 100:
        raise WorkbenchError(f"--requests must be at least 100, got {config.requests}")
    if store.exists and not config.replace:
        raise WorkbenchError(
            f"{store.path} already exists. Use --replace to delete it and build the demo "
            "there, or --db to pick another file.")
    store.path.parent.mkdir(parents=True, exist_ok=True)
    # Built in a file beside the target and moved into place only when complete, so a failed
    # build (a bad --test-size, say) leaves no half-made database and --replace keeps the old one.
    building = Store(store.path.with_name(f".{store.path.name}.building"), store.lock_timeout)
    _remove_database(building.path)
    try:
        result = _build(config, building, store.path.parent, progress)
    except BaseException:
        _remove_database(building.path)
        raise
    _remove_database(store.path)
    os.replace(building.path, store.path)
    if Path(f"{building.path}.wal").exists():  # normally checkpointed when the file was closed
        os.replace(f"{building.path}.wal", f"{store.path}.wal")
    return result


def _remove_database(path: Path) -> None:
    path.unlink(missing_ok=True)
    Path(f"{path}.wal").unlink(missing_ok=True)


def _build(config: DemoRunConfig, store: Store, folder: Path,
           progress: Progress | None) -> DemoResult:
    corpus = corpus_config(config)
    corpus_path = folder / f"synthetic-demo-logs-{corpus.requests}.jsonl"
    total = corpus.requests
    write_jsonl(corpus, corpus_path, progress)
    # ingest reports under the file's name with no total; the demo knows both.
    summary = ingest.ingest_file(corpus_path, store, None if progress is None else (
        lambda _file, n, _total: progress("ingest", n, total)))
    if summary.quarantined:
        raise WorkbenchError(f"the demo generator wrote {summary.quarantined} invalid records "
                             f"(see `workbench quarantine`); this is a bug in the generator")
    curated = curate.run(curate.CurateConfig(
        test_size=config.test_size if config.test_size is not None
        else default_test_size(config.requests), seed=config.split_seed,
        note=f"SYNTHETIC demo corpus, {total} requests, generator seed {config.seed}"), store)
    return DemoResult(corpus_path, summary, curated)
