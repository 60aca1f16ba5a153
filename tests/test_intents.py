"""Intent browse and detail queries on a hand-made world whose numbers are worked out below."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines import curate, ingest
from tests.conftest import make_record
from workbench.describe import describe_output
from workbench.errors import WorkbenchError
from workbench.store import Store
from workbench.store.requests import (
    IntentFilter,
    IntentSort,
    ToolUse,
    count_intents,
    intent_detail,
    intents_page,
    teacher_outputs,
    tool_candidates,
)
from workbench.store.versions import Split, ground_truth_choices, subsample_version

A = {"temperature": 30}           # golden hour's adjust, 2 requests, 1 adjust export: rate 0.5
B = {"temperature": 50}           # golden hour's other adjust, 1 exported request: rate 1.0
F = {"name": "warm_Golden", "intensity": 40}
C = {"temperature": -30}          # cool morning: 2 requests, rate 1.0 (wins the tie: more requests)
D = {"temperature": -50}          # cool morning: 1 request, rate 1.0, seen latest
S = {"blue": {"saturation": 20}}


def _request(rid: str, intent: str, hour: str, adjust: dict | None, filter_: dict | None,
             exports: tuple[int, int, int], selective: dict | None = None) -> dict:
    return make_record(request_id=rid, intent=intent, created_at=f"2024-01-01T{hour}:00Z",
                       teacher={"adjust": adjust, "selective_adjust": selective,
                                "filter": filter_},
                       exports=dict(zip(("adjust", "selective_adjust", "filter"), exports,
                                        strict=True)))


RECORDS = [
    _request("g1", "golden hour", "10:00", A, F, (1, 0, 1)),
    _request("g2", "Golden  Hour", "11:00", A, F, (0, 0, 1)),
    _request("g3", "golden hour", "12:00", B, None, (1, 0, 0)),
    _request("g4", "golden hour", "13:00", B, None, (0, 0, 0)),   # never exported: dropped
    _request("c1", "cool morning", "09:00", C, None, (1, 1, 0), S),
    _request("c2", "cool morning", "09:30", C, None, (1, 0, 0), S),
    _request("c3", "cool morning", "14:00", D, None, (1, 0, 0)),
    _request("f1", "Golden Gate fog", "08:00", {"contrast": -20}, None, (0, 0, 0)),
]
# Per intent: requests, exported requests, export rate, distinct outputs, last seen hour.
#   golden hour      4  3  0.75  2  13:00   ground truth: adjust B, no selective, filter F
#   cool morning     3  3  1.00  2  14:00   ground truth: adjust C, selective S, no filter
#   golden gate fog  1  0  0.00  1  08:00   not curated (no export)
TEST_INTENT = "cool morning"   # curate(test_size=1, seed=0) puts this one in test


def intent_world(folder: Path) -> Store:
    """The world above, ingested and curated into version 1 (1 train, 1 test intent)."""
    logs = folder / "intent-logs.jsonl"
    logs.write_text("".join(json.dumps(record) + "\n" for record in RECORDS))
    store = Store(folder / "intents.duckdb")
    ingest.ingest_file(logs, store)
    curate.run(curate.CurateConfig(test_size=1, seed=0), store)
    return store


@pytest.fixture
def world(tmp_path: Path) -> Store:
    return intent_world(tmp_path)


def _keys(store: Store, filters: IntentFilter, sort: IntentSort = IntentSort.REQUESTS,
          limit: int = 50, offset: int = 0, reverse: bool = False) -> list[str]:
    with store.session() as session:
        return [row["intent_key"] for row in intents_page(session, filters, sort, limit, offset,
                                                          reverse)]


def test_search_is_case_and_space_insensitive(world: Store) -> None:
    assert _keys(world, IntentFilter(search="golden")) == ["golden hour", "golden gate fog"]
    assert _keys(world, IntentFilter(search="  GOLDEN   hour ")) == ["golden hour"]
    assert _keys(world, IntentFilter(search="sepia")) == []


def test_export_rate_and_request_filters(world: Store) -> None:
    assert _keys(world, IntentFilter(min_export_rate=0.8)) == ["cool morning"]
    assert _keys(world, IntentFilter(max_export_rate=0.5)) == ["golden gate fog"]
    assert _keys(world, IntentFilter(min_export_rate=0.75, max_export_rate=0.75)) == ["golden hour"]
    assert _keys(world, IntentFilter(min_requests=3)) == ["golden hour", "cool morning"]


def test_sorts_reverse_and_paging(world: Store) -> None:
    every = IntentFilter()
    assert _keys(world, every, IntentSort.INTENT) == ["cool morning", "golden gate fog",
                                                      "golden hour"]
    assert _keys(world, every, IntentSort.INTENT, reverse=True) == ["golden hour",
                                                                    "golden gate fog",
                                                                    "cool morning"]
    assert _keys(world, every, IntentSort.LAST_SEEN) == ["cool morning", "golden hour",
                                                         "golden gate fog"]
    assert _keys(world, every, IntentSort.EXPORT_RATE) == ["cool morning", "golden hour",
                                                           "golden gate fog"]
    assert _keys(world, every, IntentSort.REQUESTS, reverse=True) == ["golden gate fog",
                                                                      "cool morning",
                                                                      "golden hour"]
    assert _keys(world, every, limit=1, offset=1) == ["cool morning"]
    assert _keys(world, every, limit=2, offset=2) == ["golden gate fog"]
    with world.session() as session:
        assert count_intents(session, every) == 3
        assert count_intents(session, IntentFilter(search="golden", min_requests=2)) == 1


def test_a_page_row_has_the_numbers_and_the_versions_split_and_tools(world: Store) -> None:
    with world.session() as session:
        rows = {row["intent_key"]: row for row in intents_page(session, IntentFilter(version_id=1))}
    golden = rows["golden hour"]
    assert (golden["intent_text"], golden["request_count"], golden["exported_count"],
            golden["export_rate"], golden["output_count"]) == ("golden hour", 4, 3, 0.75, 2)
    assert golden["last_seen_at"].hour == 13
    assert (golden["split"], golden["uses_adjust"], golden["uses_selective_adjust"],
            golden["uses_filter"]) == ("train", True, False, True)
    assert (rows["cool morning"]["split"], rows["cool morning"]["uses_filter"]) == ("test", False)
    fog = rows["golden gate fog"]   # not in the version: no split, no ground truth
    assert (fog["split"], fog["uses_adjust"], fog["export_rate"]) == (None, None, 0.0)


def test_split_and_tool_filters_use_the_versions_ground_truth(world: Store) -> None:
    assert _keys(world, IntentFilter(version_id=1, split=Split.TEST)) == [TEST_INTENT]
    assert _keys(world, IntentFilter(version_id=1, split=Split.TRAIN)) == ["golden hour"]
    assert _keys(world, IntentFilter(version_id=1, tools={"filter": ToolUse.USED})) \
        == ["golden hour"]
    assert _keys(world, IntentFilter(version_id=1, tools={"filter": ToolUse.UNUSED})) \
        == ["cool morning"]   # the fog is in no version, so it neither uses nor skips a tool
    assert _keys(world, IntentFilter(version_id=1, tools={"selective_adjust": ToolUse.USED,
                                                          "adjust": ToolUse.USED})) \
        == ["cool morning"]
    assert _keys(world, IntentFilter(version_id=1, split=Split.TRAIN,
                                     tools={"selective_adjust": ToolUse.USED})) == []
    with world.session() as session:
        assert count_intents(session, IntentFilter(version_id=1, tools={
            "adjust": ToolUse.USED})) == 2


def test_bad_filters_are_refused_with_a_message(world: Store) -> None:
    with world.session() as session:
        with pytest.raises(WorkbenchError, match="unknown tool"):
            intents_page(session, IntentFilter(version_id=1, tools={"colour": ToolUse.USED}))
        with pytest.raises(WorkbenchError, match="needs a dataset version"):
            count_intents(session, IntentFilter(split=Split.TEST))
        with pytest.raises(WorkbenchError, match="range is empty"):
            count_intents(session, IntentFilter(min_export_rate=0.9, max_export_rate=0.1))


def test_detail_of_an_intent_in_and_out_of_the_version(world: Store) -> None:
    with world.session() as session:
        golden = intent_detail(session, "golden hour", 1)
        fog = intent_detail(session, "golden gate fog", 1)
        missing = intent_detail(session, "sepia", 1)
    assert golden is not None and fog is not None and missing is None
    assert (golden["in_version"], golden["split"], golden["request_count"]) == (True, "train", 4)
    assert json.loads(golden["adjust"])["temperature"] == 50
    assert golden["selective_adjust"] is None
    assert json.loads(golden["filter"]) == F
    assert (fog["in_version"], fog["split"], fog["adjust"]) == (False, None, None)


def test_teacher_outputs_are_grouped_with_exports_and_rates_per_tool(world: Store) -> None:
    with world.session() as session:
        outputs = teacher_outputs(session, "golden hour", 1)
    # (B, -, -): g3 + g4, one exported; (A, -, F): g1 + g2, both exported. Same request count,
    # so the one seen last (B, 13:00) comes first.
    b, a = outputs
    assert json.loads(b["adjust"])["temperature"] == 50 and b["filter"] is None
    assert (b["requests"], b["exported_requests"], b["exports_adjust"], b["exports_filter"]) \
        == (2, 1, 1, 0)
    assert (b["export_rate_adjust"], b["export_rate_filter"]) == (1.0, 0.0)
    assert (b["ground_truth_adjust"], b["ground_truth_selective_adjust"],
            b["ground_truth_filter"]) == (True, True, False)
    assert (a["requests"], a["exported_requests"], a["exports_adjust"], a["exports_filter"]) \
        == (2, 2, 1, 2)
    assert (a["export_rate_adjust"], a["export_rate_filter"]) == (0.5, 1.0)
    assert (a["ground_truth_adjust"], a["ground_truth_filter"]) == (False, True)
    with world.session() as session:   # no exported request: no rate
        [fog] = teacher_outputs(session, "golden gate fog")
    assert (fog["requests"], fog["exported_requests"], fog["export_rate_adjust"]) == (1, 0, None)
    assert fog["ground_truth_adjust"] is False


def test_tool_candidates_follow_the_rule_rate_then_requests_then_latest(world: Store) -> None:
    with world.session() as session:
        golden = tool_candidates(session, "golden hour", 1)["adjust"]
        cool_tools = tool_candidates(session, "cool morning", 1)
        unknown = tool_candidates(session, "sepia", 1)
    cool, cool_selective = cool_tools["adjust"], cool_tools["selective_adjust"]
    # golden hour: B has rate 1/1 (its zero-export request is dropped), A has 1/2.
    assert [(json.loads(r["output"])["temperature"], r["exports"], r["n_requests"],
             r["export_rate"], r["rank"], r["ground_truth"]) for r in golden] \
        == [(50, 1, 1, 1.0, 1, True), (30, 1, 2, 0.5, 2, False)]
    # cool morning: C and D both have rate 1.0; C was seen in more requests, D later: C wins.
    assert [(json.loads(r["output"])["temperature"], r["n_requests"], r["ground_truth"])
            for r in cool] == [(-30, 2, True), (-50, 1, False)]
    assert [(r["output"] is None, r["exports"], r["n_requests"], r["export_rate"])
            for r in cool_selective] == [(False, 1, 2, 0.5), (True, 0, 1, 0.0)]
    assert [r["output"] for r in cool_tools["filter"]] == [None]
    assert unknown == {"adjust": [], "selective_adjust": [], "filter": []}


def test_ground_truth_choices_are_found_up_the_lineage(world: Store) -> None:
    with world.atomic() as session:
        child = subsample_version(session, 1, 1.0, seed=0)
    with world.session() as session:
        own = ground_truth_choices(session, "golden hour", 1)
        inherited = ground_truth_choices(session, "golden hour", child)
        none = ground_truth_choices(session, "golden gate fog", 1)
    assert own["recorded_in"] == 1 and inherited == own
    adjust = own["tools"]["adjust"]
    assert (json.loads(adjust["output"])["temperature"], adjust["exports"],
            adjust["n_requests"], adjust["export_rate"], adjust["n_candidates"]) == (50, 1, 1, 1.0, 2)
    selective = own["tools"]["selective_adjust"]
    assert (selective["output"], selective["n_requests"], selective["n_candidates"]) \
        == (None, 3, 1)
    assert json.loads(own["tools"]["filter"]["output"]) == F   # a filter is stored as given
    assert none == {"recorded_in": None, "tools": {}}


def test_describe_output_keeps_only_the_nonzero_values() -> None:
    assert describe_output("adjust", '{"exposure":0,"temperature":40,"tint":-10}') \
        == "temperature +40, tint -10"
    assert describe_output("adjust", '{"exposure":0}') == "all zero"
    assert describe_output("selective_adjust", '{"red":{"saturation":0,"luminance":0},'
                           '"blue":{"saturation":20,"luminance":-5}}') == "blue sat +20 lum -5"
    assert describe_output("filter", json.dumps(F)) == "warm_Golden @ 40"
    assert describe_output("filter", None) == "not used"
    with pytest.raises(WorkbenchError):
        describe_output("colour", "{}")
