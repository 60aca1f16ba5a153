"""Quarantine: the log records ingest could not accept (SPEC 3), each with its file, line or
row, reason and raw text. Filtered by reason or file, shown a page at a time (the page is cut in
SQL, so a quarantine of millions is never read whole), exported as CSV. The raw text is data:
shown in a table and a code block, never as HTML."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from workbench.app import state
from workbench.store import Store
from workbench.store.requests import (
    QuarantineFilter,
    count_quarantined,
    quarantine_files,
    quarantine_reasons,
    quarantined_after,
    quarantined_record,
    quarantined_records,
)

PAGE_SIZES = (50, 200, 1000)
TABLE_RAW_CHARS = 2000            # of each raw record in the table; the whole one below it
EXPORT_BATCH = 10_000             # records read per short session while exporting
EXPORT_COLUMNS = ("quarantine_id", "ingest_id", "source_file", "location", "reason", "raw",
                  "quarantined_at")
_PAGE_KEY = "quarantine_page"


def page() -> st.Page:
    """This page for `st.navigation` and for links to it from other pages (one definition)."""
    return st.Page(render, title="Quarantine", icon=":material/report:", url_path="quarantine")


def render() -> None:
    st.title("Quarantine")
    current = state.require_database()
    st.caption("Records that ingest could not accept: each with its file, line (JSONL, CSV) or "
               "row (Parquet), the reason and the record as found. Nothing is dropped "
               "silently; fix the source and ingest it again (`workbench ingest`, or Upload "
               "on the Data page).")
    with current.session() as session:
        total = count_quarantined(session, QuarantineFilter())
        reasons = quarantine_reasons(session) if total else []
        files = quarantine_files(session) if total else []
    if not total:
        st.success("Nothing is quarantined: every record ingested so far was valid.")
        return
    filters = _filters(reasons, files)
    with current.session() as session:
        matching = count_quarantined(session, filters)
    if not matching:
        st.info(f"No quarantined record matches these filters ({total:,} quarantined in all).")
        return
    size, number = _paging(matching)
    with current.session() as session:
        rows = quarantined_records(session, filters, limit=size, offset=(number - 1) * size,
                                   raw_chars=TABLE_RAW_CHARS)
    first = (number - 1) * size + 1
    st.caption(f"Records {first:,} to {first + len(rows) - 1:,} of {matching:,} matching "
               f"({total:,} quarantined in all), page {number:,} of {-(-matching // size):,}, "
               "in the order they were quarantined.")
    st.dataframe(pd.DataFrame([_table_row(row) for row in rows]), hide_index=True,
                 key="quarantine_table", column_config={
                     "#": st.column_config.NumberColumn(width="small"),
                     "where": st.column_config.TextColumn(width="small"),
                     "reason": st.column_config.TextColumn(width="large"),
                     "raw": st.column_config.TextColumn(
                         width="large", help=f"the record as found (its first "
                                             f"{TABLE_RAW_CHARS:,} characters; the whole one "
                                             "below the table)"),
                     "ingest": st.column_config.NumberColumn(width="small")})
    _record_in_full(current, rows)
    st.download_button(f"Export the {matching:,} matching records as CSV",
                       data=lambda: quarantine_csv(current, filters),
                       file_name="quarantine.csv", mime="text/csv", key="quarantine_export",
                       icon=":material/download:")


def _filters(reasons: list[dict], files: list[dict]) -> QuarantineFilter:
    """The filter widgets: a reason (the most common ones, with their counts), words the reason
    contains, and a file."""
    counts = {row["reason"]: row["records"] for row in reasons}
    names = {row["source_file"]: row["records"] for row in files}
    left, middle, right = st.columns([3, 2, 2])
    reason = left.selectbox("Reason", [None, *counts], key="quarantine_reason",
                            format_func=lambda r: "Any reason" if r is None
                            else f"{_clip(r, 110)} ({counts[r]:,})")
    contains = middle.text_input("Reason contains", key="quarantine_reason_contains",
                                 help="any part of the reason, upper or lower case, e.g. "
                                      "'malformed JSON' or 'exports'")
    source = right.selectbox("File", [None, *names], key="quarantine_file",
                             format_func=lambda f: "Any file" if f is None
                             else f"{Path(f).name} ({names[f]:,})")
    return QuarantineFilter(reason=reason, reason_contains=contains.strip(), source_file=source)


def _paging(matching: int) -> tuple[int, int]:
    """(page size, page number) from the widgets; a page number past the last page (the filters
    narrowed) goes back to the last page."""
    left, right = st.columns([1, 1])
    size = int(left.selectbox("Records per page", PAGE_SIZES, key="quarantine_page_size"))
    pages = max(1, -(-matching // size))
    if int(st.session_state.get(_PAGE_KEY, 1)) > pages:
        st.session_state[_PAGE_KEY] = pages
    number = int(right.number_input("Page", min_value=1, max_value=pages, value=1, step=1,
                                    key=_PAGE_KEY, help=f"{pages:,} pages"))
    return size, number


def _table_row(row: dict[str, Any]) -> dict[str, Any]:
    raw = row["raw"]
    if raw is not None and (row["raw_length"] or 0) > len(raw):
        raw += f"… [{row['raw_length'] - len(raw):,} more characters]"
    return {"#": row["quarantine_id"], "file": Path(row["source_file"]).name,
            "where": row["location"], "reason": row["reason"], "raw": raw,
            "ingest": row["ingest_id"], "path": row["source_file"]}


def _record_in_full(current: Store, rows: list[dict]) -> None:
    """One record of the page, its reason and raw text whole, as text."""
    labels = {row["quarantine_id"]: f"#{row['quarantine_id']} · {Path(row['source_file']).name}"
                                    f" · {row['location']}" for row in rows}
    chosen = st.selectbox("Show a record in full", [None, *labels], key="quarantine_record",
                          format_func=lambda q: "(choose a record)" if q is None else labels[q])
    if chosen is None:
        return
    with current.session() as session:
        record = quarantined_record(session, int(chosen))
    if record is None:
        st.info("That record is no longer in the quarantine.")
        return
    st.markdown(f"**{state.escape_markdown(record['source_file'])}**, "
                f"{state.escape_markdown(record['location'])}, ingest {record['ingest_id']}: "
                f"{state.escape_markdown(record['reason'])}")
    st.code(record["raw"] if record["raw"] is not None else "(no raw text: the whole file "
            "failed)", language=None, wrap_lines=True)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def quarantine_csv(current: Store, filters: QuarantineFilter) -> bytes:
    """Every record matching `filters` as UTF-8 CSV with the columns `EXPORT_COLUMNS`, the raw
    text whole. Read `EXPORT_BATCH` records at a time, each batch in a short session of its own,
    so a long export never keeps a writer waiting."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    after = -1
    while True:
        with current.session() as session:
            rows = quarantined_after(session, filters, after, EXPORT_BATCH)
        writer.writerows([row[column] for column in EXPORT_COLUMNS] for row in rows)
        if len(rows) < EXPORT_BATCH:
            return out.getvalue().encode("utf-8")
        after = rows[-1]["quarantine_id"]
