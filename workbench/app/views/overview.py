"""Overview: counts, tool usage, the export-rate distribution, the latest evaluations against
the teacher ceiling, and the current dataset version."""

from __future__ import annotations

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
    columns = st.columns(4)
    for column, (label, key) in zip(columns, [("Requests", "requests"), ("Intents", "intents"),
                                              ("Quarantined", "quarantined"),
                                              ("Dataset versions", "dataset_versions")],
                                    strict=True):
        column.metric(label, f"{counts[key]:,}")

    with current.session() as session:
        version_id = current_version_id(session)
        histogram = export_rate_histogram(session)
        usage = tool_usage(session, version_id) if version_id is not None else None
        evaluations = latest_evaluations(session, version_id)

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
            st.plotly_chart(figure, key="tool_usage")
    with right:
        st.subheader("Export rate per intent")
        frame = pd.DataFrame(histogram)
        if frame["intents"].sum():
            frame["export rate"] = frame["from"].map(lambda v: f"{v:.2f}")
            figure = px.bar(frame, x="export rate", y="intents")
            figure.update_layout(height=320, margin={"t": 10, "b": 10})
            st.plotly_chart(figure, key="export_rates")
        else:
            st.info("No intents ingested yet.")

    st.subheader("Latest evaluations (test split)")
    if not evaluations:
        st.info("No evaluations yet: `workbench baselines` gives the ceiling and the floor, "
                "`workbench evaluate --run` scores a student.")
        return
    rows = []
    for evaluation in evaluations:
        for row in evaluation_table(evaluation["summary"]):
            rows.append({"evaluation": evaluation["evaluation_id"], "kind": evaluation["kind"],
                         "source": evaluation["source"], "test": row["test"], "n": row["n"],
                         **{TOOL_TITLES[t]: state.triple(row[t]) for t in TOOLS},
                         "overall": state.score(row["overall"])})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="evaluations")
    st.caption("Triples are (tool selection, quality, final). The ceiling is the teacher's "
               "self-consistency (`self_consistency`), the floor a constant answer (`baseline`).")
