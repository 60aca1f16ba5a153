"""Intents: search, filter, sort and page the logged intents; open one to see every teacher
output, which one is the ground truth per tool and why, its labels, and the answer editor
(`workbench.app.editor`: the ground truth on a sample photo, edited into a curator's label).
Each page of the table is one query (LIMIT/OFFSET) plus one count."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import streamlit as st

from pipelines import labels
from workbench.app import editor, state
from workbench.describe import describe_output
from workbench.errors import StoreBusyError, WorkbenchError
from workbench.report import TOOL_TITLES
from workbench.store import Store, requests
from workbench.store.requests import IntentFilter, IntentSort, ToolUse
from workbench.store.versions import (
    Split,
    current_version_id,
    ground_truth_choices,
    list_versions,
)
from workbench.tools import TOOLS

PAGE_SIZES = (10, 25, 50, 100)
SORT_LABELS = {IntentSort.REQUESTS: "requests (most first)",
               IntentSort.EXPORT_RATE: "export rate (highest first)",
               IntentSort.LAST_SEEN: "last seen (newest first)",
               IntentSort.INTENT: "intent (A to Z)"}
SPLIT_LABELS = {Split.ALL: "any", Split.TRAIN: "train", Split.TEST: "test"}
USE_LABELS = {ToolUse.ANY: "any", ToolUse.USED: "used", ToolUse.UNUSED: "not used"}
RATE = st.column_config.NumberColumn(format="%.2f")
WHEN = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")
ROW_PX = 35  # st.dataframe's row height: the table shows the whole page without scrolling


def render() -> None:
    st.title("Intents")
    current = state.require_database()
    if state.is_synthetic(current):
        st.warning(state.SYNTHETIC_NOTE, icon=":material/science:")
    with current.session() as session:
        logged = requests.count_intents(session, IntentFilter())
        versions = {row["version_id"]: row for row in list_versions(session)}
        current_id = current_version_id(session)
    if not logged:
        st.info("No intents yet: ingest logs with `workbench ingest FILE`, or build the synthetic "
                "demo with `workbench demo`.")
        st.stop()
    if not versions:
        st.info("No dataset version yet, so there is no split or ground truth to show: run "
                "`workbench curate` to make one from the logs. Browsing works meanwhile.")

    filters, sort, reverse, page_column = _filters(versions, current_id)
    try:
        with current.session() as session:
            total = requests.count_intents(session, filters)
            size, page = _paging(page_column, total)
            rows = requests.intents_page(session, filters, sort, size, (page - 1) * size, reverse)
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(str(error))
        st.stop()
    _table(rows, total, page, size)
    key = _chosen_intent(rows)
    if key is not None:
        _detail(current, key, filters.version_id)


def _reset_page() -> None:
    st.session_state["intents_page"] = 1


def _filters(versions: dict[int, dict],
             current_id: int | None) -> tuple[IntentFilter, IntentSort, bool, Any]:
    """The filter and sort widgets (any change takes the table back to page 1), and the column
    where the page number goes once the total is known."""
    top = st.columns([3, 1, 1])
    search = top[0].text_input("Search intents", key="intents_search", on_change=_reset_page,
                               placeholder="a word or phrase, e.g. golden hour")
    ids: list[int | None] = [*sorted(versions, reverse=True)]
    version_id = top[1].selectbox(
        "Dataset version", ids or [None], key="intents_version", on_change=_reset_page,
        index=ids.index(current_id) if current_id in ids else 0, disabled=not ids,
        format_func=lambda v: "none yet" if v is None else
        f"{v}{' (current)' if v == current_id else ''} · {versions[v]['created_by']}",
        help="Split, ground-truth tools and the detail's ground truth come from this version.")
    split = top[2].selectbox("Split", list(SPLIT_LABELS), format_func=SPLIT_LABELS.__getitem__,
                             key="intents_split", on_change=_reset_page, disabled=not ids)
    middle = st.columns([2, 1, 1, 1, 1])
    low, high = middle[0].slider("Export rate (exported requests / requests)", 0.0, 1.0,
                                 (0.0, 1.0), step=0.05, key="intents_rate", on_change=_reset_page)
    min_requests = middle[1].number_input("At least this many requests", min_value=1, step=1,
                                          key="intents_min_requests", on_change=_reset_page)
    tools = {}
    for column, tool in zip(middle[2:], TOOLS, strict=True):
        tools[tool] = column.selectbox(
            f"{TOOL_TITLES[tool]} in ground truth", list(USE_LABELS),
            format_func=USE_LABELS.__getitem__, key=f"intents_tool_{tool}",
            on_change=_reset_page, disabled=not ids)
    bottom = st.columns([2, 1, 1, 1])
    sort = bottom[0].selectbox("Sort by", list(SORT_LABELS), format_func=SORT_LABELS.__getitem__,
                               key="intents_sort", on_change=_reset_page)
    bottom[1].container(height=28, border=False)  # lines the checkbox up with the inputs
    reverse = bottom[1].checkbox("Reverse order", key="intents_reverse", on_change=_reset_page)
    bottom[2].selectbox("Rows per page", PAGE_SIZES, index=PAGE_SIZES.index(25),
                        key="intents_page_size", on_change=_reset_page)
    return IntentFilter(search=search, min_export_rate=low, max_export_rate=high,
                        min_requests=int(min_requests), version_id=version_id,
                        split=Split(split), tools=tools), IntentSort(sort), reverse, bottom[3]


def _paging(column: Any, total: int) -> tuple[int, int]:
    """(page size, page number): the page number widget, clamped to the pages there are."""
    size = int(st.session_state.get("intents_page_size", 25))
    pages = max(1, math.ceil(total / size))
    if st.session_state.get("intents_page", 1) > pages:
        st.session_state["intents_page"] = pages
    page = column.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1,
                               key="intents_page")
    return size, int(page)


def _table(rows: list[dict], total: int, page: int, size: int) -> None:
    first = (page - 1) * size + 1 if rows else 0
    st.caption(f"**{total:,}** intents match · showing {first:,} to "
               f"{first + len(rows) - 1 if rows else 0:,} · select a row to open it")
    frame = pd.DataFrame([{
        "intent": row["intent_text"], "requests": row["request_count"],
        "exported": row["exported_count"], "export rate": row["export_rate"],
        "outputs": row["output_count"], "last seen": row["last_seen_at"],
        "split": row["split"] or "—",
        "ground truth uses": _tools_text(row),
    } for row in rows], columns=["intent", "requests", "exported", "export rate", "outputs",
                                 "last seen", "split", "ground truth uses"])
    event = st.dataframe(frame, hide_index=True, key="intents_table", on_select="rerun",
                         selection_mode="single-row", height=ROW_PX * (len(frame) + 1) + 3,
                         column_config={
                             "intent": st.column_config.TextColumn(width="large"),
                             "export rate": st.column_config.ProgressColumn(
                                 "export rate", format="%.2f", min_value=0.0, max_value=1.0),
                             "last seen": WHEN})
    _open_selected_row(list(event.selection.rows), [row["intent_key"] for row in rows])


def _tools_text(row: dict) -> str:
    if row["uses_adjust"] is None:
        return "—"
    used = [TOOL_TITLES[tool] for tool in TOOLS if row[f"uses_{tool}"]]
    return ", ".join(used) or "no tool"


def _open_selected_row(selected: list[int], keys: list[str]) -> None:
    """A row newly clicked in the table opens that intent in the detail below (a selection
    that merely persists, e.g. after paging or picking another intent, changes nothing)."""
    marker = [keys[i] for i in selected if i < len(keys)]
    if selected and marker and st.session_state.get("_intents_selected") != selected:
        st.session_state["intents_open"] = marker[0]
    st.session_state["_intents_selected"] = selected


def _chosen_intent(rows: list[dict]) -> str | None:
    """The intent whose detail is open: picked here or by clicking a row; it stays open while
    paging (then listed as well)."""
    labels: dict[str | None, str] = {None: "—"}
    labels.update({row["intent_key"]: row["intent_text"] for row in rows})
    opened = st.session_state.get("intents_open")
    if opened is not None and opened not in labels:
        labels[opened] = opened
    return st.selectbox("Open an intent", list(labels), format_func=labels.__getitem__,
                        key="intents_open")


def _detail(current: Store, key: str, version_id: int | None) -> None:
    with current.session() as session:
        detail = requests.intent_detail(session, key, version_id)
        if detail is None:
            st.error("That intent is no longer in the database; pick another one.")
            st.stop()
        outputs = requests.teacher_outputs(session, key, version_id)
        candidates = requests.tool_candidates(session, key, version_id)
        choices = (ground_truth_choices(session, key, version_id)
                   if version_id is not None and detail["in_version"] else None)

    st.divider()
    st.subheader("Intent")
    st.code(detail["intent_text"], language=None)
    cols = st.columns(4)
    cols[0].metric("Requests", f"{detail['request_count']:,}")
    cols[1].metric("Exported requests", f"{detail['exported_count']:,}")
    cols[2].metric("Export rate", f"{detail['export_rate']:.2f}")
    cols[3].metric("Distinct outputs", f"{detail['output_count']:,}")
    st.caption(f"First seen {detail['first_seen_at']:%Y-%m-%d %H:%M}, last seen "
               f"{detail['last_seen_at']:%Y-%m-%d %H:%M} (UTC).")
    if version_id is None:
        st.info("No dataset version yet, so no ground truth: run `workbench curate`.")
    elif not detail["in_version"]:
        st.info(f"Not in dataset version {version_id}: curation dropped it (none of its requests "
                "was exported), or its requests arrived after that version was made.")
    else:
        split = SPLIT_LABELS[Split(detail["split"])]
        st.markdown(f"Dataset version **{version_id}**, **{split}** split.")

    if choices is not None:
        _ground_truth(detail, choices)
    st.markdown("**Candidates per tool** (today's logs, ranked by the rule; ✓ = the version's "
                "ground truth)")
    for tab, tool in zip(st.tabs([TOOL_TITLES[t] for t in TOOLS]), TOOLS, strict=True):
        tab.dataframe(pd.DataFrame([{
            "rank": row["rank"], "output": describe_output(tool, row["output"]),
            "exports": row["exports"], "requests": row["n_requests"],
            "export rate": row["export_rate"], "latest": row["latest"],
            "ground truth": "✓" if row["ground_truth"] else "",
        } for row in candidates[tool]], columns=["rank", "output", "exports", "requests",
                                                  "export rate", "latest", "ground truth"]),
            hide_index=True, key=f"intents_candidates_{tool}", column_config={
                "output": st.column_config.TextColumn(width="large"), "export rate": RATE,
                "latest": WHEN})

    st.markdown("**Every teacher output** (the three tool calls together)")
    st.dataframe(pd.DataFrame([_output_row(row) for row in outputs]), hide_index=True,
                 key="intents_outputs",
                 column_config={f"rate {TOOL_TITLES[t]}": RATE for t in TOOLS})
    st.caption("Export rate per tool = that tool's exports / requests with any export, as "
               "curation counts them; requests with no export at all do not count.")

    _labels_section(detail, version_id)


def _ground_truth(detail: dict, choices: dict) -> None:
    st.markdown("**Ground truth per tool, and why**")
    rows = []
    for tool in TOOLS:
        choice = choices["tools"].get(tool, {})
        rows.append({"tool": TOOL_TITLES[tool],
                     "ground truth": describe_output(tool, detail[tool]),
                     "export rate": choice.get("export_rate"), "exports": choice.get("exports"),
                     "requests": choice.get("n_requests"),
                     "candidates": choice.get("n_candidates")})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="intents_ground_truth",
                 column_config={"ground truth": st.column_config.TextColumn(width="large"),
                                "export rate": RATE})
    with st.expander("Ground truth as stored (canonical JSON)"):
        st.json({tool: None if detail[tool] is None else json.loads(detail[tool])
                 for tool in TOOLS}, expanded=True)
    if choices["recorded_in"] is None:
        st.caption("No record of the choice was kept for this version.")
    elif choices["recorded_in"] != detail["version_id"]:
        st.caption(f"Chosen when version {choices['recorded_in']} was curated; version "
                   f"{detail['version_id']} carries its rows over.")
    st.caption(f"Rule: {requests.GROUND_TRUTH_RULE}")


def _output_row(row: dict) -> dict[str, Any]:
    out: dict[str, Any] = {"requests": row["requests"],
                           "exported requests": row["exported_requests"]}
    for tool in TOOLS:
        out[f"exports {TOOL_TITLES[tool]}"] = row[f"exports_{tool}"]
        out[f"rate {TOOL_TITLES[tool]}"] = row[f"export_rate_{tool}"]
    out["ground truth for"] = ", ".join(TOOL_TITLES[t] for t in TOOLS
                                        if row[f"ground_truth_{t}"]) or "—"
    out.update({TOOL_TITLES[tool]: describe_output(tool, row[tool]) for tool in TOOLS})
    return out


def _labels_section(detail: dict, version_id: int | None) -> None:
    """The intent's labels (every answer it was given, with its source), and the editor that
    saves a curator's label, prefilled from the version's ground truth."""
    st.divider()
    st.subheader("Labels")
    store = state.reader()          # reads; Save writes through its action (state.store())
    text = detail["intent_text"]
    try:
        found = labels.labels_of(store, text, version_id)
        current = (labels.current_answer(store, text, version_id)
                   if version_id is not None and detail["in_version"] else None)
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(state.escape_markdown(str(error)))
        return
    editor.label_table(found, "intents_labels")
    editor.curator_input()
    st.markdown("**Edit the answer** (a new curator label; the ground truth changes when a "
                "version is committed from the labels, on the Labels page)")
    editor.answer_editor(
        "intent_editor", subject=f"{detail['intent_key']}@{version_id}",
        starts=editor.starting_points(found, current),
        reference=None if current is None else current.answer,
        reference_title="current ground truth" if current is not None else "no ground truth",
        save=editor.save_curator_label(text))
