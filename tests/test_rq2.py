"""RQ2 over seeds: the statistics worked by hand, the tables, the config, and `experiment rq2
--quick` end to end on a small demo (every arm on every seed, one test split, controls of the
mined arms' size, the iterative curve, lineage, the current version put back)."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines import augment, experiments
from workbench.errors import WorkbenchError
from workbench.stats import Interval, mean_ci, paired_ci, paired_differences, t_975, t_975_table

# ------------------------------------------------------------------------------ the statistics

# t(0.975, df) as printed in standard tables (4 decimals).
PUBLISHED_T = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 6: 2.4469, 7: 2.3646,
               8: 2.3060, 9: 2.2622, 10: 2.2281, 15: 2.1314, 20: 2.0860, 25: 2.0595, 29: 2.0452,
               30: 2.0423, 40: 2.0211, 60: 2.0003, 120: 1.9799}


@pytest.mark.parametrize("df,expected", sorted(PUBLISHED_T.items()))
def test_the_t_table_and_its_expansion_match_published_values(df: int, expected: float) -> None:
    assert t_975_table(df) == pytest.approx(expected, abs=6e-5)
    assert t_975(df) == pytest.approx(expected, abs=6e-5)


def test_without_scipy_the_table_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.stats", None)   # importing it raises ImportError
    assert t_975(4) == t_975_table(4) == 2.776445
    assert t_975(200) == t_975_table(200)


def test_a_t_quantile_needs_a_degree_of_freedom() -> None:
    for df in (0, -1):
        with pytest.raises(WorkbenchError, match="at least 1 degree of freedom"):
            t_975(df)


def test_mean_and_interval_of_one_to_five_by_hand() -> None:
    # mean 3; squared deviations 4+1+0+1+4 = 10, sd = sqrt(10/4) = 1.5811;
    # half-width = t(0.975, 4) * sd / sqrt(5) = 2.7764 * 1.5811 / 2.2361 = 1.9632.
    ci = mean_ci([1, 2, 3, 4, 5])
    assert (ci.n, ci.mean) == (5, 3)
    assert ci.sd == pytest.approx(1.5811, abs=1e-4)
    assert ci.half_width == pytest.approx(1.9632, abs=1e-4)
    assert (ci.low, ci.high) == pytest.approx((1.0368, 4.9632), abs=1e-4)
    assert ci.excludes_zero is True


def test_two_values_have_t_of_one_degree_of_freedom() -> None:
    # 2 and 4: mean 3, sd = sqrt(2), half-width = 12.7062 * sqrt(2) / sqrt(2) = 12.7062.
    ci = mean_ci([2, 4])
    assert ci.sd == pytest.approx(math.sqrt(2))
    assert ci.half_width == pytest.approx(12.7062, abs=1e-4)
    assert ci.excludes_zero is False


def test_too_few_values_have_no_interval() -> None:
    assert mean_ci([]) == Interval(0, None, None, None)
    one = mean_ci([0.7])
    assert (one.mean, one.sd, one.half_width, one.low, one.excludes_zero) == \
        (0.7, None, None, None, None)
    same = mean_ci([0.5, 0.5, 0.5])      # no spread: a zero-width interval at 0.5
    assert (same.sd, same.half_width, same.excludes_zero) == (0, 0, True)


def test_paired_differences_by_hand() -> None:
    # differences .02, .02, -.01: mean .01; deviations .01, .01, -.02, sd = sqrt(.0006 / 2)
    # = .017321; half-width = t(0.975, 2) * .017321 / sqrt(3) = 4.3027 * .01 = .043027.
    ci = paired_ci([0.70, 0.72, 0.69], [0.68, 0.70, 0.70])
    assert ci.mean == pytest.approx(0.01)
    assert ci.sd == pytest.approx(0.017321, abs=1e-6)
    assert ci.half_width == pytest.approx(0.043027, abs=1e-6)
    assert ci.excludes_zero is False
    assert ci.to_dict()["low"] == pytest.approx(-0.033027, abs=1e-6)
    # A seed where either side is undefined is left out of the pairs.
    assert paired_differences([1.0, None, 3.0], [0.0, 5.0, 1.0]) == [1.0, 2.0]
    with pytest.raises(WorkbenchError, match="as many of each: 2 against 1"):
        paired_ci([1.0, 2.0], [1.0])


# ------------------------------------------------------------------------------------- tables

def test_numbers_intervals_and_sparklines_render_as_written() -> None:
    from workbench.report import interval, per_seed, signed, sparkline

    assert (signed(0.0123), signed(-0.004), signed(0.0), signed(-0.0003), signed(None)) == \
        ("+.012", "-.004", ".000", "-.000", "undef")
    assert interval(mean_ci([1, 2, 3, 4, 5])) == "[1.037, 4.963]"
    assert interval(paired_ci([0.70, 0.72, 0.69], [0.68, 0.70, 0.70]),
                    differences=True) == "[-.033, +.053]"
    assert interval(mean_ci([0.7])) == "undef"
    assert per_seed([0.7, None, 0.71]) == ".700 undef .710"
    # .66 -> 0 of 7 steps; .69 -> 4.67 -> 5; .70 -> 6.22 -> 6; .705 -> 7.
    assert sparkline([0.66, 0.69, 0.70, 0.705]) == "▁▆▇█"
    assert sparkline([0.5, None, 0.5]) == "▁ ▁"


# ------------------------------------------------------------------------------------- config

def test_the_config_refuses_what_cannot_give_an_interval() -> None:
    with pytest.raises(WorkbenchError, match="at least 2 seeds"):
        experiments.RQ2Config(seeds=1)
    with pytest.raises(WorkbenchError, match="named twice"):
        experiments.RQ2Config(strategies=(augment.MiningStrategy.MEAN, "mean"))
    with pytest.raises(WorkbenchError, match="unknown mining strategy"):
        experiments.RQ2Config(strategies=("best",))
    with pytest.raises(WorkbenchError, match="at least one mining strategy"):
        experiments.RQ2Config(strategies=())
    with pytest.raises(WorkbenchError, match="seeds the student itself"):
        experiments.RQ2Config(student_config={"seed": 3})
    with pytest.raises(WorkbenchError, match="at least 1 round"):
        experiments.RQ2Config(rounds=0)
    with pytest.raises(WorkbenchError, match="fraction"):
        experiments.RQ2Config(fraction=1.0)
    config = experiments.RQ2Config(strategies=("worst", "mean"), first_seed=3, seeds=3)
    assert config.strategies == (augment.MiningStrategy.WORST, augment.MiningStrategy.MEAN)
    assert config.seed_list == [3, 4, 5]


def test_quick_makes_it_small_and_keeps_the_settings_given() -> None:
    quick = experiments.quick(experiments.RQ2Config(student_config={"hidden": 8, "epochs": 2}))
    assert (quick.seeds, quick.rounds) == (experiments.QUICK_SEEDS, experiments.QUICK_ROUNDS)
    assert quick.student_config == {"hidden": 8, "epochs": 2}
    assert experiments.quick(experiments.RQ2Config()).student_config == \
        experiments.QUICK_STUDENT_SETTINGS["heads"]


def test_the_app_builds_the_config_from_json() -> None:
    from workbench.app import jobs

    config = jobs.build_config("experiment_rq2", {
        "strategies": ["worst", "slices"], "mining": {"worst_percent": 10.0}, "seeds": 3,
        "paraphraser": "offline"})
    assert config.strategies == (augment.MiningStrategy.WORST, augment.MiningStrategy.SLICES)
    assert (config.mining.worst_percent, config.seeds) == (10.0, 3)
    with pytest.raises(WorkbenchError, match="at least 2 seeds"):
        jobs.build_config("experiment_rq2", {"seeds": 1})


def test_cli_flags_reach_the_config() -> None:
    from workbench.cli import build_parser
    from workbench.cli.models import rq2_config

    parse = build_parser().parse_args
    config = rq2_config(parse(["experiment", "rq2", "--strategies", "worst", "margin",
                               "--seeds", "3", "--first-seed", "10", "--worst-percent", "15",
                               "--margin", "0.2", "--set", "hidden=16"]))
    assert config.strategies == (augment.MiningStrategy.WORST, augment.MiningStrategy.MARGIN)
    assert (config.seed_list, config.rounds) == ([10, 11, 12], experiments.RQ2Config().rounds)
    assert (config.mining.worst_percent, config.mining.margin) == (15, 0.2)
    assert config.student_config == {"hidden": 16}
    quick = rq2_config(parse(["experiment", "rq2", "--quick", "--rounds", "3"]))
    assert (quick.seeds, quick.rounds) == (experiments.QUICK_SEEDS, 3)   # given flags win


# ----------------------------------------------------------------- the summary and its text

def trial(seed: int, overall: float | None, size: int, added: int = 0,
          run: str = "r") -> experiments.RQ2Trial:
    return experiments.RQ2Trial(seed, 1, size, added, overall,
                                {"adjust": overall, "selective_adjust": overall,
                                 "filter": overall}, f"{run}{seed}", seed)


def hand_made_result() -> experiments.RQ2Result:
    """Two strategies over 3 seeds with Overall values chosen to work by hand."""
    config = experiments.RQ2Config(seeds=3, rounds=2, strategies=("worst", "mean"))
    trials = {
        "full": [trial(s, v, 800) for s, v in enumerate((0.80, 0.79, 0.81))],
        "low": [trial(s, v, 100) for s, v in enumerate((0.66, 0.65, 0.67))],
        "mined:worst": [trial(s, v, 120, 20) for s, v in enumerate((0.70, 0.70, 0.72))],
        "control:worst": [trial(s, v, 120, 20) for s, v in enumerate((0.67, 0.66, 0.68))],
        "mined:mean": [trial(s, v, 170, 70) for s, v in enumerate((0.69, 0.68, 0.69))],
        "control:mean": [trial(s, v, 170, 70) for s, v in enumerate((0.68, 0.70, 0.69))],
    }
    rounds = [trials["mined:worst"],
              [trial(s, v, 140, 40) for s, v in enumerate((0.72, 0.71, 0.73))]]
    return experiments.rq2_result(config, 1, 1000, trials, rounds, 61.0)


def test_the_summary_pairs_arms_by_seed() -> None:
    result = hand_made_result()
    assert [arm.key for arm in result.arms] == [
        "full", "low", "mined:worst", "control:worst", "mined:mean", "control:mean",
        "iterative"]
    assert result.arm("iterative").values == [0.72, 0.71, 0.73]     # the last round
    assert [point.round for point in result.curve] == [1, 2]
    comparisons = {(c.arm, c.against): c for c in result.comparisons}
    # worst - its control: .03, .04, .04 -> mean .036667, sd .005774,
    # half-width 4.302653 * .005774 / sqrt(3) = .014343: [.022324, .051010], excludes 0.
    worst = comparisons[("mined:worst", "control:worst")]
    assert worst.differences == pytest.approx((0.03, 0.04, 0.04))
    assert worst.interval.mean == pytest.approx(0.036667, abs=1e-6)
    assert worst.interval.half_width == pytest.approx(0.014343, abs=1e-6)
    assert worst.interval.excludes_zero is True
    # mean - its control: .01, -.02, 0 -> mean -.003333: includes 0.
    mean = comparisons[("mined:mean", "control:mean")]
    assert mean.interval.mean == pytest.approx(-0.003333, abs=1e-6)
    assert mean.interval.excludes_zero is False
    assert comparisons[("iterative", "mined:worst")].differences == \
        pytest.approx((0.02, 0.01, 0.01))
    assert comparisons[("full", "low")].interval.mean == pytest.approx(0.14)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["arms"][2]["tools"]["filter"]["mean"] == pytest.approx(0.706667, abs=1e-6)
    assert data["curve"]["start"]["mean"] == pytest.approx(0.66)


def test_the_text_has_the_tables_the_curve_and_one_verdict_per_mined_arm(
        cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.conftest import curated_store

    curated_store(tmp_path)
    monkeypatch.setattr(experiments, "rq2", lambda config, store, progress: hand_made_result())
    code, out, _ = cli("experiment", "rq2", "--db", tmp_path / "w.duckdb", "--no-progress")
    assert code == 0
    assert "over 3 seeds (0-2), test split of dataset version 1 (1,000 intents); 1.0 min" in out
    # worst: mean .706667, sd .011547, half-width 4.302653 * .011547 / sqrt(3) = .028685.
    assert re.search(r"12\.5% \+ mining \(worst\) +12\.5% +120 +20 \(16\.7%\) +\.707 +"
                     r"\[\.678, \.735\] +\.700 \.700 \.720\n", out)
    assert re.search(r"\n2 +140 +40 +\.720 +\[\.695, \.745\] +\.720 \.710 \.730\n", out)
    assert "round 1 the one-round mined arm): ▁▆█" in out
    assert "Mining (worst) beats its random control of the same size by +.037 " \
           "(95% CI [+.022, +.051], 3 seeds); the interval excludes 0." in out
    assert "Mining (mean) against its random control: -.003 (95% CI [-.041, +.035], 3 seeds); " \
           "the interval includes 0" in out


# ----------------------------------------------------------------- --quick end to end

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    """`experiment rq2 --quick --json` with two strategies on a small demo."""
    from pipelines import demo
    from workbench.cli import main
    from workbench.store import Store

    folder = tmp_path_factory.mktemp("rq2")
    store = Store(folder / "w.duckdb")
    demo.run(demo.DemoRunConfig(requests=600, test_size=30), store)
    out = folder / "rq2.json"
    code = main(["experiment", "rq2", "--db", str(store.path), "--quick", "--json",
                 "--fraction", "0.25", "--strategies", "worst", "mean", "--n", "3",
                 "--paraphraser", "offline", "--set", "hidden=32", "--set", "device=cpu",
                 "--set", "runtime=torch", "--no-progress", "--out", str(out)])
    assert code == 0
    return store, json.loads(out.read_text())


@pytest.mark.slow
def test_quick_gives_every_arm_every_seed_on_one_test_split(quick_run) -> None:
    from workbench.store.evaluations import evaluation_row
    from workbench.store.versions import Split, current_version_id, version_rows

    store, data = quick_run
    seeds = data["seeds"]
    assert seeds == [0, 1] and data["config"]["rounds"] == 2
    assert [arm["key"] for arm in data["arms"]] == [
        "full", "low", "mined:worst", "control:worst", "mined:mean", "control:mean",
        "iterative"]
    for arm in data["arms"]:
        assert [t["seed"] for t in arm["trials"]] == seeds, arm["key"]
        assert {"mean", "low", "high", "half_width", "n"} <= set(arm["overall"])
        assert set(arm["tools"]) == {"adjust", "selective_adjust", "filter"}
    base = data["base_version_id"]
    trials = [t for arm in data["arms"] for t in arm["trials"]]
    with store.session() as session:
        assert current_version_id(session) == base      # the pointer is back
        base_test = sorted(r["intent_key"] for r in version_rows(session, base, Split.TEST))
        for t in trials:
            evaluation = evaluation_row(session, t["evaluation_id"])
            assert evaluation is not None
            assert (evaluation["version_id"], evaluation["split"], evaluation["kind"],
                    evaluation["source"]) == (base, "test", "run", t["run_id"])
            assert evaluation["summary"]["subsets"][0]["overall"] == t["overall"]
            trained_test = sorted(r["intent_key"] for r in version_rows(
                session, t["version_id"], Split.TEST))
            assert trained_test == base_test
            assert len(version_rows(session, t["version_id"], Split.TRAIN)) == t["train_size"]
    assert len(base_test) == data["test_intents"] == 30


@pytest.mark.slow
def test_quick_arms_grow_from_their_seeds_sample_and_controls_match(quick_run) -> None:
    from workbench.store.versions import list_versions

    store, data = quick_run
    arms = {arm["key"]: arm for arm in data["arms"]}
    with store.session() as session:
        parents = {row["version_id"]: row["parent_id"] for row in list_versions(session)}

    def ancestors(version: int) -> list[int]:
        found = [version]
        while parents[found[-1]] is not None:
            found.append(parents[found[-1]])
        return found

    for i, seed in enumerate(data["seeds"]):
        full, low = arms["full"]["trials"][i], arms["low"]["trials"][i]
        assert full["version_id"] == data["base_version_id"]
        assert low["train_size"] == round(0.25 * full["train_size"])
        assert parents[low["version_id"]] == data["base_version_id"]
        for key in ("mined:worst", "control:worst", "mined:mean", "control:mean", "iterative"):
            grown = arms[key]["trials"][i]
            assert low["version_id"] in ancestors(grown["version_id"]), (key, seed)
            assert grown["train_size"] == low["train_size"] + grown["augmentations"]
        for strategy in ("worst", "mean"):
            mined = arms[f"mined:{strategy}"]["trials"][i]
            control = arms[f"control:{strategy}"]["trials"][i]
            assert control["augmentations"] == mined["augmentations"], (strategy, seed)
            assert control["run_id"] != mined["run_id"] or mined["augmentations"] == 0
    # The two seeds drew different samples.
    assert arms["low"]["trials"][0]["version_id"] != arms["low"]["trials"][1]["version_id"]


@pytest.mark.slow
def test_quick_curve_and_paired_differences(quick_run) -> None:
    _, data = quick_run
    arms = {arm["key"]: arm for arm in data["arms"]}
    points = data["curve"]["points"]
    assert [p["round"] for p in points] == [1, 2] and data["curve"]["strategy"] == "worst"
    assert points[0]["trials"] == arms["mined:worst"]["trials"]      # round 1 is the mined arm
    assert points[-1]["trials"] == arms["iterative"]["trials"]
    sizes = [[t["train_size"] for t in p["trials"]] for p in points]
    assert all(later >= earlier for earlier, later in zip(sizes[0], sizes[1], strict=True))
    comparisons = {(c["arm"], c["against"]): c for c in data["comparisons"]}
    for strategy in ("worst", "mean"):
        found = comparisons[(f"mined:{strategy}", f"control:{strategy}")]
        mined = [t["overall"] for t in arms[f"mined:{strategy}"]["trials"]]
        control = [t["overall"] for t in arms[f"control:{strategy}"]["trials"]]
        expected = [a - b for a, b in zip(mined, control, strict=True)
                    if a is not None and b is not None]
        assert found["differences"] == pytest.approx(expected)
        if len(expected) == 2:   # two values: sd = |d1 - d2| / sqrt(2), half-width t sd / sqrt(2)
            sd = abs(expected[0] - expected[1]) / math.sqrt(2)
            assert found["half_width"] == pytest.approx(12.706205 * sd / math.sqrt(2),
                                                        rel=1e-5)
    assert data["seconds"] > 0
