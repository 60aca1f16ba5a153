"""Render evaluation results as the poster's RQ1 table, and RQ2 over seeds (text, Markdown, CSV)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from workbench.metrics import SubsetScore, ToolScore
from workbench.stats import Interval
from workbench.tools import TOOLS

TOOL_TITLES = {"adjust": "Adjust", "selective_adjust": "Selective Adjust", "filter": "Filter"}
UNDEFINED = "undef"
FOOTNOTE = (f"Triples are (tool selection, quality, final). {UNDEFINED}: the denominator is zero "
            "(e.g. no intent where both sides used the tool), so there is no number to report.")


def number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return UNDEFINED
    text = f"{value:.{digits}f}"
    # The poster's ".95" style; a quality can be negative (SPEC 5): "-.40".
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


def triple(score: ToolScore) -> str:
    return "(" + ", ".join(number(v) for v in score.triple()) + ")"


def evaluation_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the RQ1 layout from a stored evaluation summary: subset, n, per tool (S, Q, F),
    overall."""
    table = []
    for subset in summary["subsets"]:
        row: dict[str, Any] = {"test": subset["name"], "n": subset["n_intents"]}
        for tool in TOOLS:
            score = subset["tools"][tool]
            row[tool] = (score["selection"], score["quality"], score["final"])
        row["overall"] = subset["overall"]
        table.append(row)
    return table


def rq1_rows(subsets: Sequence[SubsetScore]) -> list[list[str]]:
    header = ["Test", "n", *(TOOL_TITLES[t] for t in TOOLS), "Overall", "Filter int. err."]
    rows = [header]
    for subset in subsets:
        rows.append([subset.name, str(subset.n_intents),
                     *(triple(subset.tools[t]) for t in TOOLS), number(subset.overall),
                     number(subset.tools["filter"].intensity_error, 1)])
    return rows


def detail_rows(subsets: Sequence[SubsetScore]) -> list[list[str]]:
    rows = [["Test", "Tool", "TP", "FP", "FN", "TN", "P", "R", "Selection", "Quality", "Final"]]
    for subset in subsets:
        for tool in TOOLS:
            s = subset.tools[tool]
            rows.append([subset.name, TOOL_TITLES[tool], str(s.tp), str(s.fp), str(s.fn),
                         str(s.tn), number(s.precision), number(s.recall), number(s.selection),
                         number(s.quality), number(s.final)])
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def csv_table(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def render(subsets: Sequence[SubsetScore], fmt: str = "text", title: str = "",
           details: bool = True) -> str:
    """The RQ1 table (and the P/R detail table) as 'text', 'markdown' or 'csv'."""
    main, detail = rq1_rows(subsets), detail_rows(subsets)
    if fmt == "csv":
        return csv_table(main) + ("\n" + csv_table(detail) if details else "")
    table = markdown_table if fmt == "markdown" else text_table
    parts = [f"**{title}**" if fmt == "markdown" and title else title, table(main)]
    if details:
        parts.append(table(detail))
    parts.append(FOOTNOTE)
    return "\n\n".join(part for part in parts if part)


def rq1_comparison(named: Sequence[tuple[str, Sequence[SubsetScore]]], fmt: str = "text") -> str:
    """Several models in the poster's RQ1 layout: one block of All / r_3 / r_5 rows per model."""
    rows = [["Model", "Test", "n", *(TOOL_TITLES[t] for t in TOOLS), "Overall"]]
    for label, subsets in named:
        for i, subset in enumerate(subsets):
            rows.append([label if i == 0 else "", subset.name, str(subset.n_intents),
                         *(triple(subset.tools[t]) for t in TOOLS), number(subset.overall)])
    if fmt == "csv":
        return csv_table(rows)
    table = markdown_table(rows) if fmt == "markdown" else text_table(rows)
    return table + "\n\n" + FOOTNOTE


def signed(value: float | None, digits: int = 3) -> str:
    """A difference with its sign: "+.012", "-.004"; "-.000" for a negative one that rounds to
    zero (an interval's end just below 0 must not read as 0); ".000" for exactly 0."""
    if value is None:
        return UNDEFINED
    text = number(abs(value), digits)
    return text if value == 0 else ("-" if value < 0 else "+") + text


def interval(ci: Interval, digits: int = 3, differences: bool = False) -> str:
    """A 95% interval as "[.650, .672]" (signed for differences); undef with fewer than 2."""
    if ci.low is None or ci.high is None:
        return UNDEFINED
    show = signed if differences else number
    return f"[{show(ci.low, digits)}, {show(ci.high, digits)}]"


def per_seed(values: Sequence[float | None], digits: int = 3, differences: bool = False) -> str:
    show = signed if differences else number
    return " ".join(show(value, digits) for value in values)


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """One block character per value, scaled from the smallest (▁) to the largest (█); a space
    for an undefined value."""
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    low, high = min(known), max(known)
    span = high - low
    return "".join(" " if v is None else SPARKS[0 if span == 0 else
                                                 round((v - low) / span * (len(SPARKS) - 1))]
                   for v in values)


def _rendered(table: list[list[str]], fmt: str) -> str:
    if fmt == "csv":
        return csv_table(table)
    return markdown_table(table) if fmt == "markdown" else text_table(table)


def rq2_arms_table(rows: Sequence[tuple[str, float, float, float, Interval,
                                        Sequence[float | None]]], fmt: str = "text") -> str:
    """RQ2 over seeds, one row per arm: label, Train %, mean train size, mean augmentations
    (share of the train size), mean Overall (All test intents), its 95% interval, and the
    Overall of each seed in seed order."""
    table = [["Arm", "Train %", "Train size", "Augmentations", "Overall", "95% CI",
              "Per seed"]]
    for label, percent, size, augmentations, ci, values in rows:
        share = f" ({augmentations / size:.1%})" if augmentations and size else ""
        table.append([label, f"{percent:g}%", f"{round(size):,}",
                      f"{round(augmentations):,}{share}", number(ci.mean, 3), interval(ci),
                      per_seed(values)])
    return _rendered(table, fmt)


def rq2_curve_table(rows: Sequence[tuple[int, float, float, Interval, Sequence[float | None]]],
                    fmt: str = "text") -> str:
    """The iterative arm round by round: round, mean train size, mean augmentations, mean
    Overall, its 95% interval, the Overall of each seed."""
    table = [["Round", "Train size", "Augmentations", "Overall", "95% CI", "Per seed"]]
    for round_number, size, augmentations, ci, values in rows:
        table.append([str(round_number), f"{round(size):,}", f"{round(augmentations):,}",
                      number(ci.mean, 3), interval(ci), per_seed(values)])
    return _rendered(table, fmt)


def rq2_differences_table(rows: Sequence[tuple[str, Interval, Sequence[float]]],
                          fmt: str = "text") -> str:
    """Paired differences (same seed): the comparison, the mean difference, its 95% interval,
    whether the interval excludes 0, and each seed's difference."""
    table = [["Comparison", "Difference", "95% CI", "Excludes 0", "Per seed"]]
    for label, ci, values in rows:
        excludes = {True: "yes", False: "no", None: UNDEFINED}[ci.excludes_zero]
        table.append([label, signed(ci.mean), interval(ci, differences=True), excludes,
                      per_seed(values, differences=True)])
    return _rendered(table, fmt)


def rq2_verdict(strategy: str, ci: Interval) -> str:
    """One sentence: does the arm mined with `strategy` beat its random control, by the paired
    95% interval `ci` of (mined - control)? The CLI prints it and the app shows it."""
    said = f"{signed(ci.mean)} (95% CI {interval(ci, differences=True)}, {ci.n} seeds)"
    if ci.excludes_zero is None:
        return f"Mining ({strategy}) against its random control: {said}; too few seeds for an " \
               "interval."
    if not ci.excludes_zero:
        return (f"Mining ({strategy}) against its random control: {said}; the interval "
                "includes 0, so mining is not shown to beat random augmentation of the same "
                "size.")
    better = "beats" if (ci.mean or 0) > 0 else "does worse than"
    return (f"Mining ({strategy}) {better} its random control of the same size by {said}; "
            "the interval excludes 0.")
