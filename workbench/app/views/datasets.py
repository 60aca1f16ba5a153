"""Datasets: every dataset version with its lineage (and, for augmentation versions, how many
candidates from which rounds went in), a lineage chart, the diff between two versions, and a
download of a version as JSONL or Parquet."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from workbench.app import state
from workbench.describe import describe_output
from workbench.errors import StoreBusyError, WorkbenchError
from workbench.report import TOOL_TITLES
from workbench.store import Store
from workbench.store.versions import (
    Split,
    VersionDiff,
    current_version_id,
    diff_versions,
    lineage_order,
    version_lineage,
)
from workbench.tools import TOOLS

FORMATS = {"jsonl": ("JSONL", "application/x-ndjson"),
           "parquet": ("Parquet", "application/vnd.apache.parquet")}
SPLIT_LABELS = {Split.ALL: "train and test", Split.TRAIN: "train", Split.TEST: "test"}
ORIGIN_COLOURS = {"curation": "#4c78a8", "subsample": "#f58518", "augmentation": "#54a24b"}


def render() -> None:
    st.title("Datasets")
    current = state.require_database()
    if state.is_synthetic(current):
        st.warning(state.SYNTHETIC_NOTE, icon=":material/science:")
    with current.session() as session:
        versions = version_lineage(session)
        current_id = current_version_id(session)
    if not versions:
        st.info("No dataset version yet: run `workbench curate` to make the first one from the "
                "ingested logs (or `workbench demo` to build the synthetic demo end to end).")
        st.stop()
    by_id = {version["version_id"]: version for version in versions}

    st.subheader("Versions")
    _versions_table(versions, current_id)
    st.subheader("Lineage")
    _lineage_chart(versions, current_id)
    st.subheader("Compare two versions")
    _diff(current, by_id, current_id)
    st.subheader("Export a version")
    _export(current, by_id, current_id)


def _versions_table(versions: list[dict], current_id: int | None) -> None:
    frame = pd.DataFrame([{
        "version": v["version_id"], "current": "✓" if v["version_id"] == current_id else "",
        "parent": "—" if v["parent_id"] is None else str(v["parent_id"]),
        "created by": v["created_by"], "created at": v["created_at"],
        "note": v["note"], "train": v["n_train"], "test": v["n_test"],
        "augmentation candidates": v["candidates"],
        "from rounds": ", ".join(f"round {a}: {n}" for a, n in v["rounds"]) or "—",
    } for v in reversed(versions)])
    st.dataframe(frame, hide_index=True, key="datasets_versions", column_config={
        "augmentation candidates": st.column_config.NumberColumn(
            "augmentation candidates", format="%d",
            help="Approved candidates committed into this version (candidates.committed_version_id)"),
        "created at": st.column_config.DatetimeColumn("created at", format="YYYY-MM-DD HH:mm")})


def _lineage_chart(versions: list[dict], current_id: int | None) -> None:
    """Versions as nodes in tree order (a row each, indented by depth), parent edges as lines."""
    ordered = lineage_order(versions)
    row = {v["version_id"]: i for i, v in enumerate(ordered)}
    figure = go.Figure()
    for v in ordered:
        if v["parent_id"] in row:
            parent = ordered[row[v["parent_id"]]]
            figure.add_trace(go.Scatter(
                x=[parent["depth"], parent["depth"], v["depth"]],
                y=[row[parent["version_id"]], row[v["version_id"]], row[v["version_id"]]],
                mode="lines", line={"color": "#999", "width": 1.5}, hoverinfo="skip",
                showlegend=False))
    for origin in sorted({v["created_by"] for v in ordered}):
        members = [v for v in ordered if v["created_by"] == origin]
        figure.add_trace(go.Scatter(
            x=[v["depth"] for v in members], y=[row[v["version_id"]] for v in members],
            mode="markers+text", name=origin,
            marker={"size": [18 if v["version_id"] == current_id else 12 for v in members],
                    "color": ORIGIN_COLOURS.get(origin, "#b279a2"),
                    "line": {"width": [3 if v["version_id"] == current_id else 0
                                       for v in members], "color": "#222"}},
            text=[f"v{v['version_id']}{' (current)' if v['version_id'] == current_id else ''}"
                  f"  {v['n_train']:,} train / {v['n_test']:,} test" for v in members],
            textposition="middle right", hoverinfo="text"))
    depth = max(v["depth"] for v in ordered)
    figure.update_layout(
        height=min(120 + 40 * len(ordered), 600), margin={"t": 10, "b": 10, "l": 10, "r": 10},
        xaxis={"visible": False, "range": [-0.4, depth + 5]},  # room for the labels
        yaxis={"visible": False, "autorange": "reversed"},
        legend={"title": "created by", "orientation": "h", "y": 1.02, "yanchor": "bottom"})
    st.plotly_chart(figure, key="datasets_lineage")


def _version_label(by_id: dict[int, dict], current_id: int | None) -> Callable[[int], str]:
    def label(version_id: int) -> str:
        version = by_id[version_id]
        return (f"{version_id}{' (current)' if version_id == current_id else ''} · "
                f"{version['created_by']} · {version['n_train']:,} train / "
                f"{version['n_test']:,} test")
    return label


def _diff(current: Store, by_id: dict[int, dict], current_id: int | None) -> None:
    ids = sorted(by_id, reverse=True)
    if len(ids) < 2:
        st.info("Only one version so far: a diff needs two (curate again, subsample, or commit "
                "an augmentation round).")
        return
    new_default = current_id if current_id in by_id else ids[0]
    old_default = by_id[new_default]["parent_id"]
    if old_default not in by_id:
        old_default = next((v for v in ids if v != new_default), ids[-1])
    label = _version_label(by_id, current_id)
    left, right = st.columns(2)
    old = left.selectbox("From version", ids, index=ids.index(old_default), format_func=label,
                         key="datasets_diff_old")
    new = right.selectbox("To version", ids, index=ids.index(new_default), format_func=label,
                          key="datasets_diff_new")
    if old == new:
        st.info("Pick two different versions to compare.")
        return
    try:
        diff = _diff_versions(str(current.path), old, new, by_id[old]["created_at"],
                              by_id[new]["created_at"])
    except StoreBusyError:
        raise                   # the page's busy notice (state.run_page) says who holds it
    except WorkbenchError as error:
        st.error(str(error))
        st.stop()
    cols = st.columns(5)
    cols[0].metric("Added to train", f"{diff.added['train']:,}")
    cols[1].metric("Added to test", f"{diff.added['test']:,}")
    cols[2].metric("Removed from train", f"{diff.removed['train']:,}")
    cols[3].metric("Removed from test", f"{diff.removed['test']:,}")
    cols[4].metric("Moved to the other split", f"{diff.moved:,}")
    cols = st.columns(5)
    for column, tool in zip(cols, TOOLS, strict=False):
        column.metric(f"Ground truth changed: {TOOL_TITLES[tool]}", f"{diff.changed[tool]:,}")
    if diff.unchanged:
        st.success(f"Versions {old} and {new} have the same intents, splits and ground truth.")
        return
    st.caption("A sample (up to 20 of each kind); an intent that moved split is removed from "
               "one and added to the other.")
    st.dataframe(pd.DataFrame([{
        "change": row["change"], "split": row["split"], "intent": row["intent"],
        "tool": TOOL_TITLES[row["tool"]] if row["tool"] else "",
        "old": describe_output(row["tool"], row["old"]) if row["tool"] else "",
        "new": describe_output(row["tool"], row["new"]) if row["tool"] else "",
    } for row in diff.sample], columns=["change", "split", "intent", "tool", "old", "new"]),
        hide_index=True, key="datasets_diff_sample")


@st.cache_data(max_entries=16, show_spinner="Comparing the versions…")
def _diff_versions(db: str, old: int, new: int, old_created: datetime,
                   new_created: datetime) -> VersionDiff:
    """Versions are immutable, so a diff is cached by their ids (and creation times, in case the
    database file was replaced)."""
    with Store.at(db, label=state.LABEL, read_only=True).session() as session:
        return diff_versions(session, old, new)


def _export(current: Store, by_id: dict[int, dict], current_id: int | None) -> None:
    ids = sorted(by_id, reverse=True)
    cols = st.columns(3)
    version_id = cols[0].selectbox(
        "Version", ids, index=ids.index(current_id) if current_id in ids else 0,
        format_func=_version_label(by_id, current_id), key="datasets_export_version")
    split = cols[1].selectbox("Split", list(SPLIT_LABELS), format_func=SPLIT_LABELS.__getitem__,
                              key="datasets_export_split")
    fmt = cols[2].selectbox("Format", list(FORMATS), format_func=lambda f: FORMATS[f][0],
                            key="datasets_export_format")
    version = by_id[version_id]
    rows = {Split.ALL: version["n_train"] + version["n_test"], Split.TRAIN: version["n_train"],
            Split.TEST: version["n_test"]}[Split(split)]
    st.download_button(
        f"Download {rows:,} rows as {FORMATS[fmt][0]}", icon=":material/download:",
        data=partial(export_bytes, str(current.path), version_id, Split(split), fmt),
        file_name=f"dataset-v{version_id}-{Split(split).value}.{fmt}", mime=FORMATS[fmt][1],
        key="datasets_export", on_click="ignore")
    st.caption("One record per intent: `intent`, `split`, `request_count`, the three tools' "
               "ground truth (`null` = not used), `origin` and `source_intent` (for "
               "augmentations); the same as `workbench export`. The file is written when you "
               "click.")


def export_bytes(db: str, version_id: int, split: Split, fmt: str) -> bytes:
    """The version's rows as a JSONL or Parquet file's bytes, written by `workbench export`'s
    pipeline into a temporary folder (runs when the download button is clicked)."""
    from pipelines import export

    with tempfile.TemporaryDirectory(prefix="workbench-export-") as folder:
        out = Path(folder) / f"dataset.{fmt}"
        export.run(export.ExportConfig(out=out, version=version_id, split=split),
                   Store.at(db, label=state.LABEL, read_only=True))
        return out.read_bytes()
