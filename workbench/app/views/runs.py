"""Runs: launch training and evaluation as background jobs, watch their progress and logs
(kept on disk, so a reload or a second browser sees the same), cancel them, and compare runs on
the paper's metrics."""

from __future__ import annotations

import json

import pandas as pd
import plotly.express as px
import streamlit as st

from workbench.app import job_panel, jobs, state
from workbench.app.state import RUNS_JOB_KEY
from workbench.errors import WorkbenchError
from workbench.report import TOOL_TITLES, evaluation_table
from workbench.store import Store
from workbench.store.evaluations import runs_with_latest_evaluation
from workbench.store.versions import current_version_id, list_versions
from workbench.students import DEFAULT_STUDENT, STUDENT_KINDS
from workbench.tools import TOOLS

_FLASH = "runs_flash"             # (kind, message) about the last start, for the next run


def render() -> None:
    st.title("Runs")
    current = state.require_database()
    with current.session() as session:
        versions = [row["version_id"] for row in list_versions(session)]
        current_id = current_version_id(session)
        runs = runs_with_latest_evaluation(session)
    launch, watch, compare = st.tabs(["Launch", "Jobs", "Compare runs"])
    with launch:
        _launch(current, versions, current_id, runs)
    with watch:
        job_panel.show(current, "runs", expanded=True)
    with compare:
        _compare(runs)


def _launch(current: Store, versions: list[int], current_id: int | None,
            runs: list[dict]) -> None:
    if not versions:
        st.info("No dataset version yet: run `workbench curate` (or `workbench demo`) first.")
        return
    flash = st.session_state.pop(_FLASH, None)
    if flash is not None:
        getattr(st, flash[0])(flash[1])
    running = job_panel.unfinished_job(current, RUNS_JOB_KEY)
    if running is not None:
        st.caption(f"Your {running.kind.value} job {running.id} is {running.status.value}: "
                   "*Start* is available again when it ends (follow or cancel it in the Jobs "
                   "tab).")
    kind = st.radio("Job", ["train", "evaluate"], horizontal=True, key="launch_kind")
    # Enter in a field does not submit: only the button starts a job.
    with st.form("launch_form", enter_to_submit=False):
        if kind == "train":
            student = st.selectbox("Student", STUDENT_KINDS, key="launch_student",
                                   index=STUDENT_KINDS.index(DEFAULT_STUDENT),
                                   help="heads: fast real-time student; retrieval: nearest "
                                        "training intent; seq2seq: the paper's generative kind "
                                        "(slow on a CPU)")
            version = st.selectbox("Dataset version", versions,
                                   index=versions.index(current_id) if current_id in versions
                                   else len(versions) - 1, key="launch_version")
            settings = st.text_area("Student settings (JSON)", "{}", key="launch_settings",
                                    help='e.g. {"epochs": 20} — unknown settings are refused')
            note = st.text_input("Note", "", key="launch_note")
        else:
            choices = [run["run_id"] for run in runs]
            run_id = st.selectbox("Run", choices, key="launch_run") if choices else None
            if not choices:
                st.info("No training runs yet.")
        submitted = st.form_submit_button("Start", type="primary", key="launch_start",
                                          disabled=running is not None)
    if not submitted or running is not None:
        return
    try:
        if kind == "train":
            try:
                student_config = json.loads(settings or "{}")
            except json.JSONDecodeError as error:
                raise WorkbenchError(f"the student settings are not JSON: {error}") from None
            job = jobs.submit(current.path, "train", {
                "student": student, "version": version, "student_config": student_config,
                "note": note})
        else:
            if run_id is None:
                return
            job = jobs.submit(current.path, "evaluate", {"run_id": run_id})
    except jobs.JobAlreadyRunningError as error:
        st.session_state[RUNS_JOB_KEY] = error.job.id   # follow the job that already runs
        st.session_state[_FLASH] = ("warning", str(error))
        st.rerun()
    except WorkbenchError as error:
        st.error(str(error))
        return
    st.session_state[RUNS_JOB_KEY] = job.id
    st.session_state[_FLASH] = ("success", f"Started job {job.id}; follow it in the Jobs tab.")
    st.rerun()      # draw the form again with Start disabled while the job runs


def _compare(runs: list[dict]) -> None:
    evaluated = [run for run in runs if run["summary"] is not None]
    if not evaluated:
        st.info("No evaluated runs yet: train a student, then evaluate it (Launch tab or "
                "`workbench evaluate --run`).")
        return
    labels = {run["run_id"]: f"{run['student']} · v{run['version_id']} · {run['run_id']}"
              for run in evaluated}
    chosen = st.multiselect("Runs", list(labels), default=list(labels)[:4],
                            format_func=lambda run_id: labels[run_id], key="compare_runs")
    rows = []
    for run in evaluated:
        if run["run_id"] not in chosen:
            continue
        for row in evaluation_table(run["summary"]):
            rows.append({"run": labels[run["run_id"]], "test": row["test"], "n": row["n"],
                         **{TOOL_TITLES[t]: row[t][2] for t in TOOLS},
                         "Overall": row["overall"]})
    if not rows:
        return
    frame = pd.DataFrame(rows)
    figure = px.bar(frame, x="test", y="Overall", color="run", barmode="group",
                    range_y=[0, 1], text_auto=".2f")
    figure.update_layout(height=380, legend={"orientation": "h", "y": -0.2})
    st.plotly_chart(figure, key="compare_overall")
    tools = frame[frame["test"] == "All"].melt(id_vars=["run"], value_vars=[
        TOOL_TITLES[t] for t in TOOLS], var_name="tool", value_name="final")
    figure = px.bar(tools, x="tool", y="final", color="run", barmode="group", range_y=[0, 1],
                    text_auto=".2f", title="Final score per tool (All)")
    figure.update_layout(height=380, legend={"orientation": "h", "y": -0.2})
    st.plotly_chart(figure, key="compare_tools")
    st.dataframe(frame, hide_index=True, key="compare_table")
