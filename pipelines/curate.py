"""Curate the logs into a dataset version (SPEC 4): filter, pick ground truth, split by intent.

1. Drop requests whose outputs were never exported (all three export counts 0).
2. Per intent and per tool, group the remaining requests by that tool's output (an unused tool is
   an output too) and take as ground truth the output with the highest export rate: the tool's
   exports of those requests divided by how many requests produced that output. Ties go to the
   output seen in more requests, then the one seen latest, then (only to be deterministic) the
   smaller canonical JSON.
3. Count each intent's requests in the raw logs, zero-export ones included (for r_k subsets).
4. Split by unique intent with a seeded shuffle: `test_size` intents (or that fraction) to test.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

from workbench.datasets import DatasetRow, Origin, create_version
from workbench.errors import CurationError
from workbench.store import Session, Store
from workbench.tools import TOOLS

DEFAULT_TEST_SIZE = 1000
DEFAULT_SEED = 13


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


def _choices_sql(tool: str) -> str:
    # `tool` is one of TOOLS (a column name, never user input).
    return f"""
        WITH outputs AS (
            SELECT intent_key, {tool} AS output, sum(exports_{tool}) AS exports,
                   count(*) AS n_requests, max(created_at) AS latest
            FROM requests
            WHERE exports_adjust + exports_selective_adjust + exports_filter > 0
            GROUP BY intent_key, {tool}
        ), ranked AS (
            SELECT *, exports / n_requests AS export_rate,
                   count(*) OVER (PARTITION BY intent_key) AS n_candidates,
                   row_number() OVER (PARTITION BY intent_key ORDER BY exports / n_requests DESC,
                       n_requests DESC, latest DESC, output ASC NULLS FIRST) AS rank
            FROM outputs
        )
        SELECT intent_key, output, exports, n_requests, export_rate, n_candidates
        FROM ranked WHERE rank = 1
    """


def ground_truth(session: Session) -> dict[str, dict[str, dict]]:
    """{intent_key: {tool: {output, exports, n_requests, export_rate, n_candidates}}}."""
    chosen: dict[str, dict[str, dict]] = {}
    for tool in TOOLS:
        for row in session.query(_choices_sql(tool)):
            chosen.setdefault(row.pop("intent_key"), {})[tool] = row
    return chosen


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


def run(config: CurateConfig, store: Store) -> CurateResult:
    with store.atomic() as session:
        n_requests = int(session.value("SELECT count(*) FROM requests"))
        if n_requests == 0:
            raise CurationError("there are no requests to curate. Ingest logs first "
                                "(`workbench ingest FILE`).")
        n_dropped = int(session.value(
            "SELECT count(*) FROM requests "
            "WHERE exports_adjust + exports_selective_adjust + exports_filter = 0"))
        chosen = ground_truth(session)
        if not chosen:
            raise CurationError(f"all {n_requests} requests have zero exports; nothing to curate")
        intents = {row["intent_key"]: row for row in session.query(
            "SELECT i.intent_key, i.intent_text, count(*) AS request_count "
            "FROM intents i JOIN requests r USING (intent_key) "
            "GROUP BY i.intent_key, i.intent_text")}
        test = split_intents(list(chosen), config.test_size, config.seed)
        rows = [DatasetRow(
            intent_key=key, intent_text=intents[key]["intent_text"],
            split="test" if key in test else "train",
            request_count=intents[key]["request_count"],
            adjust=tools["adjust"]["output"], selective_adjust=tools["selective_adjust"]["output"],
            filter=tools["filter"]["output"]) for key, tools in sorted(chosen.items())]
        version_id = create_version(session, rows, Origin.CURATION, config.note or
                                    "curated from the logs", asdict(config))
        choices = [(key, tool, c) for key, tools in chosen.items() for tool, c in tools.items()]
        session.insert("ground_truth_choices", {
            "intent_key": [key for key, _, _ in choices],
            "tool": [tool for _, tool, _ in choices],
            **{name: [c[name] for _, _, c in choices] for name in
               ("output", "exports", "n_requests", "export_rate", "n_candidates")},
        }, extra={"version_id": version_id})
        test_counts = [row.request_count for row in rows if row.split == "test"]
        return CurateResult(
            version_id=version_id, requests=n_requests, requests_dropped=n_dropped,
            intents=len(rows), intents_dropped=len(intents) - len(rows),
            train=len(rows) - len(test_counts), test=len(test_counts),
            test_r_3=sum(c >= 3 for c in test_counts), test_r_5=sum(c >= 5 for c in test_counts))
