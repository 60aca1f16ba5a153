"""Augmentation (SPEC 6): generate paraphrases of failure cases as a background job, review the
kept candidates (approve, reject), see the dropped ones with their reason, and commit approvals
into a new dataset version.

The review queue lists each candidate with its source intent, the label it goes in with
(inherited from its source, or a curator's edited label) and its nearest neighbour. One candidate
is named by its exact id (typed, or one table row selected): its detail shows whole texts, a
before/after render of the source's label and the candidate's, and buttons (approve, reject,
back to pending) that change that candidate only. Bulk actions (the selected candidates, every
pending one of a round) first say how many candidates, and which, they will change, and act on a
second click; picking candidates by typing adds one per Enter, never "all matches".

A candidate can be approved with its source's label or with an edited one (the answer editor,
`workbench.app.editor`; `review.approve_with_label`), which the commit then takes.

Sources are either the intents sent from the Errors page (training intents only: paraphrasing a
test intent would leak it into evaluation, so those are refused) or the intents a run's mining
picks by a strategy (`MiningStrategy`: the paper's rule, a margin below it, the worst k%, or the
weak slices). Generation runs as a `workbench.app.jobs` job of kind 'augment' in its own process; the page
polls its progress (`workbench.app.job_panel`).

Session state it shares (see `workbench.app.state`): SOURCES_KEY and SOURCES_VERSION_KEY, which
the Errors page writes; REVIEWER_KEY, AUGMENT_JOB_KEY and COMMITTED_KEY.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from pipelines import labels, review
from pipelines.augment import AugmentConfig, MiningStrategy, ParaphraserChoice
from workbench.app import editor, job_panel, jobs, state
from workbench.app.state import (
    AUGMENT_JOB_KEY,
    COMMITTED_KEY,
    REVIEWER_KEY,
    SOURCES_KEY,
    SOURCES_VERSION_KEY,
    escape_markdown,
)
from workbench.describe import describe_output
from workbench.errors import StoreBusyError, WorkbenchError
from workbench.report import TOOL_TITLES
from workbench.store import Store
from workbench.store.candidates import augmentation_rounds
from workbench.store.runs import recent_runs
from workbench.store.versions import (
    current_version_id,
    intent_texts,
    intents_by_split,
    version_exists,
)
from workbench.tools import TOOLS

MODES = {"selection": "Intents sent from the Errors page",
         "mining": "Mine a run's errors (a strategy)"}
# Each mining strategy: its name on the page and what it picks, in one line.
STRATEGIES = {
    MiningStrategy.MEAN.value: (
        "the paper's rule",
        ("every intent a tool flags: a wrong filter, or a cosine below the tool's mean over the "
         "training split (the replication's rule; it flags many)")),
    MiningStrategy.MARGIN.value: (
        "below the mean by a margin",
        ("as the paper's rule, but adjust and selective adjust flag only a cosine more than the "
         "margin below their mean: fewer, clearer errors")),
    MiningStrategy.WORST.value: (
        "the worst k %",
        ("the k % of training intents with the largest loss over the three tools (an opposite "
         "look, a wrong filter or a tool wrongly used count most)")),
    MiningStrategy.SLICES.value: (
        "weak slices",
        ("every intent of the clusters of similar training intents whose Overall is at least "
         "the gap below the student's (the Errors page shows the slices)")),
}
PARAPHRASERS = tuple(choice.value for choice in ParaphraserChoice)
STATUSES = ("pending", "approved", "rejected", "dropped", "all")
DEFAULTS = AugmentConfig()
PAGE_SIZE = 50
RECENT_JOBS = 5
QUEUE_ROW_HEIGHT = 68             # px: above 4rem the table wraps long texts instead of cutting
QUEUE_ROWS_SHOWN = 10             # rows in view before the table scrolls
MAX_BULK = 100_000                # "approve all pending" asks about at most this many at once
LISTED = 10                       # candidates a bulk question names before "… and N more"
CANDIDATE_KEY = "aug_candidate"   # the exact id of the candidate shown in detail

_FLASH = "aug_flash"              # (kind, message) left by a callback for the next run
_TABLE_VERSION = "aug_table_version"  # bumped after each review action: clears row selections
_ROUND_NEXT = "aug_round_next"    # a round to show once a job has made it
_JOB_SHOWN = "aug_job_shown"      # the job whose round was last brought up for review
_START_FLASH = "aug_start_flash"  # (kind, message) about the last start, for the next run
_CONFIRM = "aug_confirm_request"  # the BulkRequest waiting for its confirmation


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
                                        help="at most this many source intents, the most "
                                             "wrong first")
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
    return {"run_id": run_id, "mining": _strategy()}


def _strategy() -> dict[str, Any]:
    """The mining strategy and its parameter (outside the form, so the explanation follows the
    choice at once): the job's `mining` settings."""
    mining = DEFAULTS.mining
    strategy = st.radio("Mining strategy", list(STRATEGIES), key="aug_strategy",
                        index=list(STRATEGIES).index(mining.strategy.value),
                        format_func=lambda name: f"{name}: {STRATEGIES[name][0]}",
                        captions=[explanation for _, explanation in STRATEGIES.values()])
    chosen: dict[str, Any] = {"strategy": strategy}
    columns = st.columns(3)
    if strategy == MiningStrategy.MARGIN.value:
        chosen["margin"] = float(columns[0].number_input(
            "Margin (cosine)", min_value=0.0, max_value=2.0, value=mining.margin, step=0.05,
            format="%.2f", key="aug_margin",
            help="flag a vector tool's intent when its cosine is below the tool's mean minus "
                 "this; 0 is the paper's rule"))
    elif strategy == MiningStrategy.WORST.value:
        chosen["worst_percent"] = float(columns[0].number_input(
            "Worst (% of the training intents)", min_value=0.5, max_value=100.0,
            value=mining.worst_percent, step=5.0, format="%.1f", key="aug_worst_percent",
            help="rounded half up, at least one intent; an intent the student gets exactly "
                 "right is never taken"))
    elif strategy == MiningStrategy.SLICES.value:
        clusters = int(columns[0].number_input(
            "Slices (k, 0 = automatic)", min_value=0, max_value=200, value=0, step=1,
            key="aug_clusters", help="k-means clusters; automatic: round(sqrt(n/2)) of the n "
                                     "training intents, within 2 to 60"))
        chosen["clusters"] = clusters or None      # 1: the job's check says k >= 2
        chosen["slice_gap"] = float(columns[1].number_input(
            "Gap (Overall)", min_value=0.0, max_value=1.0, value=mining.slice_gap, step=0.01,
            format="%.2f", key="aug_slice_gap",
            help="take a slice whose Overall is at least this below the student's on the "
                 "whole training split"))
    st.caption("The run predicts its own training split (stored as a mining evaluation, shown "
               "on the Errors page); the strategy picks the intents to paraphrase, the most "
               "wrong first.")
    return chosen


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
        reviewable_ids = {row["candidate_id"] for row in rows if _reviewable(row)}
        ids = [row["candidate_id"] for row in rows]
        frame = _candidate_frame(rows)
        hidden = [name for name, shown in (("status", status == "all"),
                                           ("drop reason", status in ("dropped", "all")),
                                           ("reviewed by", status != "pending"),
                                           ("in version", include_committed)) if not shown]
        st.dataframe(frame.drop(columns=hidden), hide_index=True, key=table_key,
                     on_select=partial(_rows_to_selection, table_key, ids, reviewable_ids),
                     selection_mode="multi-row", column_config=_CANDIDATE_COLUMNS,
                     row_height=QUEUE_ROW_HEIGHT,
                     height=QUEUE_ROW_HEIGHT * min(len(rows), QUEUE_ROWS_SHOWN) + 40)
        first = (page - 1) * PAGE_SIZE + 1
        st.caption(f"Candidates {first}–{first + len(rows) - 1} of {total:,}. Select one row "
                   "to see that candidate below; select several (or pick them in the box "
                   "under the table) to act on them together.")
    reviewable = {row["candidate_id"]: row for row in rows if _reviewable(row)}
    _bulk(round_, reviewable)
    st.divider()
    _one_candidate(current, round_id, rows)


def _reviewable(row: dict[str, Any]) -> bool:
    """A candidate a decision can still change: neither dropped nor in a version."""
    return row["status"] != "dropped" and row["committed_version_id"] is None


# ---------------------------------------------------------------------------- bulk actions

def _bulk(round_: dict[str, Any], reviewable: dict[int, dict[str, Any]]) -> None:
    """Decisions on several candidates at once. Each bulk button only asks: the page then says
    how many candidates (and which) it will change, and a second click does it. Picking by
    typing adds one candidate per Enter (no "select all matches")."""
    round_id = round_["augmentation_id"]
    kept = [i for i in st.session_state.get("aug_selected", []) if i in reviewable]
    st.session_state["aug_selected"] = kept
    st.multiselect("Selected candidates", list(reviewable), key="aug_selected",
                   format_func=lambda i: f"#{i} · {reviewable[i]['intent_text']}",
                   placeholder="Select table rows, or type an id (#12) and press Enter",
                   select_all=False, filter_mode="prefix")
    selected = len(kept)
    texts = {i: row["intent_text"] for i, row in reviewable.items()}
    decided = {i: text for i, text in texts.items()       # what "back to pending" can change
               if reviewable[i]["status"] != review.Status.PENDING.value}
    n_decided = sum(i in decided for i in kept)
    columns = st.columns(4)
    columns[0].button(f"Approve selected ({selected})", type="primary", key="aug_approve",
                      disabled=not selected, on_click=_ask,
                      args=(BulkAction.APPROVE, round_id, texts))
    columns[1].button(f"Reject selected ({selected})", key="aug_reject", disabled=not selected,
                      on_click=_ask, args=(BulkAction.REJECT, round_id, texts))
    columns[2].button(f"Back to pending ({n_decided})", key="aug_pending_selected",
                      disabled=not n_decided, on_click=_ask,
                      args=(BulkAction.PENDING, round_id, decided),
                      help="take the decision back: approved or rejected candidates become "
                           "pending again")
    columns[3].button(f"Approve all {round_['pending']:,} pending in round {round_id}",
                      key="aug_approve_all", disabled=not round_["pending"], on_click=_ask,
                      args=(BulkAction.APPROVE_ALL, round_id, texts))
    _confirmation(round_id)


class BulkAction(str, Enum):
    APPROVE = "approve"
    REJECT = "reject"
    PENDING = "pending"
    APPROVE_ALL = "approve_all"

    @property
    def verb(self) -> str:
        return {"approve": "Approve", "reject": "Reject", "pending": "Set back to pending",
                "approve_all": "Approve"}[self.value]


@dataclass(frozen=True)
class BulkRequest:
    """A bulk action waiting for its confirmation: exactly these candidates, as they were
    when it was asked (a confirmation never reaches further than what it showed)."""

    action: BulkAction
    round_id: int
    candidates: tuple[tuple[int, str], ...]       # (candidate id, text)

    @property
    def question(self) -> str:
        n = len(self.candidates)
        what = f"{n} candidate{'s' if n != 1 else ''}"
        if self.action is BulkAction.PENDING:
            return f"Set {what} back to pending?"
        pending = " pending" if self.action is BulkAction.APPROVE_ALL else ""
        return f"{self.action.verb} {n}{pending} candidate{'s' if n != 1 else ''}?"


def _ask(action: BulkAction, round_id: int, texts: dict[int, str]) -> None:
    """Callback of a bulk button: note what it would change (the selected candidates, whose
    texts `texts` gives, or every pending one of the round), for the confirmation."""
    st.session_state.pop(_CONFIRM, None)
    if not str(st.session_state.get(REVIEWER_KEY, "")).strip():
        _flash("error", "Enter the reviewer's name first.")
        return
    if action is BulkAction.APPROVE_ALL:
        try:
            rows = review.list_candidates(state.reader(), review.ReviewFilter(
                augmentation_id=round_id, status=review.Status.PENDING), limit=MAX_BULK)
        except StoreBusyError as error:
            _flash("warning", state.busy_message(error) + " Try again in a moment.")
            return
        except WorkbenchError as error:
            _flash("error", escape_markdown(str(error)))
            return
        chosen = tuple((row["candidate_id"], row["intent_text"]) for row in rows)
    else:
        chosen = tuple((i, texts[i]) for i in st.session_state.get("aug_selected", [])
                       if i in texts)
    if not chosen:
        _flash("warning", "Select candidates first (table rows or the box under it).")
        return
    st.session_state[_CONFIRM] = BulkRequest(action, round_id, chosen)


def _confirmation(round_id: int) -> None:
    """The question of a bulk action waiting to be confirmed, with its two buttons."""
    request = st.session_state.get(_CONFIRM)
    if not isinstance(request, BulkRequest) or request.round_id != round_id:
        st.session_state.pop(_CONFIRM, None)
        return
    listed = ", ".join(f"#{i} {text}" for i, text in request.candidates[:LISTED])
    more = len(request.candidates) - LISTED
    with st.container(border=True, key="aug_confirm_box"):
        st.warning(f"**{escape_markdown(request.question)}** "
                   + escape_markdown(listed + (f" … and {more} more" if more > 0 else "")),
                   icon=":material/help:")
        left, right, _ = st.columns([2, 1, 3])
        left.button(f"Yes: {request.question.rstrip('?').lower()}", type="primary",
                    key="aug_confirm", on_click=_confirm)
        right.button("Cancel", key="aug_cancel", on_click=st.session_state.pop,
                     args=(_CONFIRM, None))


def _confirm() -> None:
    """Callback of the confirmation: change exactly the candidates the question listed."""
    request = st.session_state.pop(_CONFIRM, None)
    if not isinstance(request, BulkRequest):
        return
    ids = tuple(i for i, _ in request.candidates)
    reviewer = str(st.session_state.get(REVIEWER_KEY, "")).strip()
    if not reviewer:
        _flash("error", "Enter the reviewer's name first.")
        return
    if request.action is BulkAction.PENDING:
        status = review.Status.PENDING
        only = None
    else:
        status = (review.Status.REJECTED if request.action is BulkAction.REJECT
                  else review.Status.APPROVED)
        only = review.Status.PENDING if request.action is BulkAction.APPROVE_ALL else None
    changed = _change(ids, status, reviewer, only)
    if changed is None:
        return
    message = (f"Set {changed} candidate(s) back to pending." if status is review.Status.PENDING
               else f"{status.value.capitalize()} {changed} candidate(s) as "
                    f"{escape_markdown(reviewer)}.")
    if changed < len(ids):
        message += f" ({len(ids) - changed} of the {len(ids)} had no decision to change.)"
    _flash("success", message)
    _reset_selection()


def _change(ids: tuple[int, ...], status: review.Status, reviewer: str,
            only: review.Status | None = None) -> int | None:
    """Set these candidates (those with status `only`, when given) to `status`, back to pending
    included; how many changed, or None after flashing why nothing was (a busy database, a
    refusal naming the candidate)."""
    try:
        if status is review.Status.PENDING:
            return review.set_pending(state.store(), ids)
        return review.set_status(state.store(),
                                 review.ReviewFilter(candidate_ids=ids, status=only),
                                 status, by=reviewer)
    except StoreBusyError as error:
        _flash("warning", state.busy_message(error) + " Nothing was changed: try again in a "
                                                      "moment.")
    except WorkbenchError as error:
        _flash("error", "Nothing was changed: " + escape_markdown(str(error)))
    return None


def _reset_selection() -> None:
    st.session_state["aug_selected"] = []
    st.session_state[_TABLE_VERSION] = st.session_state.get(_TABLE_VERSION, 0) + 1


def _rows_to_selection(table_key: str, ids: list[int], reviewable: set[int]) -> None:
    """Rows selected in the queue table become the selected candidates; one row selected is
    also the candidate shown below."""
    selection = st.session_state.get(table_key)
    rows = list(getattr(getattr(selection, "selection", None), "rows", None) or [])
    chosen = [ids[i] for i in rows if i < len(ids)]
    st.session_state["aug_selected"] = [i for i in chosen if i in reviewable]
    if len(chosen) == 1:
        st.session_state[CANDIDATE_KEY] = chosen[0]


def _flash(kind: str, message: str) -> None:
    """A message for the next run to show (callbacks run before the page is drawn)."""
    st.session_state[_FLASH] = (kind, message)


# ---------------------------------------------------------------------------- one candidate

def _one_candidate(current: Store, round_id: int, rows: list[dict[str, Any]]) -> None:
    """One candidate, named by its exact id: where it came from, the label it goes in with, a
    before/after render, its nearest neighbour, and buttons that change that candidate only."""
    st.markdown("**One candidate**: type its id, or select its row in the table. The buttons "
                "here change this candidate and no other.")
    if st.session_state.get(CANDIDATE_KEY) is None:       # none yet, or a round had none
        st.session_state[CANDIDATE_KEY] = rows[0]["candidate_id"] if rows else None
    candidate_id = st.number_input("Candidate id", min_value=1, step=1, key=CANDIDATE_KEY,
                                   placeholder="e.g. 12", width=200)
    if candidate_id is None:
        st.caption("No candidate chosen.")
        return
    try:
        detail = review.candidate_detail(current, int(candidate_id))
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    if detail is None:
        st.warning(f"There is no candidate #{int(candidate_id)}.")
        return
    _candidate_facts(detail, round_id)
    _candidate_previews(detail)
    _single_actions(detail)
    if detail.status != review.Status.DROPPED.value and detail.committed_version_id is None:
        with st.expander(f"Approve #{detail.candidate_id} with an edited label", expanded=False):
            _edit_candidate(detail)


def _candidate_facts(detail: review.CandidateDetail, round_id: int) -> None:
    where = (f" · in dataset version {detail.committed_version_id}"
             if detail.committed_version_id is not None else "")
    by = f" by {escape_markdown(detail.reviewed_by)}" if detail.reviewed_by else ""
    other = (f" (round {detail.augmentation_id}, not the round shown above)"
             if detail.augmentation_id != round_id else f" · round {detail.augmentation_id}")
    st.markdown(f"#### Candidate #{detail.candidate_id} · {detail.status}{by}{other}{where}")
    if detail.nearest_text is None:
        nearest = "none recorded"
    else:
        similarity = ("" if detail.nearest_similarity is None
                      else f", cosine {detail.nearest_similarity:.3f}")
        nearest = (f"{escape_markdown(detail.nearest_text)} "
                   f"({escape_markdown(detail.nearest_kind or 'unknown')}{similarity})")
    lines = [f"**Candidate:** {escape_markdown(detail.intent_text)}",
             f"**Source intent:** {escape_markdown(detail.source_text)}",
             f"**Nearest neighbour:** {nearest}"]
    if detail.drop_reason:
        lines.append(f"**Dropped:** {escape_markdown(detail.drop_reason)}")
    lines.append("**Goes in with:** " + (
        f"an edited label ({escape_markdown(detail.label_source or '')}), not its source's"
        if detail.edited else "its source intent's label (inherited)"))
    st.markdown("  \n".join(lines))
    st.dataframe(pd.DataFrame([{
        "tool": TOOL_TITLES[tool],
        "source's label": describe_output(tool, detail.inherited.tool_json(tool)),
        "goes in with": describe_output(tool, detail.label.tool_json(tool))} for tool in TOOLS]),
        hide_index=True, key="aug_detail_labels", row_height=QUEUE_ROW_HEIGHT,
        column_config={"tool": st.column_config.TextColumn(width="small"),
                       "source's label": st.column_config.TextColumn(width="large"),
                       "goes in with": st.column_config.TextColumn(width="large")})


def _candidate_previews(detail: review.CandidateDetail) -> None:
    """Before (the photo as it is), the source's label and the label it goes in with, on one
    sample photo (renders cached by the editor)."""
    label = (f"goes in with: {detail.label_source}" if detail.edited
             else "goes in with: inherited (the same)")
    editor.answer_previews("aug_detail", [("source's label", detail.inherited),
                                          (label, detail.label)], per_row=3)


def _single_actions(detail: review.CandidateDetail) -> None:
    locked = detail.status == review.Status.DROPPED.value or detail.committed_version_id is not None
    number = detail.candidate_id
    columns = st.columns([1, 1, 1.4, 2])
    columns[0].button(f"Approve #{number}", type="primary", key="aug_one_approve",
                      disabled=locked or detail.status == "approved", on_click=_decide_one,
                      args=(review.Status.APPROVED, number))
    columns[1].button(f"Reject #{number}", key="aug_one_reject",
                      disabled=locked or detail.status == "rejected", on_click=_decide_one,
                      args=(review.Status.REJECTED, number))
    columns[2].button(f"Back to pending #{number}", key="aug_one_pending",
                      disabled=locked or detail.status == "pending", on_click=_decide_one,
                      args=(review.Status.PENDING, number))
    if locked:
        columns[3].caption("Dropped by deduplication: it cannot be approved."
                           if detail.committed_version_id is None
                           else "Already in a dataset version: its decision is final.")


def _decide_one(status: review.Status, candidate_id: int) -> None:
    """Callback of a single action: this one candidate, no confirmation needed."""
    reviewer = str(st.session_state.get(REVIEWER_KEY, "")).strip()
    if not reviewer and status is not review.Status.PENDING:
        _flash("error", "Enter the reviewer's name first.")
        return
    changed = _change((candidate_id,), status, reviewer)
    if changed is None:
        return
    done = ("set back to pending" if status is review.Status.PENDING
            else f"{status.value} as {escape_markdown(reviewer)}")
    _flash("success" if changed else "info",
           f"Candidate #{candidate_id} {done}." if changed
           else f"Candidate #{candidate_id} was already {status.value}.")
    _reset_selection()


def _edit_candidate(detail: review.CandidateDetail) -> None:
    """Approve the candidate with an edited label instead of its source's ("slightly cooler
    morning" deserves a weaker temperature than "cool morning"): the answer editor, whose Save
    stores a curator label of the candidate's text and approves the candidate."""
    st.caption("A candidate inherits its source intent's label; edit it here and the commit "
               "takes your label instead.")
    try:
        found = labels.labels_of(state.reader(), detail.intent_text)
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    source = editor.StartingPoint(f"its source's label ({detail.source_text})",
                                  detail.inherited)
    editor.answer_editor(
        "aug_editor", subject=f"candidate {detail.candidate_id}",
        starts=editor.starting_points(found, None, [source]), reference=detail.inherited,
        reference_title="source's label", save_label="Approve with this label",
        author=str(st.session_state.get(REVIEWER_KEY, "")),
        save=partial(_approve_with_label, detail.candidate_id))


def _approve_with_label(candidate_id: int, request: editor.SaveRequest) -> str:
    label = review.approve_with_label(state.store(), candidate_id, request.answer,
                                      request.curator, request.note)
    _reset_selection()
    return (f"Approved candidate #{candidate_id} with label #{label.label_id} "
            f"({escape_markdown(label.source)}): the commit takes it instead of its source's.")


# Widths that fit the page beside the selection column (the texts wrap; the answer a candidate
# goes in with is in its detail, under the table).
_CANDIDATE_COLUMNS = {
    "id": st.column_config.NumberColumn(width=50, format="%d"),
    "candidate": st.column_config.TextColumn(width=210),
    "source intent": st.column_config.TextColumn(width=180),
    "label": st.column_config.TextColumn(
        width=100, help="the label the candidate goes in with: inherited (its source intent's) "
                        "or edited (a curator's, which the commit takes instead)"),
    "nearest neighbour": st.column_config.TextColumn(width=190),
    "similarity": st.column_config.NumberColumn(format="%.3f", width=75,
                                                help="cosine to the nearest neighbour"),
    "kind": st.column_config.TextColumn(width=70, help="the nearest neighbour is a training "
                                                       "intent, a test intent or a candidate"),
    "status": st.column_config.TextColumn(width=75),
}


def _candidate_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame([{
        "id": row["candidate_id"], "candidate": row["intent_text"],
        "source intent": row["source_text"],
        "label": f"edited: {row['edited_label']}" if row.get("edited_label") else "inherited",
        "nearest neighbour": row["nearest_text"],
        "similarity": row["nearest_similarity"], "kind": row["nearest_kind"],
        "status": row["status"], "drop reason": row["drop_reason"],
        "reviewed by": row["reviewed_by"], "in version": row["committed_version_id"],
    } for row in rows])
    frame["in version"] = frame["in version"].astype("Int64")
    return frame


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
