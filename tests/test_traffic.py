"""`workbench simulate-traffic`: the simulated user's export chance worked out by hand, the seeded
plan, a server that is down, and the whole loop: a tiny retrieval run and the fake teacher served
behind an A/B split on a free loopback port, simulated sessions through the real `openai` client,
the spool ingested into the database, and the served rows with their feedback joined."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipelines.traffic import (
    Look,
    export_probability,
    kept_exports,
    plan_sessions,
    similarity_to_look,
)
from tests.conftest import LOOKS, curated_store
from tests.fake_teacher import fake_teacher
from tests.test_serve import free_port, start_server
from workbench.errors import WorkbenchError
from workbench.tools import TOOLS, parse_answer

# ------------------------------------------------------------------------------ the user model


def answer(**tools: Any) -> Any:
    return parse_answer(tools)


def test_export_probability_by_hand() -> None:
    # The look: adjust temperature 40 and the warm_Golden filter. The answer: temperature 30 and
    # tint 40 (cosine 30*40 / (40 * 50) = 0.6) with the wrong filter (0): the mean over the two
    # tools the look uses is 0.3, so p = 0.15 + 0.7 * 0.3 = 0.36.
    truth = answer(adjust={"temperature": 40}, filter={"name": "warm_Golden", "intensity": 50})
    served = answer(adjust={"temperature": 30, "tint": 40},
                    filter={"name": "mono_Noir", "intensity": 80})
    assert similarity_to_look(truth, served) == pytest.approx(0.3)
    assert export_probability(truth, served) == pytest.approx(0.36)
    # An opposite look (temperature -20: cosine -1) is not worse than none: p = 0.15; the extra
    # filter is not a tool of the look, so it does not count.
    cold = answer(adjust={"temperature": -20}, filter={"name": "warm_Golden", "intensity": 10})
    assert export_probability(answer(adjust={"temperature": 40}), cold) == pytest.approx(0.15)


def test_export_probability_edges() -> None:
    look = answer(adjust={"contrast": 10}, selective_adjust={"red": {"saturation": 20}})
    assert export_probability(look, look) == pytest.approx(0.85)
    # Half the look (the same adjust, no selective adjust): (1 + 0) / 2 -> 0.15 + 0.35.
    assert export_probability(look, answer(adjust={"contrast": 10})) == pytest.approx(0.5)
    # A look that uses no tool is met by an answer that uses none, and missed by any other.
    assert export_probability(answer(), answer()) == pytest.approx(0.85)
    assert export_probability(answer(), answer(adjust={"exposure": 5})) == pytest.approx(0.15)


def test_an_exporting_user_keeps_the_tools_the_answer_used() -> None:
    served = answer(adjust={"contrast": 10}, filter={"name": "mono_Noir", "intensity": 80})
    assert kept_exports(served) == {"adjust": 1, "selective_adjust": 0, "filter": 1}
    assert kept_exports(answer()) == {tool: 0 for tool in TOOLS}


def test_the_plan_is_seeded_labelled_and_weighted_by_request_count() -> None:
    rare = Look("rare look", 1, answer(adjust={"contrast": 10}))
    popular = Look("popular look", 99, answer(adjust={"contrast": -10}))
    plan = plan_sessions([rare, popular], 300, seed=7)
    assert [s.session_id for s in plan[:2]] == ["sim-7-0001", "sim-7-0002"]
    assert len({s.session_id for s in plan}) == 300
    assert all(s.session_id.startswith("sim-") for s in plan)
    assert {len(s.requests) for s in plan} == {1, 2, 3, 4, 5, 6}
    intents = Counter(r.look.intent for s in plan for r in s.requests)
    assert intents["popular look"] / sum(intents.values()) > 0.95      # 99% expected
    assert all(0 <= r.draw < 1 for s in plan for r in s.requests)
    assert plan_sessions([rare, popular], 300, seed=7) == plan
    assert plan_sessions([rare, popular], 300, seed=8) != plan
    with pytest.raises(WorkbenchError, match="at least 1"):
        plan_sessions([rare], 0, seed=0)


# ------------------------------------------------------------------------------ the command


def test_a_server_that_is_down_is_one_line_and_exit_2(cli: Any, tmp_path: Path) -> None:
    store = curated_store(tmp_path)
    url = f"http://127.0.0.1:{free_port()}/v1"              # nothing listens there
    code, out, err = cli("simulate-traffic", "--db", store.path, "--url", url, "--sessions", 2,
                         "--timeout", 2, "--no-progress")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no workbench server answers at " + url in err
    assert "workbench serve" in err


def test_simulate_traffic_has_help(cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli("simulate-traffic", "--help")
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "SIMULATED demo traffic, not real users" in text and "'sim-'" in text
    assert "synthetic generator's modal teacher answer" in text


@pytest.mark.slow
def test_simulated_traffic_through_the_server_lands_in_the_database(cli: Any,
                                                                    tmp_path: Path) -> None:
    from pipelines import train
    from workbench.serving.ab import analyse
    from workbench.store.serving import served_rows
    from workbench.store.versions import Split, version_rows

    store = curated_store(tmp_path)
    run = train.run(train.TrainConfig(student="retrieval",
                                      student_config={"runtime": "torch", "device": "cpu"}),
                    store)
    student = f"student:{run.run_id}"
    with fake_teacher() as teacher:
        server = start_server(tmp_path, ["--db", str(store.path),
                                         "--ab", f"teacher=50,{student}=50"], teacher.base_url)
        try:
            url = server.url + "/v1"
            code, out, err = cli("simulate-traffic", "--db", store.path, "--url", url,
                                 "--sessions", 12, "--seed", 3, "--concurrency", 2, "--json",
                                 "--no-progress")
            assert code == 0, err
            result = json.loads(out)
            code, text, err = cli("simulate-traffic", "--db", store.path, "--url", url,
                                  "--sessions", 2, "--seed", 4, "--no-progress")
            assert code == 0, err
        finally:
            assert server.stop() in (0, -15)
    assert text.startswith("SIMULATION (not real users): 2 simulated sessions (sim-4-0001 to "
                           "sim-4-0002)")
    assert "workbench ingest" in text
    assert result["simulated"] is True and result["sessions"] == 12
    assert (result["first_session"], result["last_session"]) == ("sim-3-0001", "sim-3-0012")
    assert result["errors"] == {} and result["answered"] == result["requests"]
    assert set(result["models"]) <= {student, "teacher:fake-teacher"}

    code, _, err = cli("ingest", "--db", store.path, server.spool, "--no-progress")
    assert code == 0, err
    with store.session() as session:
        rows = served_rows(session)
        tests = {row["intent_text"] for row in version_rows(session, 1, Split.TEST)}
        intents = {row["intent_text"] for row in session.query(
            "SELECT intent_text FROM served_requests")}
    # Everything the two runs sent is in the database, labelled as simulation, and only test
    # intents of the curated world were sent (weighted by request count: all have 1 here).
    second_run = sum(1 for row in rows if row["session_id"].startswith("sim-4-"))
    assert len(rows) == result["requests"] + second_run and second_run >= 2
    assert all(row["session_id"].startswith("sim-") for row in rows)
    assert intents <= tests and len(tests) == 3
    assert all(row["status"] == "ok" and row["arm"] in ("teacher", student) for row in rows)
    first = [row for row in rows if row["session_id"].startswith("sim-3-")]
    sizes = Counter(row["session_id"] for row in first)
    assert len(sizes) == 12 and set(sizes.values()) <= set(range(1, 7))
    # Feedback joined: each exported answer carries 1 for each tool it used, 0 for the others,
    # and the simulated users' count of exports is what the database holds.
    exported = [row for row in first
                if sum(row[f"exports_{tool}"] for tool in TOOLS) > 0]
    assert len(exported) == result["exported"]
    for row in exported:
        assert all(row[f"exports_{tool}"] == int(row[f"used_{tool}"]) for tool in TOOLS)
    by_model = Counter(row["model"] for row in first)
    assert {m: t["answered"] for m, t in result["models"].items()} == dict(by_model)
    # Sticky: each simulated session stayed in its arm.
    assert analyse(rows, boot=50).sessions_in_several_arms == 0
    assert all(name in LOOKS or any(name.endswith(look) for look in LOOKS) for name in intents)
