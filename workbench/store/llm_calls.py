"""LLM calls (SPEC 6): the tables `llm_cache` (parsed replies by request hash, so a round that
is run again costs nothing) and `llm_calls` (every attempt: status, tokens, cost)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workbench.store.connection import Session


@dataclass(frozen=True)
class LLMCall:
    """One row of llm_calls, and the reply to cache with it when it parsed."""

    cache_key: str | None
    attempt: int
    purpose: str
    model: str
    base_url: str
    started_at: datetime
    duration_ms: float
    status: str
    http_status: int | None
    error: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    reply_to_cache: str | None = None


def record_calls(session: Session, calls: Sequence[LLMCall], cached_at: datetime) -> None:
    """Rows of llm_calls, and their replies into llm_cache (a reply cached already stays)."""
    for call in calls:
        session.execute(
            "INSERT INTO llm_calls (cache_key, attempt, purpose, model, base_url, "
            "started_at, duration_ms, status, http_status, error, prompt_tokens, "
            "completion_tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [call.cache_key, call.attempt, call.purpose, call.model, call.base_url,
             call.started_at, call.duration_ms, call.status, call.http_status, call.error,
             call.prompt_tokens, call.completion_tokens, call.cost_usd])
        if call.reply_to_cache is not None:
            session.execute(
                "INSERT INTO llm_cache (cache_key, model, reply, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [call.cache_key, call.model, call.reply_to_cache, cached_at])


def cached_replies(session: Session, keys: Sequence[str]) -> dict[str, str]:
    """{cache key: reply} of the keys found in the cache."""
    rows = session.query("SELECT cache_key, reply FROM llm_cache "
                         "WHERE list_contains(?, cache_key)", [list(set(keys))])
    return {row["cache_key"]: row["reply"] for row in rows}


def usage_totals(session: Session) -> tuple[dict[str, Any], dict[str, int]]:
    """Totals over llm_calls (calls, prompt_tokens, completion_tokens, cost_usd,
    unpriced_calls: calls with tokens but no known price) and {status: calls}."""
    totals = session.query(
        "SELECT count(*) AS calls, coalesce(sum(prompt_tokens), 0) AS prompt_tokens, "
        "coalesce(sum(completion_tokens), 0) AS completion_tokens, "
        "coalesce(sum(cost_usd), 0) AS cost_usd, "
        "count(*) FILTER (WHERE cost_usd IS NULL AND prompt_tokens IS NOT NULL) "
        "AS unpriced_calls FROM llm_calls")[0]  # an aggregate: always one row
    by_status = session.query(
        "SELECT status, count(*) AS n FROM llm_calls GROUP BY status ORDER BY status")
    return totals, {row["status"]: row["n"] for row in by_status}
