"""Read-only summaries for the app's Overview page: counts, tool usage, export rates, and the
latest evaluations beside the teacher ceiling. Every query takes bound parameters."""

from __future__ import annotations

import json
from typing import Any

from workbench.store import Session
from workbench.tools import TOOLS


def tool_usage(session: Session, version_id: int) -> dict[str, float]:
    """Share of the version's intents whose ground truth uses each tool."""
    row = session.first(
        "SELECT count(*) AS n, count(adjust) AS adjust, count(selective_adjust) AS "
        "selective_adjust, count(filter) AS filter FROM dataset_rows WHERE version_id = ?",
        [version_id])
    if row is None or not row["n"]:
        return {tool: 0.0 for tool in TOOLS}
    return {tool: row[tool] / row["n"] for tool in TOOLS}


def export_rate_histogram(session: Session, bins: int = 20) -> list[dict[str, Any]]:
    """Intents per export-rate bin [i/bins, (i+1)/bins) (the last bin includes 1.0)."""
    rows = session.query(
        "SELECT least(floor(export_rate * ?), ? - 1)::INTEGER AS bin, count(*) AS intents "
        "FROM intent_stats GROUP BY bin ORDER BY bin", [bins, bins])
    found = {row["bin"]: row["intents"] for row in rows}
    return [{"from": i / bins, "to": (i + 1) / bins, "intents": found.get(i, 0)}
            for i in range(bins)]


def latest_evaluations(session: Session, version_id: int | None = None,
                       limit: int = 8) -> list[dict[str, Any]]:
    """The newest evaluation per source on test splits (runs, files, ceiling, floor), newest
    first, with the summary parsed."""
    rows = session.query(
        "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY kind, source ORDER BY "
        "created_at DESC) AS rank FROM evaluations WHERE split = 'test' "
        "AND (? IS NULL OR version_id = ?)) WHERE rank = 1 ORDER BY created_at DESC LIMIT ?",
        [version_id, version_id, limit])
    for row in rows:
        row["summary"] = json.loads(row["summary"])
        row.pop("rank", None)
    return rows


def evaluation_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the RQ1 layout from a stored summary: subset, n, per tool (S, Q, F), overall."""
    table = []
    for subset in summary["subsets"]:
        row: dict[str, Any] = {"test": subset["name"], "n": subset["n_intents"]}
        for tool in TOOLS:
            score = subset["tools"][tool]
            row[tool] = (score["selection"], score["quality"], score["final"])
        row["overall"] = subset["overall"]
        table.append(row)
    return table


def run_evaluations(session: Session) -> list[dict[str, Any]]:
    """Every training run with its newest test-split evaluation (None when not evaluated yet),
    newest run first; summaries parsed."""
    rows = session.query(
        "SELECT r.run_id, r.student, r.version_id, r.n_train, r.started_at, r.duration_s, "
        "r.device, r.size_bytes, r.note, e.evaluation_id, e.version_id AS evaluated_version, "
        "e.summary FROM runs r LEFT JOIN (SELECT *, row_number() OVER (PARTITION BY source "
        "ORDER BY created_at DESC) AS rank FROM evaluations WHERE kind = 'run' "
        "AND split = 'test') e ON e.source = r.run_id AND e.rank = 1 "
        "ORDER BY r.started_at DESC")
    for row in rows:
        row["summary"] = None if row["summary"] is None else json.loads(row["summary"])
    return rows
