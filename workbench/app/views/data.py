"""Data: start from nothing in the browser. Upload log files to ingest, build the synthetic demo,
or curate the logs into a new dataset version; each runs as a background job (`app/jobs.py`)
with its progress below, and the page reports what it made: per file read / ingested /
duplicates / quarantined, with a link to the quarantine.

Uploads are saved as copies under the database's jobs folder (`jobs/uploads/<when>-<id>/`),
never into the source tree; the ingest job reads those copies, and the quarantine names them."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from pipelines import curate, demo
from workbench.app import job_panel, jobs, state
from workbench.errors import IngestError, WorkbenchError
from workbench.log_readers import detect_format
from workbench.store import Store
from workbench.store.requests import QuarantineFilter, quarantined_records
from workbench.store.status import status_counts
from workbench.synthetic import PAPER_INTENTS, PAPER_REQUESTS

DATA_KINDS = (jobs.JobKind.INGEST, jobs.JobKind.DEMO, jobs.JobKind.CURATE)
UPLOADS_FOLDER = "uploads"        # under the jobs folder: one folder per upload
FORMATS = ".jsonl, .ndjson, .csv, .parquet or .pq"
_WHITESPACE_CHECK_BYTES = 1 << 20  # a file this small that is only blank space is empty
_FLASH = "data_flash"             # (level, message) about the last start, for the next run
_ROUND = "data_round"             # counts starts: the uploader and the note start empty again


def page() -> st.Page:
    """This page for `st.navigation` and for links to it from other pages (one definition)."""
    return st.Page(render, title="Data", icon=":material/upload_file:", url_path="data")


def _job_key(kind: jobs.JobKind) -> str:
    """Session state: the job of this kind this browser session started last."""
    return f"data_job_{kind.value}"


def render() -> None:
    st.title("Data")
    current = state.reader()
    counts = status_counts(current) if current.exists else None
    _header(current, counts)
    flash = st.session_state.pop(_FLASH, None)
    if flash is not None:
        getattr(st, flash[0])(flash[1])
    # Keyed and tracked: the open tab stays open when a message appears above it or a job ends.
    upload, build, curation = st.tabs(["Upload logs", "Build the demo", "Curate"],
                                      key="data_tabs", on_change="rerun")
    with upload:
        _upload(current)
    with build:
        _demo(current, counts)
    with curation:
        _curate(current, counts)
    st.subheader("Jobs")
    job_panel.show(current, "data", kinds=DATA_KINDS, recent=10)


def _header(current: Store, counts: dict[str, Any] | None) -> None:
    st.caption(f"Database: `{current.path}`")
    if counts is None:
        st.info("This database does not exist yet: upload your log files or build the synthetic "
                "demo below, and it is made.", icon=":material/database:")
        return
    state.count_metrics(counts)
    if counts["quarantined"]:
        state.link_to_page("quarantine", "Quarantine",
                           f"See the {_records(counts['quarantined'])} in the quarantine",
                           ":material/report:")


def _unfinished(current: Store, kinds: Sequence[jobs.JobKind]) -> jobs.Job | None:
    """The newest queued or running job of `kinds` on this database, whoever started it."""
    return next((job for job in jobs.list_jobs(current.path)
                 if job.kind in kinds and not job.finished), None)


def _latest_finished(current: Store, kind: jobs.JobKind) -> jobs.Job | None:
    return jobs.latest_outcome([job for job in jobs.list_jobs(current.path) if job.kind is kind])


def _start(current: Store, kind: jobs.JobKind, config: dict[str, Any]) -> None:
    """Submit the job, remember it for this session, and rerun with a note saying so (the
    running job then shows below, and Start stays disabled while it runs)."""
    try:
        job = jobs.submit(current.path, kind, config)
    except jobs.JobAlreadyRunningError as error:
        st.session_state[_job_key(kind)] = error.job.id      # follow the job that already runs
        st.session_state[_FLASH] = ("warning", state.escape_markdown(str(error)))
        st.rerun()
    except WorkbenchError as error:
        st.error(state.escape_markdown(str(error)))
        return
    st.session_state[_job_key(kind)] = job.id
    st.session_state[_ROUND] = int(st.session_state.get(_ROUND, 0)) + 1
    started = f"Started the {kind.value} job {job.id}: follow it under Jobs below."
    st.session_state[_FLASH] = ("success", started)
    st.rerun()


# ------------------------------------------------------------------------------ upload

def upload_problem(name: str, head: bytes, size: int) -> str | None:
    """Why an uploaded file is not ingested (None when it is): its name has no log format, or it
    is empty. `head` is the file's first bytes (up to `_WHITESPACE_CHECK_BYTES`). A file that is
    not what its extension says (say, CSV text in a .jsonl) is ingested all the same: each of
    its records is quarantined with the reason, and the summary says nothing could be
    ingested, so no good record is ever left out on a guess."""
    try:
        fmt = detect_format(Path(name))
    except IngestError:
        suffix = Path(name).suffix or "no extension"
        return f"{name}: not a log file ({suffix}); upload {FORMATS} files"
    if size == 0:
        return f"{name}: the file is empty (0 bytes); nothing to ingest"
    if fmt.value != "parquet" and size <= _WHITESPACE_CHECK_BYTES and not head.strip():
        return f"{name}: the file holds only blank lines; nothing to ingest"
    return None


def save_uploads(db: Path, files: Sequence[Any]) -> list[Path]:
    """Copy the uploaded files (objects with `.name` and file-like reads) into a new folder
    `jobs/uploads/<when>-<id>/` beside the database, each under its own name (a repeated name
    gets ' (2)'); returns the paths, in order."""
    folder = (jobs.jobs_dir(db) / UPLOADS_FOLDER
              / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}")
    folder.mkdir(parents=True)
    saved: list[Path] = []
    for upload in files:
        name = Path(upload.name).name
        path, n = folder / name, 1
        while path.exists():
            n += 1
            path = folder / f"{Path(name).stem} ({n}){Path(name).suffix}"
        upload.seek(0)
        with path.open("wb") as handle:
            shutil.copyfileobj(upload, handle)
        saved.append(path)
    return saved


def _upload(current: Store) -> None:
    st.caption(f"Log files in the log contract (SPEC 3): {FORMATS}. Each is ingested in the "
               "background: valid records are stored (a request already stored is a "
               "duplicate, not stored twice), bad ones go to the quarantine with the reason.")
    building = _unfinished(current, [jobs.JobKind.DEMO])
    files = st.file_uploader("Log files", accept_multiple_files=True,
                             key=f"data_upload_{st.session_state.get(_ROUND, 0)}",
                             help=f"{FORMATS}; several at once")
    accepted = []
    for upload in files or []:
        problem = upload_problem(upload.name, bytes(upload.getbuffer()[
            :_WHITESPACE_CHECK_BYTES]), upload.size)
        if problem is None:
            accepted.append(upload)
        else:
            st.warning(f"{state.escape_markdown(problem)}; it is left out.",
                       icon=":material/block:")
    if building is not None:
        st.caption(f"The demo is being built into this database (job {building.id}): uploads "
                   "can start once it is done.")
    label = (f"Ingest {len(accepted)} file{'s' if len(accepted) != 1 else ''}" if accepted
             else "Ingest (upload files first)")
    if st.button(label, type="primary", key="data_ingest",
                 disabled=not accepted or building is not None):
        try:
            paths = save_uploads(current.path, accepted)
        except OSError as error:
            st.error(f"Could not save the uploads beside the database "
                     f"({state.escape_markdown(error.strerror or str(error))}): the database's "
                     "folder must be writable.")
            return
        _start(current, jobs.JobKind.INGEST, {"paths": [str(path) for path in paths]})
    _ingest_summary(current)


def _ingest_summary(current: Store) -> None:
    """What the ingest job that finished last did, file by file."""
    job = _latest_finished(current, jobs.JobKind.INGEST)
    if job is None:
        return
    st.subheader("Latest upload")
    if job.status is not jobs.JobStatus.SUCCEEDED or not job.result:
        st.error(f"The ingest job {job.id} {job.status.value}: "
                 f"{state.escape_markdown(job.error or 'no reason recorded')}")
        return
    files = job.result.get("files", [])
    st.dataframe(pd.DataFrame([{
        "file": Path(f["source_file"]).name, "format": f["format"], "read": f["read"],
        "ingested": f["ingested"], "duplicates": f["duplicates"],
        "quarantined": f["quarantined"], "outcome": f["error"] or _outcome(f)}
        for f in files]), hide_index=True, key="data_ingest_summary")
    for summary in files:
        if summary["error"] is None and summary["ingested"] + summary["duplicates"] == 0 \
                and current.exists:
            st.error(_nothing_ingested(current, summary))
    quarantined = sum(f["quarantined"] for f in files)
    if quarantined and current.exists:
        state.link_to_page("quarantine", "Quarantine",
                           f"See the {_records(quarantined)} this upload quarantined, with the "
                           "reasons", ":material/report:")


def _records(n: int) -> str:
    return f"{n:,} record" + ("" if n == 1 else "s")


def _outcome(summary: dict[str, Any]) -> str:
    if summary["ingested"] + summary["duplicates"] == 0:
        return "nothing ingested"
    return "ok" if not summary["quarantined"] else "ok, some records quarantined"


def _nothing_ingested(current: Store, summary: dict[str, Any]) -> str:
    """'x.jsonl: nothing could be ingested: all 3 records were quarantined (line 1: malformed
    JSON …)', escaped for Markdown: a file that was not what its name says reads like this."""
    name = Path(summary["source_file"]).name
    with current.session() as session:
        first = quarantined_records(session, QuarantineFilter(
            source_file=summary["source_file"]), limit=1, raw_chars=0)
    example = f" ({first[0]['location']}: {first[0]['reason']})" if first else ""
    return state.escape_markdown(
        f"{name}: nothing could be ingested: all {summary['read']:,} of its records were "
        f"quarantined{example}. Is it really a {summary['format']} file of log records?")


# ------------------------------------------------------------------------------ the demo

def _demo(current: Store, counts: dict[str, Any] | None) -> None:
    st.caption("The demo corpus is **synthetic**: generated logs in the log contract, seeded, "
               "at the paper's scale by default (a few minutes on two cores), ingested and "
               "curated into dataset version 1. No number from it is a claim about the paper.")
    _demo_outcome(current)
    refusal = jobs.demo_refusal(current) if counts is not None else None
    if refusal is not None:
        st.info(f"No demo in this database: {state.escape_markdown(refusal)}",
                icon=":material/block:")
        return
    if counts is not None and counts["quarantined"]:
        st.warning(f"This database holds no requests, only {counts['quarantined']:,} "
                   "quarantined records of earlier uploads: building the demo replaces it, "
                   "and those records go with it.")
    busy = _unfinished(current, DATA_KINDS)
    if busy is not None:
        st.caption(f"The {busy.kind.value} job {busy.id} is {busy.status.value} on this "
                   "database: the demo can be built once it is done.")
    with st.form("demo_form", enter_to_submit=False):
        left, right = st.columns(2)
        n = left.number_input("Requests", min_value=100, value=PAPER_REQUESTS, step=1000,
                              key="demo_requests", help=f"{PAPER_REQUESTS:,} is the paper's "
                              "scale; more scales the intents up too")
        seed = right.number_input("Generator seed", value=7, step=1, key="demo_seed")
        submitted = st.form_submit_button("Build the demo", type="primary", key="demo_start",
                                          disabled=busy is not None)
    if submitted and busy is None:
        _start(current, jobs.JobKind.DEMO, {"requests": int(n), "seed": int(seed)})


def _demo_outcome(current: Store) -> None:
    job = _latest_finished(current, jobs.JobKind.DEMO)
    if job is None or job.status is not jobs.JobStatus.SUCCEEDED or not job.result:
        return
    made = job.result["curate"]
    st.success(f"Built the synthetic demo ({job.result['ingest']['ingested']:,} requests): "
               f"dataset version {made['version_id']}, {made['intents']:,} intents, train "
               f"{made['train']:,}, test {made['test']:,}.")


# ------------------------------------------------------------------------------ curation

def default_test_size(intents: int) -> float:
    """The paper's 1,000 test intents from its scale up; below it the paper's share (10.8%), so
    a small log still leaves training intents (as `workbench demo` does)."""
    return float(curate.DEFAULT_TEST_SIZE) if intents >= PAPER_INTENTS \
        else round(demo.PAPER_TEST_SHARE, 3)


def _curate(current: Store, counts: dict[str, Any] | None) -> None:
    st.caption("Curation (SPEC 4) drops requests never exported, takes per intent and tool the "
               "output with the highest export rate as the ground truth, and splits by intent "
               "into train and test: a new dataset version, which becomes current.")
    if counts is None or not counts["requests"]:
        st.info("Nothing to curate yet: upload log files or build the demo first.")
        return
    busy = _unfinished(current, [jobs.JobKind.DEMO]) or job_panel.unfinished_job(
        current, _job_key(jobs.JobKind.CURATE))
    if busy is not None:
        st.caption(f"The {busy.kind.value} job {busy.id} is {busy.status.value}: curation can "
                   "start once it is done.")
    with st.form("curate_form", enter_to_submit=False):
        size, seed = st.columns(2)
        test_size = size.number_input(
            "Test size", min_value=0.001, value=default_test_size(counts["intents"]), step=0.01,
            format="%g", key="curate_test_size",
            help="1 or more: that many test intents; below 1: that share of the intents")
        split_seed = seed.number_input("Split seed", value=curate.DEFAULT_SEED, step=1,
                                       key="curate_seed")
        note = st.text_input("Note", "", key=f"curate_note_{st.session_state.get(_ROUND, 0)}",
                             help="saved with the version, e.g. why it was made")
        submitted = st.form_submit_button("Curate into a new version", type="primary",
                                          key="curate_start", disabled=busy is not None)
    if submitted and busy is None:
        _start(current, jobs.JobKind.CURATE, {"test_size": float(test_size),
                                              "seed": int(split_seed), "note": note})
    _curate_outcome(current)


def _curate_outcome(current: Store) -> None:
    job = _latest_finished(current, jobs.JobKind.CURATE)
    if job is None:
        return
    if job.status is not jobs.JobStatus.SUCCEEDED or not job.result:
        st.error(f"The curation job {job.id} {job.status.value}: "
                 f"{state.escape_markdown(job.error or 'no reason recorded')}")
        return
    made = job.result
    st.success(f"Dataset version {made['version_id']} (now current): {made['intents']:,} "
               f"intents, train {made['train']:,}, test {made['test']:,} (r_3 "
               f"{made['test_r_3']:,}, r_5 {made['test_r_5']:,}); from {made['requests']:,} "
               f"requests, {made['requests_dropped']:,} dropped with zero exports.")
