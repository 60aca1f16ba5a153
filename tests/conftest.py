"""Shared fixtures: a fresh store per test and a maker of valid log records."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

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
