"""Every logged intent with its numbers in the logs and its split and ground-truth tools in a
dataset version, as one Arrow table: what search by meaning lists for its results and the map of
intents for its points, held in memory by the app while the logs do not change.

Reads only: the tables belong to `store.requests` (intents, intent_stats) and `store.versions`
(dataset_rows).
"""

from __future__ import annotations

from typing import Any

from workbench.store.connection import Session
from workbench.tools import TOOLS

_USES = ", ".join(f"CASE WHEN d.intent_key IS NULL THEN NULL ELSE d.{tool} IS NOT NULL END "
                  f"AS uses_{tool}" for tool in TOOLS)


def intent_table(session: Session, version_id: int | None) -> Any:
    """A pyarrow Table, one row per intent by key: intent_key, intent_text, request_count,
    exported_count, export_rate, output_count, split, uses_<tool> (split and uses_* null where
    the intent is not in the dataset version, or there is none)."""
    return session.arrow(
        "SELECT i.intent_key, i.intent_text, s.request_count, s.exported_count, "
        f"s.export_rate, s.output_count, d.split, {_USES} "
        "FROM intents i JOIN intent_stats s USING (intent_key) "
        "LEFT JOIN dataset_rows d ON d.intent_key = i.intent_key AND d.version_id = ? "
        "ORDER BY i.intent_key", [version_id])
