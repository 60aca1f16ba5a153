"""Online: the paper's online A/B test over the served requests that ingest brought in from a
`workbench serve` spool. Per arm the export (completion) rate with its 95% interval by bootstrap
over sessions, each arm's ratio to the control (the paper's measure), the sample ratio check,
the minimum detectable effect, the verdict in words, and the rates over time. The statistics are
`workbench.serving.ab`'s (what `workbench ab` prints); this page only shows them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from workbench.app import state
from workbench.serving import ab
from workbench.store import Store
from workbench.store.serving import SIMULATION_PREFIX, served_counts, served_rows
from workbench.tools import TOOLS

TIME_BOOT = 1000               # resamples per time window (the overall numbers use ab.BOOT)
CONTROL_KEY = "online_control"


@dataclass(frozen=True)
class Online:
    """What the page shows, computed once per database state and control."""

    analysis: ab.Analysis
    windows: tuple[ab.WindowRate, ...]


def render() -> None:
    st.title("Online")
    current = state.require_database()
    with current.session() as session:
        counts = served_counts(session)
    if not counts["requests"]:
        _empty_state(current.path)
        return
    stamp = (counts["requests"], counts["feedback"], counts["segments"])
    rows = _rows(str(current.path), stamp)
    arms = sorted({str(row["arm"]) for row in rows if row["arm"] is not None})
    if not arms:
        st.info(f"{counts['requests']:,} served request(s) in this database, but none under an "
                "A/B arm: every caller named its model. Start the server with a split, e.g. "
                "`workbench serve --ab teacher=50,student:latest=50`, and send requests with "
                "`model=\"default\"` (or none).", icon=":material/call_split:")
        return

    _simulation_note(rows)
    st.caption("The paper's online test: sessions are split between arms by a sticky hash, "
               "and each arm's **export rate** (exported / answered requests) is compared with "
               "the control's. Intervals are 95%, by bootstrap over sessions (a session's "
               "requests are correlated).")
    default = arms.index("teacher") if "teacher" in arms else 0
    control = st.selectbox("Control arm", arms, index=default, key=CONTROL_KEY,
                           help="the arm the others are compared with (usually the teacher)")
    online = _compute(str(current.path), stamp, control)
    result = online.analysis
    for verdict in result.verdicts:
        st.info(state.escape_markdown(verdict), icon=":material/gavel:")
    _ratios(result)
    left, right = st.columns(2)
    with left:
        st.subheader("Export rate per arm")
        _rates_chart(result)
    with right:
        st.subheader("Export rate over time")
        _time_chart(online.windows)
    st.subheader("Arms")
    _arms_table(result)
    _checks(result)


@st.cache_data(max_entries=4, show_spinner="Reading the served requests…")
def _rows(db: str, stamp: tuple[int, int, int]) -> list[dict]:
    """The served requests with their feedback; cached by the database and its counts of
    served requests, feedback and spool segments (every ingest that adds anything changes
    them)."""
    with Store.at(db, label=state.LABEL, read_only=True).session() as session:
        return served_rows(session)


@st.cache_data(max_entries=16, show_spinner="Resampling sessions…")
def _compute(db: str, stamp: tuple[int, int, int], control: str) -> Online:
    """The analysis against `control` and the rates over time, cached like `_rows`."""
    rows = _rows(db, stamp)
    return Online(ab.analyse(rows, control=control),
                  tuple(ab.rates_over_time(rows, boot=TIME_BOOT)))


def _empty_state(db: Path) -> None:
    quoted = shlex.quote(str(db))
    spool = shlex.quote(str(db.parent / "spool"))
    st.info(
        "No served requests in this database yet. The online test needs requests that a "
        "running server answered, with their export feedback:\n\n"
        f"1. **Serve** two arms: `workbench serve --db {quoted} --ab "
        "teacher=50,student:latest=50` (every request and feedback goes to its spool).\n"
        "2. **Send traffic**: your app through the openai client (base URL "
        "`http://127.0.0.1:8000/v1`, `user` = the session id, exports posted to "
        "`/v1/feedback`), or simulated demo users: "
        f"`workbench simulate-traffic --db {quoted} --sessions 200` (labelled as simulation).\n"
        f"3. **Ingest the spool**: `workbench ingest --db {quoted} {spool}`, then come back "
        "here (or run `workbench ab`).", icon=":material/insights:")


def _simulation_note(rows: list[dict]) -> None:
    """A visible note when the sessions are simulated (`workbench simulate-traffic` names them
    `sim-...`): all of them, or some."""
    sessions = {row["session_id"] or f"request {row['request_id']}" for row in rows}
    simulated = sum(1 for session in sessions if str(session).startswith(SIMULATION_PREFIX))
    if simulated and simulated == len(sessions):
        st.warning(
            "**Simulated traffic**: every session here was sent by `workbench "
            "simulate-traffic` (session ids start with `sim-`), not by real users. A simulated "
            "user exports an answer with a chance that falls with its distance from the demo "
            "world's intended look for the intent (its ground truth in the dataset version; on "
            "the demo corpus mostly the synthetic generator's modal teacher answer). No number "
            "here is a claim about real users or the paper.", icon=":material/science:")
    elif simulated:
        st.warning(f"{simulated:,} of {len(sessions):,} sessions are simulated (`workbench "
                   "simulate-traffic`, ids starting with `sim-`): the numbers mix real and "
                   "simulated users.", icon=":material/science:")


def _percent(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _bounds(low: float | None, high: float | None) -> str:
    """`35.1% to 49.0%`, or `no interval`."""
    if low is None or high is None:
        return "no interval"
    return f"{_percent(low)} to {_percent(high)}"


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "no interval"
    return f"95% CI {_bounds(low, high)}"


def _ratios(result: ab.Analysis) -> None:
    """Each arm's ratio to the control, as a metric with its interval under it."""
    if not result.comparisons:
        return
    st.subheader(f"Ratio to the control ({result.control})")
    columns = st.columns(min(3, len(result.comparisons)))
    for i, comparison in enumerate(result.comparisons):
        ratio = comparison.ratio
        with columns[i % len(columns)]:
            st.metric(f"{comparison.arm} / {result.control}", _percent(ratio.value),
                      help="the arm's export rate divided by the control's; the interval "
                           "resamples the sessions of both arms")
            st.caption(_interval(ratio.low, ratio.high))


def _rates_chart(result: ab.Analysis) -> None:
    arms = [arm for arm in result.arms if arm.overall.value is not None]
    if not arms:
        st.info("No answered requests yet.")
        return
    values = [arm.overall.value or 0.0 for arm in arms]
    upper = [(arm.overall.high - v) if arm.overall.high is not None else 0.0
             for arm, v in zip(arms, values, strict=True)]
    lower = [(v - arm.overall.low) if arm.overall.low is not None else 0.0
             for arm, v in zip(arms, values, strict=True)]
    figure = go.Figure(go.Bar(
        x=[arm.arm for arm in arms], y=values,
        error_y={"type": "data", "symmetric": False, "array": upper, "arrayminus": lower},
        text=[_percent(v, 0) for v in values], textposition="inside", insidetextanchor="start",
        marker_color=["#7f7f7f" if arm.arm == result.control else "#1f77b4" for arm in arms],
        customdata=[[arm.overall.exported, arm.overall.of, _interval(arm.overall.low,
                                                                     arm.overall.high)]
                    for arm in arms],
        hovertemplate="%{x}: %{y:.1%} (%{customdata[0]} of %{customdata[1]}), "
                      "%{customdata[2]}<extra></extra>"))
    figure.update_yaxes(title="export rate", tickformat=".0%", rangemode="tozero")
    figure.update_layout(height=340, margin={"t": 10, "b": 10})
    st.plotly_chart(figure, key="online_rates", config={"displayModeBar": False})
    st.caption("Bars: exported / answered requests; whiskers: the 95% interval. The control "
               "is grey.")


def _time_chart(windows: tuple[ab.WindowRate, ...]) -> None:
    if not windows:
        st.info("No answered requests yet.")
        return
    figure = go.Figure()
    for arm in sorted({w.arm for w in windows}):
        mine = [w for w in windows if w.arm == arm]
        values = [w.rate.value or 0.0 for w in mine]
        figure.add_trace(go.Scatter(
            x=[w.start for w in mine], y=values, name=arm, mode="lines+markers",
            error_y={"type": "data", "symmetric": False,
                     "array": [(w.rate.high - v) if w.rate.high is not None else 0.0
                               for w, v in zip(mine, values, strict=True)],
                     "arrayminus": [(v - w.rate.low) if w.rate.low is not None else 0.0
                                    for w, v in zip(mine, values, strict=True)]},
            customdata=[[w.rate.exported, w.rate.of, w.sessions] for w in mine],
            hovertemplate=f"{arm}" + ": %{y:.1%} (%{customdata[0]} of %{customdata[1]}, "
                          "%{customdata[2]} sessions)<extra></extra>"))
    figure.update_yaxes(title="export rate", tickformat=".0%", rangemode="tozero")
    hourly = windows[0].window == ab.HOUR
    figure.update_xaxes(tickformat="%b %d %H:%M" if hourly else "%b %d, %Y")
    starts = sorted({w.start for w in windows})
    if len(starts) == 1:         # one window: centre it, with a window of room on each side
        step = timedelta(hours=1) if hourly else timedelta(days=1)
        figure.update_xaxes(range=[starts[0] - step, starts[0] + step], dtick=step / timedelta(
            milliseconds=1))
    figure.update_layout(height=340, margin={"t": 10, "b": 10},
                         legend={"orientation": "h", "y": -0.2})
    st.plotly_chart(figure, key="online_over_time", config={"displayModeBar": False})
    st.caption(f"Per {windows[0].window} (UTC; per hour when the data spans under two days), "
               "with 95% intervals over the window's sessions.")


def _with_interval(rate: ab.Rate) -> str:
    """`42.0% (35.1% to 49.0%)`; `-` when no answer used the tool."""
    if rate.value is None:
        return "-"
    return f"{_percent(rate.value)} ({_bounds(rate.low, rate.high)})"


def _arms_table(result: ab.Analysis) -> None:
    rows = []
    for arm in result.arms:
        rows.append({
            "arm": arm.arm + (" (control)" if arm.arm == result.control else ""),
            "requests": arm.requests, "errors": sum(arm.errors.values()),
            "sessions": arm.sessions, "answered": arm.ok,
            "exported": arm.overall.exported, "export rate": _percent(arm.overall.value),
            "95% interval": _bounds(arm.overall.low, arm.overall.high),
            **{tool: _with_interval(arm.tools[tool]) for tool in TOOLS},
            "latency p50 (ms)": (None if arm.latency_p50_ms is None
                                 else round(arm.latency_p50_ms, 1)),
            "models": ", ".join(arm.models)})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="online_arms")
    st.caption("Per tool: among the answers that used the tool, the share exported with it, "
               "with its 95% interval over sessions. Only answered (ok) requests are in the "
               "rates; errors are counted apart.")


def _checks(result: ab.Analysis) -> None:
    """The sample ratio check, the minimum detectable effect, and what is left out."""
    srm = result.sample_ratio
    if srm.p_value is not None:
        observed = ", ".join(f"{arm} {n:,}" for arm, n in srm.observed.items())
        line = (f"Sample ratio: sessions {observed} against {srm.basis}: chi-square "
                f"{srm.chi2:.2f}, p = {srm.p_value:.3g}: ")
        if srm.flagged:
            st.error(state.escape_markdown(line + "MISMATCH (p < 0.001): the split is not what "
                                           "was asked for; find out why before trusting the "
                                           "comparison."), icon=":material/warning:")
        else:
            st.markdown(state.escape_markdown(line + "no mismatch."))
    for comparison in result.comparisons:
        detectable = comparison.detectable
        if detectable.mde is None:
            text = (f"Minimum detectable effect for {comparison.arm}: none "
                    f"({detectable.reason}).")
        else:
            text = (f"Minimum detectable effect for {comparison.arm}: a change of "
                    f"{_percent(detectable.mde)} of the ratio (two-sided, alpha 0.05, power "
                    f"0.8; {detectable.control_requests:,} and {detectable.arm_requests:,} "
                    f"answered requests, design effect {detectable.design_effect:.2f}).")
        st.markdown(state.escape_markdown(text))
    if result.sessions_in_several_arms:
        st.warning(f"{result.sessions_in_several_arms:,} session(s) were served under more "
                   "than one arm (the split or its salt changed between servers).")
    if result.explicit_requests:
        models = ", ".join(f"{model} {n:,}" for model, n in result.explicit_models.items())
        st.caption(state.escape_markdown(
            f"Not in the test: {result.explicit_requests:,} request(s) that named their model "
            f"({models})."))
