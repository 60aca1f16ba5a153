"""Render evaluation results as the poster's RQ1 table (text, Markdown, CSV)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from workbench.metrics import SubsetScore, ToolScore
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


def rq2_table(rows: Sequence[tuple[float, int, int, float | None]], fmt: str = "text",
              sources: Sequence[str] | None = None) -> str:
    """The poster's RQ2 layout: Train %, Augmentations (share of the train size), Train size,
    Overall (All test intents); with `sources`, a column saying which intents were augmented."""
    header = ["Train %", "Augmentations", "Train size", "Overall"]
    table = [header if sources is None else ["Train %", "Augmented intents", *header[1:]]]
    for i, (percent, augmentations, size, overall) in enumerate(rows):
        share = f" ({augmentations / size:.1%})" if augmentations and size else ""
        cells = [f"{percent:g}%", f"{augmentations:,}{share}", f"{size:,}", number(overall)]
        table.append(cells if sources is None else [cells[0], sources[i], *cells[1:]])
    if fmt == "csv":
        return csv_table(table)
    return markdown_table(table) if fmt == "markdown" else text_table(table)
