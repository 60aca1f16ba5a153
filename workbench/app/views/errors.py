"""Errors: where a student disagrees with the teacher (SPEC 5, 6).

Pick an evaluation of a student run (test split, or the training split a mining round scored);
per tool, its intents worst first (the lowest signed cosine, wrong filters), paged; one intent's
teacher and student parameters side by side with renders of both, and the answer editor to save
a curator's label for it (from the ground truth or the student's answer); the slices of a
mining evaluation (its training intents clustered by meaning and scored with the paper's
metrics, worst first: open one to list its intents, send it to augmentation); and a selection of
intents sent to the Augmentation page.

Session state it writes for the Augmentation page (see `workbench.app.state`): SOURCES_KEY, the
intent keys sent to augmentation, and SOURCES_VERSION_KEY, the dataset version they come from.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from pipelines import labels, slices
from workbench.app import editor, state
from workbench.app.state import SOURCES_KEY, SOURCES_VERSION_KEY, escape_markdown
from workbench.describe import describe_output, parameter_table
from workbench.errors import StoreBusyError, WorkbenchError
from workbench.render import SAMPLE_IMAGES
from workbench.report import TOOL_TITLES
from workbench.store.evaluations import (
    count_tool_errors,
    evaluated_intent,
    filter_confusions,
    ranked_intents,
    student_evaluations,
    tool_errors,
)
from workbench.tools import TOOLS, Answer

PAGE_SIZE = 25
KINDS = {"run": "Test split (student evaluations)", "mining": "Training split (mining)"}
INTENT_KEY = "errors_intent"                 # the intent compared in detail
SEND_KEY = "errors_send_selection"           # the intents picked to send
STRIP_HEIGHT = 300
FILTER_WIDTH = 150                           # px: the longest filter name, whole
LARGE_SIDE = 1024                            # px, the enlarged renders' longer side
ENLARGE_KEY = "errors_enlarge"               # the expander with the enlarged renders
SLICE_KEY = "errors_slice"                   # the rank of the slice opened
SLICE_EXAMPLES = 5


def render() -> None:
    st.title("Errors")
    current = state.require_database()
    st.caption("Where the student disagrees with the teacher: per tool, the intents with the "
               "lowest cosine first (signed: an opposite answer, -1, before an unrelated one, "
               "0; the gap is the tool's mean cosine minus this intent's) and the wrong "
               "filters. Flagged intents are the ones an augmentation round would paraphrase.")
    kind = st.radio("Intents", list(KINDS), format_func=KINDS.__getitem__, horizontal=True,
                    key="errors_kind")
    try:
        with current.session() as session:
            evaluations = student_evaluations(session, kind)
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        st.stop()
    if not evaluations:
        if kind == "run":
            st.info("No evaluation of a student run yet. Train a student with "
                    "`workbench train --student heads`, then score it on the test split with "
                    "`workbench evaluate --run`.")
        else:
            st.info("No mining evaluation yet: an augmentation round scores a run on its own "
                    "training split (`workbench augment --run RUN`, or the Augmentation page).")
        st.stop()

    by_id = {e["evaluation_id"]: e for e in evaluations}
    if st.session_state.get("errors_evaluation") not in by_id:   # the other kind's, or gone
        st.session_state.pop("errors_evaluation", None)
    evaluation_id = st.selectbox("Evaluation", list(by_id),
                                 format_func=lambda i: state.evaluation_label(by_id[i]),
                                 key="errors_evaluation")
    evaluation = by_id[evaluation_id]
    _summary(evaluation)

    try:
        with current.session() as session:
            ranked = ranked_intents(session, evaluation_id)
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        st.stop()
    intent_rank = {row["intent_key"]: rank for rank, row in enumerate(ranked)}
    tabs = st.tabs([TOOL_TITLES[tool] for tool in TOOLS])
    for tool, tab in zip(TOOLS, tabs, strict=True):
        with tab:
            _tool_tab(current, evaluation, tool, intent_rank)
    if not ranked:
        st.info("This evaluation scored no intent.")
        st.stop()
    _slices(current, evaluation)
    _compare(current, evaluation, ranked)
    _send(evaluation, ranked)


def _summary(evaluation: dict[str, Any]) -> None:
    summary = evaluation["summary"]
    means = summary.get("mean_cosine", {})
    flagged = summary.get("flagged", {})
    columns = st.columns(4)
    columns[0].metric("Intents", f"{evaluation['n_intents']:,}")
    for column, tool in zip(columns[1:], TOOLS, strict=True):
        mean = means.get(tool)
        detail = "" if mean is None else f" · mean cosine {mean:.2f}"
        column.metric(f"Flagged: {TOOL_TITLES[tool]}", f"{flagged.get(tool, 0):,}",
                      help=f"intents flagged for {TOOL_TITLES[tool]}{detail}", delta=None)
    if evaluation["split"] == "test":
        st.caption("Test intents: to read the errors. The Augmentation page refuses them, since "
                   "paraphrasing test intents would leak into evaluation; to pick intents to "
                   "augment, choose *Training split (mining)* above.")
    else:
        st.caption("Training intents of the run's dataset version: select some below and send "
                   "them to the Augmentation page.")


def _tool_tab(current: Any, evaluation: dict[str, Any], tool: str,
              intent_rank: dict[str, int]) -> None:
    evaluation_id = evaluation["evaluation_id"]
    flagged_key, page_key = f"errors_flagged_{tool}", f"errors_page_{tool}"
    left, right = st.columns([3, 1])
    only_flagged = left.checkbox("Only flagged intents", key=flagged_key)
    try:
        ordered = _worst_first_rows(str(current.path), evaluation_id,
                                    str(evaluation["created_at"]), tool, only_flagged)
        with current.session() as session:
            confusions = filter_confusions(session, evaluation_id) \
                if tool == "filter" else []
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    ordered = worst_first(ordered, tool, intent_rank)
    total = len(ordered)
    pages = max(1, -(-total // PAGE_SIZE))
    if st.session_state.get(page_key, 1) > pages:   # fewer rows than before
        st.session_state[page_key] = pages
    page = int(right.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1,
                                  key=page_key))
    rows = ordered[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    if not rows:
        st.info("No intent here." if only_flagged else "This evaluation has no scores.")
        return
    frame = _tool_frame(rows, tool)
    keys = [row["intent_key"] for row in rows]
    st.dataframe(frame, hide_index=True, key=f"errors_table_{tool}_{evaluation_id}_{page}",
                 on_select=partial(_inspect, f"errors_table_{tool}_{evaluation_id}_{page}", keys),
                 selection_mode="single-row", column_config=_tool_columns(tool))
    order = ("wrong filters first; among them a filter used on one side only first, then "
             "the largest intensity error" if tool == "filter"
             else "lowest cosine first (the most opposed answers, i.e. the largest gap); at "
                  "the same cosine, a tool-selection mismatch (used on one side only) first")
    first = (page - 1) * PAGE_SIZE + 1
    st.caption(f"Intents {first}–{first + len(rows) - 1} of {total:,}, {order}; then the "
               "intents wrong on more tools, with the larger gap, as in *Intent (worst "
               "first)* below. Select a row to compare it below.")
    if tool == "filter":
        st.markdown("**Most common wrong filters** (teacher → student; None: no filter)")
        if confusions:
            st.dataframe(pd.DataFrame(confusions), hide_index=True,
                         key=f"errors_confusions_{evaluation_id}")
        else:
            st.caption("No wrong filter in this evaluation.")


@st.cache_data(max_entries=32, show_spinner="Ordering the intents…")
def _worst_first_rows(db: str, evaluation_id: int, created_at: str, tool: str,
                      only_flagged: bool) -> list[dict[str, Any]]:
    """Every row of one tool of an evaluation (`tool_errors`), once per evaluation: evaluations
    never change, and the database path and the evaluation's time tell a rebuilt database's
    evaluation of the same id apart."""
    with state.reader().session() as session:
        total = count_tool_errors(session, evaluation_id, tool, only_flagged)
        return tool_errors(session, evaluation_id, tool, only_flagged=only_flagged,
                           limit=max(total, 1))


def worst_first(rows: list[dict[str, Any]], tool: str,
                intent_rank: dict[str, int]) -> list[dict[str, Any]]:
    """One tool's rows, worst first, with ties broken by what a curator would fix first.

    adjust, selective_adjust: the lowest signed cosine first, so an opposite answer (-1) comes
    before an unrelated one (0); within one evaluation that is the largest cosine gap. Many
    intents share a cosine (every intent where only one side used the tool scores 0), so at
    the same cosine: a tool-selection mismatch (the tool used on one side only: a wrong
    decision, not only wrong values) first; then the intent's rank over all three tools
    (`intent_rank`, 0 = worst: flagged by more tools, then the larger gap; `ranked_intents`'
    order); then the intent. filter: wrong filters first; among them one used on one side only
    first, then the largest intensity error; then the intent's rank, then the intent."""
    def number(value: float | None, missing: float) -> float:
        return missing if value is None else float(value)

    def key(row: dict[str, Any]) -> tuple:
        mismatch = bool(row["teacher_used"]) != bool(row["student_used"])
        tail = (intent_rank.get(row["intent_key"], len(intent_rank)), str(row["intent_text"]),
                row["intent_key"])
        if tool == "filter":
            return (not row["flagged"], not mismatch,
                    -number(row["intensity_error"], float("-inf")), *tail)
        return (number(row["cosine"], float("inf")), not mismatch, *tail)

    return sorted(rows, key=key)


def _tool_frame(rows: list[dict[str, Any]], tool: str) -> pd.DataFrame:
    if tool == "filter":
        names = {"intent_text": "intent", "teacher_filter": "teacher filter",
                 "student_filter": "student filter", "teacher_intensity": "teacher intensity",
                 "student_intensity": "student intensity", "intensity_error": "intensity error",
                 "flagged": "flagged"}      # a filter name of None says a side used none
    else:
        names = {"intent_text": "intent", "teacher_used": "teacher used",
                 "student_used": "student used", "cosine": "cosine", "cosine_gap": "gap",
                 "flagged": "flagged"}
    frame = pd.DataFrame(rows)[list(names)].rename(columns=names)
    for column in ("teacher intensity", "student intensity", "intensity error"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame


def _tool_columns(tool: str) -> dict[str, Any]:
    if tool == "filter":
        # Filter names whole ("vintage_Kodachrome"): fixed widths, not cut to fit the page.
        return {"intent": st.column_config.TextColumn(width=230),
                "teacher filter": st.column_config.TextColumn(width=FILTER_WIDTH),
                "student filter": st.column_config.TextColumn(width=FILTER_WIDTH),
                "teacher intensity": st.column_config.NumberColumn("teacher int.", width=90),
                "student intensity": st.column_config.NumberColumn("student int.", width=90),
                "intensity error": st.column_config.NumberColumn(
                    "int. error", width=80, help="|student − teacher| intensity, when both "
                                                 "used a filter"),
                "flagged": st.column_config.CheckboxColumn(width=70)}
    return {"intent": st.column_config.TextColumn(width="large"),
            "cosine": st.column_config.NumberColumn(format="%.3f"),
            "gap": st.column_config.NumberColumn(format="%+.3f")}


def _inspect(table_key: str, keys: list[str]) -> None:
    """A row selected in a tool's table becomes the intent compared below."""
    selection = st.session_state.get(table_key)
    rows = list(getattr(getattr(selection, "selection", None), "rows", None) or [])
    if rows and rows[0] < len(keys):
        st.session_state[INTENT_KEY] = keys[rows[0]]


# ---------------------------------------------------------------------------- slices

def _slices(current: Any, evaluation: dict[str, Any]) -> None:
    """The slices of a mining evaluation: a table worst first; one slice opened lists its
    intents (a row selected is compared below) and can be sent to augmentation."""
    st.subheader("Slices")
    if evaluation["kind"] != "mining":
        st.caption("Slices cluster a run's training intents: choose *Training split (mining)* "
                   "above to see them.")
        return
    left, right, _ = st.columns([1, 1, 2])
    clusters = int(left.number_input(
        "Slices (k, 0 = automatic)", min_value=0, max_value=200, value=0, step=1,
        key="errors_slices_k", help="k-means clusters; automatic: round(sqrt(n/2)) of the n "
                                    "training intents, within 2 to 60"))
    gap = float(right.number_input(
        "Flag at this gap", min_value=0.0, max_value=1.0, value=slices.DEFAULT_GAP, step=0.01,
        format="%.2f", key="errors_slices_gap",
        help="a slice is flagged when its Overall is at least this below the student's on the "
             "whole training split"))
    if clusters == 1:
        st.warning("Slices need at least 2 clusters (0: automatic).")
        return
    try:
        found = _computed_slices(str(current.path), evaluation["evaluation_id"],
                                 str(evaluation["created_at"]), clusters or None, gap)
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    student = state.score(found.student_overall)
    flagged = [one for one in found.slices if one.flagged]
    st.caption(f"{found.n_intents:,} training intents in {len(found.slices)} slices (k-means "
               f"on their embeddings), each scored with the paper's metrics. The student's "
               f"Overall on the whole split: {student}; {len(flagged)} slice(s) "
               f"({found.n_flagged_intents:,} intents) are {gap:.2f} or more below it "
               "(flagged). Select a row to open the slice.")
    ranks = [one.rank for one in found.slices]
    table_key = f"errors_slices_table_{evaluation['evaluation_id']}_{found.k}"
    st.dataframe(slices_frame(found.slices), hide_index=True, key=table_key,
                 on_select=partial(_open_slice, table_key, ranks),
                 selection_mode="single-row", column_config=_SLICE_COLUMNS,
                 row_height=SLICE_ROW_HEIGHT,
                 height=SLICE_ROW_HEIGHT * min(len(ranks), SLICE_ROWS_SHOWN) + 38)
    by_rank = {one.rank: one for one in found.slices}
    if st.session_state.get(SLICE_KEY) not in by_rank:
        st.session_state.pop(SLICE_KEY, None)
    rank = st.session_state.get(SLICE_KEY)
    if rank is None:
        return
    _one_slice(evaluation, by_rank[rank])


@st.cache_data(max_entries=16, show_spinner="Clustering the training intents into slices…")
def _computed_slices(db: str, evaluation_id: int, created_at: str, clusters: int | None,
                     gap: float) -> slices.SlicesResult:
    """The slices of one mining evaluation, once per (evaluation, k, gap): evaluations never
    change, and the database path and the evaluation's time tell a rebuilt database's
    evaluation of the same id apart. Read-only: embeddings the cache lacks are computed here
    and not stored."""
    return slices.compute_slices(state.reader(), evaluation_id=evaluation_id, k=clusters,
                                 gap=gap)


def slices_frame(found: list[slices.Slice]) -> pd.DataFrame:
    """The slices table: one row per slice, worst first."""
    def tool(name: str | None) -> str:
        return TOOL_TITLES[name] if name else "–"

    return pd.DataFrame([{
        "#": one.rank, "size": one.size, "Overall": one.overall, "flagged": one.flagged,
        "worst tool": tool(one.worst_tool),
        "top words": ", ".join(one.top_words) or "–",
        "examples": " · ".join(one.examples[:SLICE_EXAMPLES]),
        **{TOOL_TITLES[name]: one.finals.get(name) for name in TOOLS},
        "paper flags": one.n_flagged,
    } for one in found])


# The texts wrap (rows above 4rem wrap instead of cutting): five examples fit in four lines.
SLICE_ROW_HEIGHT = 100
SLICE_ROWS_SHOWN = 5
_SLICE_COLUMNS = {
    "#": st.column_config.NumberColumn(width=35, help="1 is the worst slice"),
    "size": st.column_config.NumberColumn(width=50, help="training intents in the slice"),
    "Overall": st.column_config.NumberColumn(
        format="%.3f", width=65, help="the mean of the tools' finals in the slice (a tool "
                                      "neither side used there does not count)"),
    "flagged": st.column_config.CheckboxColumn(
        width=60, help="Overall at least the gap below the student's"),
    "worst tool": st.column_config.TextColumn(width=85, help="the tool with the lowest final"),
    "top words": st.column_config.TextColumn(
        width=130, help="words in more of the slice's intents than of the others'"),
    "examples": st.column_config.TextColumn(
        width=420, help="the five intents nearest the slice's centre"),
    **{TOOL_TITLES[name]: st.column_config.NumberColumn(format="%.3f", width=90,
                                                        help="the tool's final in the slice")
       for name in TOOLS},
    "paper flags": st.column_config.NumberColumn(
        width=80, help="intents of the slice the paper's rule flags (any tool)"),
}


def _open_slice(table_key: str, ranks: list[int]) -> None:
    selection = st.session_state.get(table_key)
    rows = list(getattr(getattr(selection, "selection", None), "rows", None) or [])
    if rows and rows[0] < len(ranks):
        st.session_state[SLICE_KEY] = ranks[rows[0]]


def slice_intents_frame(found: slices.Slice) -> pd.DataFrame:
    """One slice's intents, paper-flagged first, then the larger loss."""
    return pd.DataFrame([{
        "intent": one.intent_text, "loss": one.loss, "tools flagged": one.n_flagged,
        "adjust cosine": one.adjust_cosine,
        "selective cosine": one.selective_adjust_cosine,
        "filter": one.filter or "–",
    } for one in found.intents])


def _one_slice(evaluation: dict[str, Any], found: slices.Slice) -> None:
    finals = ", ".join(f"{TOOL_TITLES[tool]} {state.score(value)}"
                       for tool, value in found.finals.items() if value is not None)
    st.markdown(f"**Slice {found.rank}**: {found.size:,} intents · Overall "
                f"{state.score(found.overall)} ({escape_markdown(finals)}) · top words: "
                f"{escape_markdown(', '.join(found.top_words) or '–')}")
    keys = list(found.intent_keys)
    table_key = f"errors_slice_intents_{evaluation['evaluation_id']}_{found.rank}"
    st.dataframe(slice_intents_frame(found), hide_index=True, key=table_key,
                 on_select=partial(_inspect, table_key, keys), selection_mode="single-row",
                 column_config={
                     "intent": st.column_config.TextColumn(width="large"),
                     "loss": st.column_config.NumberColumn(
                         format="%.3f", help="mean over the three tools: 0 the teacher's "
                                             "answer, 1 the worst (opposite look, wrong filter, "
                                             "a tool wrongly used or missed)"),
                     "adjust cosine": st.column_config.NumberColumn(format="%.3f"),
                     "selective cosine": st.column_config.NumberColumn(format="%.3f")},
                 height=min(400, 35 * (len(keys) + 1) + 3))
    st.caption("Select an intent to compare it below. Cosines are signed, an unused tool "
               "counting as zeros. Filter: right or wrong name, extra (only the student used "
               "one), missed (only the teacher), – (neither).")
    left, right, _ = st.columns([2, 2, 3])
    if left.button(f"Send slice {found.rank} to augmentation", key="errors_slice_send",
                   type="primary"):
        st.session_state[SOURCES_KEY] = keys
        st.session_state[SOURCES_VERSION_KEY] = int(evaluation["version_id"])
        st.success(f"Sent the {len(keys):,} intent(s) of slice {found.rank} (dataset version "
                   f"{evaluation['version_id']}). Open the **Augmentation** page (in the "
                   "sidebar) to generate paraphrases of them.")
    right.button("Add them to the selection below", key="errors_slice_add",
                 on_click=_add_worst, args=(keys,))


def _intent_label(row: dict[str, Any]) -> str:
    flags = row["n_flagged"]
    return f"{row['intent_text']}  ({flags} tool{'s' if flags != 1 else ''} flagged)" \
        if flags else row["intent_text"]


def _compare(current: Any, evaluation: dict[str, Any], ranked: list[dict[str, Any]]) -> None:
    st.subheader("Teacher and student, one intent")
    by_key = {row["intent_key"]: row for row in ranked}
    if st.session_state.get(INTENT_KEY) not in by_key:   # another evaluation was chosen
        st.session_state.pop(INTENT_KEY, None)
    left, right = st.columns([3, 1])
    key = left.selectbox("Intent (worst first)", list(by_key),
                         format_func=lambda k: _intent_label(by_key[k]), key=INTENT_KEY)
    sample = right.selectbox("Sample image", SAMPLE_IMAGES, key="errors_image")
    try:
        with current.session() as session:
            detail = evaluated_intent(session, evaluation["evaluation_id"], key)
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    if detail is None:
        st.error("This intent has no prediction or no ground truth in the evaluation's version "
                 f"{evaluation['version_id']}.")
        return
    st.text(f"Intent: {detail.intent_text}    ({detail.split} split, version "
            f"{evaluation['version_id']})")
    columns = st.columns([4, 4, 5])
    for column, tool in zip(columns, TOOLS, strict=True):
        with column:
            st.markdown(f"**{TOOL_TITLES[tool]}**")
            st.caption(_score_line(detail.scores.get(tool)))
            table = pd.DataFrame(parameter_table(detail.teacher, detail.student, tool))
            if tool == "filter":
                _filter_table(table)
                continue
            for name in ("teacher", "student", "difference"):
                table[name] = table[name].astype("Int64")
            # Three tables side by side: narrow number columns keep the difference in view.
            st.dataframe(table, hide_index=True, key=f"errors_parameters_{tool}",
                         height=35 * (len(table) + 1) + 3, column_config={
                             "teacher": st.column_config.Column(width=50),
                             "student": st.column_config.Column(width=50),
                             "difference": st.column_config.Column(
                                 "diff.", width=50, help="student − teacher")})
    st.caption("None: that side did not use the tool. The difference is student − teacher, an "
               "unused tool counting as zeros (as the cosine counts it).")
    try:
        strip = _strip(sample, _jsons(detail.teacher), _jsons(detail.student))
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return
    st.image(strip, caption="original · teacher · student")
    _enlarged(sample, detail)
    _edit(evaluation, detail)


def _filter_table(table: pd.DataFrame) -> None:
    """The filter of both sides as rows (teacher, student, difference) with the name and the
    intensity as columns: a filter name fits whole where three columns of names would not."""
    sides = table.set_index("parameter").T.reset_index(names="side")
    st.dataframe(sides, hide_index=True, key="errors_parameters_filter",
                 column_config={"side": st.column_config.TextColumn(width=90),
                                "name": st.column_config.TextColumn(width=FILTER_WIDTH),
                                "intensity": st.column_config.TextColumn(
                                    width=80, help="difference: student − teacher")})


def _enlarged(sample: str, detail: Any) -> None:
    """The teacher's and the student's renders side by side at a larger size, with each
    filter's name whole: a filter difference is hard to see in the strip. Rendered only while
    the expander is open."""
    box = st.expander("Enlarge: teacher and student side by side", key=ENLARGE_KEY,
                      on_change="rerun", icon=":material/zoom_in:")
    if not box.open:
        return
    with box:
        columns = st.columns(2)
        for column, side, answer in zip(columns, ("teacher (ground truth)", "student"),
                                        (detail.teacher, detail.student), strict=True):
            try:
                image = _large(sample, _jsons(answer))
            except WorkbenchError as error:
                column.error(escape_markdown(str(error)))
                continue
            column.image(image, caption=f"{side} · filter: "
                                        f"{describe_output('filter', answer.tool_json('filter'))}",
                         output_format="JPEG", width="stretch")
        st.caption("Each render is the whole answer (adjust, selective adjust, filter) on the "
                   f"sample photo at {LARGE_SIDE} px; use the image's full-screen button to see "
                   "it bigger still.")


def _edit(evaluation: dict[str, Any], detail: Any) -> None:
    """The answer editor for the compared intent: start from the ground truth or the student's
    answer, save a curator's label."""
    with st.expander("Edit this intent's answer (saved as a curator's label)", expanded=False):
        store = state.reader()
        try:
            found = labels.labels_of(store, detail.intent_text, evaluation["version_id"])
            current = labels.current_answer(store, detail.intent_text, evaluation["version_id"])
        except StoreBusyError:
            raise               # the page's busy notice (state.run_page) says who holds it
        except WorkbenchError as error:
            st.error(escape_markdown(str(error)))
            return
        student = editor.StartingPoint(f"the student's answer (run {evaluation['run_id']})",
                                       detail.student)
        editor.label_table(found, "errors_labels")
        editor.curator_input()
        editor.answer_editor(
            "errors_editor", subject=f"{evaluation['evaluation_id']}:{detail.intent_key}",
            starts=editor.starting_points(found, current, [student]), reference=detail.teacher,
            reference_title="ground truth", save=editor.save_curator_label(detail.intent_text))


def _score_line(score: dict[str, Any] | None) -> str:
    if score is None:
        return "not scored"
    sides = (f"teacher {'used' if score['teacher_used'] else 'unused'}, "
             f"student {'used' if score['student_used'] else 'unused'}")
    parts = [sides]
    if score["cosine"] is not None:
        parts.append(f"cosine {score['cosine']:.3f}")
    if score["cosine_gap"] is not None:
        parts.append(f"gap {score['cosine_gap']:+.3f}")
    if score["intensity_error"] is not None:
        parts.append(f"intensity error {score['intensity_error']}")
    if score["flagged"]:
        parts.append("flagged")
    return " · ".join(parts)


def _jsons(answer: Answer) -> tuple[str | None, str | None, str | None]:
    return answer.tool_json("adjust"), answer.tool_json("selective_adjust"), \
        answer.tool_json("filter")


@st.cache_data(max_entries=64, show_spinner="Rendering…")
def _strip(sample: str, teacher: tuple[str | None, str | None, str | None],
           student: tuple[str | None, str | None, str | None]) -> bytes:
    """PNG of original / teacher / student on a bundled sample photo (cached per answers)."""
    from workbench.render import comparison, fit_image, load_image, to_png_bytes
    from workbench.tools import answer_from_json

    image = fit_image(load_image(sample), 640)
    return to_png_bytes(comparison(image, answer_from_json(*teacher), answer_from_json(*student),
                                   STRIP_HEIGHT))


@st.cache_data(max_entries=32, show_spinner="Rendering…")
def _large(sample: str, answer: tuple[str | None, str | None, str | None]) -> bytes:
    """JPEG of one answer on a bundled sample photo at LARGE_SIDE (cached per answer)."""
    from workbench.editing import encode_jpeg
    from workbench.render import fit_image, load_image, render
    from workbench.tools import answer_from_json

    return encode_jpeg(render(fit_image(load_image(sample), LARGE_SIDE),
                              answer_from_json(*answer)))


def _send(evaluation: dict[str, Any], ranked: list[dict[str, Any]]) -> None:
    st.subheader("Send to augmentation")
    by_key = {row["intent_key"]: row for row in ranked}
    chosen = [k for k in st.session_state.get(SEND_KEY, []) if k in by_key]
    st.session_state[SEND_KEY] = chosen                 # drop keys of another evaluation
    st.multiselect("Intents to paraphrase (worst first)", list(by_key),
                   format_func=lambda k: _intent_label(by_key[k]), key=SEND_KEY,
                   placeholder="Type to search the evaluation's intents")
    left, middle, _ = st.columns([2, 2, 3])
    left.button("Add the compared intent", key="errors_add_intent", on_click=_add_compared)
    middle.button("Add the 10 worst intents", key="errors_add_worst", on_click=_add_worst,
                  args=([row["intent_key"] for row in ranked if row["n_flagged"]][:10],))
    if st.button("Send to augmentation", key="errors_send", type="primary"):
        selected = list(st.session_state.get(SEND_KEY, []))
        if not selected:
            st.warning("Select at least one intent first.")
        else:
            st.session_state[SOURCES_KEY] = selected
            st.session_state[SOURCES_VERSION_KEY] = int(evaluation["version_id"])
            st.success(f"Sent {len(selected)} intent(s) of dataset version "
                       f"{evaluation['version_id']}. Open the **Augmentation** page (in the "
                       "sidebar) to generate paraphrases of them.")
            if evaluation["split"] == "test":
                st.warning("These are test intents: the Augmentation page will refuse them "
                           "(paraphrases of test intents would leak into evaluation).")
    sent = st.session_state.get(SOURCES_KEY)
    if sent:
        st.caption(f"Waiting on the Augmentation page: {len(sent)} intent(s) of version "
                   f"{st.session_state.get(SOURCES_VERSION_KEY)}.")


def _add_compared() -> None:
    key = st.session_state.get(INTENT_KEY)
    chosen = list(st.session_state.get(SEND_KEY, []))
    if key is not None and key not in chosen:
        st.session_state[SEND_KEY] = [*chosen, key]


def _add_worst(keys: list[str]) -> None:
    chosen = list(st.session_state.get(SEND_KEY, []))
    st.session_state[SEND_KEY] = chosen + [k for k in keys if k not in chosen]
