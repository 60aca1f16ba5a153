"""Browse queries over intents: search, filter, sort and page (the Intents page and benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from workbench.store import Session


class IntentSort(str, Enum):
    REQUESTS = "requests"
    EXPORT_RATE = "export_rate"
    LAST_SEEN = "last_seen"
    INTENT = "intent"


_ORDER = {  # fixed SQL fragments, chosen by enum, never built from user text
    IntentSort.REQUESTS: "s.request_count DESC, i.intent_key",
    IntentSort.EXPORT_RATE: "s.export_rate DESC, s.request_count DESC, i.intent_key",
    IntentSort.LAST_SEEN: "s.last_seen_at DESC, i.intent_key",
    IntentSort.INTENT: "i.intent_key",
}


@dataclass(frozen=True)
class IntentFilter:
    search: str = ""                 # substring of the intent, case-insensitive
    min_export_rate: float = 0.0
    max_export_rate: float = 1.0
    min_requests: int = 1


def intents_page(session: Session, filters: IntentFilter, sort: IntentSort = IntentSort.REQUESTS,
                 limit: int = 50, offset: int = 0) -> list[dict]:
    """One page of intents with their request count, export rate and distinct outputs."""
    return session.query(
        "SELECT i.intent_key, i.intent_text, s.request_count, s.exported_count, s.export_rate, "
        "s.output_count, s.last_seen_at FROM intents i JOIN intent_stats s USING (intent_key) "
        "WHERE (? = '' OR contains(i.intent_key, ?)) AND s.export_rate BETWEEN ? AND ? "
        f"AND s.request_count >= ? ORDER BY {_ORDER[sort]} LIMIT ? OFFSET ?",
        [filters.search, " ".join(filters.search.lower().split()), filters.min_export_rate,
         filters.max_export_rate, filters.min_requests, limit, offset])
