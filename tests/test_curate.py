"""Curation rules on small hand-made logs; every expected value is worked out in the comments."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines import curate, ingest
from tests.conftest import make_record
from workbench.errors import CurationError
from workbench.store import Store, requests

A = {"temperature": 30}
B = {"temperature": 20}
C = {"temperature": 40}
F1 = {"name": "warm_Golden", "intensity": 40}


def teacher(adjust=None, selective=None, filter_=None) -> dict:
    return {"adjust": adjust, "selective_adjust": selective, "filter": filter_}


def exports(adjust=0, selective=0, filter_=0) -> dict:
    return {"adjust": adjust, "selective_adjust": selective, "filter": filter_}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


LOGS = [
    # golden hour: five requests, r4 never exported.
    make_record(request_id="g1", intent="Golden hour", created_at="2024-01-01T00:00:00Z",
                teacher=teacher(A, None, F1), exports=exports(2, 0, 1)),
    make_record(request_id="g2", intent="golden hour", created_at="2024-01-02T00:00:00Z",
                teacher=teacher(A, None, F1), exports=exports(0, 1, 0)),
    make_record(request_id="g3", intent="golden  hour", created_at="2024-01-03T00:00:00Z",
                teacher=teacher(B, None, None), exports=exports(1, 1, 1)),
    make_record(request_id="g4", intent="golden hour", created_at="2024-01-04T00:00:00Z",
                teacher=teacher(B, None, None), exports=exports(0, 0, 0)),
    make_record(request_id="g5", intent="golden hour", created_at="2024-01-05T00:00:00Z",
                teacher=teacher(C, None, F1), exports=exports(1, 0, 0)),
    # cool morning: two outputs with equal rate and equal request counts: the latest wins.
    make_record(request_id="c1", intent="cool morning", created_at="2024-01-01T00:00:00Z",
                teacher=teacher({"temperature": -30}), exports=exports(1)),
    make_record(request_id="c2", intent="cool morning", created_at="2024-01-02T00:00:00Z",
                teacher=teacher({"temperature": -40}), exports=exports(1)),
    # noir: never exported, so the intent disappears from the dataset.
    make_record(request_id="n1", intent="noir", created_at="2024-01-01T00:00:00Z",
                teacher=teacher(None, None, {"name": "mono_Noir", "intensity": 80}),
                exports=exports()),
    # sunset: one request, higher export rate for the unused selective_adjust? only one output.
    make_record(request_id="s1", intent="sunset", created_at="2024-01-01T00:00:00Z",
                teacher=teacher({"tint": 10}, {"red": {"saturation": 20}}, None),
                exports=exports(1, 1, 0)),
]


@pytest.fixture
def curated(store: Store, tmp_path: Path) -> tuple[Store, curate.CurateResult]:
    ingest.ingest_file(write_jsonl(tmp_path / "logs.jsonl", LOGS), store)
    return store, curate.run(curate.CurateConfig(test_size=1, seed=0), store)


def rows_by_intent(store: Store, version_id: int) -> dict[str, dict]:
    return {row["intent_key"]: row for row in store.query(
        "SELECT * FROM dataset_rows WHERE version_id = ?", [version_id])}


def test_counts(curated):
    _, result = curated
    # 9 requests; g4 and n1 have zero exports; noir had only n1, so 3 intents remain.
    assert (result.requests, result.requests_dropped) == (9, 2)
    assert (result.intents, result.intents_dropped) == (3, 1)
    assert (result.train, result.test) == (2, 1)


def test_export_rate_then_request_count_decides(curated):
    store, result = curated
    golden = rows_by_intent(store, result.version_id)["golden hour"]
    # adjust among g1, g2, g3, g5: A 2 exports / 2 requests = 1.0, B 1/1 = 1.0, C 1/1 = 1.0;
    # the tie goes to A, seen in more requests.
    assert json.loads(golden["adjust"])["temperature"] == 30
    # filter: F1 in g1, g2, g5 exported 1/3; "not used" in g3 exported 1/1: not used wins.
    assert golden["filter"] is None
    # selective_adjust is unused in every request.
    assert golden["selective_adjust"] is None
    # g1..g5: all five raw requests count, the zero-export one included.
    assert golden["request_count"] == 5
    # The display spelling is the first one seen.
    assert golden["intent_text"] == "Golden hour"


def test_tie_on_rate_and_count_goes_to_latest(curated):
    store, result = curated
    cool = rows_by_intent(store, result.version_id)["cool morning"]
    assert json.loads(cool["adjust"])["temperature"] == -40


def test_canonical_vectors_fill_missing_values(curated):
    store, result = curated
    sunset = rows_by_intent(store, result.version_id)["sunset"]
    selective = json.loads(sunset["selective_adjust"])
    assert selective["red"] == {"saturation": 20, "luminance": 0}
    assert selective["blue"] == {"saturation": 0, "luminance": 0}


def test_choices_record_why(curated):
    store, result = curated
    choice = store.query(
        "SELECT * FROM ground_truth_choices WHERE version_id = ? AND intent_key = ? AND tool = ?",
        [result.version_id, "golden hour", "filter"])[0]
    # "not used" won with 1 export out of 1 request, among 2 distinct filter outputs.
    assert (choice["output"], choice["exports"], choice["n_requests"], choice["export_rate"],
            choice["n_candidates"]) == (None, 1, 1, 1.0, 2)


def test_versions_are_new_and_current(curated):
    store, first = curated
    second = curate.run(curate.CurateConfig(test_size=1, seed=1), store)
    assert second.version_id == first.version_id + 1
    # The first version's rows are untouched.
    assert len(rows_by_intent(store, first.version_id)) == 3
    assert store.query("SELECT value FROM settings WHERE key = 'current_version'")[0]["value"] \
        == str(second.version_id)


def test_split_is_seeded_disjoint_and_sized():
    keys = [f"intent {i}" for i in range(100)]
    test = curate.split_intents(keys, 10, seed=3)
    assert len(test) == 10 and test <= set(keys)
    assert curate.split_intents(list(reversed(keys)), 10, seed=3) == test  # input order is irrelevant
    assert curate.split_intents(keys, 10, seed=4) != test
    assert len(curate.split_intents(keys, 0.25, seed=3)) == 25


@pytest.mark.parametrize("size", [100, 150, 2.5])
def test_split_rejects_impossible_sizes(size):
    with pytest.raises(CurationError):
        curate.split_intents([f"i{i}" for i in range(100)], size, seed=0)


def test_curate_without_requests_says_what_to_do(store: Store):
    with store.session(create=True):
        pass
    with pytest.raises(CurationError, match="Ingest logs first"):
        curate.run(curate.CurateConfig(), store)


# -------------------------------------------------------- short write holds (issue 11, item 5)

READER = ("import sys, duckdb; c = duckdb.connect(sys.argv[1], read_only=True); "
          "print(c.execute('SELECT count(*) FROM requests').fetchall()[0][0])")


def test_other_processes_read_the_file_while_curation_computes(store: Store, tmp_path: Path,
                                                               monkeypatch):
    """The ground truth, counts and split are computed in a read-only session: another process
    (the app) opens the file read-only meanwhile. Before, curation held it for writing from the
    start, and the reader got a lock error."""
    import subprocess
    import sys

    ingest.ingest_file(write_jsonl(tmp_path / "logs.jsonl", LOGS), store)
    seen: list[str] = []
    computed = requests.ground_truth_by_intent

    def while_computing(session):
        reader = subprocess.run([sys.executable, "-c", READER, str(store.path)],
                                check=False, capture_output=True, text=True, timeout=60)
        seen.append(reader.stdout.strip() or reader.stderr.strip().splitlines()[-1])
        return computed(session)
    monkeypatch.setattr(requests, "ground_truth_by_intent", while_computing)
    result = curate.run(curate.CurateConfig(test_size=1, seed=0), store)
    assert seen == ["9"] and result.intents == 3


def test_logs_ingested_while_computing_are_not_mixed_in(store: Store, tmp_path: Path):
    """An ingest between the read phase and the write: the version is computed again from the
    new logs (never half old, half new); when that keeps happening, curation stops."""
    ingest.ingest_file(write_jsonl(tmp_path / "logs.jsonl", LOGS), store)
    batches: list[list[dict]] = [[make_record(request_id=f"late{i}", intent=f"late look {i}",
                                              teacher=teacher(A), exports=exports(1))
                                  for i in range(3)]]

    @dataclass(frozen=True)
    class Racing(Store):
        """A store that lets a concurrent `workbench ingest` in before each write."""

        def atomic(self, create: bool = False) -> Any:
            if batches:
                ingest.ingest_file(write_jsonl(tmp_path / f"late{len(batches)}.jsonl",
                                               batches.pop(0)), store)
            return super().atomic(create)

    racing = Racing(store.path, lock_timeout=2.0)
    result = curate.run(curate.CurateConfig(test_size=1, seed=0), racing)
    # 9 + 3 requests: the version was computed again and has the three late intents.
    assert (result.requests, result.intents) == (12, 6)
    assert len(rows_by_intent(store, result.version_id)) == 6

    batches.extend([make_record(request_id=f"more{n}", intent=f"more {n}", teacher=teacher(A),
                                exports=exports(1))] for n in range(curate.MAX_ATTEMPTS))
    with pytest.raises(CurationError, match="ingested while curating, 3 times.*no version"):
        curate.run(curate.CurateConfig(test_size=1, seed=0), racing)
    assert store.query("SELECT max(version_id) AS v FROM dataset_versions") == [
        {"v": result.version_id}]
