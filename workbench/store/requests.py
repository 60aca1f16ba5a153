"""The logs (SPEC 3, 4): the tables `requests`, `intents`, `intent_stats`, `quarantine` and
`ingests`.

Only ingest writes them, one transaction per file (`write_staged_requests`,
`quarantine_records`, `record_ingest`): every statement there reads only the staged file and
what it touches, merging the file's numbers into the stored ones. The teacher's served answers
folded into the logs (pipelines.fold_served) come through the same functions, one ingest per
spool segment with format 'served'. The rest reads: what
curation needs (the ground truth by the export-rate rule), the browse queries of the Intents
page (search, filter, sort, page) and one intent's teacher outputs.

Every value from the user is a bound parameter. The few SQL fragments that vary (sort order,
which tool's column) are picked from fixed tables by enum or by a name checked against TOOLS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.store.connection import Session
from workbench.store.versions import Split
from workbench.tools import TOOLS

GROUND_TRUTH_RULE = (
    "Per intent and per tool, the ground truth is the output with the highest export rate: that "
    "tool's exports of the requests that produced the output divided by how many requests produced "
    "it (requests with no export of any tool are dropped first). Ties go to the output seen in "
    "more requests, then to the one seen latest.")


def _ground_truth_order(table: str = "") -> str:
    """The rule as an ORDER BY over candidate outputs (columns output, exports, n_requests,
    latest of `table`): the first one wins; the smaller canonical JSON last, only to be
    deterministic."""
    t = f"{table}." if table else ""
    return (f"{t}exports / {t}n_requests DESC, {t}n_requests DESC, {t}latest DESC, "
            f"{t}output ASC NULLS FIRST")


# Curation keeps a request when at least one of its tools was exported.
_EXPORTED = "exports_adjust + exports_selective_adjust + exports_filter > 0"
_R_EXPORTED = "r.exports_adjust + r.exports_selective_adjust + r.exports_filter > 0"


# ------------------------------------------------------------------------------ ingest

def next_ingest_id(session: Session) -> int:
    return int(session.value("SELECT nextval('ingest_id_seq')"))


def record_ingest(session: Session, *, ingest_id: int, source_file: str, format: str,
                  started_at: datetime, finished_at: datetime, n_read: int, n_ingested: int,
                  n_duplicates: int, n_quarantined: int, error: str | None) -> None:
    """The ingest history's row for one file."""
    session.execute(
        "INSERT INTO ingests (ingest_id, source_file, format, started_at, finished_at, n_read, "
        "n_ingested, n_duplicates, n_quarantined, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [ingest_id, source_file, format, started_at, finished_at, n_read, n_ingested,
         n_duplicates, n_quarantined, error])


@dataclass(frozen=True)
class StagedWrite:
    """What `write_staged_requests` did with a staged file."""

    duplicates: int          # rows already stored with the same content (a no-op)
    conflicts: list[dict]    # rows stored with other content: source_location, raw,
                             # request_id, ingest_id (the earlier ingest); not written
    ingested: int            # new requests written


_TEMPORARY = (("VIEW", "new_rows"), ("TABLE", "novel"), ("TABLE", "file_intents"),
              ("TABLE", "hits"), ("VIEW", "staged"))


def write_staged_requests(session: Session, staged_file: Path, file_intents: Any,
                          file_intents_exact: bool, ingest_id: int,
                          source_file: str) -> StagedWrite:
    """Write a staged Parquet file's requests, inside the caller's transaction: duplicates and
    conflicts with the store first, then the new requests, their new intents and their share of
    the browse statistics.

    `file_intents` (Arrow: intent_key, intent_text, first_seen_at, n, exported, last_seen,
    outputs) are the file's numbers worked out while staging; they are used as they are when
    `file_intents_exact` (every staged row was staged) and no row is already stored, else
    recomputed from the new rows."""
    # A view, not a table: each statement reads the columns it needs from disk instead of the
    # whole stage being copied into the transaction. DDL takes no parameters; the path is our
    # own staging file, quoted.
    literal = "'" + str(staged_file).replace("'", "''") + "'"
    session.execute(f"CREATE TEMP VIEW staged AS SELECT * FROM read_parquet({literal})")
    # Same id already in the store: identical content is a no-op, different is a conflict.
    session.execute(
        "CREATE TEMP TABLE hits AS SELECT s.seq, s.request_id, r.ingest_id, "
        "s.content_hash = r.content_hash AS same FROM staged s JOIN requests r USING (request_id)")
    counts = session.query("SELECT count(*) AS hits, count(*) FILTER (WHERE same) AS same "
                           "FROM hits")[0]
    hits, same = int(counts["hits"]), int(counts["same"])
    conflicts: list[dict] = []
    if hits > same:
        conflicts = session.query(
            "SELECT s.source_location, s.raw, h.request_id, h.ingest_id FROM hits h "
            "JOIN staged s USING (seq) WHERE NOT h.same ORDER BY h.seq")
    if not hits and file_intents_exact:
        # The usual case: every staged row is new, so the file's intents and numbers that
        # staging worked out hold as they are.
        session.execute("CREATE TEMP VIEW new_rows AS SELECT * FROM staged")
        session.register("file_intents_arrow", file_intents)
        session.execute("CREATE TEMP TABLE file_intents AS SELECT * FROM file_intents_arrow")
        session.unregister("file_intents_arrow")
    else:
        session.execute(
            "CREATE TEMP VIEW new_rows AS SELECT s.* FROM staged s ANTI JOIN hits USING (seq)")
        session.execute(
            "CREATE TEMP TABLE file_intents AS SELECT intent_key, "
            "arg_min(intent_text, seq) AS intent_text, arg_min(created_at, seq) AS first_seen_at, "
            f"count(*) AS n, count(*) FILTER (WHERE {_EXPORTED}) AS exported, "
            "max(created_at) AS last_seen, "
            "count(DISTINCT (adjust, selective_adjust, filter)) AS outputs "
            "FROM new_rows GROUP BY intent_key")
    # New intents, with the spelling and time of their first request in this file.
    session.execute(
        "INSERT INTO intents (intent_key, intent_text, first_seen_at, ingest_id) "
        "SELECT intent_key, intent_text, first_seen_at, ? FROM file_intents "
        "ANTI JOIN intents USING (intent_key)", [ingest_id])
    _merge_intent_stats(session)
    ingested = int(session.value(
        "INSERT INTO requests SELECT request_id, intent_key, intent_text, created_at, adjust, "
        "selective_adjust, filter, filter_name, exports_adjust, exports_selective_adjust, "
        "exports_filter, teacher_model, latency_ms, cost_usd, session_id, content_hash, ?, ?, "
        "source_location FROM new_rows", [ingest_id, source_file]))
    for kind, name in _TEMPORARY:
        session.execute(f"DROP {kind} IF EXISTS {name}")
    return StagedWrite(same, conflicts, ingested)


def _merge_intent_stats(session: Session) -> None:
    """Add the file's numbers (`file_intents`) to the browse statistics of its intents.

    Counts add up; an intent's distinct outputs grow by the file's outputs that its stored
    requests do not have yet; so nothing is recomputed over the whole table. Runs before the
    new rows are inserted into `requests`."""
    # An output is the triple of tool parameters (NULL = unused); only intents already in the
    # store need the comparison with their stored requests.
    session.execute(
        "CREATE TEMP TABLE novel AS SELECT f.intent_key, count(*) AS outputs FROM ("
        " SELECT DISTINCT n.intent_key, n.adjust, n.selective_adjust, n.filter FROM new_rows n"
        " SEMI JOIN intent_stats USING (intent_key)) f "
        "WHERE NOT EXISTS (SELECT 1 FROM requests r WHERE r.intent_key = f.intent_key"
        " AND r.adjust IS NOT DISTINCT FROM f.adjust"
        " AND r.selective_adjust IS NOT DISTINCT FROM f.selective_adjust"
        " AND r.filter IS NOT DISTINCT FROM f.filter) GROUP BY f.intent_key")
    session.execute(
        "UPDATE intent_stats AS o SET request_count = o.request_count + f.n,"
        " exported_count = o.exported_count + f.exported,"
        " export_rate = (o.exported_count + f.exported) / (o.request_count + f.n),"
        " output_count = o.output_count + coalesce(v.outputs, 0),"
        " last_seen_at = greatest(o.last_seen_at, f.last_seen) "
        "FROM file_intents f LEFT JOIN novel v USING (intent_key) "
        "WHERE o.intent_key = f.intent_key")
    session.execute(
        "INSERT INTO intent_stats (intent_key, request_count, exported_count, export_rate, "
        "output_count, last_seen_at) SELECT intent_key, n, exported, exported / n, outputs, "
        "last_seen FROM file_intents ANTI JOIN intent_stats USING (intent_key)")


def requests_of_ingests(session: Session, ingest_ids: Sequence[int]) -> dict[str, int]:
    """How many requests the given ingests wrote ("requests") and how many of those had an
    export of any tool ("exported")."""
    if not ingest_ids:
        return {"requests": 0, "exported": 0}
    row = session.first(
        f"SELECT count(*) AS requests, count(*) FILTER (WHERE {_EXPORTED}) AS exported "
        "FROM requests WHERE list_contains(?, ingest_id)", [list(ingest_ids)]) or {}
    return {key: int(row.get(key) or 0) for key in ("requests", "exported")}


def quarantine_records(session: Session, ingest_id: int, source_file: str,
                       records: Sequence[Mapping[str, str | None]], now: datetime) -> None:
    """Store bad records (location, reason, raw); one already quarantined from the same file
    and place is not repeated, so re-ingesting a file is a no-op for its bad records as for its
    good ones."""
    import pyarrow as pa

    if not records:
        return
    session.register("bad", pa.table({
        name: pa.array([record[name] for record in records], pa.string())
        for name in ("location", "reason", "raw")}))
    session.execute(
        "INSERT INTO quarantine (ingest_id, source_file, location, reason, raw, quarantined_at) "
        "SELECT ?, ?, b.location, b.reason, b.raw, ? FROM bad b WHERE NOT EXISTS ("
        " SELECT 1 FROM quarantine q WHERE q.source_file = ? AND q.location = b.location"
        " AND q.reason = b.reason AND q.raw IS NOT DISTINCT FROM b.raw)",
        [ingest_id, source_file, now, source_file])
    session.unregister("bad")


def quarantine_page(session: Session, limit: int = 50, offset: int = 0) -> list[dict]:
    """Quarantined records in the order they were quarantined."""
    return session.query("SELECT quarantine_id, ingest_id, source_file, location, reason, raw "
                         "FROM quarantine ORDER BY quarantine_id LIMIT ? OFFSET ?",
                         [limit, offset])


# ------------------------------------------------------------------------------ counts

def log_counts(session: Session) -> dict[str, int]:
    """How many requests, intents, quarantined records and ingests are stored."""
    return {"requests": int(session.value("SELECT count(*) FROM requests")),
            "intents": int(session.value("SELECT count(*) FROM intents")),
            "quarantined": int(session.value("SELECT count(*) FROM quarantine")),
            "ingests": int(session.value("SELECT count(*) FROM ingests"))}


def logs_state(session: Session) -> tuple[int, int]:
    """What identifies the state of the logs, (newest ingest id, requests): only ingest writes
    requests, and every ingest leaves a row with a new id."""
    row = session.first("SELECT (SELECT coalesce(max(ingest_id), 0) FROM ingests) AS ingest, "
                        "(SELECT count(*) FROM requests) AS requests") or {}
    return int(row.get("ingest") or 0), int(row.get("requests") or 0)


def has_synthetic_demo_ingest(session: Session) -> bool:
    """Whether any file came from the demo generator (its files say so in their name)."""
    return bool(session.value(
        "SELECT count(*) FROM ingests WHERE contains(source_file, 'synthetic-demo')"))


def export_rate_histogram(session: Session, bins: int = 20) -> list[dict[str, Any]]:
    """Intents per export-rate bin [i/bins, (i+1)/bins) (the last bin includes 1.0)."""
    rows = session.query(
        "SELECT least(floor(export_rate * ?), ? - 1)::INTEGER AS bin, count(*) AS intents "
        "FROM intent_stats GROUP BY bin ORDER BY bin", [bins, bins])
    found = {row["bin"]: row["intents"] for row in rows}
    return [{"from": i / bins, "to": (i + 1) / bins, "intents": found.get(i, 0)}
            for i in range(bins)]


# ------------------------------------------------------------------------------ curation

def count_unexported_requests(session: Session) -> int:
    """Requests none of whose outputs was exported (curation drops them)."""
    return int(session.value(
        "SELECT count(*) FROM requests "
        "WHERE exports_adjust + exports_selective_adjust + exports_filter = 0"))


def _ground_truth_sql(tool: str) -> str:
    # `tool` is one of TOOLS (a column name, never user input).
    return f"""
        WITH outputs AS (
            SELECT intent_key, {tool} AS output, sum(exports_{tool}) AS exports,
                   count(*) AS n_requests, max(created_at) AS latest
            FROM requests
            WHERE {_EXPORTED}
            GROUP BY intent_key, {tool}
        ), ranked AS (
            SELECT *, exports / n_requests AS export_rate,
                   count(*) OVER (PARTITION BY intent_key) AS n_candidates,
                   row_number() OVER (PARTITION BY intent_key
                                      ORDER BY {_ground_truth_order()}) AS rank
            FROM outputs
        )
        SELECT intent_key, output, exports, n_requests, export_rate, n_candidates
        FROM ranked WHERE rank = 1
    """


def ground_truth_by_intent(session: Session) -> dict[str, dict[str, dict]]:
    """The ground truth over today's logs by the export-rate rule (`GROUND_TRUTH_RULE`):
    {intent_key: {tool: {output, exports, n_requests, export_rate, n_candidates}}}, for every
    intent with at least one exported request."""
    chosen: dict[str, dict[str, dict]] = {}
    for tool in TOOLS:
        for row in session.query(_ground_truth_sql(tool)):
            chosen.setdefault(row.pop("intent_key"), {})[tool] = row
    return chosen


def intent_request_counts(session: Session) -> dict[str, dict]:
    """{intent_key: intent_key, intent_text, request_count} of every intent with requests
    (zero-export ones included: they count for the r_k subsets)."""
    return {row["intent_key"]: row for row in session.query(
        "SELECT i.intent_key, i.intent_text, count(*) AS request_count "
        "FROM intents i JOIN requests r USING (intent_key) "
        "GROUP BY i.intent_key, i.intent_text")}


def distinct_outputs(session: Session, keys: Sequence[str]) -> list[dict]:
    """Every distinct teacher output (adjust, selective_adjust, filter) of the given intents,
    with the first request that produced it, by intent and then in order of first request."""
    import pyarrow as pa

    session.register("wanted_keys", pa.table({"intent_key": pa.array(list(keys), pa.string())}))
    try:
        return session.query(
            "SELECT intent_key, adjust, selective_adjust, filter, "
            "min(request_id) AS first_request FROM requests "
            "WHERE intent_key IN (SELECT intent_key FROM wanted_keys) "
            "GROUP BY intent_key, adjust, selective_adjust, filter "
            "ORDER BY intent_key, first_request")
    finally:
        session.unregister("wanted_keys")


# ------------------------------------------------------------------------------ browsing

class IntentSort(str, Enum):
    REQUESTS = "requests"
    EXPORT_RATE = "export_rate"
    LAST_SEEN = "last_seen"
    INTENT = "intent"


class ToolUse(str, Enum):
    """A tool filter: whether the dataset version's ground truth uses the tool."""

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
        """True when a split or tool filter restricts to the dataset version's intents."""
        return self.split != Split.ALL or any(use != ToolUse.ANY for use in self.tools.values())


# Matching reads intent_stats alone (it has the key, so the search needs no join); the version's
# rows are consulted only when a split or tool filter is set. The text, split and tools are
# joined to the page's rows after LIMIT, so a page costs one top-N scan at any size: the page's
# keys are looked up in the indexes on intents.intent_key and dataset_rows.intent_key (db/010).
# The version is picked inside the aggregate (FILTER), not in a WHERE: DuckDB uses an index only
# when every condition of the scan is on the indexed column, and a scan of dataset_rows costs
# 0.2 s per million requests (issue 17).
_MATCH = ("FROM intent_stats s WHERE (? = '' OR contains(s.intent_key, ?)) "
          "AND s.export_rate BETWEEN ? AND ? AND s.request_count >= ? ")
_IN_VERSION = ("AND s.intent_key IN (SELECT d.intent_key FROM dataset_rows d "
               "WHERE d.version_id = ? AND (? = 'all' OR d.split = ?) "
               + "".join(f"AND (? = 'any' OR (d.{tool} IS NOT NULL) = (? = 'used')) "
                         for tool in TOOLS) + ") ")
_USES = ", ".join(f"d.uses_{tool}" for tool in TOOLS)
_VERSION_ROWS = (  # one row per page key in the version (none when it is not in it); its
    # parameters: the version id, `_VERSION_MARKS` times
    "SELECT intent_key AS dk, any_value(split) FILTER (WHERE version_id = ?) AS split, "
    + ", ".join(f"bool_or({tool} IS NOT NULL) FILTER (WHERE version_id = ?) AS uses_{tool}"
                for tool in TOOLS)
    + " FROM dataset_rows WHERE intent_key IN (SELECT intent_key FROM page) GROUP BY intent_key "
    "HAVING count(*) FILTER (WHERE version_id = ?) > 0")
_VERSION_MARKS = _VERSION_ROWS.count("?")


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


# A sort's leading columns (descending; ascending reversed): `_threshold` bounds the page by
# them before the top-N reads the intents' text for the last tie-break.
_LEADING = {IntentSort.REQUESTS: ("request_count",),
            IntentSort.EXPORT_RATE: ("export_rate", "request_count"),
            IntentSort.LAST_SEEN: ("last_seen_at",),
            IntentSort.INTENT: ()}


def _threshold(session: Session, where: str, params: list[Any], sort: IntentSort,
               reverse: bool, last: int) -> tuple[str, list[Any]]:
    """A condition (and its parameters) that keeps only the intents at least as far up the sort
    as the one at position `last` (0-based), so that the page's top-N reads the text column of
    those alone; empty for the A-to-Z sort or when fewer intents match. At 10M requests the
    first page by requests costs 45 ms this way, 190 ms without (issue 17)."""
    columns = _LEADING[sort]
    if not columns or last < 0:
        return "", []
    direction, beyond = ("ASC", "<") if reverse else ("DESC", ">")
    row = session.first(f"SELECT {', '.join(columns)} {where}ORDER BY "
                        f"{', '.join(f'{column} {direction}' for column in columns)} "
                        "LIMIT 1 OFFSET ?", [*params, last])
    if row is None:
        return "", []
    if len(columns) == 1:
        return f"AND s.{columns[0]} {beyond}= ? ", [row[columns[0]]]
    first, second = columns
    return (f"AND (s.{first} {beyond} ? OR (s.{first} = ? AND s.{second} {beyond}= ?)) ",
            [row[first], row[first], row[second]])


def intents_page(session: Session, filters: IntentFilter, sort: IntentSort = IntentSort.REQUESTS,
                 limit: int = 50, offset: int = 0, reverse: bool = False) -> list[dict]:
    """One page of intents with their request count, export rate, distinct outputs, and (when
    `filters.version_id` is set) their split and which tools their ground truth uses (None when
    the intent is not in the dataset version). `reverse` flips the sort order."""
    sort = IntentSort(sort)
    order = (_ORDER_REVERSED if reverse else _ORDER)[sort]
    where, params = _where(filters)
    bound, bound_params = _threshold(session, where, params, sort, reverse, offset + limit - 1)
    return session.query(
        f"WITH page AS (SELECT s.* {where}{bound}ORDER BY {order} LIMIT ? OFFSET ?) "
        "SELECT p.intent_key, i.intent_text, p.request_count, p.exported_count, p.export_rate, "
        f"p.output_count, p.last_seen_at, d.split, {_USES} FROM page p "
        "JOIN (SELECT intent_key AS ik, intent_text FROM intents) i ON i.ik = p.intent_key "
        f"LEFT JOIN ({_VERSION_ROWS}) d ON d.dk = p.intent_key "
        f"ORDER BY {order}", [*params, *bound_params, limit, offset,
                              *[filters.version_id] * _VERSION_MARKS])


def count_intents(session: Session, filters: IntentFilter) -> int:
    """How many intents match the filters (the page's total)."""
    where, params = _where(filters)
    return int(session.value(f"SELECT count(*) {where}", params))


def intent_detail(session: Session, intent_key: str, version_id: int | None) -> dict | None:
    """One logged intent: its numbers, and its row in the dataset version (split, origin,
    ground truth per tool as canonical JSON; `in_version` False and those None when it is not
    there)."""
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
    dataset version, `ground_truth_<tool>` says whether this output's tool call is the ground
    truth."""
    exports = ", ".join(f"sum(r.exports_{tool}) AS exports_{tool}" for tool in TOOLS)
    rates = ", ".join(
        f"sum(r.exports_{tool}) FILTER (WHERE {_R_EXPORTED}) / nullif(count(*) FILTER "
        f"(WHERE {_R_EXPORTED}), 0) AS export_rate_{tool}" for tool in TOOLS)
    chosen = ", ".join(f"any_value(d.intent_key IS NOT NULL AND r.{tool} IS NOT DISTINCT FROM "
                       f"d.{tool}) AS ground_truth_{tool}" for tool in TOOLS)
    return session.query(
        f"SELECT r.adjust, r.selective_adjust, r.filter, count(*) AS requests, "
        f"count(*) FILTER (WHERE {_R_EXPORTED}) AS exported_requests, {exports}, {rates}, "
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
    dataset version, `ground_truth` says which one the version holds. One scan of the intent's
    requests."""
    branches = " UNION ALL ".join(
        f"SELECT '{tool}' AS tool, {tool} AS output, sum(exports_{tool}) AS exports, "
        f"count(*) AS n_requests, max(created_at) AS latest FROM r GROUP BY {tool}"
        for tool in TOOLS)
    version_output = " ".join(f"WHEN '{tool}' THEN d.{tool}" for tool in TOOLS)
    rows = session.query(
        "WITH r AS MATERIALIZED (SELECT r.adjust, r.selective_adjust, r.filter, "
        "r.exports_adjust, r.exports_selective_adjust, r.exports_filter, r.created_at "
        f"FROM requests r WHERE r.intent_key = ? AND {_R_EXPORTED}), o AS ({branches}) "
        f"SELECT o.tool, row_number() OVER (PARTITION BY o.tool ORDER BY "
        f"{_ground_truth_order('o')}) AS rank, o.output, o.exports, o.n_requests, "
        "o.exports / o.n_requests AS export_rate, o.latest, "
        f"d.intent_key IS NOT NULL AND o.output IS NOT DISTINCT FROM (CASE o.tool "
        f"{version_output} END) AS ground_truth FROM o LEFT JOIN dataset_rows d "
        "ON d.intent_key = ? AND d.version_id = ? ORDER BY o.tool, rank",
        [intent_key, intent_key, version_id])
    ranked: dict[str, list[dict]] = {tool: [] for tool in TOOLS}
    for row in rows:
        ranked[row.pop("tool")].append(row)
    return ranked


# ------------------------------------------------------------------------------ the label queue

def version_intent_stats(session: Session, version_id: int) -> list[dict]:
    """Every intent of a dataset version with its numbers in the logs: intent_key, intent_text,
    split, origin, request_count (the version's), export_rate and output_count (None for an
    intent with no logs, such as an augmentation); by intent."""
    return session.query(
        "SELECT d.intent_key, d.intent_text, d.split, d.origin, d.request_count, "
        "s.export_rate, s.output_count FROM dataset_rows d "
        "LEFT JOIN intent_stats s ON s.intent_key = d.intent_key "
        "WHERE d.version_id = ? ORDER BY d.intent_key", [version_id])


def several_teacher_outputs(session: Session, version_id: int) -> list[dict]:
    """The distinct teacher outputs (adjust, selective_adjust, filter; with how many requests
    gave each) of every intent of the dataset version that the logs answered in at least two
    different ways; by intent, most requested output first."""
    return session.query(
        "SELECT r.intent_key, r.adjust, r.selective_adjust, r.filter, count(*) AS requests "
        "FROM requests r JOIN intent_stats s ON s.intent_key = r.intent_key "
        "AND s.output_count >= 2 "
        "WHERE r.intent_key IN (SELECT intent_key FROM dataset_rows WHERE version_id = ?) "
        "GROUP BY r.intent_key, r.adjust, r.selective_adjust, r.filter "
        "ORDER BY r.intent_key, requests DESC, r.adjust NULLS FIRST, "
        "r.selective_adjust NULLS FIRST, r.filter NULLS FIRST", [version_id])


# ------------------------------------------------------------------------------ the quarantine

@dataclass(frozen=True)
class QuarantineFilter:
    """Which quarantined records to list; every field that is set must hold."""

    reason: str | None = None        # exactly this reason
    reason_contains: str = ""        # a substring of the reason, case-insensitive
    source_file: str | None = None   # records of this file only


# Fixed text with bound parameters: a filter left unset matches every record.
_QUARANTINE_MATCH = ("FROM quarantine WHERE (? IS NULL OR reason = ?) "
                     "AND (? = '' OR contains(lower(reason), lower(?))) "
                     "AND (? IS NULL OR source_file = ?) ")
_QUARANTINE_COLUMNS = ("SELECT quarantine_id, ingest_id, source_file, location, reason, raw, "
                       "quarantined_at ")


def _quarantine_params(filters: QuarantineFilter) -> list[Any]:
    return [filters.reason, filters.reason, filters.reason_contains, filters.reason_contains,
            filters.source_file, filters.source_file]


def count_quarantined(session: Session, filters: QuarantineFilter) -> int:
    """How many quarantined records match `filters`."""
    return int(session.value("SELECT count(*) " + _QUARANTINE_MATCH,
                             _quarantine_params(filters)))


def quarantined_records(session: Session, filters: QuarantineFilter, limit: int = 50,
                        offset: int = 0, raw_chars: int = 1_000_000) -> list[dict]:
    """One page of the matching quarantined records (quarantine_id, ingest_id, source_file,
    location, reason, raw, quarantined_at, raw_length), in the order they were quarantined. The
    page is cut in SQL and `raw` to its first `raw_chars` characters (`raw_length` is the
    whole), so a large quarantine is never read whole."""
    return session.query("SELECT quarantine_id, ingest_id, source_file, location, reason, "
                         "left(raw, ?) AS raw, quarantined_at, length(raw) AS raw_length "
                         + _QUARANTINE_MATCH + "ORDER BY quarantine_id LIMIT ? OFFSET ?",
                         [raw_chars, *_quarantine_params(filters), limit, offset])


def quarantined_record(session: Session, quarantine_id: int) -> dict | None:
    """One quarantined record (the columns of `quarantined_after`), raw text whole."""
    return session.first(_QUARANTINE_COLUMNS + "FROM quarantine WHERE quarantine_id = ?",
                         [quarantine_id])


def quarantined_after(session: Session, filters: QuarantineFilter, after_id: int,
                      limit: int) -> list[dict]:
    """The next `limit` matching records with a quarantine_id above `after_id` (the columns of
    `quarantined_records`): an export reads the quarantine batch by batch from an index,
    however far it has gone, instead of skipping ever more rows with OFFSET."""
    return session.query(_QUARANTINE_COLUMNS + _QUARANTINE_MATCH
                         + "AND quarantine_id > ? ORDER BY quarantine_id LIMIT ?",
                         [*_quarantine_params(filters), after_id, limit])


def quarantine_reasons(session: Session, limit: int = 100) -> list[dict]:
    """The most common reasons (reason, records), most records first, then by reason."""
    return session.query("SELECT reason, count(*) AS records FROM quarantine GROUP BY reason "
                         "ORDER BY records DESC, reason LIMIT ?", [limit])


def quarantine_files(session: Session, limit: int = 200) -> list[dict]:
    """The files with quarantined records (source_file, records), most records first."""
    return session.query("SELECT source_file, count(*) AS records FROM quarantine "
                         "GROUP BY source_file ORDER BY records DESC, source_file LIMIT ?",
                         [limit])
