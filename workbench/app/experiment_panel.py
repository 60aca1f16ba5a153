"""The Runs page's *Experiments*: forms that start the paper's experiments (RQ1, RQ2) as
background jobs with the settings `workbench experiment rq1` / `rq2` offer, and the results of
the finished ones. A result is read from its job's stored result (the pipeline's `to_dict()`)
and drawn with the CLI's own report functions: nothing is recomputed here."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from pipelines import augment, experiments
from workbench.app import jobs
from workbench.app.job_panel import job_title
from workbench.app.state import escape_markdown
from workbench.errors import WorkbenchError
from workbench.metrics import SubsetScore, ToolScore
from workbench.report import (
    markdown_table,
    rq1_comparison,
    rq2_arms_table,
    rq2_curve_table,
    rq2_differences_table,
    rq2_verdict,
)
from workbench.stats import Interval
from workbench.students import STUDENT_KINDS
from workbench.tools import TOOLS

# start(kind, config, what it started, where a refusal is shown): the Runs page's job starter.
Start = Callable[[str, dict[str, Any], str, Any], None]

RQ1_ABOUT = (
    "Computes the ceiling (the teacher's self-consistency) and the floor (a constant answer) on "
    "the test split, trains and evaluates every student chosen, and checks each on the "
    "direction set. How long: on the paper-scale demo (8,252 training intents) the README "
    "measured training at about 1.5 min for retrieval, 7.5 min for heads and 14 min for "
    "seq2seq, on **2 CPU cores** shared with another experiment.")
RQ2_ABOUT = (
    "Trains on 100% and on a low-data share of the training split, then adds one round mined "
    "with each strategy, a random control of the same size per strategy, and an iterative arm "
    "(mine, augment, retrain), once per seed; each arm's mean and 95% interval over the seeds. "
    "How long: the README's run with the defaults (heads, 5 seeds, mean and worst, 3 rounds) "
    "took 79.5 min on **2 CPU cores** shared with other jobs (quiet cores are faster; not "
    "re-timed yet); each further strategy adds two arms per seed. *Quick* (2 seeds, 2 rounds, "
    "few epochs) is a first look.")
PARAPHRASERS = [choice.value for choice in augment.ParaphraserChoice]
STRATEGIES = [strategy.value for strategy in augment.MiningStrategy]
EXPERIMENT_KINDS = (jobs.JobKind.EXPERIMENT_RQ1, jobs.JobKind.EXPERIMENT_RQ2)


def show(db: Path, versions: list[int], running: jobs.Job | None, start: Start) -> None:
    """The two forms side by side (Start disabled while this session's job `running` runs),
    then the results of the finished experiments."""
    st.divider()
    st.subheader("Experiments")
    st.caption("The paper's experiments end to end, each a background job like training: "
               "follow or cancel it in the **Jobs** tab. Every run, evaluation and dataset "
               "version they make is stored; the dataset version everyone trains on stays "
               "the current one.")
    left, right = st.columns(2, gap="large")
    with left:
        _rq1_form(versions, running, start)
    with right:
        _rq2_form(versions, running, start)
    _results(db)


def _version_choice(versions: list[int], key: str) -> int | None:
    return st.selectbox("Dataset version", [None, *versions], key=key,
                        format_func=lambda v: "the current one" if v is None else f"version {v}",
                        help="the current version when the job starts, or a given one")


def _json_object(text: str) -> dict[str, Any]:
    """The student settings typed as JSON; WorkbenchError in one line when they are not an
    object."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise WorkbenchError(f"the student settings are not JSON: {error}") from None
    if not isinstance(value, dict):
        raise WorkbenchError(f'the student settings must be a JSON object such as '
                             f'{{"epochs": 20}}, got {text.strip()}')
    return value


# ---------------------------------------------------------------------------- RQ1

def rq1_settings(students: Sequence[str], version: int | None, directions: str) -> dict[str, Any]:
    """The experiment_rq1 job's config from the form, as `workbench experiment rq1` builds it
    from --students, --version and --directions."""
    if not students:
        raise WorkbenchError("choose at least one student")
    config: dict[str, Any] = {"version": version, "students": list(students)}
    if directions.strip():
        path = Path(directions.strip()).expanduser().resolve()
        if not path.is_file():
            raise WorkbenchError(f"no direction set at {path}: give a JSONL file of "
                                 "instructions, or leave it blank for the default")
        config["directions"] = str(path)
    return config


def _rq1_form(versions: list[int], running: jobs.Job | None, start: Start) -> None:
    with st.form("rq1_form", enter_to_submit=False):
        st.markdown("**RQ1: every student against the teacher**")
        st.caption(RQ1_ABOUT)
        students = st.multiselect("Students", STUDENT_KINDS,
                                  default=list(experiments.DEFAULT_STUDENTS), key="rq1_students",
                                  help="each is trained on the training split and evaluated on "
                                       "the test split (seq2seq is slow on a CPU)")
        version = _version_choice(versions, "rq1_version")
        directions = st.text_input("Direction set (JSONL)", "", key="rq1_directions",
                                   help="instructions with the way each must move the picture; "
                                        "blank: tests/directions.jsonl of the source checkout")
        slot = st.empty()          # a refused setting is said here, in the form
        submitted = st.form_submit_button("Start RQ1", type="primary", key="rq1_start",
                                          disabled=running is not None)
    if submitted and running is None:
        _submit(jobs.JobKind.EXPERIMENT_RQ1, lambda: rq1_settings(students, version, directions),
                "RQ1; follow it in the Jobs tab, its table appears below when it ends.",
                slot, start)


def _submit(kind: jobs.JobKind, settings: Callable[[], dict[str, Any]], started: str,
            slot: Any, start: Start) -> None:
    """Start the job of a submitted form: its settings checked first, a refusal said in the
    form's `slot` in one line (what was typed stays in the form)."""
    try:
        config = settings()
    except WorkbenchError as error:
        slot.error(str(error))
        return
    start(kind.value, config, started, slot)


# ---------------------------------------------------------------------------- RQ2

def rq2_settings(*, student: str, settings: str, version: int | None, fraction: float,
                 seeds: int | None, first_seed: int, strategies: Sequence[str],
                 rounds: int | None, quick: bool, margin: float, worst_percent: float,
                 clusters: int | None, slice_gap: float, n: int, threshold: float,
                 paraphraser: str) -> dict[str, Any]:
    """The experiment_rq2 job's config from the form, as `workbench experiment rq2` builds it
    from its flags: *quick* first makes it small (`experiments.quick`), then seeds and rounds
    typed win; empty seeds and rounds take the defaults."""
    student_config = _json_object(settings)
    defaults = experiments.RQ2Config(student=student, student_config=student_config)
    if quick:
        defaults = experiments.quick(defaults)
    return {"version": version, "student": student, "student_config": defaults.student_config,
            "fraction": fraction, "seeds": defaults.seeds if seeds is None else seeds,
            "first_seed": first_seed, "strategies": list(strategies),
            "mining": {"margin": margin, "worst_percent": worst_percent, "clusters": clusters,
                       "slice_gap": slice_gap},
            "rounds": defaults.rounds if rounds is None else rounds, "n": n,
            "threshold": threshold, "paraphraser": paraphraser}


def _rq2_form(versions: list[int], running: jobs.Job | None, start: Start) -> None:
    defaults = experiments.RQ2Config()
    mining = defaults.mining
    with st.form("rq2_form", enter_to_submit=False):
        st.markdown("**RQ2: is augmentation effective in low data?**")
        st.caption(RQ2_ABOUT)
        first, second = st.columns(2)
        student = first.selectbox("Student", STUDENT_KINDS, key="rq2_student",
                                  index=STUDENT_KINDS.index(defaults.student))
        with second:
            version = _version_choice(versions, "rq2_version")
        settings = st.text_input("RQ2 student settings (JSON)", "{}", key="rq2_settings",
                                 help='e.g. {"epochs": 20}; the experiment sets the seed')
        strategies = st.multiselect(
            "Mining strategies", STRATEGIES, default=[s.value for s in defaults.strategies],
            key="rq2_strategies", help="one mined arm and one random control each; the first "
                                       "chosen also drives the iterative arm")
        first, second, third = st.columns(3)
        fraction = first.number_input("Low-data share", 0.0, 1.0, defaults.fraction,
                                      step=0.025, format="%.3f", key="rq2_fraction",
                                      help="of the training split (the paper: 1/8)")
        seeds = second.number_input("Seeds", min_value=1, value=None, step=1, key="rq2_seeds",
                                    placeholder=str(defaults.seeds),
                                    help="each draws the sample, the paraphrases and the "
                                         f"student's initialisation; empty: {defaults.seeds}, "
                                         f"or {experiments.QUICK_SEEDS} with Quick")
        rounds = third.number_input("Rounds", min_value=1, value=None, step=1,
                                    key="rq2_rounds", placeholder=str(defaults.rounds),
                                    help=f"of the iterative arm; empty: {defaults.rounds}, or "
                                         f"{experiments.QUICK_ROUNDS} with Quick")
        first, second = st.columns(2)
        first_seed = first.number_input("First seed", value=defaults.first_seed, step=1,
                                        key="rq2_first_seed")
        with second:
            st.write("")            # lines the checkbox up with the field beside it
            quick = st.checkbox("Quick", key="rq2_quick",
                                help=f"{experiments.QUICK_SEEDS} seeds, "
                                     f"{experiments.QUICK_ROUNDS} rounds, few epochs, unless "
                                     "seeds or rounds are typed")
        with st.expander("Mining and augmentation settings"):
            first, second = st.columns(2)
            margin = first.number_input("margin: below the mean by", 0.0, 2.0, mining.margin,
                                        step=0.05, key="rq2_margin")
            worst_percent = second.number_input("worst: share of intents (%)", 0.0, 100.0,
                                                mining.worst_percent, step=5.0,
                                                key="rq2_worst_percent")
            clusters = first.number_input("slices: clusters", min_value=1, value=mining.clusters,
                                          step=1, key="rq2_clusters",
                                          placeholder="from the training size")
            slice_gap = second.number_input("slices: gap below the student", 0.0, 1.0,
                                            mining.slice_gap, step=0.01, key="rq2_slice_gap")
            n = first.number_input("Candidates per flagged intent", min_value=1,
                                   value=defaults.n, step=1, key="rq2_n")
            threshold = second.number_input("Dedup cosine threshold", 0.0, 1.0,
                                            defaults.threshold, step=0.01, key="rq2_threshold")
            paraphraser = st.selectbox("Paraphraser", PARAPHRASERS, key="rq2_paraphraser",
                                       index=PARAPHRASERS.index(defaults.paraphraser.value),
                                       help="auto: the LLM when one is configured, else "
                                            "offline")
        slot = st.empty()          # a refused setting is said here, in the form
        submitted = st.form_submit_button("Start RQ2", type="primary", key="rq2_start",
                                          disabled=running is not None)
    if submitted and running is None:
        _submit(jobs.JobKind.EXPERIMENT_RQ2, lambda: rq2_settings(
            student=student, settings=settings, version=version, fraction=fraction,
            seeds=None if seeds is None else int(seeds), first_seed=int(first_seed),
            strategies=strategies, rounds=None if rounds is None else int(rounds), quick=quick,
            margin=margin, worst_percent=worst_percent,
            clusters=None if clusters is None else int(clusters), slice_gap=slice_gap,
            n=int(n), threshold=threshold, paraphraser=paraphraser),
            "RQ2; follow it in the Jobs tab, its arms appear below when it ends.", slot, start)


# ---------------------------------------------------------------------------- results

def _results(db: Path) -> None:
    """The result of a succeeded experiment job of each kind (the newest, or one chosen)."""
    done = [job for job in jobs.list_jobs(db) if job.kind in EXPERIMENT_KINDS
            and job.status is jobs.JobStatus.SUCCEEDED and job.result]
    if not done:
        st.caption("No experiment has finished yet: its result appears here when its job "
                   "succeeds.")
        return
    for kind, draw in ((jobs.JobKind.EXPERIMENT_RQ1, rq1_result),
                       (jobs.JobKind.EXPERIMENT_RQ2, rq2_result)):
        found = {job.id: job for job in done if job.kind is kind}   # newest first
        if not found:
            continue
        st.subheader("RQ1 result" if kind is jobs.JobKind.EXPERIMENT_RQ1 else "RQ2 result")
        labels = {job_id: _job_label(job) for job_id, job in found.items()}
        chosen = next(iter(found))
        if len(found) > 1:
            chosen = st.selectbox("Experiment", list(found), key=f"{kind.value}_result_job",
                                  format_func=labels.__getitem__)
        job = found[chosen]
        st.caption(f"Job `{job.id}`: {escape_markdown(job_title(job))}, finished "
                   f"{_when(job)} UTC.")
        try:
            draw(job.result or {})
        except (KeyError, TypeError, ValueError, IndexError) as error:
            # job.json is a file: one written by another version may lack what is read here.
            st.warning(f"This job's stored result cannot be read by this version of the "
                       f"workbench ({type(error).__name__}: {escape_markdown(str(error))}); "
                       "`workbench jobs show` prints it whole.")


def _when(job: jobs.Job) -> str:
    finished = job.finished_at or job.created_at
    return finished.strftime("%Y-%m-%d %H:%M")


def _job_label(job: jobs.Job) -> str:
    return f"{_when(job)} · {job_title(job)} · {job.id}"


def _subsets(evaluation: dict[str, Any]) -> list[SubsetScore]:
    """An evaluation's stored subsets (`subset_to_dict`) as the scores the report renders."""
    return [SubsetScore(subset["name"], subset["n_intents"],
                        {tool: ToolScore(tool=tool, **subset["tools"][tool]) for tool in TOOLS})
            for subset in evaluation["subsets"]]


def _interval(stored: dict[str, Any]) -> Interval:
    """An interval from its `to_dict()` (low, high and excludes_zero follow from these)."""
    return Interval(stored["n"], stored["mean"], stored["sd"], stored["half_width"])


def rq1_result(result: dict[str, Any]) -> None:
    """RQ1's table in the poster's layout (the CLI's), with the direction shares beside it."""
    rows = result["rows"]
    version = rows[0]["evaluation"]["version_id"]
    ids = ", ".join(str(row["evaluation"]["evaluation_id"]) for row in rows)
    st.markdown(f"RQ1 on dataset version **{version}**, test split (evaluations {ids}).")
    trained = [f"{escape_markdown(row['label'])}: run `{row['run']['run_id']}`, trained in "
               f"{row['run']['duration_s']:.0f} s" for row in rows if row["run"] is not None]
    if trained:
        st.caption(" · ".join(trained))
    st.markdown(rq1_comparison([(row["label"], _subsets(row["evaluation"])) for row in rows],
                               "markdown"))
    # Right under the table, as the CLI prints them (beside it, the triples would wrap).
    with st.columns(2)[0]:
        checked = [row for row in rows if row["directions"] is not None]
        if result.get("direction_set") is None or not checked:
            st.caption("Directions: no direction set was checked (tests/directions.jsonl is in "
                       "a source checkout; give one in the form).")
            return
        st.markdown(markdown_table(
            [["Model", "Moves as asked", "Share"]]
            + [[row["label"], f"{row['directions']['right']}/{row['directions']['n']}",
                f"{row['directions']['share']:.1%}"] for row in checked]))
        st.caption(f"Directions: the share of the instructions in "
                   f"`{result['direction_set']}` that each answers so that the picture moves "
                   "the way asked (`workbench directions --run RUN` lists the failures).")


def rq2_result(result: dict[str, Any]) -> None:
    """RQ2's arms (mean and 95% interval over the seeds), the verdict per mined arm against
    its random control, the iterative curve as a chart, and the paired differences: the CLI's
    tables and sentences from the stored result."""
    config, seeds, arms = result["config"], result["seeds"], result["arms"]
    st.markdown(f"RQ2 with the **{config['student']}** student over {len(seeds)} seeds "
                f"({seeds[0]}-{seeds[-1]}), test split of dataset version "
                f"**{result['base_version_id']}** ({result['test_intents']:,} intents); "
                f"{result['seconds'] / 60:.1f} min.")
    st.markdown(rq2_arms_table([(arm["label"], arm["train_percent"], arm["train_size"],
                                 arm["augmentations"], _interval(arm["overall"]),
                                 [trial["overall"] for trial in arm["trials"]])
                                for arm in arms], "markdown"))
    for comparison in result["comparisons"]:
        if comparison["arm"].startswith("mined:") and \
                comparison["against"].startswith("control:"):
            # The CLI's sentence as written: numbers, brackets and a strategy name.
            st.info(rq2_verdict(comparison["arm"].split(":", 1)[1], _interval(comparison)))
    _curve_chart(result)
    curve = result["curve"]
    low = next(arm for arm in arms if arm["key"] == "low")
    with st.expander("The iterative arm round by round, and the paired differences"):
        st.markdown(rq2_curve_table(
            [(0, low["train_size"], 0.0, _interval(curve["start"]),
              [trial["overall"] for trial in low["trials"]])]
            + [(point["round"], point["train_size"], point["augmentations"],
                _interval(point["overall"]), [trial["overall"] for trial in point["trials"]])
               for point in curve["points"]], "markdown"))
        st.markdown("Paired differences (arm minus arm, seed by seed; mean and 95% t "
                    "interval):")
        st.markdown(rq2_differences_table(
            [(c["label"], _interval(c), c["differences"]) for c in result["comparisons"]],
            "markdown"))
    notes = [f"{arm['label']}, seed {trial['seed']}: {trial['note']}" for arm in arms
             for trial in arm["trials"] if trial.get("note")]
    if notes:
        st.caption("Notes: " + escape_markdown("; ".join(notes)))


def _error_bars(intervals: Sequence[Interval]) -> dict[str, Any]:
    """Plotly's asymmetric error bars from 95% intervals (none where one is undefined)."""
    return {"type": "data", "symmetric": False,
            "array": [0 if ci.high is None or ci.mean is None else ci.high - ci.mean
                      for ci in intervals],
            "arrayminus": [0 if ci.low is None or ci.mean is None else ci.mean - ci.low
                           for ci in intervals]}


def _curve_chart(result: dict[str, Any]) -> None:
    """The iterative arm's Overall by round (round 0 is the low-data arm), each with its 95%
    interval and every seed's value, beside the one-round random control and the 100% arm."""
    curve, arms = result["curve"], {arm["key"]: arm for arm in result["arms"]}
    strategy = curve["strategy"]
    rounds = [0, *(point["round"] for point in curve["points"])]
    intervals = [_interval(curve["start"]),
                 *(_interval(point["overall"]) for point in curve["points"])]
    seeds = [[trial["overall"] for trial in arms["low"]["trials"]],
             *([trial["overall"] for trial in point["trials"]] for point in curve["points"])]
    figure = go.Figure()
    figure.add_trace(go.Scatter(
        x=[r for r, values in zip(rounds, seeds, strict=True) for _ in values],
        y=[v for values in seeds for v in values], mode="markers", name="each seed",
        marker={"color": "#93c5fd", "size": 7}, hovertemplate="round %{x}: %{y:.3f}"))
    figure.add_trace(go.Scatter(
        x=rounds, y=[ci.mean for ci in intervals], mode="lines+markers",
        name=f"iterative ({strategy}): mean, 95% CI", error_y=_error_bars(intervals),
        line={"color": "#1d4ed8", "width": 3}, marker={"size": 10},
        hovertemplate="round %{x}: %{y:.3f}"))
    control = arms.get(f"control:{strategy}")
    if control is not None:
        ci = _interval(control["overall"])
        figure.add_trace(go.Scatter(
            x=[1.1], y=[ci.mean], mode="markers", error_y=_error_bars([ci]),
            name=f"random control, as many as round 1 ({strategy})",
            marker={"color": "#d97706", "size": 10, "symbol": "diamond"},
            hovertemplate="random control: %{y:.3f}"))
    full = _interval(arms["full"]["overall"])
    if full.mean is not None:
        figure.add_hline(y=full.mean, line_dash="dash", line_color="#15803d",
                         annotation_text=f"100% of the training split {full.mean:.3f}",
                         annotation_position="bottom right")
    figure.update_layout(
        title=f"Iterative arm: Overall (All test intents) by round, over "
              f"{len(result['seeds'])} seeds", height=420, margin={"t": 60},
        xaxis={"title": "round (0: the low-data arm; 1: one mined round)",
               "tickmode": "array", "tickvals": rounds},
        yaxis={"title": "Overall"}, legend={"orientation": "h", "y": -0.25})
    st.plotly_chart(figure, key="rq2_curve_chart", config={"displayModeBar": False})
