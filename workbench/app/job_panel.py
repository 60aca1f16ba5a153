"""The background-job panel of the Runs and Augmentation pages: the jobs still running, with
their progress, the end of their log and a Cancel button (refreshed every `POLL_S` seconds, and
the whole page once they have all finished); the outcome of the job that finished last, so a
later success is never hidden behind an earlier failure; and a table of recent jobs with the
log of any finished one."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from workbench.app import jobs
from workbench.app.state import escape_markdown
from workbench.errors import WorkbenchError
from workbench.store import Store

POLL_S = 2.0                     # how often the running jobs are redrawn
RUNNING_LOG_CHARS = 1500
FINISHED_LOG_CHARS = 6000


def unfinished_job(current: Store, key: str) -> jobs.Job | None:
    """The job this browser session started (its id under `key` in session state) while it is
    still queued or running; a page disables its Start button meanwhile."""
    job_id = st.session_state.get(key)
    if not job_id:
        return None
    try:
        job = jobs.load_job(current.path, str(job_id))
    except WorkbenchError:              # a job of another database, or its folder is gone
        return None
    return None if job.finished else job


def job_title(job: jobs.Job) -> str:
    """A job in a few readable words: the paper's experiments with their main settings ("RQ2
    experiment (heads, 5 seeds, mean + worst, 3 rounds)"), any other job by its kind."""
    config: dict[str, Any] = job.config or {}
    if job.kind is jobs.JobKind.EXPERIMENT_RQ1:
        from pipelines.experiments import DEFAULT_STUDENTS

        students = ", ".join(map(str, config.get("students") or DEFAULT_STUDENTS))
        return f"RQ1 experiment ({students})"
    if job.kind is jobs.JobKind.EXPERIMENT_RQ2:
        from pipelines.experiments import RQ2Config

        defaults = RQ2Config()
        strategies = config.get("strategies") or [s.value for s in defaults.strategies]
        return (f"RQ2 experiment ({config.get('student', defaults.student)}, "
                f"{config.get('seeds', defaults.seeds)} seeds, "
                f"{' + '.join(map(str, strategies))}, "
                f"{config.get('rounds', defaults.rounds)} rounds)")
    return job.kind.value


def result_text(job: jobs.Job) -> str:
    """What a succeeded job made, in words (Markdown): the run, the evaluation, or the round
    with its counts."""
    result: dict[str, Any] = job.result or {}
    if "augmentation_id" in result:
        dropped = ", ".join(f"{n} {reason.replace('_', ' ')}"
                            for reason, n in sorted(result.get("dropped", {}).items()))
        return (f"Round {result['augmentation_id']}: {result.get('n_sources', 0):,} source "
                f"intent(s), {result.get('n_generated', 0):,} candidate(s) generated, "
                f"{result.get('n_kept', 0):,} kept for review"
                + (f", dropped: {escape_markdown(dropped)}" if dropped else "")
                + (f", the paraphraser failed on {result['n_failed']:,}"
                   if result.get("n_failed") else ""))
    if "evaluation_id" in result:
        return f"evaluation {result['evaluation_id']}"
    if "run_id" in result:
        return f"run `{result['run_id']}`"
    if job.kind in (jobs.JobKind.EXPERIMENT_RQ1, jobs.JobKind.EXPERIMENT_RQ2):
        return "its result is under *Experiments* in the Launch tab"
    return ""


def show(current: Store, key: str, kinds: Collection[jobs.JobKind] | None = None,
         recent: int | None = None, expanded: bool = False) -> None:
    """The panel for the jobs of `kinds` (every kind when None); `key` prefixes its widget keys,
    `recent` limits the table to the newest jobs."""
    found = [job for job in jobs.list_jobs(current.path) if kinds is None or job.kind in kinds]
    if not found:
        st.caption("No job yet.")
        return
    running = [job.id for job in found if not job.finished]
    if running:   # the fragment reruns alone while they run, the whole page once they end
        st.fragment(run_every=POLL_S)(_running)(current.path, running, key)
    _latest_outcome(jobs.latest_outcome(found))
    listed = found[:recent] if recent else found
    with st.expander(f"Recent jobs ({len(listed)})", expanded=expanded):
        st.dataframe(pd.DataFrame([_row(job) for job in listed]), hide_index=True,
                     key=f"{key}_jobs_table")
        finished = [job.id for job in listed if job.finished]
        if finished:
            chosen = st.selectbox("Show the log of", finished, key=f"{key}_log_choice")
            st.code(jobs.load_job(current.path, chosen).log_tail(FINISHED_LOG_CHARS)
                    or "(empty log)", language=None)


def _running(db: Path, job_ids: list[str], key: str) -> None:
    """Progress bars, log tails and Cancel buttons of the jobs that were unfinished."""
    loaded = [jobs.load_job(db, job_id) for job_id in job_ids]
    if all(job.finished for job in loaded):
        st.rerun()               # the whole page: the outcome, and what the jobs made
    for job in loaded:
        with st.container(border=True):
            took = "" if job.duration_s is None else f" ({job.duration_s:.0f} s)"
            st.markdown(f"**{job_title(job)}** `{job.id}` · {job.status.value}{took}")
            progress = job.progress()
            if not progress and not job.finished:
                st.caption("Starting (loading the student and the encoder)…")
            for stage, event in progress.items():
                total = "?" if event.total is None else f"{event.total:,}"
                st.progress(event.fraction or 0.0,
                            text=f"{escape_markdown(stage)}: {event.done:,} / {total}")
            st.code(job.log_tail(RUNNING_LOG_CHARS) or "(no output yet)", language=None)
            if not job.finished and st.button("Cancel the job", key=f"{key}_cancel_{job.id}"):
                try:
                    jobs.cancel(job)
                except WorkbenchError as error:
                    st.error(escape_markdown(str(error)))
                st.rerun()


def _latest_outcome(job: jobs.Job | None) -> None:
    if job is None:
        return
    took = "" if job.duration_s is None else f" after {job.duration_s:.0f} s"
    what = f"Latest finished job: {job_title(job)} `{job.id}` {job.status.value}{took}"
    if job.status is jobs.JobStatus.SUCCEEDED:
        made = result_text(job)
        st.success(what + (f": {made}" if made else "") + ".")
    elif job.status is jobs.JobStatus.CANCELLED:
        st.info(f"{what}: {escape_markdown(job.error or 'cancelled')}")
    else:
        st.error(f"{what}: {escape_markdown(job.error or 'no reason recorded')}")
        with st.expander("Job log"):
            st.code(job.log_tail(), language=None)


def _row(job: jobs.Job) -> dict[str, Any]:
    return {"job": job.id, "kind": job_title(job), "status": job.status.value,
            "created": job.created_at,
            "seconds": None if job.duration_s is None else round(job.duration_s, 1),
            "outcome": job.error or (json.dumps(job.result)[:120] if job.result else "")}
