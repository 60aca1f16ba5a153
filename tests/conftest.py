"""Shared fixtures: a fresh store per test and a maker of valid log records."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pipelines import curate, ingest
from workbench.store import Store


def pytest_configure(config: pytest.Config) -> None:
    # Nothing may reach a model hub from the tests.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "workbench.duckdb", lock_timeout=2.0)


BASE_RECORD: dict[str, Any] = {
    "request_id": "r1",
    "intent": "golden hour",
    "created_at": "2024-01-01T10:00:00Z",
    "teacher": {
        "adjust": {"temperature": 30, "highlights": 20},
        "selective_adjust": None,
        "filter": {"name": "warm_Golden", "intensity": 40},
    },
    "exports": {"adjust": 1, "selective_adjust": 0, "filter": 1},
}


def make_record(**overrides: Any) -> dict[str, Any]:
    """A valid log record; keyword arguments replace top-level fields."""
    record = copy.deepcopy(BASE_RECORD)
    record.update(overrides)
    return record


# -- a tiny curated world: three looks in six phrasings each -------------------------------------
LOOKS = {
    "warm golden sunset": ({"temperature": 40}, {"name": "warm_Golden", "intensity": 50}),
    "cold blue winter": ({"temperature": -40}, {"name": "cool_Arctic", "intensity": 60}),
    "black and white noir": ({"contrast": 40}, {"name": "mono_Noir", "intensity": 80}),
}
PREFIXES = ("", "very ", "soft ", "a ", "make it ", "give me ")


def curated_store(folder: Path, second_outputs: bool = False) -> Store:
    """The tiny world ingested and curated (3 test intents); with `second_outputs`, every intent
    also has a second, weaker teacher output (so self-consistency can be measured)."""
    records = [make_record(request_id=f"{i}-{j}", intent=prefix + look,
                           teacher={"adjust": adjust, "filter": filter_},
                           exports={"adjust": 1, "filter": 1})
               for i, (look, (adjust, filter_)) in enumerate(LOOKS.items())
               for j, prefix in enumerate(PREFIXES)]
    if second_outputs:
        records += [make_record(request_id=f"{r['request_id']}-b", intent=r["intent"],
                                teacher={"adjust": {"contrast": 10}, "filter": None},
                                exports={"adjust": 1, "filter": 0}) for r in list(records)]
    logs = folder / "logs.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in records))
    store = Store(folder / "w.duckdb")
    ingest.ingest_file(logs, store)
    curate.run(curate.CurateConfig(test_size=3, seed=1), store)
    return store


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """`workbench ARGS...` in this process: (exit code, stdout, stderr)."""
    from workbench.cli import main

    def run(*args: Any) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run
