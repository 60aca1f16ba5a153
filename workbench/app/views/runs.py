"""Runs: launch training and evaluation as background jobs, watch their progress and logs
(kept on disk, so a reload or a second browser sees the same), cancel them, and compare runs on
the paper's metrics beside the ceiling and the floor, with the difference between two runs and
its noise (a paired bootstrap)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from pipelines.compare import run_difference
from workbench.app import experiment_panel, job_panel, jobs, state
from workbench.app.state import RUNS_JOB_KEY
from workbench.bootstrap import OVERALL
from workbench.errors import WorkbenchError
from workbench.report import TOOL_TITLES, evaluation_table
from workbench.store import Store
from workbench.store.evaluations import latest_baselines, runs_with_latest_evaluation
from workbench.store.versions import current_version_id, list_versions
from workbench.students import DEFAULT_STUDENT, STUDENT_KINDS
from workbench.tools import TOOLS

_FLASH = "runs_flash"             # (kind, message) about the last start, for the next run
_SEEN_VERSION = "launch_seen_version"   # the current version when the form was last drawn
_CLEAR_NOTE = "launch_clear_note"       # a job started: the next form starts with no note
_KNOWN_RUNS = "compare_known_runs"      # the evaluated runs the comparison last listed
SUBSETS = ("All", "r_3", "r_5")
CEILING, FLOOR = "self_consistency", "baseline"
# The jobs this page starts or that make runs and evaluations (the Jobs tab lists every kind).
RUNS_KINDS = (jobs.JobKind.TRAIN, jobs.JobKind.EVALUATE, jobs.JobKind.BASELINES,
              jobs.JobKind.EXPERIMENT_RQ1, jobs.JobKind.EXPERIMENT_RQ2)


def render() -> None:
    st.title("Runs")
    current = state.require_database()
    with current.session() as session:
        versions = [row["version_id"] for row in list_versions(session)]
        current_id = current_version_id(session)
        runs = runs_with_latest_evaluation(session)
        baselines = latest_baselines(session, current_id)
        if not baselines:                     # none on the current version: the newest ones
            baselines = latest_baselines(session)
    flash = st.session_state.pop(_FLASH, None)
    if flash is not None:                      # above the tabs: seen from whichever tab
        getattr(st, flash[0])(flash[1])
    _jobs_elsewhere(current)
    running = job_panel.unfinished_job(current, RUNS_JOB_KEY)   # this session's, if any
    # A key keeps the tab the curator is on when a notice above appears or goes.
    launch, watch, compare = st.tabs(["Launch", "Jobs", "Compare runs"], key="runs_tabs")
    with launch:
        _launch(current, versions, current_id, runs, running)
        if versions:
            experiment_panel.show(current.path, versions, running,
                                  lambda kind, config, started, where:
                                  _start(current, kind, config, started, where))
    with watch:
        job_panel.show(current, "runs", expanded=True)
    with compare:
        _baselines_button(current, current_id, baselines, running)
        _compare(current, runs, baselines)


# ---------------------------------------------------------------------------- jobs on disk

def _jobs_elsewhere(current: Store) -> None:
    """Say which runs jobs are unfinished that this browser session did not start (another
    tab, or this one before a reload: session state is gone, the job folders are not)."""
    own = st.session_state.get(RUNS_JOB_KEY)
    now = datetime.now(UTC)
    for job in jobs.list_jobs(current.path):
        if job.finished or job.kind not in RUNS_KINDS or job.id == own:
            continue
        age = (now - job.created_at).total_seconds()
        st.info(f"A {job_panel.job_title(job)} job is {job.status.value}: `{job.id}` (started "
                f"{_age(age)} ago, from another tab or before a reload). Watch it, or cancel "
                "it, in the **Jobs** tab below.", icon=":material/sync:")


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _start(current: Store, kind: str, config: dict[str, Any], started: str,
           where: Any = None) -> None:
    """Submit a job, remember it as this session's, and rerun with a flash saying so (or
    follow the identical job already running); a refused config is shown as an error, in
    `where` (a form's slot) when given, else where the page is."""
    try:
        job = jobs.submit(current.path, kind, config)
    except jobs.JobAlreadyRunningError as error:
        st.session_state[RUNS_JOB_KEY] = error.job.id   # follow the job that already runs
        st.session_state[_FLASH] = ("warning", str(error))
        st.rerun()
    except WorkbenchError as error:
        (where or st).error(str(error))
        return
    st.session_state[RUNS_JOB_KEY] = job.id
    st.session_state[_FLASH] = ("success", f"Started job {job.id}: {started}")
    st.session_state[_CLEAR_NOTE] = True
    st.rerun()      # draw the form again with Start disabled while the job runs


# ---------------------------------------------------------------------------- launch

def _follow_current_version(versions: list[int], current_id: int | None) -> None:
    """Default the form's dataset version to the current one, also in a session that drew the
    form before a newer version appeared; a version the curator picked stays picked until
    then."""
    chosen = st.session_state.get("launch_version")
    if st.session_state.get(_SEEN_VERSION) != current_id or chosen not in versions:
        st.session_state["launch_version"] = current_id if current_id in versions \
            else versions[-1]
        st.session_state[_SEEN_VERSION] = current_id


def _launch(current: Store, versions: list[int], current_id: int | None,
            runs: list[dict], running: jobs.Job | None) -> None:
    if not versions:
        st.info("No dataset version yet: run `workbench curate` (or `workbench demo`) first.")
        return
    if st.session_state.pop(_CLEAR_NOTE, False):     # the note belonged to the job started
        st.session_state["launch_note"] = ""
    if running is not None:
        st.caption(f"Your {job_panel.job_title(running)} job {running.id} is "
                   f"{running.status.value}: "
                   "*Start* is available again when it ends (follow or cancel it in the Jobs "
                   "tab).")
    kind = st.radio("Job", ["train", "evaluate"], horizontal=True, key="launch_kind")
    _follow_current_version(versions, current_id)
    # Enter in a field does not submit: only the button starts a job.
    with st.form("launch_form", enter_to_submit=False):
        if kind == "train":
            student = st.selectbox("Student", STUDENT_KINDS, key="launch_student",
                                   index=STUDENT_KINDS.index(DEFAULT_STUDENT),
                                   help="heads: fast real-time student; retrieval: nearest "
                                        "training intent; seq2seq: the paper's generative kind "
                                        "(slow on a CPU)")
            version = st.selectbox("Dataset version", versions, key="launch_version",
                                   help="defaults to the current version")
            settings = st.text_area("Student settings (JSON)", "{}", key="launch_settings",
                                    help='e.g. {"epochs": 20} — unknown settings are refused')
            note = st.text_input("Note", "", key="launch_note",
                                 help="stored with this run only: cleared once the job starts")
        else:
            choices = [run["run_id"] for run in runs]
            run_id = st.selectbox("Run", choices, key="launch_run") if choices else None
            if not choices:
                st.info("No training runs yet.")
        submitted = st.form_submit_button("Start", type="primary", key="launch_start",
                                          disabled=running is not None)
    if not submitted or running is not None:
        return
    if kind == "train":
        try:
            student_config = json.loads(settings or "{}")
        except json.JSONDecodeError as error:
            st.error(f"the student settings are not JSON: {error}")
            return
        _start(current, "train", {"student": student, "version": version,
                                  "student_config": student_config, "note": note},
               "follow it in the Jobs tab.")
    elif run_id is not None:
        _start(current, "evaluate", {"run_id": run_id}, "follow it in the Jobs tab.")


# ---------------------------------------------------------------------------- compare

def _baselines_button(current: Store, current_id: int | None,
                      baselines: dict[str, dict], running: jobs.Job | None) -> None:
    """The ceiling and the floor: which version's the chart draws, and a button that computes
    them on the current version as a background job (disabled while `running` runs)."""
    if current_id is None:
        return
    shown = {row["version_id"] for row in baselines.values()}
    if not baselines:
        st.info(f"No ceiling or floor yet: compute them on version {current_id}'s test split to "
                "draw them on the chart.")
    elif shown != {current_id}:
        st.info(f"The ceiling and the floor below are version {min(shown)}'s: compute them on "
                f"the current version {current_id}.")
    else:
        when = max(str(row["created_at"])[:16] for row in baselines.values())
        st.caption(f"Ceiling and floor of version {current_id}, computed {when} UTC.")
    if st.button(f"Compute the ceiling and the floor (version {current_id})",
                 key="compare_baselines", disabled=running is not None,
                 help="the teacher's self-consistency (ceiling) and a constant answer, the "
                      "training split's mean (floor), as `workbench baselines` does"):
        _start(current, "baselines", {"version": current_id},
               "computing the ceiling and the floor; the chart draws them when it ends.")


def _follow_new_runs(run_ids: list[str]) -> None:
    """Keep the comparison's run selection, adding every run that is new since the last draw
    (and dropping vanished ones), so a new run appears without a click."""
    known = st.session_state.get(_KNOWN_RUNS)
    chosen = st.session_state.get("compare_runs")
    if known is None or chosen is None:
        st.session_state["compare_runs"] = list(run_ids)
    else:
        st.session_state["compare_runs"] = [r for r in chosen if r in run_ids] + \
            [r for r in run_ids if r not in known and r not in chosen]
    st.session_state[_KNOWN_RUNS] = list(run_ids)


def _started(started_at: Any) -> str:
    """'11-29 16:53': enough to tell a day's runs apart under a bar."""
    return started_at.strftime("%m-%d %H:%M") if hasattr(started_at, "strftime") \
        else str(started_at)


def _subset(summary: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((row for row in evaluation_table(summary) if row["test"] == name), None)


def _compare(current: Store, runs: list[dict], baselines: dict[str, dict]) -> None:
    evaluated = [run for run in reversed(runs) if run["summary"] is not None]  # oldest first
    if not evaluated:
        st.info("No evaluated runs yet: train a student, then evaluate it (Launch tab or "
                "`workbench evaluate --run`).")
        return
    labels = {run["run_id"]: f"{run['student']} · v{run['version_id']} · {run['run_id']}"
              + (f" · {run['device']} x{run['processes']}" if run["processes"] > 1 else "")
              for run in evaluated}
    _follow_new_runs(list(labels))
    chosen = st.multiselect("Runs", list(labels), format_func=lambda run_id: labels[run_id],
                            key="compare_runs", help="every run is shown; new runs are added")
    subset = st.radio("Test intents", SUBSETS, horizontal=True, key="compare_subset",
                      help="All, or those with at least 3 (r_3) or 5 (r_5) requests")
    rows = []
    for run in evaluated:
        if run["run_id"] not in chosen:
            continue
        for row in evaluation_table(run["summary"]):
            rows.append({"run": labels[run["run_id"]], "run_id": run["run_id"],
                         "tick": f"{run['student']} · v{run['version_id']}<br>"
                                 f"{_started(run['started_at'])}",
                         "test": row["test"], "n": row["n"],
                         **{TOOL_TITLES[t]: row[t][2] for t in TOOLS},
                         "Overall": row["overall"]})
    if rows:
        frame = pd.DataFrame(rows)
        _overall_chart(frame[frame["test"] == subset], baselines, subset)
        _tools_chart(frame[frame["test"] == subset], subset)
        st.dataframe(frame.drop(columns=["run_id", "tick"]), hide_index=True,
                     key="compare_table")
    _difference(current, evaluated, labels)


def _reference_lines(figure: go.Figure, baselines: dict[str, dict], subset: str) -> list[str]:
    """Draw the ceiling and the floor of `subset` as horizontal lines; returns what could not be
    drawn, in words."""
    missing = []
    for kind, name, dash, colour in ((CEILING, "ceiling: teacher self-consistency", "dash",
                                      "#15803d"),
                                     (FLOOR, "floor: constant answer", "dot", "#6b7280")):
        row = baselines.get(kind)
        found = None if row is None else _subset(row["summary"], subset)
        if row is None or found is None or found["overall"] is None:
            missing.append(name.split(":")[0])
            continue
        figure.add_hline(y=found["overall"], line_dash=dash, line_color=colour,
                         annotation_text=f"{name} {state.score(found['overall'])} "
                                         f"(v{row['version_id']})",
                         annotation_position="top left",
                         annotation_bgcolor="rgba(255, 255, 255, 0.85)")
    return missing


def _overall_chart(frame: pd.DataFrame, baselines: dict[str, dict], subset: str) -> None:
    figure = px.bar(frame, x="run_id", y="Overall", hover_name="run", range_y=[0, 1.05],
                    text_auto=".2f", title=f"Overall ({subset})")
    figure.update_xaxes(title=None, tickvals=list(frame["run_id"]), ticktext=list(frame["tick"]))
    missing = _reference_lines(figure, baselines, subset)
    figure.update_layout(height=400, margin={"t": 60})
    st.plotly_chart(figure, key="compare_overall", config={"displayModeBar": False})
    undefined = list(frame.loc[frame["Overall"].isna(), "run"])
    if undefined:
        st.caption("Overall undefined (a tool's denominator is zero, see the table) for: "
                   + ", ".join(undefined))
    if missing:
        st.caption(f"Not drawn on {subset}: the {' and the '.join(missing)} (not computed, or "
                   "undefined there).")


def _tools_chart(frame: pd.DataFrame, subset: str) -> None:
    tools = frame.melt(id_vars=["run"], value_vars=[TOOL_TITLES[t] for t in TOOLS],
                       var_name="tool", value_name="final")
    figure = px.bar(tools, x="tool", y="final", color="run", barmode="group", range_y=[0, 1],
                    text_auto=".2f", title=f"Final score per tool ({subset})")
    figure.update_layout(height=380, legend={"orientation": "h", "y": -0.2}, margin={"t": 60})
    st.plotly_chart(figure, key="compare_tools", config={"displayModeBar": False})


def _difference(current: Store, evaluated: list[dict], labels: dict[str, str]) -> None:
    """Two runs' difference on the score of the curator's choice, with its 95% interval from a
    paired bootstrap over the test intents both evaluations scored."""
    st.subheader("Difference between two runs")
    if len(evaluated) < 2:
        st.caption("Evaluate a second run to see the difference between two runs with its "
                   "noise.")
        return
    newest = [run["run_id"] for run in reversed(evaluated)]
    left, middle, right = st.columns(3)
    first = left.selectbox("Run A", newest, index=0, format_func=lambda r: labels[r],
                           key="compare_a")
    second = middle.selectbox("Run B", newest, index=1, format_func=lambda r: labels[r],
                              key="compare_b")
    metric = right.selectbox("Score", [OVERALL, *TOOLS], key="compare_metric",
                             format_func=lambda m: "Overall" if m == OVERALL else
                             f"{TOOL_TITLES[m]} (final)")
    if first == second:
        st.info("Choose two different runs.")
        return
    by_id = {run["run_id"]: run for run in evaluated}
    a, b = by_id[first], by_id[second]
    try:
        found = run_difference(current, a["evaluation_id"], b["evaluation_id"], metric)
    except WorkbenchError as error:
        st.error(state.escape_markdown(str(error)))
        return
    result = found.bootstrap
    name = "Overall" if metric == OVERALL else f"{TOOL_TITLES[metric]} final"
    if result.observed is None or result.low is None or result.high is None:
        st.warning(f"{name} is undefined for one of the runs on these intents (a zero "
                   "denominator: see the table), so there is no difference to measure; choose "
                   "a tool's final score instead.")
        return
    st.metric(f"{name}: A − B", f"{result.observed:+.3f}")
    verdict = ((f"A is {'better' if result.low > 0 else 'worse'} beyond the noise")
               if result.excludes_zero else "the interval holds 0: no clear difference")
    st.markdown(
        f"Bootstrap mean **{result.mean:+.3f}**, {result.level:.0%} interval "
        f"**[{result.low:+.3f}, {result.high:+.3f}]**: {verdict}.")
    versions = {a["evaluated_version"], b["evaluated_version"]}
    st.caption(
        f"{result.resamples:,} paired resamples (seed {result.seed}) of the {result.n_intents:,} test intents "
        "both evaluations scored; each resample recomputes the paper's score for both runs. "
        + (f"{result.n_undefined:,} resamples left out where a score was undefined. "
           if result.n_undefined else "")
        + (f"Left out: {found.n_only_a:,} intents only A's evaluation scored, {found.n_only_b:,}"
           " only B's. " if found.n_only_a or found.n_only_b else "")
        + (f"The evaluations are on different dataset versions "
           f"({', '.join(str(v) for v in sorted(versions))}): each intent's ground truth is its "
           "own version's." if len(versions) > 1 else ""))
