"""Augmentation (SPEC 6): generate paraphrases of failure cases as a background job, review the
kept candidates (approve, reject), see the dropped ones with their reason, and commit approvals
into a new dataset version.

A candidate can be approved with its source's label or with an edited one (the answer editor,
`workbench.app.editor`; `review.approve_with_label`), which the commit then takes.

Sources are either the intents sent from the Errors page (training intents only: paraphrasing a
test intent would leak it into evaluation, so those are refused) or every intent a run's mining
flags. Generation runs as a `workbench.app.jobs` job of kind 'augment' in its own process; the page
polls its progress (`workbench.app.job_panel`).

Session state it shares (see `workbench.app.state`): SOURCES_KEY and SOURCES_VERSION_KEY, which
the Errors page writes; REVIEWER_KEY, AUGMENT_JOB_KEY and COMMITTED_KEY.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from pipelines import labels, review
from pipelines.augment import AugmentConfig, ParaphraserChoice
from workbench.app import editor, job_panel, jobs, state
from workbench.app.state import (
    AUGMENT_JOB_KEY,
    COMMITTED_KEY,
    REVIEWER_KEY,
    SOURCES_KEY,
    SOURCES_VERSION_KEY,
    escape_markdown,
)
from workbench.errors import StoreBusyError, WorkbenchError
from workbench.store import Store
from workbench.store.candidates import augmentation_rounds
from workbench.store.runs import recent_runs
from workbench.store.versions import (
    current_version_id,
    intent_texts,
    intents_by_split,
    version_exists,
)
from workbench.tools import answer_from_json

MODES = {"selection": "Intents sent from the Errors page",
         "mining": "Every flagged intent of a run (mining)"}
PARAPHRASERS = tuple(choice.value for choice in ParaphraserChoice)
STATUSES = ("pending", "approved", "rejected", "dropped", "all")
DEFAULTS = AugmentConfig()
PAGE_SIZE = 50
RECENT_JOBS = 5

_FLASH = "aug_flash"              # (kind, message) left by a callback for the next run
_TABLE_VERSION = "aug_table_version"  # bumped after each review action: clears row selections
_ROUND_NEXT = "aug_round_next"    # a round to show once a job has made it
_JOB_SHOWN = "aug_job_shown"      # the job whose round was last brought up for review
_START_FLASH = "aug_start_flash"  # (kind, message) about the last start, for the next run


def render() -> None:
    st.title("Augmentation")
    current = state.require_database()
    try:
        with current.session() as session:
            version_id = current_version_id(session)
            runs = recent_runs(session)
            rounds = augmentation_rounds(session)
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        st.stop()
    if version_id is None:
        st.info("No dataset version yet: run `workbench curate` (or `workbench demo`) first.")
        st.stop()
    st.caption("Paraphrase the intents the student gets wrong, drop near-duplicates of training "
               "and test intents, review what is left, and commit the approved candidates into "
               "a new dataset version.")

    st.subheader("Generate candidates")
    _generate(current, runs)
    job_panel.show(current, "aug", kinds={jobs.JobKind.AUGMENT}, recent=RECENT_JOBS)
    _follow_new_round(current)

    st.subheader("Review")
    _review(current, rounds, version_id)


# ---------------------------------------------------------------------------- generation

def _llm_status() -> tuple[bool, str | None]:
    """(an endpoint is configured, a problem with its settings); shows where it points, never
    the key."""
    from workbench.llm import llm_config, safe_url

    try:
        config = llm_config()
    except WorkbenchError as error:
        st.warning(f"LLM settings: {escape_markdown(str(error))}")
        return False, str(error)
    if config is None:
        st.info("No LLM endpoint is configured: *auto* uses the offline paraphraser. To use an "
                "LLM, set WORKBENCH\\_LLM\\_BASE\\_URL and WORKBENCH\\_LLM\\_MODEL (and "
                "WORKBENCH\\_LLM\\_API\\_KEY), or the \\[llm\\] table of .streamlit/secrets.toml.")
        return False, None
    st.success(f"LLM endpoint configured: model {escape_markdown(config.model)} at "
               f"{escape_markdown(safe_url(config.base_url))} (API key "
               f"{'set' if config.api_key else 'not set'}).")
    return True, None


def _generate(current: Store, runs: list[dict[str, Any]]) -> None:
    llm_ready, llm_problem = _llm_status()
    sources: list[str] = list(st.session_state.get(SOURCES_KEY) or [])
    if "aug_mode" not in st.session_state:
        st.session_state["aug_mode"] = "selection" if sources else "mining"
    mode = st.radio("Sources", list(MODES), format_func=MODES.__getitem__, horizontal=True,
                    key="aug_mode")
    config: dict[str, Any] | None
    if mode == "selection":
        config = _selection_config(current, sources)
    else:
        config = _mining_config(runs)

    flash = st.session_state.pop(_START_FLASH, None)
    if flash is not None:
        getattr(st, flash[0])(flash[1])
    running = job_panel.unfinished_job(current, AUGMENT_JOB_KEY)
    if running is not None:
        st.caption(f"Your generation job {escape_markdown(running.id)} is "
                   f"{running.status.value}: *Start generation* is available again when it "
                   "ends (or cancel it below).")
    # Enter in a field does not submit: only the button starts a job.
    with st.form("aug_generate_form", border=True, enter_to_submit=False):
        columns = st.columns(4)
        n = columns[0].number_input("Candidates per intent", min_value=1, max_value=50,
                                    value=DEFAULTS.n, step=1, key="aug_n")
        threshold = columns[1].number_input(
            "Dedup threshold (cosine)", min_value=0.5, max_value=1.0, value=DEFAULTS.threshold,
            step=0.01,
            format="%.2f", key="aug_threshold",
            help="a candidate at or above this cosine to a training intent, a test intent or "
                 "another kept candidate is dropped")
        paraphraser = columns[2].selectbox(
            "Paraphraser", PARAPHRASERS, key="aug_paraphraser",
            help="auto: the LLM when an endpoint is configured, else offline; offline: no "
                 "network; llm: the configured endpoint")
        limit = columns[3].number_input("Limit (source intents, 0 = all)", min_value=0,
                                        value=0, step=1, key="aug_limit",
                                        help="at most this many source intents, most-flagged "
                                             "first")
        start = st.form_submit_button("Start generation", type="primary", key="aug_start",
                                      disabled=config is None or running is not None)
    if not start or config is None or running is not None:
        return
    if paraphraser == "llm" and not llm_ready:
        st.error("The LLM paraphraser needs an endpoint: "
                 + (escape_markdown(llm_problem) if llm_problem else
                    "none is configured (see above)") + ". Choose *auto* or *offline*.")
        return
    config = {**config, "n": int(n), "threshold": float(threshold), "paraphraser": paraphraser,
              "limit": int(limit) or None}
    try:
        job = jobs.submit(current.path, jobs.JobKind.AUGMENT, config)
    except jobs.JobAlreadyRunningError as error:
        st.session_state[AUGMENT_JOB_KEY] = error.job.id   # follow the job that already runs
        st.session_state[_START_FLASH] = ("warning", escape_markdown(str(error)))
        st.rerun()
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    st.session_state[AUGMENT_JOB_KEY] = job.id
    st.session_state[_START_FLASH] = ("success", (
        f"Started job {escape_markdown(job.id)}: it runs in the background; its progress shows "
        "below, and its candidates join the review queue when it ends."))
    st.rerun()      # draw the form again with its button disabled while the job runs


def _selection_config(current: Store, sources: list[str]) -> dict[str, Any] | None:
    """The job config for the intents sent from the Errors page, or None (with a message) when
    there are none or some cannot be paraphrased."""
    if not sources:
        st.info("No intents selected. On the **Errors** page choose *Training split (mining)*, "
                "pick intents and press *Send to augmentation*; or mine a run here instead.")
        return None
    version_id: int | None = st.session_state.get(SOURCES_VERSION_KEY)
    try:
        with current.session() as session:
            if version_id is None:
                version_id = current_version_id(session)
            if version_id is None or not version_exists(session, version_id):
                st.error(f"The selection comes from dataset version {version_id}, which this "
                         "database does not have. Select the intents again on the Errors page.")
                return None
            found = intents_by_split(session, version_id, sources)
            texts = intent_texts(session, version_id, sources)
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return None
    frame = pd.DataFrame([{"intent": texts.get(key, key),
                           "split": "not in the version" if key in found["unknown"]
                           else ("test" if key in found["test"] else "train")}
                          for key in dict.fromkeys(sources)])
    st.dataframe(frame, hide_index=True, key="aug_sources_table",
                 height=min(300, 35 * (len(frame) + 1) + 3))
    st.caption(f"{len(frame)} intent(s) of dataset version {version_id}.")
    refused = found["test"] + found["unknown"]
    if refused:
        parts = []
        if found["test"]:
            parts.append(f"{len(found['test'])} are test intents of version {version_id}: "
                         "paraphrasing them would leak test intents into training, so they "
                         "cannot be augmented")
        if found["unknown"]:
            parts.append(f"{len(found['unknown'])} are not intents of version {version_id}")
        st.error("Cannot generate from this selection: " + "; ".join(parts) + ". Only "
                 "training intents can be paraphrased (pick them from a mining evaluation on "
                 "the Errors page).")
        left, right, _ = st.columns([1, 1, 2])
        if found["train"]:
            left.button(f"Keep only the {len(found['train'])} training intent(s)",
                        key="aug_keep_train", on_click=_keep_sources, args=(found["train"],))
        right.button("Clear the selection", key="aug_clear_sources", on_click=_keep_sources,
                     args=([],))
        return None
    return {"sources": list(dict.fromkeys(sources)), "version": version_id}


def _keep_sources(keys: list[str]) -> None:
    st.session_state[SOURCES_KEY] = list(keys)


def _mining_config(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not runs:
        st.info("No training run yet: train a student with `workbench train --student heads` "
                "(or the Runs page), then mine its errors here.")
        return None
    by_id = {run["run_id"]: run for run in runs}
    if st.session_state.get("aug_run") not in by_id:
        st.session_state.pop("aug_run", None)
    run_id = st.selectbox("Run to mine (newest first)", list(by_id), key="aug_run",
                          format_func=lambda r: state.run_label(by_id[r]))
    st.caption("The run predicts its own training split; every intent a tool flags (wrong "
               "filter, cosine below the tool's mean) is paraphrased, most-flagged first.")
    return {"run_id": run_id}


# ---------------------------------------------------------------------------- jobs

def _follow_new_round(current: Store) -> None:
    """Once the job this session started has made its round, that round is the one to review
    next (once: choosing another round afterwards sticks)."""
    job_id = st.session_state.get(AUGMENT_JOB_KEY)
    if not job_id or st.session_state.get(_JOB_SHOWN) == job_id:
        return
    try:
        job = jobs.load_job(current.path, str(job_id))
    except WorkbenchError:              # a job of another database, or its folder is gone
        return
    if job.status is jobs.JobStatus.SUCCEEDED:
        st.session_state[_JOB_SHOWN] = job.id
        made = (job.result or {}).get("augmentation_id")
        if made is not None:
            st.session_state[_ROUND_NEXT] = int(made)


# ---------------------------------------------------------------------------- review

def _review(current: Store, rounds: list[dict[str, Any]], version_id: int) -> None:
    flash = st.session_state.pop(_FLASH, None)
    committed = st.session_state.get(COMMITTED_KEY)
    if flash is not None:
        getattr(st, flash[0])(flash[1])
    elif committed is not None:
        st.caption(f"Last commit from this page: dataset version {committed}.")
    if not rounds:
        st.info("No augmentation round yet: start one above (or run `workbench augment`).")
        return
    by_id = {r["augmentation_id"]: r for r in rounds}
    wanted = st.session_state.pop(_ROUND_NEXT, None)
    if wanted in by_id:
        st.session_state["aug_round"] = wanted
    elif st.session_state.get("aug_round") not in by_id:     # a round of another database
        st.session_state.pop("aug_round", None)
    left, right = st.columns([3, 1])
    round_id = left.selectbox("Augmentation round (newest first)", list(by_id), key="aug_round",
                              format_func=lambda i: state.round_label(by_id[i]))
    st.session_state.setdefault(REVIEWER_KEY, os.environ.get("USER") or "curator")  # as the CLI
    right.text_input("Reviewer", key=REVIEWER_KEY,
                     help="stored with every approval, rejection and commit")
    current_round = by_id[round_id]
    columns = st.columns(5)
    for column, name in zip(columns, ("pending", "approved", "rejected", "dropped", "committed"),
                            strict=True):
        column.metric(name.capitalize(), f"{current_round[name]:,}")

    queue, dropped = st.tabs(["Review queue", "Dropped candidates"])
    with queue:
        _queue(current, current_round)
    with dropped:
        _dropped(current, current_round)
    _commit(current_round, version_id)


def _page(key: str, total: int) -> int:
    pages = max(1, -(-total // PAGE_SIZE))
    if st.session_state.get(key, 1) > pages:
        st.session_state[key] = pages
    return int(st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1,
                               key=key))


def _queue(current: Store, round_: dict[str, Any]) -> None:
    round_id = round_["augmentation_id"]
    left, middle, right = st.columns([2, 2, 1])
    status = left.selectbox("Status", STATUSES, key="aug_status")
    include_committed = middle.checkbox("Include candidates already in a version",
                                        key="aug_include_committed")
    selection = review.ReviewFilter(
        augmentation_id=round_id, status=None if status == "all" else review.Status(status),
        uncommitted=not include_committed)
    try:
        total = sum(review.count_candidates(current, selection).values())
        with right:
            page = _page("aug_page", total)
        rows = review.list_candidates(current, selection, limit=PAGE_SIZE,
                                      offset=(page - 1) * PAGE_SIZE)
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    if not rows:
        hint = (" (candidates already committed into a version are hidden)"
                if round_["committed"] and not include_committed else "")
        st.info(f"No {'' if status == 'all' else status + ' '}candidate in round "
                f"{round_id}{hint}.")
    else:
        table_key = f"aug_queue_table_{st.session_state.get(_TABLE_VERSION, 0)}"
        ids = [row["candidate_id"] for row in rows]
        frame = _candidate_frame(rows)
        hidden = [name for name, shown in (("drop reason", status in ("dropped", "all")),
                                           ("reviewed by", status != "pending"),
                                           ("in version", include_committed)) if not shown]
        st.dataframe(frame.drop(columns=hidden), hide_index=True, key=table_key,
                     on_select=lambda: _rows_to_selection(table_key, ids),
                     selection_mode="multi-row", column_config=_CANDIDATE_COLUMNS)
        first = (page - 1) * PAGE_SIZE + 1
        st.caption(f"Candidates {first}–{first + len(rows) - 1} of {total:,}. Select rows (or "
                   "pick them below), then approve or reject them.")

    reviewable = {row["candidate_id"]: row for row in rows
                  if row["status"] != "dropped" and row["committed_version_id"] is None}
    kept = [i for i in st.session_state.get("aug_selected", []) if i in reviewable]
    st.session_state["aug_selected"] = kept
    with st.form("aug_review_form", border=True):
        st.multiselect("Selected candidates", list(reviewable), key="aug_selected",
                       format_func=lambda i: f"#{i} · {reviewable[i]['intent_text']}",
                       placeholder="Select table rows, or type to pick candidates")
        columns = st.columns([1, 1, 1.6, 1.4])
        columns[0].form_submit_button("Approve selected", type="primary", key="aug_approve",
                                      on_click=_review_action, args=("approve", round_id))
        columns[1].form_submit_button("Reject selected", key="aug_reject",
                                      on_click=_review_action, args=("reject", round_id))
        columns[2].form_submit_button(f"Approve all pending in round {round_id}",
                                      key="aug_approve_all", disabled=not round_["pending"],
                                      on_click=_review_action, args=("approve_all", round_id))
    _edit_candidate(reviewable)


def _edit_candidate(reviewable: dict[int, dict[str, Any]]) -> None:
    """Approve one candidate with an edited label instead of its source's ("slightly cooler
    morning" deserves a weaker temperature than "cool morning"): the answer editor, whose Save
    stores a curator label of the candidate's text and approves the candidate."""
    st.markdown("**Approve with an edited label**: a candidate inherits its source intent's "
                "label; edit it here and the commit takes your label instead.")
    if not reviewable:
        st.caption("No candidate on this page can be reviewed.")
        return
    ids = list(reviewable)
    if st.session_state.get("aug_edit_candidate") not in ids:
        st.session_state.pop("aug_edit_candidate", None)
    candidate_id = st.selectbox(
        "Candidate to label", ids, key="aug_edit_candidate",
        format_func=lambda i: f"#{i} · {reviewable[i]['intent_text']}  (from "
                              f"{reviewable[i]['source_text']}; {reviewable[i]['status']})")
    row = reviewable[candidate_id]
    inherited = answer_from_json(row["adjust"], row["selective_adjust"], row["filter"])
    try:
        found = labels.labels_of(state.reader(), row["intent_text"])
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    source = editor.StartingPoint(f"its source's label ({row['source_text']})", inherited)
    editor.answer_editor(
        "aug_editor", subject=f"candidate {candidate_id}",
        starts=editor.starting_points(found, None, [source]), reference=inherited,
        reference_title="source's label", save_label="Approve with this label",
        author=str(st.session_state.get(REVIEWER_KEY, "")), save=partial(_approve_with_label,
                                                                         candidate_id))


def _approve_with_label(candidate_id: int, request: editor.SaveRequest) -> str:
    label = review.approve_with_label(state.store(), candidate_id, request.answer,
                                      request.curator, request.note)
    st.session_state["aug_selected"] = []
    st.session_state[_TABLE_VERSION] = st.session_state.get(_TABLE_VERSION, 0) + 1
    return (f"Approved candidate #{candidate_id} with label #{label.label_id} "
            f"({escape_markdown(label.source)}): the commit takes it instead of its source's.")


_CANDIDATE_COLUMNS = {
    "source intent": st.column_config.TextColumn(width="medium"),
    "candidate": st.column_config.TextColumn(width="medium"),
    "nearest neighbour": st.column_config.TextColumn(width="medium"),
    "similarity": st.column_config.NumberColumn(format="%.3f"),
}


def _candidate_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame([{
        "id": row["candidate_id"], "source intent": row["source_text"],
        "candidate": row["intent_text"], "nearest neighbour": row["nearest_text"],
        "similarity": row["nearest_similarity"], "kind": row["nearest_kind"],
        "status": row["status"], "label": row.get("edited_label") or "source's",
        "drop reason": row["drop_reason"],
        "reviewed by": row["reviewed_by"], "in version": row["committed_version_id"],
    } for row in rows])
    frame["in version"] = frame["in version"].astype("Int64")
    return frame


def _rows_to_selection(table_key: str, ids: list[int]) -> None:
    """Rows selected in the queue table become the form's selected candidates."""
    selection = st.session_state.get(table_key)
    rows = list(getattr(getattr(selection, "selection", None), "rows", None) or [])
    st.session_state["aug_selected"] = [ids[i] for i in rows if i < len(ids)]


def _flash(kind: str, message: str) -> None:
    """A message for the next run to show (callbacks run before the page is drawn)."""
    st.session_state[_FLASH] = (kind, message)


def _review_action(action: str, round_id: int) -> None:
    """Approve or reject the selected candidates, or approve every pending one of the round."""
    reviewer = str(st.session_state.get(REVIEWER_KEY, "")).strip()
    selected = tuple(st.session_state.get("aug_selected", []))
    if not reviewer:
        _flash("error", "Enter the reviewer's name first.")
        return
    if action != "approve_all" and not selected:
        _flash("warning", "Select candidates first (table rows or the list under it).")
        return
    store = state.store()
    if action == "approve_all":
        selection = review.ReviewFilter(augmentation_id=round_id, status=review.Status.PENDING)
        status = review.Status.APPROVED
    else:
        selection = review.ReviewFilter(candidate_ids=selected)
        status = review.Status.APPROVED if action == "approve" else review.Status.REJECTED
    try:
        changed = review.set_status(store, selection, status, by=reviewer)
    except StoreBusyError as error:
        _flash("warning", state.busy_message(error) + " Nothing was changed: try again in a "
                                                      "moment.")
        return
    except WorkbenchError as error:
        _flash("error", escape_markdown(str(error)))
        return
    _flash("success", f"{status.value.capitalize()} {changed} candidate(s) as "
                      f"{escape_markdown(reviewer)}.")
    st.session_state["aug_selected"] = []
    st.session_state[_TABLE_VERSION] = st.session_state.get(_TABLE_VERSION, 0) + 1


def _dropped(current: Store, round_: dict[str, Any]) -> None:
    round_id = round_["augmentation_id"]
    selection = review.ReviewFilter(augmentation_id=round_id, status=review.Status.DROPPED,
                                    uncommitted=False)
    try:
        total = review.count_candidates(current, selection).get("dropped", 0)
        if not total:
            st.info(f"Round {round_id} dropped no candidate.")
            return
        left, right = st.columns([4, 1])
        reasons = round_["summary"].get("dropped", {})
        left.markdown("**By reason:** " + ", ".join(
            f"{escape_markdown(reason)} {n:,}" for reason, n in sorted(reasons.items())))
        with right:
            page = _page("aug_dropped_page", total)
        rows = review.list_candidates(current, selection, limit=PAGE_SIZE,
                                      offset=(page - 1) * PAGE_SIZE)
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    st.caption("Dropped by deduplication: at or above the threshold to a test intent "
               "(near\\_test, never allowed: it would leak), a training intent (near\\_train) "
               "or another kept candidate (near\\_candidate).")
    frame = _candidate_frame(rows)[["id", "source intent", "candidate", "drop reason",
                                    "nearest neighbour", "similarity", "kind"]]
    st.dataframe(frame, hide_index=True, key="aug_dropped_table",
                 column_config=_CANDIDATE_COLUMNS)
    first = (page - 1) * PAGE_SIZE + 1
    st.caption(f"Dropped candidates {first}–{first + len(rows) - 1} of {total:,}.")


def _commit(round_: dict[str, Any], current_id: int) -> None:
    round_id, approved = round_["augmentation_id"], round_["approved_uncommitted"]
    source = round_["version_id"]
    if source == current_id:
        st.markdown(f"**Commit round {round_id}**: {approved:,} approved candidate(s) not yet in "
                    f"a version; the new version is version {current_id} plus them.")
    else:
        st.markdown(f"**Commit round {round_id}**: {approved:,} approved candidate(s) not yet in "
                    f"a version. The round came from version {source}, but version "
                    f"{current_id} is current now: by default the new version is version "
                    f"{current_id} plus them (rebased), so nothing of version {current_id} is "
                    "lost.")
    with st.form("aug_commit_form", border=True):
        st.text_input("Note for the new version", key="aug_commit_note",
                      placeholder=f"e.g. round {round_id}, reviewed by …")
        st.checkbox("Rebase onto the current version when the round's version is no longer "
                    "current (else stop and say so)", value=True, key="aug_commit_rebase")
        st.form_submit_button("Commit approvals into a new dataset version", key="aug_commit",
                              disabled=not approved, on_click=_commit_action, args=(round_id,))


def _commit_action(round_id: int) -> None:
    reviewer = str(st.session_state.get(REVIEWER_KEY, "")).strip()
    if not reviewer:
        _flash("error", "Enter the reviewer's name first.")
        return
    note = str(st.session_state.get("aug_commit_note", "")).strip()
    rebase = bool(st.session_state.get("aug_commit_rebase", True))
    try:
        result = review.commit(state.store(), round_id, by=reviewer, note=note, rebase=rebase)
    except StoreBusyError as error:
        _flash("warning", state.busy_message(error) + " Nothing was committed: try again in a "
                                                      "moment.")
        return
    except WorkbenchError as error:
        _flash("error", escape_markdown(str(error)))
        return
    st.session_state[COMMITTED_KEY] = result.version_id
    st.session_state["aug_commit_note"] = ""
    message = (f"Created dataset version {result.version_id} from round {round_id}; it is now "
               "the current version. Train a student on it to measure the gain.")
    if result.rebased:
        message += (f" The round came from version {result.source_version_id}; the new version "
                    f"builds on version {result.parent_id}, which was current (rebased).")
    if result.skipped:
        message += (f"\n\n{len(result.skipped)} approved candidate(s) were left out (they stay "
                    "approved; reject them to clear them): " + "; ".join(
                        f"#{s.candidate_id} {escape_markdown(s.intent_text)} "
                        f"{escape_markdown(s.reason)}" for s in result.skipped[:10])
                    + ("; …" if len(result.skipped) > 10 else ""))
    _flash("warning" if result.skipped else "success", message)
