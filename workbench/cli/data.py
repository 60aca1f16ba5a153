"""The data commands: demo, ingest, curate, status, versions, export, quarantine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pipelines import curate, demo, export, fold_served, ingest, ingest_spool
from workbench.cli.output import emit, progress_bars
from workbench.cli.parsing import (
    LIST_ROWS,
    OUT_RULES,
    Commands,
    add_progress,
    parse_positive_int,
    parse_test_size,
)
from workbench.errors import WorkbenchError
from workbench.serving.spool import is_spool_folder
from workbench.store import Store, default_db_path
from workbench.store.versions import Split
from workbench.terminal import printable

QUARANTINE_HINT = "See the quarantined records and their reasons with `workbench quarantine`."
NOT_FOLDED = ["served teacher requests were not folded into the logs (--no-fold)"]


def ingest_lines(result: ingest.IngestResult) -> list[str]:
    """The ingest summary: a line per file, the totals of several, where to find quarantined
    records."""
    lines = [result.leftovers_note] if result.leftovers_note else []
    for f in result.files:
        status = f"error: {printable(f.error)}" if f.error else "ok"
        lines.append(f"{printable(f.source_file)}: read {f.read}, ingested {f.ingested}, "
                     f"duplicates {f.duplicates}, quarantined {f.quarantined} ({status})")
    if len(result.files) > 1:
        t = result.totals
        lines.append(f"total: read {t['read']}, ingested {t['ingested']}, duplicates "
                     f"{t['duplicates']}, quarantined {t['quarantined']}")
    if any(f.quarantined for f in result.files):
        lines.append(QUARANTINE_HINT)
    return lines


def spool_ingest_lines(result: ingest_spool.SpoolIngestResult) -> list[str]:
    """The spool ingest summary: a line per segment read, the totals, what was left."""
    lines = []
    for s in result.segments:
        if s.unchanged:
            continue
        status = f"error: {printable(s.error)}" if s.error else ("ok, still open" if s.open
                                                                 else "ok")
        lines.append(f"{printable(s.source_file)}: read {s.read}, requests {s.requests}, "
                     f"feedback {s.feedback}, duplicates {s.duplicates}, quarantined "
                     f"{s.quarantined}, released {s.released} ({status})")
    t = result.totals
    unchanged = sum(s.unchanged for s in result.segments)
    lines.append(f"total: {len(result.segments) - unchanged} segments read ({unchanged} "
                 f"unchanged since the last ingest): requests {t['requests']}, feedback "
                 f"{t['feedback']}, duplicates {t['duplicates']}, quarantined {t['quarantined']}, "
                 f"released {t['released']}")
    if result.open_left:
        lines.append(f"{result.open_left} segment(s) still being written were left for later; "
                     "--include-open reads them up to their last whole line")
    if t["quarantined"]:
        lines.append(QUARANTINE_HINT)
    return lines


def fold_lines(result: fold_served.FoldResult) -> list[str]:
    """The fold's summary: teacher requests folded into the logs, those still waiting, and the
    feedback that came after its request was folded."""
    if result.error is not None:
        return [f"fold into the logs: error: {printable(result.error)}"]
    line = (f"folded {result.folded} teacher request{'' if result.folded == 1 else 's'} into "
            f"the logs ({result.with_exports} with exports), duplicates {result.duplicates}, "
            f"quarantined {result.quarantined}")
    if result.feedback_window_hours or result.waiting:
        line += (f"; {result.waiting} wait for their {result.feedback_window_hours:g}-hour "
                 "feedback window to close")
    lines = [line]
    if result.late_feedback:
        n = result.late_feedback
        records = "1 feedback record" if n == 1 else f"{n} feedback records"
        lines.append(f"{records} came after {'its' if n == 1 else 'their'} request was folded "
                     "into the logs (past its feedback window, or ingested after the fold): the "
                     "A/B test counts them, curation does not")
    if result.quarantined:
        lines.append(QUARANTINE_HINT)
    return lines


def _spool_folders(args: argparse.Namespace) -> list[Path]:
    """The spool folders among the paths given (none: they are all log files); mixing both,
    a folder that holds files but no segment, or spool options with log files, is an error."""
    folders = [path for path in args.files if path.is_dir()]
    if not folders:
        given = [flag for flag, value in (("--include-open", args.include_open),
                                          ("--no-fold", args.no_fold),
                                          ("--feedback-window", args.feedback_window is not None))
                 if value]
        if given:
            raise WorkbenchError(f"{' and '.join(given)} appl{'y' if len(given) > 1 else 'ies'} "
                                 "to spool folders only; the paths given are log files")
        return []
    if len(folders) < len(args.files):
        raise WorkbenchError("give either log files or spool folders to one ingest, not both")
    if args.validator is not None:
        raise WorkbenchError("--validator applies to log files only; spool segments are always "
                             "checked by the Python validator")
    for folder in folders:
        if not is_spool_folder(folder) and any(folder.iterdir()):
            raise WorkbenchError(f"{folder} is a folder without spool segments (spool-*.jsonl); "
                                 "ingest takes log files, or a spool folder `workbench serve` "
                                 "wrote")
    return folders


def _fold_config(args: argparse.Namespace) -> fold_served.FoldConfig | None:
    """The fold that follows a spool ingest (None with --no-fold); checked before any work."""
    if args.no_fold:
        if args.feedback_window is not None:
            raise WorkbenchError("give --no-fold or --feedback-window, not both")
        return None
    if args.feedback_window is None:
        return fold_served.FoldConfig()
    return fold_served.FoldConfig(feedback_window_hours=args.feedback_window)


def cmd_ingest(args: argparse.Namespace, store: Store) -> int:
    folders = _spool_folders(args)
    if folders:
        config = ingest_spool.SpoolIngestConfig(tuple(folders), include_open=args.include_open)
        fold_config = _fold_config(args)
        with progress_bars(args) as progress:
            spooled = ingest_spool.run(config, store, progress)
        # After the segments, in its own transaction: the teacher's answers whose feedback
        # window has closed go into the logs (SPEC 12, closing the loop).
        folded = None if fold_config is None else fold_served.run(fold_config, store)
        emit(args, {**spooled.to_dict(), "fold": None if folded is None else folded.to_dict()},
             lambda: list(dict.fromkeys(   # the quarantine hint once, if both need it
                 spool_ingest_lines(spooled) + (NOT_FOLDED if folded is None
                                                else fold_lines(folded)))))
        return 1 if spooled.failed or (folded is not None and folded.error) else 0
    with progress_bars(args) as progress:
        result = ingest.run(ingest.IngestConfig(
            tuple(args.files), ingest.Validator(args.validator or ingest.Validator.PYTHON)),
            store, progress)
    emit(args, result, lambda: ingest_lines(result))
    return 1 if result.failed else 0


def cmd_curate(args: argparse.Namespace, store: Store) -> int:
    result = curate.run(curate.CurateConfig(test_size=args.test_size, seed=args.seed,
                                            note=args.note), store)
    emit(args, result, lambda: [
        (f"dataset version {result.version_id} (now current): {result.intents} intents, "
        f"train {result.train}, test {result.test} (r_3 {result.test_r_3}, r_5 {result.test_r_5})"),
        (f"from {result.requests} requests; dropped {result.requests_dropped} with zero exports "
        f"({result.intents_dropped} intents had only those)")])
    return 0


def cmd_demo(args: argparse.Namespace, store: Store) -> int:
    if args.if_missing and store.exists:
        print(f"{store.path} already exists; leaving it as it is (use --replace to rebuild).")
        return cmd_status(argparse.Namespace(json=False), store)
    print(f"Building the SYNTHETIC demo corpus ({args.requests} requests) into {store.path}",
          file=sys.stderr)
    with progress_bars(args) as progress:
        result = demo.run(demo.DemoRunConfig(requests=args.requests, seed=args.seed,
                                             test_size=args.test_size, replace=args.replace),
                          store, progress)
    c = result.curate
    print(f"Synthetic demo logs: {result.corpus_path}")
    print(f"Database: {store.path}")
    print(f"Ingested {result.ingest.ingested} requests; dataset version {c.version_id}: "
          f"{c.intents} intents, train {c.train}, test {c.test} "
          f"(r_3 {c.test_r_3}, r_5 {c.test_r_5}).")
    db_flag = "" if store.path == default_db_path() else f" --db {store.path}"
    steps = [(f"workbench app{db_flag}", "browse it in the browser"),
             (f"workbench train{db_flag} --student heads", "train the real-time student"),
             (f"workbench experiment rq1{db_flag}", "every student, the paper's RQ1 table")]
    width = max(len(command) for command, _ in steps)
    print("Next:")
    for command, why in steps:  # padded, so the comments line up with or without --db
        print(f"  {command.ljust(width)}  # {why}")
    return 0


def _status_lines(counts: dict[str, Any]) -> list[str]:
    lines = [f"database      {printable(counts['database'])}"]
    lines += [f"{key.replace('_', ' '):<13} {counts[key]}"
              for key in ("requests", "intents", "quarantined", "ingests", "dataset_versions")]
    version = counts["current_version"]
    if version is None:
        return [*lines, "current version: none yet (run `workbench curate`)"]
    return [*lines,
            (f"current version {version['version_id']} ({printable(version['created_by'])}, "
            f"{version['created_at'][:19]}): train {version['n_train']}, test {version['n_test']} "
            f"(r_3 {version['test_r_3']}, r_5 {version['test_r_5']})"),
            f"  note: {printable(version['note'])}"]


def cmd_status(args: argparse.Namespace, store: Store) -> int:
    from workbench.store.status import status_counts

    counts = status_counts(store)
    emit(args, counts, lambda: _status_lines(counts))
    return 0


def cmd_export(args: argparse.Namespace, store: Store) -> int:
    versions = tuple(args.version or ())
    if args.partitioned is not None:
        with progress_bars(args) as progress:
            partitioned = export.run_partitioned(export.PartitionedExportConfig(
                out=args.partitioned, versions=versions, all_versions=args.all_versions,
                split=Split(args.split)), store, progress)
        emit(args, partitioned, lambda: export.describe_partitioned(partitioned))
        return 0
    if args.all_versions or len(versions) > 1:
        raise WorkbenchError("--out writes one dataset version; give one --version, or write "
                             "several with --partitioned DIR")
    result = export.run(export.ExportConfig(out=args.out, version=versions[0] if versions
                                            else None, split=Split(args.split)), store)
    emit(args, result, lambda: (f"wrote {result.rows} rows of dataset version "
                                f"{result.version_id} ({result.split}) to {result.out}"))
    return 0


def cmd_versions(args: argparse.Namespace, store: Store) -> int:
    from workbench.store.versions import current_version_id, list_versions

    with store.session(read_only=True) as session:
        versions, current = list_versions(session), current_version_id(session)

    def lines() -> list[str]:
        if not versions:
            return ["no dataset versions yet (run `workbench curate`)"]
        found = []
        for v in versions:
            mark = "*" if v["version_id"] == current else " "
            parent = v["parent_id"] if v["parent_id"] is not None else "-"
            found.append(f"{mark} {v['version_id']:>3}  parent {parent:>3}  "
                         f"{printable(v['created_by']):<12} {str(v['created_at'])[:19]}  "
                         f"train {v['n_train']:>6}  test {v['n_test']:>5}  "
                         f"{printable(v['note'])}")
        return found

    emit(args, versions, lines)
    return 0


def cmd_quarantine(args: argparse.Namespace, store: Store) -> int:
    from workbench.store.requests import quarantine_page

    with store.session(read_only=True) as session:
        rows = quarantine_page(session, limit=args.limit, offset=args.offset)

    def lines() -> list[str]:
        if not rows:
            return ["no quarantined records"]
        found = []
        for row in rows:
            raw = row["raw"] if row["raw"] is None or len(row["raw"]) <= 120 \
                else row["raw"][:117] + "..."
            found += [(f"#{row['quarantine_id']} {printable(row['source_file'])} "
                      f"{printable(row['location'])}: {printable(row['reason'])}"),
                      f"    raw: {printable(raw)}"]
        return found

    emit(args, rows, lines)
    return 0


def add_demo(commands: Commands) -> None:
    defaults = demo.DemoRunConfig()
    p = commands.add("demo", cmd_demo, "Generate the SYNTHETIC demo corpus, ingest, curate and "
                     "split it.", json_flag=False, creates=True)
    p.add_argument("--requests", type=parse_positive_int, default=defaults.requests,
                   help=f"number of requests (default: the paper's {defaults.requests:,}; "
                        "intents scale with it)")
    p.add_argument("--seed", type=int, default=defaults.seed,
                   help="generator seed (default: %(default)s)")
    p.add_argument("--test-size", type=parse_test_size, default=defaults.test_size,
                   help=f"test intents: a count, or a fraction below 1 (default: "
                        f"{curate.DEFAULT_TEST_SIZE} at the paper's scale and above; below it "
                        f"the paper's share, {100 * demo.PAPER_TEST_SHARE:.1f}%%)")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--replace", action="store_true",
                          help="delete an existing database first")
    existing.add_argument("--if-missing", action="store_true",
                          help="do nothing if the database already exists")
    add_progress(p)


def add_ingest(commands: Commands) -> None:
    p = commands.add("ingest", cmd_ingest, "Ingest log files (JSONL, CSV or Parquet), or the "
                     "spool folder of `workbench serve`, into the database. After a spool "
                     "folder, the teacher's served answers whose feedback window has closed are "
                     "folded into the logs with their exports, so curation sees them.",
                     creates=True)
    p.add_argument("files", nargs="+", type=Path,
                   help="log files in the log contract (SPEC 3), or spool folders")
    p.add_argument("--include-open", action="store_true",
                   help="spool folders: also read the segments still being written, up to "
                        "their last whole line (default: closed segments only)")
    p.add_argument("--feedback-window", type=float, default=None, metavar="HOURS",
                   help="spool folders: fold the teacher's served answers into the logs once "
                        "this many hours have passed since they were served, with the export "
                        "feedback of those hours (default: "
                        f"{fold_served.DEFAULT_FEEDBACK_WINDOW_HOURS:g}; 0 folds every one "
                        "ingested so far with the feedback known now)")
    p.add_argument("--no-fold", action="store_true",
                   help="spool folders: do not fold the teacher's served answers into the logs")
    p.add_argument("--validator", choices=[v.value for v in ingest.Validator], default=None,
                   help="log files: who checks the log contract: 'python' (the reference, the "
                        "default) or 'sql' (DuckDB; the records it cannot decide go to Python); "
                        "both quarantine the same records with the same reasons")
    add_progress(p)


def add_curate(commands: Commands) -> None:
    defaults = curate.CurateConfig()
    p = commands.add("curate", cmd_curate, "Curate the logs into a new dataset version with a "
                     "train/test split by intent.")
    p.add_argument("--test-size", type=parse_test_size, default=defaults.test_size,
                   help="test intents: a count, or a fraction below 1 (default: %(default)s)")
    p.add_argument("--seed", type=int, default=defaults.seed,
                   help="split seed (default: %(default)s)")
    p.add_argument("--note", default=defaults.note, help="a note stored with the version")


def add_status(commands: Commands) -> None:
    commands.add("status", cmd_status, "Show counts and the current dataset version.",
                 reads=True)


def add_versions(commands: Commands) -> None:
    commands.add("versions", cmd_versions, "List dataset versions (* marks the current one).",
                 reads=True)


def add_export(commands: Commands) -> None:
    p = commands.add("export", cmd_export, "Write a dataset version's rows as one JSONL or "
                     "Parquet file, or dataset versions as a Parquet dataset partitioned by "
                     "version and split, which Spark, Ray, DuckDB and pyarrow read as one table.",
                     reads=True)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path,
                       help="output file (.jsonl or .parquet); " + OUT_RULES)
    where.add_argument("--partitioned", type=Path, metavar="DIR",
                       help="write DIR/version=V/split=S/part-NNNNN.parquet (Hive layout, at "
                            f"most {export.ROWS_PER_FILE:,} rows a file) and a manifest "
                            f"{export.MANIFEST}; built beside DIR and renamed into place. An "
                            "existing DIR is replaced only when it is an earlier export (or "
                            "empty); never the database or the workbench's folders beside it")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, nargs="+", action="extend", default=None,
                       metavar="V", help="dataset version (default: current); several with "
                                         "--partitioned")
    which.add_argument("--all-versions", action="store_true",
                       help="with --partitioned: every dataset version")
    p.add_argument("--split", choices=[split.value for split in Split],
                   default=export.ExportConfig.split.value, help="which rows (default: %(default)s)")
    add_progress(p)


def add_quarantine(commands: Commands) -> None:
    p = commands.add("quarantine", cmd_quarantine, "List quarantined records with their reasons.",
                     reads=True)
    p.add_argument("--limit", type=parse_positive_int, default=LIST_ROWS,
                   help="rows to show (default: %(default)s)")
    p.add_argument("--offset", type=int, default=0, help="rows to skip")
