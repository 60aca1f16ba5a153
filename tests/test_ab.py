"""The online A/B test: sticky assignment, `--ab` parsing, and the analysis on small cases
worked out by hand (the comments give every expected number)."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.serving.ab import (
    NO_ARMS,
    analyse,
    assign,
    chi2_sf,
    design_effect,
    minimum_detectable_effect,
    parse_arms,
    sample_ratio_check,
    unit_hash,
)

Z_SUM = 1.959963984540054 + 0.8416212335729143     # z(0.975) + z(0.8), from a normal table


def row(request_id: str, arm: str | None, session: str | None, *, status: str = "ok",
        used: tuple[str, ...] = (), exports: dict[str, int] | None = None,
        model: str | None = None, latency_ms: float = 5.0) -> dict[str, Any]:
    """A row as `served_rows` returns it."""
    exports = exports or {}
    return {"request_id": request_id, "created_at": "2026-11-29T22:00:00+00:00",
            "session_id": session, "model": model or arm or "teacher", "arm": arm,
            "status": status, "latency_ms": latency_ms,
            **{f"used_{tool}": tool in used for tool in ("adjust", "selective_adjust", "filter")},
            **{f"exports_{tool}": exports.get(tool, 0)
               for tool in ("adjust", "selective_adjust", "filter")}}


# ------------------------------------------------------------------------------ parse_arms

def test_parse_arms_keeps_the_order_and_the_weights() -> None:
    assert list(parse_arms("teacher=50, student:run_1=50").items()) == [
        ("teacher", 50.0), ("student:run_1", 50.0)]
    assert parse_arms("student:latest=1e1,teacher=2.5") == {"student:latest": 10.0,
                                                            "teacher": 2.5}
    assert parse_arms("teacher=1") == {"teacher": 1.0}


@pytest.mark.parametrize(("text", "says"), [
    ("", "no arms"),
    ("   ", "no arms"),
    ("teacher", "not NAME=WEIGHT"),
    ("=50", "not NAME=WEIGHT"),
    ("teacher=50,", "not NAME=WEIGHT"),
    ("teacher=abc", "not a number"),
    ("teacher=", "not a number"),
    ("teacher=0", "positive"),
    ("teacher=-5", "positive"),
    ("teacher=nan", "positive"),
    ("teacher=inf", "positive"),
    ("teacher=50,teacher=50", "named twice"),
    ("my teacher=50", "space"),
])
def test_parse_arms_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(WorkbenchError, match=says):
        parse_arms(text)


# ------------------------------------------------------------------------------ assign

def test_unit_hash_is_the_first_8_bytes_of_sha256() -> None:
    # sha256("abc") = ba7816bf8f01cfea..., so the number is 0xba7816bf8f01cfea / 2^64.
    assert hashlib.sha256(b"abc").hexdigest().startswith("ba7816bf8f01cfea")
    assert unit_hash("abc") == 0xBA7816BF8F01CFEA / 2**64
    assert 0.72 < unit_hash("abc") < 0.73


def test_assignment_follows_the_cumulative_weights_in_order() -> None:
    # unit_hash("abc") = 0.7284 (0xba7816bf / 2^32): with a=70,b=30, a is [0, 0.7) -> b.
    assert assign("abc", {"a": 70, "b": 30}) == "b"
    assert assign("abc", {"a": 80, "b": 20}) == "a"        # 0.728 < 0.80
    assert assign("abc", {"b": 30, "a": 70}) == "a"        # [0, 0.3) is b, [0.3, 1) is a
    assert assign("abc", {"only": 1}) == "only"


def test_assignment_is_sticky_within_and_across_processes() -> None:
    arms = {"teacher": 50, "student:r1": 50}
    ids = [f"user-{i}" for i in range(200)]
    first = [assign(i, arms) for i in ids]
    assert [assign(i, arms) for i in ids] == first
    code = ("import sys; from workbench.serving.ab import assign; "
            "print(','.join(assign(f'user-{i}', {'teacher': 50, 'student:r1': 50}) "
            "for i in range(200)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, timeout=60, env={"PYTHONHASHSEED": "123",
                                                        "PATH": "/usr/bin:/bin"})
    assert other.stdout.strip().split(",") == first


@pytest.mark.parametrize("weights", [{"teacher": 50, "student:r1": 50},
                                     {"teacher": 70, "student:r1": 30},
                                     {"a": 1, "b": 2, "c": 1}])
def test_assignment_shares_match_the_weights(weights: dict[str, float]) -> None:
    counts = Counter(assign(f"session-{i}", weights) for i in range(10_000))
    total = sum(weights.values())
    for arm, weight in weights.items():
        assert abs(counts[arm] / 10_000 - weight / total) < 0.02, (arm, counts)


def test_the_salt_reshuffles_the_sessions() -> None:
    arms = {"teacher": 50, "student:r1": 50}
    moved = sum(assign(f"s{i}", arms) != assign(f"s{i}", arms, salt="experiment-2")
                for i in range(1000))
    assert 400 < moved < 600                  # independent halves: about half move


def test_assign_needs_a_session_and_arms() -> None:
    with pytest.raises(WorkbenchError, match="request id"):
        assign(None, {"teacher": 1})
    with pytest.raises(WorkbenchError, match="at least one arm"):
        assign("s", {})
    with pytest.raises(WorkbenchError, match="positive"):
        assign("s", {"teacher": 0})


# ------------------------------------------------------------------------------ a hand-worked case

def hand_case() -> list[dict[str, Any]]:
    """Two arms and one request outside the test.

    teacher: session A: r1 adjust+filter, adjust exported once (exported; filter not);
                        r2 adjust, no export;
             session B: r3 filter, filter exported twice (feedback summed); r4 an error;
             no session: r5 adjust+selective_adjust, selective exported.
      requests 5, errors {error:timeout: 1}, sessions 3 (A, B, r5 alone), answered 4.
      overall 3/4 (r1, r3, r5); adjust 1/3 (r1 of r1, r2, r5); selective 1/1; filter 1/2.
    student:s: session C: r6 adjust exported, r7 adjust not; session D: r8 filter not,
               r9 filter exported.
      overall 2/4; adjust 1/2; selective none used; filter 1/2.
    ratio 0.5 / 0.75 = 2/3. r10 named its model: outside the test."""
    return [
        row("r1", "teacher", "A", used=("adjust", "filter"), exports={"adjust": 1}),
        row("r2", "teacher", "A", used=("adjust",)),
        row("r3", "teacher", "B", used=("filter",), exports={"filter": 2}),
        row("r4", "teacher", "B", status="error:timeout"),
        row("r5", "teacher", None, used=("adjust", "selective_adjust"),
            exports={"selective_adjust": 1}),
        row("r6", "student:s", "C", used=("adjust",), exports={"adjust": 1}),
        row("r7", "student:s", "C", used=("adjust",)),
        row("r8", "student:s", "D", used=("filter",)),
        row("r9", "student:s", "D", used=("filter",), exports={"filter": 1}),
        row("r10", None, "E", model="student:run1", used=("adjust",), exports={"adjust": 1}),
    ]


def test_rates_and_counts_by_hand() -> None:
    result = analyse(hand_case(), boot=2000, seed=0)
    teacher, student = result.arms
    assert (teacher.arm, student.arm) == ("teacher", "student:s")
    assert (teacher.requests, teacher.ok, teacher.sessions) == (5, 4, 3)
    assert teacher.errors == {"error:timeout": 1}
    assert teacher.models == {"teacher": 4}
    assert (teacher.overall.exported, teacher.overall.of, teacher.overall.value) == (3, 4, 0.75)
    assert (teacher.tools["adjust"].exported, teacher.tools["adjust"].of) == (1, 3)
    assert (teacher.tools["selective_adjust"].exported,
            teacher.tools["selective_adjust"].of) == (1, 1)
    assert (teacher.tools["filter"].exported, teacher.tools["filter"].of) == (1, 2)
    assert (student.requests, student.ok, student.sessions, student.errors) == (4, 4, 2, {})
    assert student.overall.value == 0.5
    assert student.tools["adjust"].value == 0.5 and student.tools["filter"].value == 0.5
    assert student.tools["selective_adjust"].value is None          # never used: no rate
    assert student.tools["selective_adjust"].undefined_resamples == 2000
    (comparison,) = result.comparisons
    assert comparison.arm == "student:s"
    assert comparison.ratio.value == pytest.approx(2 / 3)
    assert (result.explicit_requests, result.explicit_models) == (1, {"student:run1": 1})
    assert result.sessions_in_several_arms == 0
    assert "too few sessions" in comparison.verdict and "67%" in comparison.verdict


def test_bootstrap_intervals_by_hand() -> None:
    # The teacher's sessions as (exported, answered): A (1, 2), B (1, 1), r5 (1, 1). A resample
    # of three draws is all A (rate 1/2) with probability 1/27 = 3.7% > 2.5%, and has no A (rate
    # 1) with probability 8/27 > 2.5%: the interval is exactly [0.5, 1]. Every student
    # resample has rate 1/2 (both sessions are 1 of 2), so the ratio's is [0.5, 1] too.
    result = analyse(hand_case(), boot=2000, seed=0)
    teacher, student = result.arms
    assert (teacher.overall.low, teacher.overall.high) == (0.5, 1.0)
    assert (student.overall.low, student.overall.high) == (0.5, 0.5)
    ratio = result.comparisons[0].ratio
    assert ratio.low == pytest.approx(0.5) and ratio.high == pytest.approx(1.0)
    assert ratio.low <= ratio.value <= ratio.high


def replicated(copies: int) -> list[dict[str, Any]]:
    """The hand case's A/B rows `copies` times, each copy with its own sessions and requests."""
    rows = []
    for k in range(copies):
        for r in hand_case():
            if r["arm"] is not None:
                session = None if r["session_id"] is None else f"{r['session_id']}{k}"
                rows.append({**r, "request_id": f"{r['request_id']}-{k}", "session_id": session})
    return rows


def test_intervals_contain_the_point_and_shrink_with_more_sessions() -> None:
    widths = []
    for copies in (10, 100):
        result = analyse(replicated(copies), boot=1000, seed=3)
        teacher = result.arms[0]
        ratio = result.comparisons[0].ratio
        # Copies change no rate: 3/4, 2/4 and 2/3 as in the hand case.
        assert teacher.overall.value == 0.75 and ratio.value == pytest.approx(2 / 3)
        for rate in (teacher.overall, teacher.tools["adjust"], teacher.tools["filter"]):
            assert rate.low is not None and rate.high is not None and rate.value is not None
            assert rate.low <= rate.value <= rate.high
        assert ratio.low is not None and ratio.high is not None
        assert ratio.low <= ratio.value <= ratio.high
        widths.append(ratio.high - ratio.low)
    # Ten times the sessions: about sqrt(10) = 3.2 times narrower.
    assert widths[1] < widths[0] / 2.5


def test_a_seeded_run_is_reproducible_in_any_row_order() -> None:
    rows = replicated(20)
    first = analyse(rows, boot=500, seed=7).to_dict()
    assert analyse(rows, boot=500, seed=7).to_dict() == first
    assert analyse(list(reversed(rows)), boot=500, seed=7).to_dict() == first
    # Another seed draws other resamples (the intervals move; with few distinct session
    # kinds some bounds may coincide, so compare all of them).
    assert analyse(rows, boot=500, seed=8).to_dict() != first


def test_an_arm_s_interval_does_not_depend_on_the_other_arms() -> None:
    rows = replicated(20)
    alone = analyse([r for r in rows if r["arm"] == "teacher"], boot=500, seed=1)
    together = analyse(rows, boot=500, seed=1)
    assert alone.arms[0] == together.arms[0]


# ------------------------------------------------------------------------------ verdicts

def sessions_of(arm: str, n_sessions: int, exported_per_session: tuple[int, ...],
                size: int = 2) -> list[dict[str, Any]]:
    """`n_sessions` sessions of `size` requests each; session i exports
    exported_per_session[i % len] of them."""
    rows = []
    for i in range(n_sessions):
        hits = exported_per_session[i % len(exported_per_session)]
        for j in range(size):
            rows.append(row(f"{arm}-{i}-{j}", arm, f"{arm}-{i}", used=("adjust",),
                            exports={"adjust": 1 if j < hits else 0}))
    return rows


def test_verdict_lower_not_distinguishable_and_higher() -> None:
    # teacher: 200 sessions of 2, alternately 2 and 1 exported: rate 3/4.
    teacher = sessions_of("teacher", 200, (2, 1))
    # student:low: alternately 1 and 0 exported: rate 1/4, ratio 1/3: clearly lower.
    low = sessions_of("student:low", 200, (1, 0))
    # student:same: same as the teacher: ratio 1, interval around it.
    same = sessions_of("student:same", 200, (1, 2))
    result = analyse(teacher + low + same, boot=1000, seed=0)
    verdicts = {c.arm: c.verdict for c in result.comparisons}
    assert result.comparisons[0].ratio.value == pytest.approx(1 / 3)
    assert verdicts["student:low"].startswith("student:low keeps 33% of the teacher's export "
                                              "rate (95% CI ")
    assert verdicts["student:low"].endswith("lower than the teacher")
    assert "not distinguishable from the teacher at this size" in verdicts["student:same"]
    assert "keeps 100%" in verdicts["student:same"]
    assert result.verdicts == tuple(c.verdict for c in result.comparisons)
    higher = analyse(low + same, control="student:low", boot=1000, seed=0)
    assert higher.comparisons[0].verdict.endswith("higher than the student:low")


def test_verdicts_without_data_or_control() -> None:
    assert analyse([], boot=10).verdicts == (NO_ARMS,)
    assert analyse([row("x", None, "s", model="teacher")], boot=10).verdicts == (NO_ARMS,)
    only_teacher = analyse(sessions_of("teacher", 3, (1,)), boot=10)
    assert only_teacher.verdicts == (
        ("only one arm ('teacher') served requests: nothing to compare"),)
    no_control = analyse(sessions_of("student:a", 3, (1,)), boot=10)
    assert no_control.comparisons[0].ratio.value is None
    assert "no answered sessions in the control arm 'teacher'" in no_control.verdicts[0]
    no_exports = analyse(sessions_of("teacher", 40, (0,)) + sessions_of("student:a", 40, (1,)),
                         boot=10)
    assert "has no exports yet" in no_exports.verdicts[0]
    assert no_exports.comparisons[0].detectable.mde is None


def test_errors_count_in_requests_not_in_rates() -> None:
    rows = [row("a", "teacher", "s1", used=("adjust",), exports={"adjust": 1}),
            row("b", "teacher", "s1", status="error:teacher_down"),
            row("c", "teacher", "s2", status="error:teacher_down"),
            row("d", "teacher", "s3", status="error:timeout")]
    (teacher,) = analyse(rows, boot=50).arms
    # 4 requests in 3 sessions, of which only s1 has an answered request: rate 1/1.
    assert (teacher.requests, teacher.ok, teacher.sessions, teacher.sessions_answered) == \
        (4, 1, 3, 1)
    assert teacher.errors == {"error:teacher_down": 2, "error:timeout": 1}
    assert teacher.overall.value == 1.0 and (teacher.overall.low, teacher.overall.high) == (1, 1)


def test_a_session_served_under_two_arms_is_counted() -> None:
    rows = [row("a", "teacher", "s1"), row("b", "student:x", "s1"), row("c", "teacher", "s2")]
    assert analyse(rows, boot=10).sessions_in_several_arms == 1


def test_boot_must_be_positive() -> None:
    with pytest.raises(WorkbenchError, match="bootstrap"):
        analyse(hand_case(), boot=0)


# ------------------------------------------------------------------------------ SRM

def split(first: int, second: int) -> list[dict[str, Any]]:
    return ([row(f"t{i}", "teacher", f"t{i}") for i in range(first)]
            + [row(f"s{i}", "student:r", f"s{i}") for i in range(second)])


def test_chi2_survival_by_hand() -> None:
    assert chi2_sf(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-9)  # the 5% point, df 1
    assert chi2_sf(5.991464547107979, 2) == pytest.approx(0.05, rel=1e-9)  # df 2
    assert chi2_sf(4.0, 2) == pytest.approx(math.exp(-2))                  # df 2: exp(-x/2)
    # df 3: erfc(sqrt(x/2)) + sqrt(2x/pi) exp(-x/2)
    assert chi2_sf(2.5, 3) == pytest.approx(math.erfc(math.sqrt(1.25))
                                            + math.sqrt(5 / math.pi) * math.exp(-1.25))
    assert chi2_sf(0.0, 1) == 1.0
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in range(1, 7):
        for x in (0.3, 2.0, 11.0, 80.0):
            assert chi2_sf(x, df) == pytest.approx(scipy_stats.chi2.sf(x, df), rel=1e-9)


def test_srm_flags_a_60_40_split_of_2000_sessions() -> None:
    # Expected 1000 each: chi2 = 200^2/1000 * 2 = 80, df 1, p = erfc(sqrt(40)) ~ 4e-19.
    result = analyse(split(1200, 800), boot=10).sample_ratio
    assert result.observed == {"teacher": 1200, "student:r": 800}
    assert result.chi2 == pytest.approx(80.0) and result.df == 1
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(40)))
    assert result.flagged
    assert "sample ratio mismatch" in analyse(split(1200, 800), boot=10).verdicts[0]


def test_srm_passes_a_50_50_split_and_the_split_that_was_asked_for() -> None:
    even = analyse(split(1000, 1000), boot=10).sample_ratio
    assert (even.chi2, even.p_value, even.flagged) == (0.0, 1.0, False)
    asked = analyse(split(1200, 800), boot=10,
                    expected={"teacher": 60, "student:r": 40}).sample_ratio
    assert asked.basis == "the given weights"
    assert asked.chi2 == pytest.approx(0.0) and not asked.flagged
    # 1020/980 against 50/50: chi2 = 20^2/1000 * 2 = 0.8, p = erfc(sqrt(0.4)) = 0.371.
    near = analyse(split(1020, 980), boot=10).sample_ratio
    assert near.p_value == pytest.approx(math.erfc(math.sqrt(0.4))) and not near.flagged


def test_srm_counts_an_expected_arm_without_sessions_and_refuses_an_unknown_one() -> None:
    # 10 and 10 sessions against three equal arms (20/3 expected each): a and b add
    # (10 - 20/3)^2 / (20/3) = 5/3 each, c adds (20/3)^2 / (20/3) = 20/3: chi2 = 10, df 2,
    # p = exp(-10/2).
    check = sample_ratio_check({"a": 10, "b": 10}, {"a": 1, "b": 1, "c": 1})
    assert check.observed == {"a": 10, "b": 10, "c": 0}
    assert check.chi2 == pytest.approx(10.0) and check.p_value == pytest.approx(math.exp(-5))
    with pytest.raises(WorkbenchError, match="'b'.*no expected weight"):
        sample_ratio_check({"a": 10, "b": 10}, {"a": 1})
    single = sample_ratio_check({"a": 10})
    assert (single.p_value, single.flagged) == (None, False)


# ------------------------------------------------------------------------------ MDE

def test_design_effect_by_hand() -> None:
    # Sessions (exported, answered) = (2, 2), (0, 2), (2, 2), (0, 2): n 8, p 1/2; residuals
    # y - p m = 1, -1, 1, -1, squares sum to 4; D = 4 / (8 * 1/4) = 2 (all-or-nothing sessions
    # of 2: rho = 1, so 1 + (2 - 1) * 1 = 2).
    assert design_effect(np.array([2.0, 0, 2, 0]), np.array([2.0, 2, 2, 2])) == pytest.approx(2)
    # One request per session: D = 1 exactly.
    assert design_effect(np.array([1.0, 0, 1, 1, 0]), np.ones(5)) == pytest.approx(1.0)
    # Less spread than independence (noise) is floored at 1; p = 0 or 1 has none.
    assert design_effect(np.array([1.0, 1, 1, 1]), np.full(4, 2.0)) == 1.0
    assert design_effect(np.zeros(3), np.ones(3)) is None


def test_mde_formula_by_hand() -> None:
    # p = 0.4, 1000 and 1000 requests, D = 1.5: sqrt(1.5 * 0.6/0.4 * (2/1000)) = sqrt(0.0045)
    # = 0.0670820; times 2.8015852 = 0.1879358.
    assert minimum_detectable_effect(0.4, 1000, 1000, 1.5) == pytest.approx(0.1879358, abs=1e-6)
    with pytest.raises(WorkbenchError):
        minimum_detectable_effect(1.0, 10, 10, 1.0)


def test_mde_in_the_analysis_by_hand() -> None:
    # Control: the four sessions of test_design_effect_by_hand (p 1/2, n_c 8, D 2); the arm has
    # 4 answered requests. MDE = 2.8015852 * sqrt(2 * 1 * (1/8 + 1/4)) = 2.8015852 * 0.8660254
    # = 2.4262434.
    rows = (sessions_of("teacher", 4, (2, 0))
            + sessions_of("student:x", 2, (1,)))
    detectable = analyse(rows, boot=10).comparisons[0].detectable
    assert (detectable.control_rate, detectable.control_requests, detectable.arm_requests) == \
        (0.5, 8, 4)
    assert detectable.design_effect == pytest.approx(2.0)
    assert detectable.mde == pytest.approx(2.4262434, abs=1e-6)
    assert detectable.mde == pytest.approx(Z_SUM * math.sqrt(2 * (1 / 8 + 1 / 4)))


def test_the_analysis_is_json_ready_and_light() -> None:
    plain = analyse(hand_case(), boot=20).to_dict()
    assert json.loads(json.dumps(plain))["comparisons"][0]["ratio"]["arm"] == "student:s"
    code = ("import sys, workbench.serving.ab; "
            "print(sorted(m for m in ('duckdb', 'torch', 'streamlit', 'fastapi') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------ workbench ab

def request_id(name: str) -> str:
    return "req_" + hashlib.sha256(name.encode()).hexdigest()[:32]


def spool_records() -> list[dict[str, Any]]:
    """The hand case as `workbench serve` spools it: requests with their answers (exports 0),
    then feedback records; r3's two exports of filter come as two feedback records (summed).
    The student arm is `student:latest`, served by run r20261129."""
    answers = {
        "adjust": {"temperature": 30},
        "selective_adjust": {"red": {"saturation": 10, "luminance": 0}},
        "filter": {"name": "warm_Golden", "intensity": 40},
    }
    arms = {"teacher": "teacher:gpt-4o-mini", "student:s": "student:r20261129"}
    records: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    for i, r in enumerate(hand_case()):
        failed = r["status"] != "ok"
        teacher = None if failed else {
            tool: answers[tool] if r[f"used_{tool}"] else None for tool in answers}
        records.append({
            "kind": "request", "request_id": request_id(r["request_id"]),
            "created_at": f"2026-11-29T22:00:{i:02d}.000000+00:00",
            "intent": f"warm look number {i}", "teacher": teacher,
            "exports": {"adjust": 0, "selective_adjust": 0, "filter": 0},
            "teacher_model": r["model"] if r["arm"] is None else arms[r["arm"]],
            "arm": None if r["arm"] is None else r["arm"].replace("student:s", "student:latest"),
            "session_id": r["session_id"], "latency_ms": 4.5, "status": r["status"]})
        exports = {tool: r[f"exports_{tool}"] for tool in answers}
        for k in range(max(exports.values())):      # one record per export: r3 sends two
            feedback.append({
                "kind": "feedback", "feedback_id": "fb_" + hashlib.sha256(
                    f"{r['request_id']}-{k}".encode()).hexdigest()[:32],
                "request_id": request_id(r["request_id"]),
                "created_at": f"2026-11-29T22:05:{i:02d}.000000+00:00",
                "exports": {tool: 1 if n > k else 0 for tool, n in exports.items()}})
    return records + feedback


def test_workbench_ab_on_an_ingested_spool(tmp_path: Path, cli: Any) -> None:
    from workbench.serving.spool import Spool

    folder = tmp_path / "spool"
    with Spool(folder) as spool:
        for record in spool_records():
            spool.append(record)
    db = tmp_path / "w.duckdb"
    code, out, err = cli("ingest", folder, "--db", db)
    assert code == 0, err

    code, out, err = cli("ab", "--db", db, "--json", "--boot", 2000, "--seed", 0)
    assert code == 0, err
    result = json.loads(out)
    teacher, student = result["arms"]
    # The numbers of test_rates_and_counts_by_hand and test_bootstrap_intervals_by_hand.
    assert (teacher["arm"], teacher["requests"], teacher["ok"], teacher["sessions"]) == \
        ("teacher", 5, 4, 3)
    assert teacher["errors"] == {"error:timeout": 1}
    assert teacher["models"] == {"teacher:gpt-4o-mini": 4}
    overall = teacher["overall"]
    assert (overall["exported"], overall["of"], overall["value"]) == (3, 4, 0.75)
    assert (overall["low"], overall["high"]) == (0.5, 1.0)
    assert [(teacher["tools"][t]["exported"], teacher["tools"][t]["of"])
            for t in ("adjust", "selective_adjust", "filter")] == [(1, 3), (1, 1), (1, 2)]
    assert (student["arm"], student["models"]) == ("student:latest", {"student:r20261129": 4})
    assert student["overall"]["value"] == 0.5
    ratio = result["comparisons"][0]["ratio"]
    assert ratio["value"] == pytest.approx(2 / 3)
    assert (ratio["low"], ratio["high"]) == (pytest.approx(0.5), pytest.approx(1.0))
    assert (result["explicit_requests"], result["explicit_models"]) == \
        (1, {"student:run1": 1})

    code, out, err = cli("ab", "--db", db)
    assert code == 0, err
    assert "teacher " in out and "student:latest" in out
    assert "75.0% (50.0-100.0) of 4" in out                 # the teacher's overall rate
    assert "ratio student:latest / teacher: 66.7% (95% CI 50.0% to 100.0%)" in out
    assert "not answered: error:timeout 1" in out
    assert "not in the test: 1 request(s) that named their model (student:run1 1)" in out
    assert "verdict: student:latest keeps 67% of the teacher's export rate so far" in out


def test_workbench_ab_errors_are_one_line(tmp_path: Path, cli: Any) -> None:
    code, _, err = cli("ab", "--db", tmp_path / "missing.duckdb")
    assert code == 2 and err.startswith("error: no database at")
    with pytest.raises(SystemExit) as stop:
        cli("ab", "--db", tmp_path / "w.duckdb", "--expected", "teacher=0")
    assert stop.value.code == 2


def test_workbench_ab_on_an_empty_database(tmp_path: Path, cli: Any) -> None:
    from workbench.store import Store

    db = tmp_path / "w.duckdb"
    with Store(db).session(create=True):
        pass
    code, out, err = cli("ab", "--db", db)
    assert code == 0, err
    assert out.strip().endswith(f"verdict: {NO_ARMS}")
    code, out, err = cli("ab", "--db", db, "--expected", "teacher=1,student:x=1", "--json")
    assert code == 0 and json.loads(out)["sample_ratio"]["basis"] == "the given weights"


# ------------------------------------------------------------------------------ over time

def test_rates_over_time_by_hand() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from workbench.serving.ab import rates_over_time, window_for

    def at(hour: int, minute: int, **fields: Any) -> dict[str, Any]:
        return {**row(fields.pop("rid"), fields.pop("arm"), fields.pop("session"), **fields),
                "created_at": datetime(2026, 11, 29, hour, minute, tzinfo=UTC)}

    rows = [at(10, 5, rid="t1", arm="teacher", session="A", used=("adjust",),
               exports={"adjust": 1}),
            at(10, 20, rid="t2", arm="teacher", session="A", used=("adjust",)),
            at(10, 30, rid="t3", arm="teacher", session="B", used=("filter",),
               exports={"filter": 2}),
            at(11, 10, rid="t4", arm="teacher", session="A", used=("adjust",)),
            at(11, 15, rid="t5", arm="teacher", session="B", status="error:timeout"),
            at(11, 20, rid="x1", arm=None, session="D", model="student:run",
               exports={"adjust": 1}),
            at(10, 40, rid="s1", arm="student", session="C", used=("adjust",),
               exports={"adjust": 1})]
    # Answered rows span 10:05 to 11:10, under two days: per hour. The teacher's 10:00 hour has
    # sessions A (1 exported of 2) and B (1 of 1): 2 of 3. Its resamples of two sessions are AA
    # (2/4) with probability 1/4, AB (2/3) 1/2 and BB (1) 1/4, so the 95% interval is [0.5, 1].
    # At 11:00 only A's third request (0 of 1); the error and the request without an arm are
    # left out. The student has C (1 of 1) at 10:00.
    windows = rates_over_time(rows, boot=400, seed=0)
    assert [(w.arm, w.start.hour, w.window, w.sessions) for w in windows] == [
        ("student", 10, "hour", 1), ("teacher", 10, "hour", 2), ("teacher", 11, "hour", 1)]
    student, teacher_10, teacher_11 = (w.rate for w in windows)
    assert (student.exported, student.of, student.low, student.high) == (1, 1, 1.0, 1.0)
    assert (teacher_10.exported, teacher_10.of) == (2, 3)
    assert teacher_10.value == pytest.approx(2 / 3)
    assert (teacher_10.low, teacher_10.high) == (0.5, 1.0)
    assert (teacher_11.exported, teacher_11.of, teacher_11.low, teacher_11.high) == (0, 1, 0, 0)

    # Two days or more (09:00 on the 29th to 23:30 on 1 December): per day, in UTC. 01:30 on
    # the 2nd at UTC+2 is 23:30 UTC on the 1st; a naive time is taken as UTC.
    east = timezone(timedelta(hours=2))
    later = [{**rows[0], "created_at": datetime(2026, 12, 2, 1, 30, tzinfo=east)},
             {**rows[2], "created_at": datetime(2026, 11, 29, 9, 0)}]
    assert window_for(later) == "day"
    days = rates_over_time(later, boot=50)
    assert [(w.start, w.rate.exported, w.rate.of) for w in days] == [
        (datetime(2026, 11, 29, tzinfo=UTC), 1, 1), (datetime(2026, 12, 1, tzinfo=UTC), 1, 1)]
    assert rates_over_time([], boot=10) == []
    with pytest.raises(WorkbenchError, match="'hour' or 'day'"):
        rates_over_time(rows, window="week")
