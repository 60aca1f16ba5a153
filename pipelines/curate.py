"""Curate the logs into a dataset version (SPEC 4): filter, pick ground truth, split by intent.

1. Drop requests whose outputs were never exported (all three export counts 0).
2. Per intent and per tool, group the remaining requests by that tool's output (an unused tool is
   an output too) and take as ground truth the output with the highest export rate: the tool's
   exports of those requests divided by how many requests produced that output. Ties go to the
   output seen in more requests, then the one seen latest, then (only to be deterministic) the
   smaller canonical JSON.
3. Count each intent's requests in the raw logs, zero-export ones included (for r_k subsets).
4. Split by unique intent with a seeded shuffle: `test_size` intents (or that fraction) to test.

Steps 1-4 read the logs in a read-only session (other readers, such as the app, share the file
meanwhile); the version is then written in one short transaction. If logs were ingested between
the two (the newest ingest id or the request count moved), the work is done again on the new
logs, a few times at most, and then curation stops with a message: a version never mixes two
states of the logs. The same transaction records each intent's choice as a `curation` label
(SPEC 11; an identical one from an earlier curation is reused) and links every row to it.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from workbench.errors import CurationError
from workbench.store import Session, Store, labels, requests
from workbench.store.versions import (
    DatasetRow,
    Origin,
    create_version,
    record_ground_truth_choices,
    rows_table,
)

DEFAULT_TEST_SIZE = 1000
DEFAULT_SEED = 13
MAX_ATTEMPTS = 3          # computations thrown away because logs were ingested meanwhile


@dataclass(frozen=True)
class CurateConfig:
    test_size: float = DEFAULT_TEST_SIZE  # >= 1: a number of intents; in (0, 1): a fraction
    seed: int = DEFAULT_SEED
    note: str = ""


@dataclass(frozen=True)
class CurateResult:
    version_id: int
    requests: int
    requests_dropped: int       # zero exports
    intents: int                # in the new version
    intents_dropped: int        # every request of the intent had zero exports
    train: int
    test: int
    test_r_3: int
    test_r_5: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_intents(keys: list[str], test_size: float, seed: int) -> set[str]:
    """The test intents: a seeded shuffle of the sorted keys, first `test_size` of them."""
    if test_size <= 0:
        raise CurationError(f"test size must be positive, got {test_size}")
    n_test = round(len(keys) * test_size) if test_size < 1 else int(test_size)
    if test_size >= 1 and test_size != int(test_size):
        raise CurationError(f"a test size of 1 or more must be a whole number of intents, "
                            f"got {test_size}")
    if n_test >= len(keys):
        raise CurationError(f"test size {n_test} leaves no training intents: the curated data "
                            f"has only {len(keys)} intents. Use a smaller --test-size.")
    if n_test == 0:
        raise CurationError(f"a test fraction of {test_size} of {len(keys)} intents is 0 intents")
    ordered = sorted(keys)
    random.Random(seed).shuffle(ordered)
    return set(ordered[:n_test])


@dataclass(frozen=True)
class _Prepared:
    """What the read phase computed, ready to write."""

    logs: tuple[int, int]                  # (newest ingest id, requests) it was computed from
    n_requests: int
    n_dropped: int
    n_intents: int                         # intents in the logs, zero-export ones included
    rows: list[DatasetRow]
    chosen: dict[str, dict[str, dict]]


def _prepare(session: Session, config: CurateConfig) -> _Prepared:
    logs = requests.logs_state(session)
    n_requests = logs[1]
    if n_requests == 0:
        raise CurationError("there are no requests to curate. Ingest logs first "
                            "(`workbench ingest FILE`).")
    n_dropped = requests.count_unexported_requests(session)
    chosen = requests.ground_truth_by_intent(session)
    if not chosen:
        raise CurationError(f"all {n_requests} requests have zero exports; nothing to curate")
    intents = requests.intent_request_counts(session)
    test = split_intents(list(chosen), config.test_size, config.seed)
    rows = [DatasetRow(
        intent_key=key, intent_text=intents[key]["intent_text"],
        split="test" if key in test else "train",
        request_count=intents[key]["request_count"],
        adjust=tools["adjust"]["output"], selective_adjust=tools["selective_adjust"]["output"],
        filter=tools["filter"]["output"]) for key, tools in sorted(chosen.items())]
    return _Prepared(logs, n_requests, n_dropped, len(intents), rows, chosen)


def run(config: CurateConfig, store: Store) -> CurateResult:
    """Compute the version from the logs read-only, then write it in one short transaction."""
    store.check_writable()                  # fail before the slow part, not after it
    for _ in range(MAX_ATTEMPTS):
        with store.session(read_only=True) as session:
            prepared = _prepare(session, config)
        rows, choices = _tables(prepared)   # Arrow tables, built with the file closed
        with store.atomic() as session:
            if requests.logs_state(session) != prepared.logs:
                continue                    # logs were ingested meanwhile: compute again
            return _write(session, config, prepared, rows, choices)
    raise CurationError(
        f"logs were ingested while curating, {MAX_ATTEMPTS} times in a row, so no version was "
        "made (a version never mixes two states of the logs). Run `workbench curate` again "
        "when the ingest is done.")


def _tables(prepared: _Prepared) -> tuple[Any, Any]:
    """The version's rows and the ground-truth choices as Arrow tables, ready to insert."""
    import pyarrow as pa

    choices = [(key, tool, c) for key, tools in prepared.chosen.items()
               for tool, c in tools.items()]
    return rows_table(prepared.rows), pa.table({
        "intent_key": [key for key, _, _ in choices],
        "tool": [tool for _, tool, _ in choices],
        **{name: [c[name] for _, _, c in choices] for name in
           ("output", "exports", "n_requests", "export_rate", "n_candidates")}})


def _write(session: Session, config: CurateConfig, prepared: _Prepared, rows_: Any,
           choices: Any) -> CurateResult:
    """The short transaction: the version, its rows and why each ground truth won."""
    version_id = create_version(session, rows_, Origin.CURATION, config.note or
                                "curated from the logs", asdict(config))
    record_ground_truth_choices(session, version_id, choices)
    # Each export-rate choice is a `curation` label (an identical earlier one is reused), and
    # every row of the version names it.
    labels.record_curation_labels(session, version_id, version_id, datetime.now(UTC))
    rows = prepared.rows
    test_counts = [row.request_count for row in rows if row.split == "test"]
    return CurateResult(
        version_id=version_id, requests=prepared.n_requests,
        requests_dropped=prepared.n_dropped, intents=len(rows),
        intents_dropped=prepared.n_intents - len(rows), train=len(rows) - len(test_counts),
        test=len(test_counts), test_r_3=sum(c >= 3 for c in test_counts),
        test_r_5=sum(c >= 5 for c in test_counts))
