"""Overview: counts, tool usage, the export-rate distribution, the latest evaluations against
the teacher ceiling (with the dataset version each is on), and the current dataset version."""

from __future__ import annotations

import math

import pandas as pd
import plotly.express as px
import streamlit as st

from workbench.app import state
from workbench.report import TOOL_TITLES, evaluation_table
from workbench.store.evaluations import latest_evaluations
from workbench.store.requests import export_rate_histogram
from workbench.store.status import status_counts
from workbench.store.versions import current_version_id, tool_usage
from workbench.tools import TOOLS


def render() -> None:
    st.title("Overview")
    current = state.require_database()
    counts = status_counts(current)
    if state.is_synthetic(current):
        st.warning(state.SYNTHETIC_NOTE, icon=":material/science:")
    columns = state.count_metrics(counts)
    if counts["quarantined"]:
        state.link_to_page("quarantine", "Quarantine", "See the quarantine",
                           ":material/report:", where=columns[2])

    with current.session() as session:
        version_id = current_version_id(session)
        histogram = export_rate_histogram(session)
        usage = tool_usage(session, version_id) if version_id is not None else None
        evaluations = latest_evaluations(session, version_id)
        if not evaluations:            # none on the current version: the newest on any other
            evaluations = latest_evaluations(session)

    version = counts["current_version"]
    if version is None:
        st.info("No dataset version yet: run `workbench curate` to make one from the logs.")
    else:
        st.subheader(f"Current dataset version: {version['version_id']}")
        created = str(version["created_at"])[:16].replace("T", " ")
        st.caption(f"{version['created_by']} · {created} UTC · "
                   f"{version['note'] or 'no note'}")
        cols = st.columns(4)
        cols[0].metric("Train intents", f"{version['n_train']:,}")
        cols[1].metric("Test intents", f"{version['n_test']:,}")
        cols[2].metric("Test r_3", f"{version['test_r_3']:,}")
        cols[3].metric("Test r_5", f"{version['test_r_5']:,}")

    left, right = st.columns(2)
    with left:
        st.subheader("Tool usage (ground truth)")
        if usage is not None:
            frame = pd.DataFrame({"tool": [TOOL_TITLES[t] for t in TOOLS],
                                  "share of intents": [usage[t] for t in TOOLS]})
            figure = px.bar(frame, x="tool", y="share of intents", range_y=[0, 1],
                            text_auto=".0%")
            figure.update_layout(height=320, margin={"t": 10, "b": 10})
            st.plotly_chart(figure, key="tool_usage", config={"displayModeBar": False})
    with right:
        st.subheader("Export rate per intent")
        _export_rates(histogram)

    st.subheader("Latest evaluations (test split)")
    if not evaluations:
        st.info("No evaluations yet: the Runs page computes the ceiling and the floor and "
                "evaluates students (`workbench baselines`, `workbench evaluate --run` from a "
                "terminal).")
        return
    on = sorted({evaluation["version_id"] for evaluation in evaluations})
    if version is not None and version["version_id"] not in on:
        st.info(f"None on the current version {version['version_id']} yet; the latest below "
                f"are on version {', '.join(str(v) for v in on)}. Evaluate a run or compute "
                "the ceiling and the floor on the Runs page.")
    rows = []
    for evaluation in evaluations:
        for row in evaluation_table(evaluation["summary"]):
            rows.append({"evaluation": evaluation["evaluation_id"],
                         "version": evaluation["version_id"], "kind": evaluation["kind"],
                         "source": evaluation["source"], "test": row["test"], "n": row["n"],
                         **{TOOL_TITLES[t]: state.triple(row[t]) for t in TOOLS},
                         "overall": state.score(row["overall"])})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="evaluations")
    st.caption("Triples are (tool selection, quality, final). The ceiling is the teacher's "
               "self-consistency (`self_consistency`), the floor a constant answer (`baseline`).")


def _export_rates(histogram: list[dict]) -> None:
    """Intents per export-rate bin. Most intents usually sit in the top bin, so the count axis
    is logarithmic by default (a toggle turns it linear), and the chart has no toolbar over the
    bars."""
    frame = pd.DataFrame(histogram)
    if not frame["intents"].sum():
        st.info("No intents ingested yet.")
        return
    log = st.toggle("Log scale", value=True, key="export_rates_log",
                    help="a logarithmic count axis, so the small bins stay visible beside the "
                         "top one")
    frame["export rate"] = (frame["from"] + frame["to"]) / 2       # the bin's centre
    frame["bin"] = [f"{row['from']:.2f} to {row['to']:.2f}" for row in histogram]
    if log:       # an empty bin has no logarithm: no bar, and no "0" floating at the bottom
        frame["intents"] = frame["intents"].where(frame["intents"] > 0)
    figure = px.bar(frame, x="export rate", y="intents", text_auto=True, log_y=log,
                    hover_data={"bin": True, "export rate": False})
    figure.update_traces(width=0.9 / len(histogram), textposition="outside", cliponaxis=False)
    figure.update_xaxes(range=[0, 1], dtick=0.1)
    if log:       # whole decades only, with room above the tallest bar for its count
        top = math.log10(max(2, frame["intents"].max()))
        figure.update_yaxes(dtick=1, range=[-0.05, top * 1.12 + 0.1])
    figure.update_layout(height=340, margin={"t": 30, "b": 10}, uniformtext_minsize=10,
                         uniformtext_mode="show")       # counts never shrink to fit a bar
    st.plotly_chart(figure, key="export_rates", config={"displayModeBar": False})
    st.caption("Export rate: the share of an intent's requests with at least one export; "
               "bins of 0.05, each holding its lower end (the last one 1 too).")
