"""Browse queries over intents: search, filter, sort and page (the Intents page and benchmarks),
and one intent's detail: its teacher outputs and why each tool's ground truth was chosen.

Every value from the user is a bound parameter. The few SQL fragments that vary (sort order,
which tool's column) are picked from fixed tables by enum or by a name checked against TOOLS.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from workbench.datasets import Split
from workbench.errors import WorkbenchError
from workbench.store import Session
from workbench.tools import TOOLS

GROUND_TRUTH_RULE = (
    "Per intent and per tool, the ground truth is the output with the highest export rate: that "
    "tool's exports of the requests that produced the output divided by how many requests produced "
    "it (requests with no export of any tool are dropped first). Ties go to the output seen in "
    "more requests, then to the one seen latest.")


class IntentSort(str, Enum):
    REQUESTS = "requests"
    EXPORT_RATE = "export_rate"
    LAST_SEEN = "last_seen"
    INTENT = "intent"


class ToolUse(str, Enum):
    """A tool filter: whether the version's ground truth uses the tool."""

    ANY = "any"
    USED = "used"
    UNUSED = "unused"


_ORDER = {  # fixed SQL fragments, chosen by enum, never built from user text
    IntentSort.REQUESTS: "request_count DESC, intent_key",
    IntentSort.EXPORT_RATE: "export_rate DESC, request_count DESC, intent_key",
    IntentSort.LAST_SEEN: "last_seen_at DESC, intent_key",
    IntentSort.INTENT: "intent_key",
}
_ORDER_REVERSED = {
    IntentSort.REQUESTS: "request_count ASC, intent_key DESC",
    IntentSort.EXPORT_RATE: "export_rate ASC, request_count ASC, intent_key DESC",
    IntentSort.LAST_SEEN: "last_seen_at ASC, intent_key DESC",
    IntentSort.INTENT: "intent_key DESC",
}


@dataclass(frozen=True)
class IntentFilter:
    search: str = ""                 # substring of the intent, case-insensitive
    min_export_rate: float = 0.0
    max_export_rate: float = 1.0
    min_requests: int = 1
    version_id: int | None = None    # the dataset version that gives split and ground truth
    split: Split = Split.ALL         # ALL: any split, and intents not in the version too
    tools: Mapping[str, ToolUse] = field(default_factory=dict, hash=False)  # unnamed tool: any

    def uses_version(self) -> bool:
        """True when a split or tool filter restricts to the version's intents."""
        return self.split != Split.ALL or any(use != ToolUse.ANY for use in self.tools.values())


# Matching reads intent_stats alone (it has the key, so the search needs no join); the version's
# rows are consulted only when a split or tool filter is set. The text, split and tools are
# joined to the page's rows after LIMIT, so a page costs one top-N scan at any size.
_MATCH = ("FROM intent_stats s WHERE (? = '' OR contains(s.intent_key, ?)) "
          "AND s.export_rate BETWEEN ? AND ? AND s.request_count >= ? ")
_IN_VERSION = ("AND s.intent_key IN (SELECT d.intent_key FROM dataset_rows d "
               "WHERE d.version_id = ? AND (? = 'all' OR d.split = ?) "
               + "".join(f"AND (? = 'any' OR (d.{tool} IS NOT NULL) = (? = 'used')) "
                         for tool in TOOLS) + ") ")
_USES = ", ".join(f"CASE WHEN d.dk IS NULL THEN NULL ELSE d.{tool} IS NOT NULL END "
                  f"AS uses_{tool}" for tool in TOOLS)
# Curation keeps a request when at least one of its tools was exported.
_EXPORTED = "r.exports_adjust + r.exports_selective_adjust + r.exports_filter > 0"


def _where(filters: IntentFilter) -> tuple[str, list[Any]]:
    """The FROM/WHERE part that selects the matching intents from intent_stats `s`, and its
    parameters. Raises WorkbenchError on a filter that cannot be applied."""
    unknown = sorted(set(filters.tools) - set(TOOLS))
    if unknown:
        raise WorkbenchError(f"unknown tool(s) {', '.join(unknown)} in the intent filter; "
                             f"the tools are {', '.join(TOOLS)}")
    if filters.uses_version() and filters.version_id is None:
        raise WorkbenchError("filtering by split or tool needs a dataset version; there is none "
                             "yet (run `workbench curate`)")
    if filters.min_export_rate > filters.max_export_rate:
        raise WorkbenchError(f"the export-rate range is empty: {filters.min_export_rate} > "
                             f"{filters.max_export_rate}")
    params: list[Any] = [filters.search, " ".join(filters.search.lower().split()),
                         filters.min_export_rate, filters.max_export_rate, filters.min_requests]
    if not filters.uses_version():
        return _MATCH, params
    split = Split(filters.split).value
    params += [filters.version_id, split, split]
    for tool in TOOLS:
        use = ToolUse(filters.tools.get(tool, ToolUse.ANY)).value
        params += [use, use]
    return _MATCH + _IN_VERSION, params


def intents_page(session: Session, filters: IntentFilter, sort: IntentSort = IntentSort.REQUESTS,
                 limit: int = 50, offset: int = 0, reverse: bool = False) -> list[dict]:
    """One page of intents with their request count, export rate, distinct outputs, and (when
    `filters.version_id` is set) their split and which tools their ground truth uses (None when
    the intent is not in the version). `reverse` flips the sort order."""
    order = (_ORDER_REVERSED if reverse else _ORDER)[IntentSort(sort)]
    where, params = _where(filters)
    return session.query(
        f"WITH page AS (SELECT s.* {where}ORDER BY {order} LIMIT ? OFFSET ?) "
        "SELECT p.intent_key, i.intent_text, p.request_count, p.exported_count, p.export_rate, "
        f"p.output_count, p.last_seen_at, d.split, {_USES} FROM page p "
        "JOIN (SELECT intent_key AS ik, intent_text FROM intents) i ON i.ik = p.intent_key "
        "LEFT JOIN (SELECT intent_key AS dk, split, adjust, selective_adjust, filter "
        "FROM dataset_rows WHERE version_id = ?) d ON d.dk = p.intent_key "
        f"ORDER BY {order}", [*params, limit, offset, filters.version_id])


def count_intents(session: Session, filters: IntentFilter) -> int:
    """How many intents match the filters (the page's total)."""
    where, params = _where(filters)
    return int(session.value(f"SELECT count(*) {where}", params))


def intent_detail(session: Session, intent_key: str, version_id: int | None) -> dict | None:
    """One logged intent: its numbers, and its row in the version (split, origin, ground truth
    per tool as canonical JSON; `in_version` False and those None when it is not there)."""
    row = session.first(
        "SELECT i.intent_key, i.intent_text, i.first_seen_at, s.request_count, s.exported_count, "
        "s.export_rate, s.output_count, s.last_seen_at, d.intent_key IS NOT NULL AS in_version, "
        "d.split, d.origin, d.source_intent_key, d.adjust, d.selective_adjust, d.filter "
        "FROM intents i JOIN intent_stats s USING (intent_key) LEFT JOIN dataset_rows d "
        "ON d.intent_key = i.intent_key AND d.version_id = ? WHERE i.intent_key = ?",
        [version_id, intent_key])
    if row is not None:
        row["version_id"] = version_id
    return row


def teacher_outputs(session: Session, intent_key: str,
                    version_id: int | None = None) -> list[dict]:
    """Every distinct teacher output of the intent (the three tools together), most requested
    first: requests, those with any export, exports per tool, and per tool the export rate as
    curation computes it (exports / exported requests; None when none was exported). With a
    version, `ground_truth_<tool>` says whether this output's tool call is the ground truth."""
    exports = ", ".join(f"sum(r.exports_{tool}) AS exports_{tool}" for tool in TOOLS)
    rates = ", ".join(
        f"sum(r.exports_{tool}) FILTER (WHERE {_EXPORTED}) / nullif(count(*) FILTER "
        f"(WHERE {_EXPORTED}), 0) AS export_rate_{tool}" for tool in TOOLS)
    chosen = ", ".join(f"any_value(d.intent_key IS NOT NULL AND r.{tool} IS NOT DISTINCT FROM "
                       f"d.{tool}) AS ground_truth_{tool}" for tool in TOOLS)
    return session.query(
        f"SELECT r.adjust, r.selective_adjust, r.filter, count(*) AS requests, "
        f"count(*) FILTER (WHERE {_EXPORTED}) AS exported_requests, {exports}, {rates}, "
        f"{chosen}, min(r.created_at) AS first_seen_at, max(r.created_at) AS last_seen_at "
        "FROM requests r LEFT JOIN dataset_rows d ON d.intent_key = r.intent_key "
        "AND d.version_id = ? WHERE r.intent_key = ? "
        "GROUP BY r.adjust, r.selective_adjust, r.filter "
        "ORDER BY requests DESC, last_seen_at DESC, r.adjust NULLS FIRST, "
        "r.selective_adjust NULLS FIRST, r.filter NULLS FIRST",
        [version_id, intent_key])



def tool_candidates(session: Session, intent_key: str,
                    version_id: int | None = None) -> dict[str, list[dict]]:
    """Per tool, the intent's candidate outputs ranked by the ground-truth rule over today's logs
    (rank 1 wins): output (None = tool not used), exports, requests, export rate, latest. With a
    version, `ground_truth` says which one the version holds. One scan of the intent's requests."""
    branches = " UNION ALL ".join(
        f"SELECT '{tool}' AS tool, {tool} AS output, sum(exports_{tool}) AS exports, "
        f"count(*) AS n_requests, max(created_at) AS latest FROM r GROUP BY {tool}"
        for tool in TOOLS)
    version_output = " ".join(f"WHEN '{tool}' THEN d.{tool}" for tool in TOOLS)
    rows = session.query(
        "WITH r AS MATERIALIZED (SELECT r.adjust, r.selective_adjust, r.filter, "
        "r.exports_adjust, r.exports_selective_adjust, r.exports_filter, r.created_at "
        f"FROM requests r WHERE r.intent_key = ? AND {_EXPORTED}), o AS ({branches}) "
        "SELECT o.tool, row_number() OVER (PARTITION BY o.tool ORDER BY o.exports / o.n_requests "
        "DESC, o.n_requests DESC, o.latest DESC, o.output ASC NULLS FIRST) AS rank, o.output, "
        "o.exports, o.n_requests, o.exports / o.n_requests AS export_rate, o.latest, "
        f"d.intent_key IS NOT NULL AND o.output IS NOT DISTINCT FROM (CASE o.tool "
        f"{version_output} END) AS ground_truth FROM o LEFT JOIN dataset_rows d "
        "ON d.intent_key = ? AND d.version_id = ? ORDER BY o.tool, rank",
        [intent_key, intent_key, version_id])
    ranked: dict[str, list[dict]] = {tool: [] for tool in TOOLS}
    for row in rows:
        ranked[row.pop("tool")].append(row)
    return ranked


def ground_truth_choices(session: Session, intent_key: str, version_id: int) -> dict[str, Any]:
    """Why the version's ground truth for the intent is what it is: the numbers recorded when it
    was chosen, per tool (output, exports, n_requests, export_rate, n_candidates).

    Curation records them; subsampled and augmented versions copy their parent's rows, so the
    record is looked up in the version, then its parent, and so on up the lineage.
    `recorded_in` is the version that holds it (None, and no tools, when none does)."""
    rows = session.query(
        "WITH RECURSIVE lineage(version_id, parent_id, depth) AS ("
        " SELECT version_id, parent_id, 0 FROM dataset_versions WHERE version_id = ?"
        " UNION ALL SELECT v.version_id, v.parent_id, l.depth + 1 FROM dataset_versions v"
        " JOIN lineage l ON v.version_id = l.parent_id WHERE l.depth < 1000) "
        "SELECT g.version_id, g.tool, g.output, g.exports, g.n_requests, g.export_rate, "
        "g.n_candidates, l.depth FROM ground_truth_choices g JOIN lineage l USING (version_id) "
        "WHERE g.intent_key = ? ORDER BY l.depth", [version_id, intent_key])
    if not rows:
        return {"recorded_in": None, "tools": {}}
    nearest = rows[0]["depth"]
    tools = {row["tool"]: {k: row[k] for k in ("output", "exports", "n_requests", "export_rate",
                                               "n_candidates")}
             for row in rows if row["depth"] == nearest}
    return {"recorded_in": rows[0]["version_id"], "tools": tools}


def describe_output(tool: str, output: str | None) -> str:
    """A tool call's canonical JSON in a short readable form for tables: only the nonzero
    values ('temperature +40, tint -10'; 'orange sat +25 lum +15'; 'warm_Golden @ 50')."""
    if output is None:
        return "not used"
    value = json.loads(output)
    if tool == "adjust":
        parts = [f"{key} {amount:+d}" for key, amount in value.items() if amount]
    elif tool == "selective_adjust":
        parts = [f"{colour} " + " ".join(f"{channel[:3]} {amount:+d}"
                                         for channel, amount in channels.items() if amount)
                 for colour, channels in value.items() if any(channels.values())]
    elif tool == "filter":
        return f"{value['name']} @ {value['intensity']}"
    else:
        raise WorkbenchError(f"unknown tool {tool!r}; the tools are {', '.join(TOOLS)}")
    return ", ".join(parts) or "all zero"
