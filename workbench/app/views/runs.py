"""Runs: launch training and evaluation as background jobs, watch their progress and logs
(kept on disk, so a reload or a second browser sees the same), cancel them, and compare runs on
the paper's metrics."""

from __future__ import annotations

import json

import pandas as pd
import plotly.express as px
import streamlit as st

from workbench.app import jobs, state
from workbench.app.state import escape_markdown
from workbench.errors import WorkbenchError
from workbench.report import TOOL_TITLES, evaluation_table
from workbench.store import Store
from workbench.store.evaluations import runs_with_latest_evaluation
from workbench.store.versions import current_version_id, list_versions
from workbench.tools import TOOLS

STUDENTS = ("heads", "retrieval", "seq2seq")
JOB_KEY = "runs_job"              # the id of the last job started from this session's form
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
        _jobs(current.path)
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
    running = state.unfinished_job(current, JOB_KEY)
    if running is not None:
        st.caption(f"Your {running.kind.value} job {running.id} is {running.status.value}: "
                   "*Start* is available again when it ends (follow or cancel it in the Jobs "
                   "tab).")
    kind = st.radio("Job", ["train", "evaluate"], horizontal=True, key="launch_kind")
    # Enter in a field does not submit: only the button starts a job.
    with st.form("launch_form", enter_to_submit=False):
        if kind == "train":
            student = st.selectbox("Student", STUDENTS, key="launch_student",
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
        st.session_state[JOB_KEY] = error.job.id        # follow the job that already runs
        st.session_state[_FLASH] = ("warning", str(error))
        st.rerun()
    except WorkbenchError as error:
        st.error(str(error))
        return
    st.session_state[JOB_KEY] = job.id
    st.session_state[_FLASH] = ("success", f"Started job {job.id}; follow it in the Jobs tab.")
    st.rerun()      # draw the form again with Start disabled while the job runs


def _jobs(db) -> None:
    listed = jobs.list_jobs(db)
    if not listed:
        st.info("No jobs yet: start one in the Launch tab.")
        return
    running = [job for job in listed if not job.finished]
    if running:
        _live(db, [job.id for job in running])
    _latest_outcome(jobs.latest_outcome(listed))
    st.dataframe(pd.DataFrame([{
        "job": job.id, "kind": job.kind.value, "status": job.status.value,
        "created": job.created_at, "seconds": None if job.duration_s is None
        else round(job.duration_s, 1),
        "outcome": job.error or (json.dumps(job.result)[:120] if job.result else "")}
        for job in listed]), hide_index=True, key="jobs_table")
    finished = [job.id for job in listed if job.finished]
    if finished:
        chosen = st.selectbox("Show the log of", finished, key="job_log_choice")
        st.code(jobs.load_job(db, chosen).log_tail(6000) or "(empty log)", language=None)


def _latest_outcome(job: jobs.Job | None) -> None:
    """The job that finished last, so a later success is never hidden behind an earlier
    failure (the table below lists every job)."""
    if job is None:
        return
    took = "" if job.duration_s is None else f" after {job.duration_s:.0f} s"
    what = f"Latest finished job: {job.kind.value} `{job.id}` {job.status.value}{took}"
    if job.status is jobs.JobStatus.SUCCEEDED:
        result = job.result or {}
        made = (f": evaluation {result['evaluation_id']}" if "evaluation_id" in result else
                f": run `{result['run_id']}`" if "run_id" in result else "")
        st.success(what + made + ".")
    elif job.status is jobs.JobStatus.CANCELLED:
        st.info(what + ".")
    else:
        st.error(what + f": {escape_markdown(job.error or 'no reason recorded')}")


@st.fragment(run_every=2)
def _live(db, job_ids: list[str]) -> None:
    """Progress bars and log tails of unfinished jobs, refreshed every 2 s."""
    for job_id in job_ids:
        job = jobs.load_job(db, job_id)
        with st.container(border=True):
            st.markdown(f"**{job.kind.value}** `{job.id}` · {job.status.value}")
            for stage, event in job.progress().items():
                total = "?" if event.total is None else f"{event.total:,}"
                st.progress(event.fraction or 0.0, text=f"{stage}: {event.done:,} / {total}")
            st.code(job.log_tail(1500) or "(no output yet)", language=None)
            if not job.finished and st.button("Cancel", key=f"cancel_{job.id}"):
                jobs.cancel(job)
                st.rerun()
    if all(jobs.load_job(db, job_id).finished for job_id in job_ids):
        st.rerun()  # the whole page: move the finished jobs into the table


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
