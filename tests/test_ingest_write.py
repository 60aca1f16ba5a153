"""The write step of ingest (issue 11, item 5): short, and still exact.

The transaction merges each file's numbers into `intents` and `intent_stats` instead of
recomputing them over the whole table; these tests hold the merge to a recomputation from
`requests` after files that repeat, overlap, conflict with and extend each other. They also check
that the hold (open to close of the write) is reported.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import ingest
from pipelines.ingest import IngestConfig, ingest_file
from tests.conftest import make_record
from workbench.store import Store

# The browse numbers as the old ingest computed them: from every stored request of the intent.
RECOUNT = (
    "SELECT r.intent_key, count(*) AS request_count, "
    "count(*) FILTER (WHERE exports_adjust + exports_selective_adjust + exports_filter > 0) "
    "AS exported_count, "
    "count(*) FILTER (WHERE exports_adjust + exports_selective_adjust + exports_filter > 0)"
    " / count(*) AS export_rate, "
    "count(DISTINCT concat_ws('|', coalesce(adjust, '-'), coalesce(selective_adjust, '-'), "
    "coalesce(filter, '-'))) AS output_count, max(created_at) AS last_seen_at "
    "FROM requests r GROUP BY r.intent_key ORDER BY r.intent_key")
STORED = ("SELECT intent_key, request_count, exported_count, export_rate, output_count, "
          "last_seen_at FROM intent_stats ORDER BY intent_key")
# The first spelling and time of each intent: its request with the lowest (ingest, line).
FIRST = ("SELECT intent_key, arg_min(intent_text, (ingest_id, "
         "CAST(split_part(source_location, ' ', 2) AS INTEGER))) AS intent_text "
         "FROM requests GROUP BY intent_key ORDER BY intent_key")


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def check_store_matches_a_recount(store: Store) -> None:
    with store.session() as session:
        assert session.query(STORED) == session.query(RECOUNT)
        assert session.query("SELECT intent_key, intent_text FROM intents ORDER BY 1") == \
            session.query(FIRST)


OUTPUTS = [
    {"adjust": {"temperature": 30}, "filter": None},
    {"adjust": {"temperature": 30}, "filter": {"name": "warm_Golden", "intensity": 40}},
    {"adjust": None, "selective_adjust": {"blue": {"saturation": -20}}},
    {},
]
SPELLINGS = ["Golden Hour", "golden hour", "GOLDEN  hour", "cool morning", "Cool Morning",
             "film noir", "caf\u00e9", "cafe\u0301"]

request = st.builds(
    lambda rid, intent, output, exports, day: make_record(
        request_id=f"r{rid}", intent=intent, teacher=OUTPUTS[output],
        exports={"adjust": exports, "filter": 0}, created_at=f"2024-01-{day:02d}T10:00:00Z"),
    st.integers(0, 12), st.sampled_from(SPELLINGS), st.integers(0, len(OUTPUTS) - 1),
    st.integers(0, 2), st.integers(1, 28))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(request, max_size=8), min_size=1, max_size=4))
def test_merged_statistics_equal_a_recount(files: list[list[dict[str, Any]]]) -> None:
    # Ids repeat across and inside files, with the same or other content: duplicates,
    # conflicts and new requests of old and new intents, in every mix.
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "w.duckdb", lock_timeout=2.0)
        for i, records in enumerate(files):
            summary = ingest_file(write_jsonl(Path(folder) / f"{i}.jsonl", records), store)
            assert summary.ingested + summary.duplicates + summary.quarantined == len(records)
        if store.exists:
            check_store_matches_a_recount(store)


def test_new_requests_of_stored_intents_add_up(tmp_path: Path, store: Store) -> None:
    # File a: golden hour twice (one output, one request exported), cool morning once.
    a = write_jsonl(tmp_path / "a.jsonl", [
        make_record(request_id="a1", intent="Golden Hour", created_at="2024-01-01T10:00:00Z"),
        make_record(request_id="a2", intent="golden hour", created_at="2024-01-03T10:00:00Z",
                    exports={"adjust": 0}),
        make_record(request_id="a3", intent="cool morning")])
    # File b: golden hour again with a new output and an old one, one earlier in time.
    b = write_jsonl(tmp_path / "b.jsonl", [
        make_record(request_id="b1", intent="GOLDEN hour", teacher=OUTPUTS[2],
                    created_at="2024-01-02T10:00:00Z"),
        make_record(request_id="b2", intent="golden hour", created_at="2024-01-05T10:00:00Z",
                    exports={"adjust": 0})])
    ingest_file(a, store)
    ingest_file(b, store)
    golden = store.query("SELECT * FROM intent_stats WHERE intent_key = 'golden hour'")[0]
    # 4 requests; exported: a1 and b1 (a2 and b2 have no exports at all); outputs: the base
    # record's and OUTPUTS[2]; last seen: b2's time.
    assert (golden["request_count"], golden["exported_count"], golden["export_rate"],
            golden["output_count"]) == (4, 2, 0.5, 2)
    assert golden["last_seen_at"].isoformat().startswith("2024-01-05T10:00:00")
    assert store.query("SELECT intent_text FROM intents WHERE intent_key = 'golden hour'") == \
        [{"intent_text": "Golden Hour"}]
    check_store_matches_a_recount(store)


def test_the_hold_is_reported(tmp_path: Path, store: Store) -> None:
    good = write_jsonl(tmp_path / "a.jsonl", [make_record(request_id=f"r{i}") for i in range(3)])
    started = datetime.now()
    summary = ingest_file(good, store)
    elapsed = (datetime.now() - started).total_seconds()
    assert summary.hold_s is not None and 0 < summary.hold_s <= elapsed
    assert ingest.run(IngestConfig((good,)), store).to_dict()["files"][0]["hold_s"] > 0
