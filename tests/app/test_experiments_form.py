"""The Runs page's Experiments: the RQ1 and RQ2 forms start background jobs with the settings
typed (checked as `jobs.submit` checks them, refused in one line, an identical running job
named), experiment jobs have readable titles in the Jobs tab, and a finished job's stored
result is drawn: RQ1's table with the direction shares, RQ2's arms, verdicts and curve."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.app.conftest import write_job
from tests.conftest import curated_store
from tests.test_rq2 import hand_made_result
from workbench.app import jobs


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return curated_store(tmp_path_factory.mktemp("experiments_form")).path


@pytest.fixture
def db(world: Path, tmp_path: Path) -> Path:
    """A copy of the curated world, so the job folders a test writes stay in that test."""
    import shutil

    path = tmp_path / "w.duckdb"
    shutil.copy(world, path)
    return path


@pytest.fixture
def submitted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """jobs.submit replaced by one that makes the checks submit makes first (building the
    pipeline's config, so a bad setting is refused in its words) and records the job instead
    of starting a process."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def submit(db_path: Any, kind: str, config: dict[str, Any],
               allow_duplicate: bool = False) -> Any:
        config = json.loads(json.dumps(config))
        jobs.build_config(kind, config)
        calls.append((kind, config))
        return SimpleNamespace(id=f"20240101-000000-{kind}-fake{len(calls)}")

    monkeypatch.setattr(jobs, "submit", submit)
    return calls


def succeeded(db: Path, job_id: str, kind: str, config: dict[str, Any],
              result: dict[str, Any]) -> None:
    write_job(db, job_id, kind, config=config, status="succeeded",
              finished_at=datetime.now(UTC).isoformat(), result=result)


# ------------------------------------------------------------------------------ the forms

def test_both_forms_render_with_the_clis_defaults_and_how_long_they_take(page, db) -> None:
    at = page("runs", db).run()
    assert not at.exception
    assert at.multiselect(key="rq1_students").value == ["retrieval", "heads", "seq2seq"]
    assert at.multiselect(key="rq2_strategies").value == ["mean", "worst"]
    assert at.selectbox(key="rq2_student").value == "heads"
    assert at.number_input(key="rq2_fraction").value == 0.125
    assert at.number_input(key="rq2_seeds").value is None        # the default: 5, or 2 quick
    assert not at.button(key="rq1_start").disabled and not at.button(key="rq2_start").disabled
    about = [c.value for c in at.caption]
    assert any("2 CPU cores" in text and "14 min for seq2seq" in text for text in about)
    assert any("2 CPU cores" in text and "79.5 min" in text for text in about)
    assert at.button[0].key == "launch_start"       # the training form's Start stays first


def test_rq1_starts_a_job_with_the_students_and_version_chosen(page, db, submitted,
                                                               tmp_path: Path) -> None:
    directions = tmp_path / "mine.jsonl"
    directions.write_text('{"request": "brighter", "expect": {"brightness": "up"}}\n')
    at = page("runs", db).run()
    at.multiselect(key="rq1_students").set_value(["heads", "retrieval"])
    at.selectbox(key="rq1_version").set_value(1)
    at.text_input(key="rq1_directions").input(str(directions))
    at.button(key="rq1_start").click().run()
    assert not at.exception
    assert submitted == [("experiment_rq1", {"version": 1, "students": ["heads", "retrieval"],
                                             "directions": str(directions)})]
    assert at.success[0].body.startswith("Started job 20240101-000000-experiment_rq1-fake1")


def test_rq2_quick_starts_a_small_job_with_every_setting_typed(page, db, submitted) -> None:
    at = page("runs", db).run()
    at.selectbox(key="rq2_student").set_value("heads")
    at.text_input(key="rq2_settings").input('{"hidden": 32}')
    at.multiselect(key="rq2_strategies").set_value(["worst", "slices"])
    at.number_input(key="rq2_fraction").set_value(0.25)
    at.number_input(key="rq2_first_seed").set_value(7)
    at.checkbox(key="rq2_quick").check()
    at.number_input(key="rq2_rounds").set_value(3)               # typed: wins over quick's 2
    at.number_input(key="rq2_worst_percent").set_value(10.0)
    at.number_input(key="rq2_clusters").set_value(4)
    at.number_input(key="rq2_n").set_value(3)
    at.selectbox(key="rq2_paraphraser").set_value("offline")
    at.button(key="rq2_start").click().run()
    assert not at.exception
    [(kind, config)] = submitted
    assert kind == "experiment_rq2"
    # Quick: 2 seeds and heads' 10 epochs beside the settings typed; the rounds typed win.
    assert config == {"version": None, "student": "heads",
                      "student_config": {"epochs": 10, "hidden": 32}, "fraction": 0.25,
                      "seeds": 2, "first_seed": 7, "strategies": ["worst", "slices"],
                      "mining": {"margin": 0.1, "worst_percent": 10.0, "clusters": 4,
                                 "slice_gap": 0.05},
                      "rounds": 3, "n": 3, "threshold": 0.9, "paraphraser": "offline"}
    built = jobs.build_config(kind, config)
    assert (built.seed_list, built.rounds, built.mining.clusters) == ([7, 8], 3, 4)
    assert at.success[0].body.startswith("Started job ")


@pytest.mark.parametrize("typed,said", [
    ({"rq2_seeds": 1}, "a 95% interval needs at least 2 seeds, got 1"),
    ({"rq2_fraction": 1.0}, "the low-data fraction must be in (0, 1), got 1.0"),
    ({"rq2_settings": '{"epochs": '}, ("the student settings are not JSON: Expecting value: "
                                       "line 1 column 12 (char 11)")),
    ({"rq2_settings": '{"seed": 3}'}, "the experiment seeds the student itself"),
    ({"rq2_settings": '{"no_such": 1}'}, "unknown setting(s) no_such for the heads student"),
    ({"rq2_strategies": []}, "name at least one mining strategy"),
    ({"rq2_clusters": 1}, "slices need at least 2 clusters, got 1"),
])
def test_a_bad_rq2_setting_is_refused_in_one_line_and_nothing_typed_is_lost(
        page, db, submitted, typed: dict[str, Any], said: str) -> None:
    at = page("runs", db).run()
    for key, value in typed.items():
        widget = at.text_input(key=key) if key == "rq2_settings" else \
            at.multiselect(key=key) if key == "rq2_strategies" else at.number_input(key=key)
        widget.set_value(value)
    at.number_input(key="rq2_first_seed").set_value(11)
    at.button(key="rq2_start").click().run()
    assert not at.exception
    assert submitted == []
    [error] = at.error
    assert said in error.body and "\n" not in error.body
    for key, value in {**typed, "rq2_first_seed": 11}.items():
        widget = at.text_input(key=key) if key == "rq2_settings" else \
            at.multiselect(key=key) if key == "rq2_strategies" else at.number_input(key=key)
        assert widget.value == value


def test_rq1_without_a_student_or_with_a_missing_direction_set_is_refused(page, db, submitted,
                                                                          tmp_path) -> None:
    at = page("runs", db).run()
    at.multiselect(key="rq1_students").set_value([])
    at.button(key="rq1_start").click().run()
    assert [e.body for e in at.error] == ["choose at least one student"]
    at.multiselect(key="rq1_students").set_value(["heads"])
    at.text_input(key="rq1_directions").input(str(tmp_path / "nowhere.jsonl"))
    at.button(key="rq1_start").click().run()
    [error] = at.error
    assert error.body.startswith(f"no direction set at {tmp_path / 'nowhere.jsonl'}: ")
    assert submitted == []
    assert at.text_input(key="rq1_directions").value == str(tmp_path / "nowhere.jsonl")


def test_an_identical_running_experiment_is_named_and_nothing_starts(
        page, db, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_process(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no job process may start in this test")

    monkeypatch.setattr(jobs.subprocess, "Popen", no_process)
    # {}: every default, as the form's defaults are (the fingerprint fills defaults in).
    running = write_job(db, "20240101-000000-experiment_rq2-aaaaaa", "experiment_rq2")
    at = page("runs", db).run()
    at.button(key="rq2_start").click().run()
    assert not at.exception
    assert any("an identical experiment_rq2 job is already running: "
               f"{running.name}" in w.body for w in at.warning)
    assert [job.id for job in jobs.list_jobs(db)] == [running.name]
    assert at.session_state["runs_job"] == running.name
    assert at.button(key="rq2_start").disabled and at.button(key="rq1_start").disabled


def test_experiment_jobs_have_readable_titles_in_the_jobs_tab(page, db) -> None:
    write_job(db, "20240102-000000-experiment_rq2-bbbbbb", "experiment_rq2",
              config={"student": "heads", "seeds": 2, "strategies": ["worst", "mean"],
                      "rounds": 2})
    (jobs.jobs_dir(db) / "20240102-000000-experiment_rq2-bbbbbb" / jobs.PROGRESS_FILE) \
        .write_text(json.dumps({"t": 1.0, "stage": "rq2 (arm x seed)", "done": 3,
                                "total": 12}) + "\n")
    write_job(db, "20240101-000000-experiment_rq1-aaaaaa", "experiment_rq1",
              config={"students": ["retrieval", "heads"]}, status="failed",
              finished_at=datetime.now(UTC).isoformat(), error="no test split")
    at = page("runs", db).run()
    assert not at.exception
    title = "RQ2 experiment (heads, 2 seeds, worst + mean, 2 rounds)"
    assert any(md.value.startswith(f"**{title}** `20240102-000000-experiment_rq2-bbbbbb` · "
                                   "running") for md in at.markdown)
    [bar] = at.get("progress")
    assert bar.value == 25 and bar.proto.text.endswith(": 3 / 12")
    assert any(f"A {title} job is running" in i.body for i in at.info)
    assert any(e.body.startswith("Latest finished job: RQ1 experiment (retrieval, heads) "
                                 "`20240101-000000-experiment_rq1-aaaaaa` failed")
               for e in at.error)
    table = next(f.value for f in at.dataframe if "status" in f.value.columns)
    assert set(table["kind"]) == {title, "RQ1 experiment (retrieval, heads)"}


# ------------------------------------------------------------------------------ the results

TOOL_NAMES = ("adjust", "selective_adjust", "filter")


def subset(name: str, n: int, triples: list[tuple[float, float, float]],
           overall: float) -> dict[str, Any]:
    """A stored subset (`subset_to_dict`): (selection, quality, final) per tool."""
    return {"name": name, "n_intents": n, "overall": overall,
            "tools": {tool: {"n": n, "tp": n, "fp": 0, "fn": 0, "tn": 0, "precision": 1.0,
                             "recall": 1.0, "selection": s, "quality": q, "final": f,
                             "intensity_error": None}
                      for tool, (s, q, f) in zip(TOOL_NAMES, triples, strict=True)}}


def rq1_row(label: str, subsets: list[dict[str, Any]], run: dict[str, Any] | None,
            directions: tuple[int, int] | None) -> dict[str, Any]:
    return {"label": label,
            "evaluation": {"evaluation_id": len(label), "version_id": 1, "split": "test",
                           "kind": "run", "source": label, "n_samples": 3,
                           "subsets": subsets},
            "run": run,
            "directions": None if directions is None else
            {"n": directions[1], "right": directions[0],
             "share": directions[0] / directions[1]}}


RQ1_RESULT = {"direction_set": "/data/directions.jsonl", "rows": [
    # Overall = the mean of the three finals: (.90 + .86 + .78) / 3 = .846667 -> .85.
    rq1_row("Teacher self-consistency (ceiling)",
            [subset("All", 4, [(1.0, .81, .90), (.88, .83, .86), (.90, .68, .78)], .846667)],
            None, None),
    rq1_row("Constant mean answer (floor)",
            [subset("All", 3, [(.95, .20, .33), (.50, .32, .39), (.81, .05, .10)], .273333)],
            None, (123, 278)),
    # (.85 + .79 + .75) / 3 = .796667 -> .80; r_3: (.91 + .89 + .87) / 3 = .89.
    rq1_row("heads student",
            [subset("All", 3, [(.96, .76, .85), (.73, .85, .79), (.83, .69, .75)], .796667),
             subset("r_3", 2, [(.97, .86, .91), (.84, .94, .89), (.81, .94, .87)], .89)],
            {"run_id": "20240101-heads-abc", "student": "heads", "version_id": 1,
             "n_train": 9, "duration_s": 452.4, "artifact_path": "/runs/x"}, (248, 278)),
]}


def rq2_stored() -> dict[str, Any]:
    """tests/test_rq2.py's hand-made result (two strategies over 3 seeds, Overall values chosen
    to work by hand), as job.json holds the pipeline's to_dict()."""
    return json.loads(json.dumps(hand_made_result().to_dict()))


def test_a_finished_rq1_shows_the_posters_table_and_the_direction_shares(page, db) -> None:
    succeeded(db, "20240103-000000-experiment_rq1-cccccc", "experiment_rq1",
              {"students": ["heads"]}, RQ1_RESULT)
    at = page("runs", db).run()
    assert not at.exception
    text = "\n".join(md.value for md in at.markdown)
    assert "RQ1 on dataset version **1**, test split (evaluations 34, 28, 13)." in text
    assert ("| Teacher self-consistency (ceiling) | All | 4 | (1.00, .81, .90) | "
            "(.88, .83, .86) | (.90, .68, .78) | .85 |") in text
    assert "| Constant mean answer (floor) | All | 3 | (.95, .20, .33) |" in text
    assert ("| heads student | All | 3 | (.96, .76, .85) | (.73, .85, .79) | (.83, .69, .75) "
            "| .80 |\n|  | r_3 | 2 | (.97, .86, .91) | (.84, .94, .89) | (.81, .94, .87) "
            "| .89 |") in text
    # 123 / 278 = 44.24%, 248 / 278 = 89.21%.
    assert "| Constant mean answer (floor) | 123/278 | 44.2% |" in text
    assert "| heads student | 248/278 | 89.2% |" in text
    assert any("heads student: run `20240101-heads-abc`, trained in 452 s" in c.value
               for c in at.caption)
    assert any("Latest finished job: RQ1 experiment (heads)" in s.body
               and "its result is under *Experiments*" in s.body for s in at.success)


def test_a_finished_rq2_shows_its_arms_verdicts_and_curve(page, db) -> None:
    stored = rq2_stored()
    succeeded(db, "20240104-000000-experiment_rq2-dddddd", "experiment_rq2",
              {"seeds": 3, "rounds": 2, "strategies": ["worst", "mean"]}, stored)
    at = page("runs", db).run()
    assert not at.exception
    text = "\n".join(md.value for md in at.markdown)
    assert ("RQ2 with the **heads** student over 3 seeds (0-2), test split of dataset version "
            "**1** (1,000 intents); 1.0 min.") in text
    # full: .80 .79 .81, mean .800, sd .01, half-width 4.302653 * .01 / sqrt(3) = .024841.
    assert "| 100% of the training split | 100% | 800 | 0 | .800 | [.775, .825] | " \
           ".800 .790 .810 |" in text
    # worst: .70 .70 .72, mean .706667, sd .011547, half-width .028685.
    assert "| 12.5% + mining (worst) | 12.5% | 120 | 20 (16.7%) | .707 | [.678, .735] | " \
           ".700 .700 .720 |" in text
    # worst - its control: .03 .04 .04, mean .036667, sd .005774, half-width .014343.
    verdicts = [i.body for i in at.info if i.body.startswith("Mining (")]
    assert verdicts == [
        ("Mining (worst) beats its random control of the same size by +.037 (95% CI "
         "[+.022, +.051], 3 seeds); the interval excludes 0."),
        # mean - its control: .01 -.02 0, mean -.003333, sd .015275, half-width .037946.
        ("Mining (mean) against its random control: -.003 (95% CI [-.041, +.035], 3 seeds); "
         "the interval includes 0, so mining is not shown to beat random augmentation of the "
         "same size.")]
    [chart] = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    traces = {trace["name"]: trace for trace in spec["data"]}
    curve = traces["iterative (worst): mean, 95% CI"]
    # Round 0 is the low-data arm (.66), round 1 the mined arm (.706667), round 2 .72.
    assert curve["x"] == [0, 1, 2]
    assert curve["y"] == pytest.approx([0.66, 0.706667, 0.72], abs=1e-6)
    # low: .66 .65 .67, sd .01, so the same half-width as full's: .024841.
    assert curve["error_y"]["array"][0] == pytest.approx(0.024841, abs=1e-6)
    assert sorted(traces["each seed"]["y"]) == pytest.approx(sorted(
        [0.66, 0.65, 0.67, 0.70, 0.70, 0.72, 0.72, 0.71, 0.73]))
    control = traces["random control, as many as round 1 (worst)"]
    assert control["y"] == pytest.approx([0.67])
    assert "| 2 | 140 | 40 | .720 | [.695, .745] | .720 .710 .730 |" in text
    assert "| mining (worst) - its random control | +.037 | [+.022, +.051] | yes |" in text


def test_a_result_this_version_cannot_read_is_said_not_raised(page, db) -> None:
    succeeded(db, "20240105-000000-experiment_rq2-eeeeee", "experiment_rq2", {},
              {"arms": []})
    at = page("runs", db).run()
    assert not at.exception
    assert any("cannot be read by this version" in w.body for w in at.warning)
