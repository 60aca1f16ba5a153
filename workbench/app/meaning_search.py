"""Search by meaning and the map of the intents, for the Intents page (`views/intents.py`).

The query is embedded with the bundled all-MiniLM-L6-v2 (its ONNX twin when it can be exported)
and the intents are ranked by cosine over their cached embeddings, held in memory once per
change of the cache (`pipelines.meaning`). Intents without an embedding are embedded by a
background job (`workbench.app.jobs`, kind embed_intents) with its progress on the page; search
and the map cover the ones embedded so far meanwhile.

The map is a PCA projection of a sample of at most `meaning.MAP_POINTS` intents, coloured by
the tools their ground truth uses or by a student evaluation's cosine gap; a lasso or box
selection goes to the label queue (session key LABEL_SELECTION_KEY, read by the Labels page's
"selected on the map" reason) or to augmentation (SOURCES_KEY and SOURCES_VERSION_KEY, read by
the Augmentation page, as the Errors page sends them).
"""

from __future__ import annotations

import html
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from pipelines import meaning
from workbench.app import job_panel, jobs, state
from workbench.app.state import (
    EMBED_JOB_KEY,
    LABEL_SELECTION_KEY,
    SOURCES_KEY,
    SOURCES_VERSION_KEY,
    escape_markdown,
)
from workbench.errors import StoreBusyError, WorkbenchError
from workbench.report import TOOL_TITLES
from workbench.store import Store
from workbench.store.evaluations import ranked_intents, student_evaluations
from workbench.store.intent_rows import intent_table
from workbench.tools import TOOLS

OPEN_KEY = "intents_open"                 # the intent whose detail is open (the page's opener)
QUERY_KEY = "intents_meaning_query"
RESULTS_KEY = "intents_meaning_k"
TABLE_KEY = "intents_meaning_table"
BEYOND_TEXT_KEY = "intents_meaning_beyond_text"
MAP_KEY = "intents_map"
SHOW_MAP_KEY = "intents_map_show"
COLOUR_KEY = "intents_map_colour"
_CLICKED = "_intents_meaning_selected"    # the results table's selection, to spot a new click
RESULT_SIZES = (20, 50, 100, 200, 500)
EMBED_PER_S = 380          # intents a second the bundled encoder embeds on two CPU cores
TOOL_COLOURS = "tools"     # the map's colour choice that is not an evaluation
SELECTION_ROWS = 200       # rows of a map selection listed (all of them are sent)
ROW_PX = 35
EMPTY = "-"
USES = [f"uses_{tool}" for tool in TOOLS]


def version_choice(versions: dict[int, dict], current_id: int | None, where: Any = st,
                   on_change: Callable[[], None] | None = None) -> int | None:
    """The dataset version that gives split and ground truth (the current one by default)."""
    ids: list[int | None] = [*sorted(versions, reverse=True)]
    return where.selectbox(
        "Dataset version", ids or [None], key="intents_version", on_change=on_change,
        index=ids.index(current_id) if current_id in ids else 0, disabled=not versions,
        format_func=lambda v: "none yet" if v is None else
        f"{v}{' (current)' if v == current_id else ''} · {versions[v]['created_by']}",
        help="Split, ground-truth tools and the detail's ground truth come from this version.")


def render(current: Store, versions: dict[int, dict],
           current_id: int | None) -> tuple[list[str], dict[str, str], int | None]:
    """The meaning search, its results and the map; returns the intents it lists (keys and
    texts, for the page's opener) and the dataset version chosen."""
    top = st.columns([3, 1, 1])
    query = top[0].text_input("Search by meaning", key=QUERY_KEY,
                              placeholder="a look in any words, e.g. black and white")
    version_id = version_choice(versions, current_id, top[1])
    k = top[2].selectbox("Results", RESULT_SIZES, index=2, key=RESULTS_KEY,
                         help="How many of the nearest intents to list (and ring on the map).")
    beyond_text = st.toggle(
        "Only what a text search misses", key=BEYOND_TEXT_KEY,
        help="Leave out the intents whose text contains the query: the encoder ranks literal "
             "matches first, so this brings 'monochrome' and 'b&w' up for 'black and white'.")
    db = str(current.path)
    try:
        stamp = meaning.cache_state(current)          # the one read a search costs
        index = _index(db, stamp)
        rows = _intents(db, stamp, version_id)
        _embedding_status(current, len(rows), len(index))
        if not len(index):
            return [], {}, version_id
        matches = (meaning.search(index, _query_encoder(), query, int(k), beyond_text)
                   if query.strip() else [])
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(escape_markdown(str(error)))
        return [], {}, version_id
    if query.strip():
        _results(matches, rows)
    else:
        st.caption("Type a look in any words: the nearest intents come first, with the cosine "
                   "similarity of their embeddings (1 = the same meaning).")
    if st.toggle("Show the map of the intents", value=True, key=SHOW_MAP_KEY):
        _map(current, index, rows, version_id, current_id, matches)
    return [m.intent_key for m in matches], {m.intent_key: m.intent_text for m in matches}, \
        version_id


# ------------------------------------------------------------------------------ embeddings

def _embedding_status(current: Store, n: int, cached: int) -> None:
    """How many intents have an embedding; when some have none, the button that embeds them in
    a background job, and the job's progress."""
    if cached >= n:
        st.caption(f"All {n:,} intents have an embedding (all-MiniLM-L6-v2, cached in the "
                   "database).")
        return
    missing = n - cached
    minutes = max(1, round(missing / EMBED_PER_S / 60))
    covered = (f"search and the map cover the {cached:,} that have one meanwhile"
               if cached else "search and the map need them")
    st.info(f"{missing:,} of {n:,} intents have no embedding yet: {covered}. Embedding them "
            f"runs in the background (about {minutes} min on two CPU cores) and is cached in "
            "the database, so it is done once.", icon=":material/hourglass_top:")
    running = job_panel.unfinished_job(current, EMBED_JOB_KEY)
    if st.button(f"Embed the {missing:,} intents", key="intents_embed", type="primary",
                 disabled=running is not None):
        try:
            job = jobs.submit(current.path, jobs.JobKind.EMBED_INTENTS, {})
        except jobs.JobAlreadyRunningError as error:
            st.session_state[EMBED_JOB_KEY] = error.job.id     # follow the one that runs
        except WorkbenchError as error:
            st.error(escape_markdown(str(error)))
            return
        else:
            st.session_state[EMBED_JOB_KEY] = job.id
        st.rerun()
    job_panel.show(current, "intents_embed", kinds=[jobs.JobKind.EMBED_INTENTS], recent=3)


@st.cache_resource(max_entries=1, show_spinner="Reading the intents' embeddings…")
def _index(db: str, stamp: tuple[int, ...]) -> meaning.IntentIndex:
    """Every cached intent embedding in memory, once per database and state of the logs and
    the cache (`stamp`, `meaning.cache_state`: new intents or embeddings load a fresh copy)."""
    return meaning.load_index(state.reader())


@st.cache_resource(max_entries=2, show_spinner="Reading the intents…")
def _intents(db: str, stamp: tuple[int, ...], version_id: int | None) -> pd.DataFrame:
    """Every intent's numbers, split and tools in the version, indexed by intent key: what the
    results, the map and a selection list, without a query each (versions never change; the
    stamp changes with the logs)."""
    with state.reader().session() as session:
        frame = intent_table(session, version_id).to_pandas().set_index("intent_key",
                                                                         drop=False)
    frame["uses"] = [use_category(dict(zip(USES, flags, strict=True)))
                     for flags in zip(*(frame[column] for column in USES), strict=True)]
    return frame


def _row(rows: pd.DataFrame, key: str) -> dict | None:
    """One intent's row as a dict with None for missing values, or None when not logged."""
    if key not in rows.index:
        return None
    found = rows.loc[key].to_dict()
    return {name: None if _missing(value) else value for name, value in found.items()}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _splits(rows: pd.DataFrame, keys: list[str]) -> list[str | None]:
    """The split of each key's intent in the frame's version (None: not in it, or not logged)."""
    return [None if _missing(split) else str(split)
            for split in rows["split"].reindex(keys).tolist()]


@st.cache_resource(max_entries=1, show_spinner="Loading the sentence encoder (once)…")
def _query_encoder() -> meaning.QueryEncoder:
    """The encoder for queries, once per server; its ONNX twin is loaded into memory from a
    temporary folder that is removed straight after."""
    with tempfile.TemporaryDirectory(prefix="workbench-query-encoder-") as folder:
        return meaning.load_query_encoder(None, Path(folder))


# ------------------------------------------------------------------------------ results

def _results(matches: list[meaning.Match], rows: pd.DataFrame) -> None:
    st.caption(f"The **{len(matches)}** intents nearest in meaning · select a row to open it")
    found = [_row(rows, m.intent_key) or {} for m in matches]
    frame = pd.DataFrame([{
        "intent": m.intent_text, "similarity": m.similarity,
        "requests": _text(row.get("request_count")),
        "export rate": _text(row.get("export_rate"), "{:.2f}"),
        "split": row.get("split") or EMPTY, "ground truth uses": row.get("uses") or EMPTY,
    } for m, row in zip(matches, found, strict=True)], columns=["intent", "similarity", "requests", "export rate", "split",
                                  "ground truth uses"])
    event = st.dataframe(frame, hide_index=True, key=TABLE_KEY, on_select="rerun",
                         selection_mode="single-row",
                         height=min(ROW_PX * (len(frame) + 1) + 3, 600), column_config={
                             # Fixed widths (px) that leave the tools column room
                             "intent": st.column_config.TextColumn(width=300),
                             "similarity": st.column_config.ProgressColumn(
                                 "similarity", format="%.2f", min_value=0.0, max_value=1.0,
                                 width=110,
                                 help="Cosine of the query's and the intent's embeddings "
                                      "(all-MiniLM-L6-v2): 1 is the same meaning."),
                             "requests": st.column_config.TextColumn(width="small"),
                             "export rate": st.column_config.TextColumn(width="small"),
                             "split": st.column_config.TextColumn(width="small")})
    selected = list(event.selection.rows)
    keys = [m.intent_key for m in matches]
    if selected and st.session_state.get(_CLICKED) != selected and selected[0] < len(keys):
        st.session_state[OPEN_KEY] = keys[selected[0]]
    st.session_state[_CLICKED] = selected


def _text(value: Any, form: str = "{:,}") -> str:
    """A value as a table shows it; '-' where there is none."""
    return EMPTY if value is None else form.format(value)


def use_category(row: dict | None) -> str:
    """The tools an intent's ground truth uses, as one category ('Adjust + Filter', 'no tool');
    '-' when the intent is not in the dataset version."""
    if row is None or _missing(row.get("uses_adjust")):
        return EMPTY
    return " + ".join(TOOL_TITLES[t] for t in TOOLS if row[f"uses_{t}"]) or "no tool"


# ------------------------------------------------------------------------------ the map

@st.cache_resource(max_entries=1, show_spinner="Projecting the intents onto the map…")
def _projected(db: str, stamp: tuple[int, ...]) -> meaning.IntentMap:
    return meaning.intent_map(_index(db, stamp))


@st.cache_resource(max_entries=4, show_spinner=False)
def _gaps(db: str, evaluation_id: int) -> dict[str, float]:
    """{intent key: its largest cosine gap over the tools} of an evaluation (immutable)."""
    with state.reader().session() as session:
        return {row["intent_key"]: float(row["max_gap"] or 0.0)
                for row in ranked_intents(session, evaluation_id)}


def _colour_choices(current: Store) -> dict[Any, str]:
    with current.session() as session:
        found = student_evaluations(session, "run") + student_evaluations(session, "mining")
    choices: dict[Any, str] = {TOOL_COLOURS: "tools the ground truth uses"}
    choices.update({e["evaluation_id"]: f"cosine gap of evaluation {state.evaluation_label(e)}"
                    for e in found})
    return choices


def _map(current: Store, index: meaning.IntentIndex, rows: pd.DataFrame, version_id: int | None,
         current_id: int | None, matches: list[meaning.Match]) -> None:
    """The map, its colour choice, and what to do with a lasso or box selection."""
    st.subheader("Map of the intents")
    choices = _colour_choices(current)
    colour = st.selectbox("Colour by", list(choices), format_func=choices.__getitem__,
                          key=COLOUR_KEY)
    db = str(current.path)
    projected = _projected(db, index.stamp)
    gaps = None if colour == TOOL_COLOURS else _gaps(db, int(colour))
    shown = (f"a sample of {len(projected.keys):,} of the {projected.n_total:,}"
             if len(projected.keys) < projected.n_total else f"all {projected.n_total:,}")
    st.caption(f"Each dot is an intent ({shown} with an embedding): close dots mean alike "
               "(the two main directions of the embeddings, by PCA). Hover for the text; "
               "lasso or box-select a region (the tools at the top right of the chart) to send "
               "its intents on. " + ("Search results are ringed." if matches else ""))
    uses = dict(zip(projected.keys, rows["uses"].reindex(projected.keys).fillna(EMPTY),
                    strict=True))
    figure, trace_keys = map_figure(projected, uses, gaps, index, matches, version_id)
    event = st.plotly_chart(figure, key=MAP_KEY, on_select="rerun",
                            selection_mode=("lasso", "box"), width="stretch",
                            config={"displaylogo": False})
    keys = selected_keys(event, trace_keys)
    if keys:
        in_current = rows if version_id == current_id else _intents(db, index.stamp, current_id)
        _selection(keys, rows, in_current, version_id, current_id)


def map_figure(projected: meaning.IntentMap, uses: dict[str, str],
               gaps: dict[str, float] | None, index: meaning.IntentIndex,
               matches: list[meaning.Match],
               version_id: int | None) -> tuple[Any, list[list[str]]]:
    """The plotly figure and, per trace, the intent key of each of its points. `uses`: each
    intent's tool category (`use_category`; "-" or absent: not in the version); `gaps`: the
    cosine gap per evaluated intent, to colour by instead."""
    import plotly.graph_objects as go

    frame = pd.DataFrame({"key": projected.keys, "text": projected.texts,
                          "x": projected.xy[:, 0], "y": projected.xy[:, 1]})
    figure = go.Figure()
    trace_keys: list[list[str]] = []

    def add(part: pd.DataFrame, name: str, extra: list[str], **marker: Any) -> None:
        figure.add_trace(go.Scattergl(
            x=part["x"], y=part["y"], mode="markers", name=name, marker=marker,
            hovertext=[f"{html.escape(t)}<br>{html.escape(e)}" for t, e in
                       zip(part["text"], extra, strict=True)], hoverinfo="text"))
        trace_keys.append(list(part["key"]))

    if gaps is None:
        category = frame["key"].map(lambda k: uses.get(k, EMPTY))
        outside = f"not in version {version_id}" if version_id is not None else "no version"
        category = category.where(category != EMPTY, outside)
        counts = category.value_counts()
        # The grey "outside" dots first (drawn underneath), then the most common use first.
        for name in sorted(counts.index, key=lambda c: (c != outside, -counts[c], str(c))):
            part = frame[category == name]
            add(part, str(name), [str(name)] * len(part), size=5, opacity=0.75,
                **({"color": "lightgrey"} if name == outside else {}))
    else:
        scored = frame["key"].isin(list(gaps))
        rest = frame[~scored]
        add(rest, "not in the evaluation", ["not in the evaluation"] * len(rest), size=4,
            color="lightgrey", opacity=0.5)
        part = frame[scored]
        values = [gaps[k] for k in part["key"]]
        add(part, "cosine gap", [f"cosine gap {v:.2f}" for v in values], size=6, opacity=0.9,
            color=values, colorscale="Plasma", showscale=True,
            colorbar={"title": {"text": "cosine gap"}})
    if matches:
        keys = [m.intent_key for m in matches]
        xy = meaning.place(index, projected.projection, keys)
        found = pd.DataFrame({"key": keys, "text": [m.intent_text for m in matches],
                              "x": xy[:, 0], "y": xy[:, 1]})
        add(found, "search results", [f"similarity {m.similarity:.2f}" for m in matches],
            size=11, symbol="circle-open", color="black", line={"width": 2})
    first, second = projected.projection.explained
    figure.update_layout(
        height=560, dragmode="lasso", margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"title": {"text": "tools" if gaps is None else ""}},   # right of the plot,
        # where the chart's toolbar (top right, above the plot) does not cover it
        xaxis={"title": f"first direction ({first:.0%} of the variance)",
               "showticklabels": False, "zeroline": False},
        yaxis={"title": f"second direction ({second:.0%})", "showticklabels": False,
               "zeroline": False})
    return figure, trace_keys


def selected_keys(event: Any, trace_keys: list[list[str]]) -> list[str]:
    """The intent keys of the points a lasso or box selected, in order, each once."""
    selection = event.get("selection", {}) if isinstance(event, dict) else \
        getattr(event, "selection", {})
    points = selection.get("points", []) if isinstance(selection, dict) else []
    keys = []
    for point in points:
        curve, number = point.get("curve_number"), point.get("point_index",
                                                            point.get("point_number"))
        if curve is not None and number is not None and curve < len(trace_keys) \
                and number < len(trace_keys[curve]):
            keys.append(trace_keys[curve][number])
    return list(dict.fromkeys(keys))


def _selection(keys: list[str], rows: pd.DataFrame, in_current: pd.DataFrame,
               version_id: int | None, current_id: int | None) -> None:
    """The intents of a map selection, and the buttons that send them to the label queue or
    to augmentation."""
    st.markdown(f"**{len(keys):,} intents selected on the map**")
    listed = keys[:SELECTION_ROWS]
    found = {k: _row(rows, k) or {} for k in listed}
    frame = pd.DataFrame([{"intent": found[k].get("intent_text", k),
                           "requests": _text(found[k].get("request_count")),
                           "export rate": _text(found[k].get("export_rate"), "{:.2f}"),
                           "split": found[k].get("split") or EMPTY,
                           "ground truth uses": found[k].get("uses") or EMPTY} for k in listed])
    st.dataframe(frame, hide_index=True, key="intents_map_selection",
                 height=min(ROW_PX * (len(frame) + 1) + 3, 300),
                 column_config={"intent": st.column_config.TextColumn(width="large")})
    if len(keys) > SELECTION_ROWS:
        st.caption(f"The first {SELECTION_ROWS} are listed; all {len(keys):,} are sent.")
    left, right = st.columns(2)
    if left.button("Send to the label queue", key="intents_map_to_labels"):
        _send_to_labels(keys, in_current, current_id)
    if right.button("Send to augmentation", key="intents_map_to_augmentation"):
        _send_to_augmentation(keys, rows, version_id)


def _send_to_labels(keys: list[str], rows: pd.DataFrame, current_id: int | None) -> None:
    """The selection's intents of the current version become the label queue's "selected on
    the map" reason (the queue works on the current version)."""
    kept = [k for k, split in zip(keys, _splits(rows, keys), strict=True) if split is not None]
    if not kept:
        st.warning(f"None of these intents is in the current dataset version ({current_id}), "
                   "and the label queue works on it: select intents in it.")
        return
    st.session_state[LABEL_SELECTION_KEY] = kept
    left_out = len(keys) - len(kept)
    st.success(f"Sent {len(kept):,} intent(s) to the label queue. Open the **Labels** page and "
               "pick the reason *selected on the map*."
               + (f" {left_out:,} not in the current version were left out." if left_out
                  else ""))


def _send_to_augmentation(keys: list[str], rows: pd.DataFrame,
                          version_id: int | None) -> None:
    """The selection's training intents go to the Augmentation page, as the Errors page sends
    them (test intents are never paraphrased: they would leak into evaluation)."""
    train = [k for k, split in zip(keys, _splits(rows, keys), strict=True) if split == "train"]
    if version_id is None or not train:
        st.warning("None of these intents is a training intent of the chosen dataset version; "
                   "only training intents can be paraphrased.")
        return
    st.session_state[SOURCES_KEY] = train
    st.session_state[SOURCES_VERSION_KEY] = int(version_id)
    left_out = len(keys) - len(train)
    st.success(f"Sent {len(train):,} training intent(s) of dataset version {version_id}. Open "
               "the **Augmentation** page to generate paraphrases of them."
               + (f" {left_out:,} test intents or intents outside the version were left out."
                  if left_out else ""))
