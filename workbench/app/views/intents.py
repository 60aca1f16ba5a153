"""Intents: search the logged intents by text (filter, sort and page; each page of the table is
one query with LIMIT/OFFSET plus one count) or by meaning (`workbench.app.meaning_search`: the
nearest intents by embedding, and the map of the intents to lasso a region and send it to the
label queue or to augmentation); open one to see every teacher output (each one's parameters,
rendered on a sample photo on request), which one is the ground truth per tool and why, its
labels, and the answer editor (`workbench.app.editor`: the ground truth on a sample photo,
edited into a curator's label)."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import streamlit as st

from pipelines import labels
from workbench.app import editor, meaning_search, state
from workbench.describe import describe_output
from workbench.errors import StoreBusyError, WorkbenchError
from workbench.render import SAMPLE_IMAGES
from workbench.report import TOOL_TITLES
from workbench.store import Store, requests
from workbench.store.requests import IntentFilter, IntentSort, ToolUse
from workbench.store.versions import (
    Split,
    current_version_id,
    ground_truth_choices,
    list_versions,
)
from workbench.tools import TOOLS, answer_from_json

PAGE_SIZES = (10, 25, 50, 100)
SORT_LABELS = {IntentSort.REQUESTS: "requests (most first)",
               IntentSort.EXPORT_RATE: "export rate (highest first)",
               IntentSort.LAST_SEEN: "last seen (newest first)",
               IntentSort.INTENT: "intent (A to Z)"}
SPLIT_LABELS = {Split.ALL: "any", Split.TRAIN: "train", Split.TEST: "test"}
USE_LABELS = {ToolUse.ANY: "any", ToolUse.USED: "used", ToolUse.UNUSED: "not used"}
WHEN = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")
ROW_PX = 35  # st.dataframe's row height: the table shows the whole page without scrolling
EMPTY = "-"  # an empty value in every table of the page (never "None")
MODES = {"text": "text (the words as typed)", "meaning": "meaning (nearest by embedding)"}
PER_REQUEST = "exports per request"
PER_REQUEST_HELP = (
    "A tool's exports divided by the requests that produced this output (requests with no "
    "export of any tool left out, as curation counts them). One request can be exported more "
    "than once, so this can exceed 1: 4 exports from 3 requests is 1.33. Per tool, the output "
    "with the most exports per request is the ground truth.")
EXPORT_RATE_HELP = "Requests with at least one export divided by all requests (at most 1)."
RENDER_KEY = "intents_render_output"     # which teacher output is rendered (1-based)
RENDER_HEIGHT = 260
WRAP_CHARS = 55    # characters a line of a wide dataframe text column holds, about
LINE_PX = 21       # a wrapped line's height in a dataframe cell


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

    mode = st.radio("Search by", list(MODES), format_func=MODES.__getitem__, horizontal=True,
                    key="intents_mode",
                    help="Text finds the words as typed. Meaning finds intents that say the same "
                         "in other words (b&w, monochrome, black and white), nearest first by "
                         "the cosine of their all-MiniLM-L6-v2 embeddings, and draws the map.")
    if mode == "meaning":
        keys, texts, version_id = meaning_search.render(current, versions, current_id)
        key = _chosen_intent(keys, texts)
    else:
        rows, version_id = _text_search(current, versions, current_id)
        key = _chosen_intent([row["intent_key"] for row in rows],
                             {row["intent_key"]: row["intent_text"] for row in rows})
    if key is not None:
        _detail(current, key, version_id)


def _text_search(current: Store, versions: dict[int, dict],
                 current_id: int | None) -> tuple[list[dict], int | None]:
    """The filters, the page of matching intents and its table; (rows, dataset version)."""
    filters, sort, reverse, page_column = _filters(versions, current_id)
    try:
        with current.session() as session:
            total = requests.count_intents(session, filters)
            size, page = _paging(page_column, total)
            rows = requests.intents_page(session, filters, sort, size, (page - 1) * size, reverse)
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(state.escape_markdown(str(error)))
        st.stop()
    _table(rows, total, page, size)
    return rows, filters.version_id


def _reset_page() -> None:
    st.session_state["intents_page"] = 1


def _filters(versions: dict[int, dict],
             current_id: int | None) -> tuple[IntentFilter, IntentSort, bool, Any]:
    """The filter and sort widgets (any change takes the table back to page 1), and the column
    where the page number goes once the total is known."""
    top = st.columns([3, 1, 1])
    search = top[0].text_input("Search intents", key="intents_search", on_change=_reset_page,
                               placeholder="a word or phrase, e.g. golden hour")
    ids = sorted(versions, reverse=True)
    version_id = meaning_search.version_choice(versions, current_id, top[1],
                                               on_change=_reset_page)
    split = top[2].selectbox("Split", list(SPLIT_LABELS), format_func=SPLIT_LABELS.__getitem__,
                             key="intents_split", on_change=_reset_page, disabled=not ids)
    middle = st.columns([2, 1, 1, 1, 1])
    low, high = middle[0].slider("Export rate (exported requests / requests)", 0.0, 1.0,
                                 (0.0, 1.0), step=0.05, key="intents_rate", on_change=_reset_page,
                                 help=EXPORT_RATE_HELP)
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
    noun = "intent matches" if total == 1 else "intents match"
    st.caption(f"**{total:,}** {noun} · showing {first:,} to "
               f"{first + len(rows) - 1 if rows else 0:,} · select a row to open it")
    frame = pd.DataFrame([{
        "intent": row["intent_text"], "requests": row["request_count"],
        "exported": row["exported_count"], "export rate": row["export_rate"],
        "outputs": row["output_count"], "last seen": row["last_seen_at"],
        "split": row["split"] or EMPTY,
        "ground truth uses": tools_text(row),
    } for row in rows], columns=["intent", "requests", "exported", "export rate", "outputs",
                                 "last seen", "split", "ground truth uses"])
    event = st.dataframe(frame, hide_index=True, key="intents_table", on_select="rerun",
                         selection_mode="single-row", height=ROW_PX * (len(frame) + 1) + 3,
                         column_config={
                             "intent": st.column_config.TextColumn(width="large"),
                             "export rate": st.column_config.ProgressColumn(
                                 "export rate", format="%.2f", min_value=0.0, max_value=1.0,
                                 help=EXPORT_RATE_HELP),
                             "last seen": WHEN})
    _open_selected_row(list(event.selection.rows), [row["intent_key"] for row in rows])


def tools_text(row: dict) -> str:
    """The tools an intent's ground truth uses ('Adjust, Filter', 'no tool'); '-' when the
    intent is not in the dataset version."""
    if row["uses_adjust"] is None:
        return EMPTY
    used = [TOOL_TITLES[tool] for tool in TOOLS if row[f"uses_{tool}"]]
    return ", ".join(used) or "no tool"


def _open_selected_row(selected: list[int], keys: list[str]) -> None:
    """A row newly clicked in the table opens that intent in the detail below (a selection
    that merely persists, e.g. after paging or picking another intent, changes nothing)."""
    marker = [keys[i] for i in selected if i < len(keys)]
    if selected and marker and st.session_state.get("_intents_selected") != selected:
        st.session_state["intents_open"] = marker[0]
    st.session_state["_intents_selected"] = selected


def _chosen_intent(keys: list[str], texts: dict[str, str]) -> str | None:
    """The intent whose detail is open: picked here or by clicking a row of the table or of
    the search results; it stays open while paging or searching (then listed as well)."""
    labels: dict[str | None, str] = {None: "—"}
    labels.update({key: texts.get(key, key) for key in keys})
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
    cols[2].metric("Export rate", f"{detail['export_rate']:.2f}", help=EXPORT_RATE_HELP)
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
        _ground_truth(detail, choices, outputs)
    st.markdown("**Candidates per tool** (today's logs, ranked by the rule; ✓ = the version's "
                "ground truth)")
    for tab, tool in zip(st.tabs([TOOL_TITLES[t] for t in TOOLS]), TOOLS, strict=True):
        tab.dataframe(pd.DataFrame([{
            "rank": row["rank"], "output": describe_output(tool, row["output"]),
            "exports": row["exports"], "requests": row["n_requests"],
            PER_REQUEST: row["export_rate"], "latest": row["latest"],
            "ground truth": "✓" if row["ground_truth"] else EMPTY,
        } for row in candidates[tool]], columns=["rank", "output", "exports", "requests",
                                                  PER_REQUEST, "latest", "ground truth"]),
            hide_index=True, key=f"intents_candidates_{tool}",
            row_height=wrapped_row_height([describe_output(tool, row["output"])
                                           for row in candidates[tool]]), column_config={
                "output": st.column_config.TextColumn(width="large"),
                PER_REQUEST: st.column_config.NumberColumn(format="%.2f", help=PER_REQUEST_HELP),
                "latest": WHEN})
    _teacher_outputs(outputs, choices is not None)
    _labels_section(detail, version_id)


def _ground_truth(detail: dict, choices: dict, outputs: list[dict]) -> None:
    st.markdown("**Ground truth per tool, and why**")
    rows = []
    for tool in TOOLS:
        choice = choices["tools"].get(tool, {})
        rows.append({"tool": TOOL_TITLES[tool],
                     "ground truth": describe_output(tool, detail[tool]),
                     PER_REQUEST: _number(choice.get("export_rate"), "{:.2f}"),
                     "exports": _number(choice.get("exports")),
                     "requests": _number(choice.get("n_requests")),
                     "candidates": _number(choice.get("n_candidates"))})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="intents_ground_truth",
                 row_height=wrapped_row_height([row["ground truth"] for row in rows]),
                 column_config={"ground truth": st.column_config.TextColumn(width="large"),
                                PER_REQUEST: st.column_config.TextColumn(help=PER_REQUEST_HELP)})
    st.markdown(per_tool_explanation(outputs))
    with st.expander("Ground truth as stored (canonical JSON)"):
        st.json({tool: None if detail[tool] is None else json.loads(detail[tool])
                 for tool in TOOLS}, expanded=True)
    if choices["recorded_in"] is None:
        st.caption("No record of the choice was kept for this version.")
    elif choices["recorded_in"] != detail["version_id"]:
        st.caption(f"Chosen when version {choices['recorded_in']} was curated; version "
                   f"{detail['version_id']} carries its rows over.")
    st.caption(f"Rule: {requests.GROUND_TRUTH_RULE}")


def wrapped_row_height(texts: list[str]) -> int | None:
    """A row height that shows the longest of `texts` whole in a wide text column (st.dataframe
    wraps text only in rows taller than 64 px); None (the default height) when one line
    holds them all."""
    lines = max((math.ceil(len(text) / WRAP_CHARS) for text in texts), default=1)
    return None if lines <= 1 else max(70, LINE_PX * lines + 8)


def _number(value: Any, form: str = "{:,}") -> str:
    """A number as the table shows it; '-' where there is none."""
    return EMPTY if value is None else form.format(value)


def per_tool_explanation(outputs: list[dict]) -> str:
    """In words (Markdown): each tool's ground truth is chosen by that tool's own exports, and
    whether the three together are one answer the teacher gave (which output) or a combination
    it never produced as a whole (which outputs each tool comes from)."""
    general = ("Each tool's ground truth is chosen **on its own**, by that tool's exports: the "
               "Adjust by how often the adjust call was exported, the Filter by the filter's "
               "exports, and so on. So the three together may be a combination the teacher "
               "never produced as a whole.")
    whole = [i for i, row in enumerate(outputs, 1)
             if all(row[f"ground_truth_{tool}"] for tool in TOOLS)]
    if whole:
        return (f"{general} Here it did: teacher output {whole[0]} below is this ground truth "
                "as a whole.")
    sources = []
    for tool in TOOLS:
        found = [str(i) for i, row in enumerate(outputs, 1) if row[f"ground_truth_{tool}"]]
        sources.append(f"{TOOL_TITLES[tool]} from output {' or '.join(found)}" if found
                       else f"{TOOL_TITLES[tool]} from no output in today's logs")
    return (f"{general} **That is the case here**: no teacher output of this intent is this "
            f"ground truth as a whole ({'; '.join(sources)}).")


def _teacher_outputs(outputs: list[dict], in_version: bool) -> None:
    """Every distinct teacher output, one bordered block each with its parameters per tool (a
    static table that wraps, so nothing scrolls sideways), and beside them the chosen output
    rendered next to the original photo."""
    st.markdown("**Every teacher output** (the three tool calls one request got together)")
    if not outputs:
        st.caption("No teacher output in today's logs.")
        return
    left, right = st.columns([3, 2], gap="medium")
    with left:
        for number, row in enumerate(outputs, 1):
            with st.container(border=True, key=f"intents_output_{number}"):
                st.markdown(output_heading(number, row, in_version))
                # st.table wraps long text (a dataframe would cut it off) but reads its cells
                # as Markdown, so each one is escaped ("-" would become a bullet).
                st.table(pd.DataFrame(output_rows(row, in_version)).set_index("tool")
                         .map(state.escape_markdown))
    with right:
        _render_output(outputs)
    st.caption(f"{PER_REQUEST.capitalize()} per tool: that tool's exports / the output's "
               "requests with any export, as curation counts them; requests with no export "
               "at all do not count.")


def output_heading(number: int, row: dict, in_version: bool) -> str:
    """'**Output 2** · 3 requests, 2 with an export · ground truth for Adjust, Filter'."""
    requests_ = f"{row['requests']:,} request{'s' if row['requests'] != 1 else ''}"
    text = f"**Output {number}** · {requests_}, {row['exported_requests']:,} with an export"
    if in_version:
        tools = [TOOL_TITLES[t] for t in TOOLS if row[f"ground_truth_{t}"]]
        text += (f" · ground truth for {', '.join(tools)}" if tools
                 else " · the ground truth of no tool")
    return text


def output_rows(row: dict, in_version: bool) -> list[dict[str, str]]:
    """One teacher output per tool: its parameters in words, exports, exports per request and
    (with a version) whether it is that tool's ground truth; '-' where a value is empty."""
    return [{"tool": TOOL_TITLES[tool],
             "parameters": describe_output(tool, row[tool]),
             "exports": _number(row[f"exports_{tool}"]),
             PER_REQUEST: _number(row[f"export_rate_{tool}"], "{:.2f}"),
             **({"ground truth": "✓" if row[f"ground_truth_{tool}"] else EMPTY}
                if in_version else {})} for tool in TOOLS]


def _render_output(outputs: list[dict]) -> None:
    """The chosen teacher output on a sample photo, beside the original (cached per photo and
    output, so going back to an output costs nothing)."""
    numbers = list(range(1, len(outputs) + 1))
    if st.session_state.get(RENDER_KEY) not in numbers:
        st.session_state[RENDER_KEY] = 1            # another intent: start from its first output
    number = st.radio("Render", numbers, format_func=lambda n: f"output {n}", horizontal=True,
                      key=RENDER_KEY, help="Pick a teacher output to see it on a sample photo.")
    photo = st.selectbox("Sample photo", SAMPLE_IMAGES, key="intents_render_photo")
    row = outputs[int(number) - 1]
    st.image(_output_strip(photo, (row["adjust"], row["selective_adjust"], row["filter"]),
                           f"output {number}"),
             caption=f"original and teacher output {number}", width="stretch")


@st.cache_data(max_entries=64, show_spinner="Rendering…")
def _output_strip(photo: str, output: tuple[str | None, str | None, str | None],
                  label: str) -> bytes:
    """PNG of the sample photo and the output rendered on it, side by side with captions."""
    from workbench.render import ComparisonLabels, comparison, fit_image, load_image, to_png_bytes

    image = fit_image(load_image(photo), 640)
    return to_png_bytes(comparison(image, answer_from_json(*output), None, RENDER_HEIGHT,
                                   ComparisonLabels(teacher=label)))


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
