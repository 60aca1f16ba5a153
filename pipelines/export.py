"""Export dataset versions' rows: one version to a JSONL or Parquet file (chosen by the file
extension), or any number of versions to a Parquet dataset partitioned by version and split.

Each row carries the label it came from (`label_id`, `label_source`: `curation`,
`teacher:<model>`, `curator:<name>`...); rows of versions made before labels existed have no
label id and the source 'export-rate choice (version N)'.

The partitioned export is what engines past one machine read as one table with `version` and
`split` columns (Spark's `spark.read.parquet(DIR)`, Ray's `ray.data.read_parquet(DIR)`, DuckDB's
`read_parquet('DIR/**/*.parquet', hive_partitioning=true)`, `pyarrow.dataset`): Hive layout
`DIR/version=<V>/split=<train|test>/part-NNNNN.parquet`, every file with the same schema (the
tool answers as structs with every field of the tool schema), at most `ROWS_PER_FILE` rows a
file. Rows stream from DuckDB as Arrow record batches, each written as a row group, so memory
stays bounded however big the versions are; hence no sort, and the order of the rows within a
partition is not specified (as with Spark's own writes). The folder is built beside DIR and renamed into
place; an existing DIR is replaced only when it is an earlier export of ours (its manifest,
`_workbench_export.json`, names every file in it) or empty."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.labels import curated_in, unlinked_source
from workbench.errors import OutputPathError, WorkbenchError
from workbench.outputs import check_output_file, check_output_tree, replace_folder, write_atomic
from workbench.progress import Progress
from workbench.store import Session, Store
from workbench.store.labels import version_row_label_batches, version_row_labels
from workbench.store.versions import (
    SPLITS,
    Split,
    list_versions,
    resolve_version,
    version_rows,
)
from workbench.tools import ADJUST_KEYS, COLOUR_CHANNELS, COLOURS

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class ExportConfig:
    out: Path
    version: int | None = None   # None: the current version
    split: Split = Split.ALL


@dataclass(frozen=True)
class ExportResult:
    version_id: int
    split: str
    rows: int
    out: Path

    def to_dict(self) -> dict[str, Any]:
        return {"version_id": self.version_id, "split": self.split, "rows": self.rows,
                "out": str(self.out)}


def _record(row: dict, label: dict | None, unlabelled: str) -> dict[str, Any]:
    def load(text: str | None) -> Any:
        return None if text is None else json.loads(text)

    label_id = None if label is None else label["label_id"]
    return {"intent": row["intent_text"], "split": row["split"],
            "request_count": row["request_count"], "adjust": load(row["adjust"]),
            "selective_adjust": load(row["selective_adjust"]), "filter": load(row["filter"]),
            "origin": row["origin"], "source_intent": row["source_intent_key"],
            "label_id": label_id,
            "label_source": unlabelled if label is None or label_id is None else label["source"]}


def run(config: ExportConfig, store: Store) -> ExportResult:
    """Write the rows; the output is checked before the database is read and written
    atomically (a missing folder above it is created)."""
    out = Path(config.out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise WorkbenchError(f"--out {out}: use a .jsonl or .parquet file name")
    check_output_file(out, store.path)
    with store.session(read_only=True) as session:
        version_id = resolve_version(session, config.version)
        labels = version_row_labels(session, version_id)
        unlabelled = unlinked_source(curated_in(session, version_id))
        records = [_record(row, labels.get(row["intent_key"]), unlabelled)
                   for row in version_rows(session, version_id, config.split)]

    def write(path: Path) -> None:
        if fmt == "jsonl":
            with path.open("w", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(records), path)

    write_atomic(out, write)
    return ExportResult(version_id, config.split.value, len(records), out)


# ------------------------------------------------------------------------------ partitioned

ROWS_PER_FILE = 1_000_000    # at most this many rows in one part file (an engine's read task)
BATCH_ROWS = 100_000         # rows read from DuckDB and written as one row group at a time
MANIFEST = "_workbench_export.json"   # '_' first: Spark, pyarrow and DuckDB's glob skip it
EXPORT_FORMAT = "workbench partitioned export"
LAYOUT = "version=<V>/split=<S>/part-<NNNNN>.parquet"


def partitioned_schema() -> Any:
    """The schema of every part file: today's Parquet export's columns without `split` (the
    layout carries it and `version`), each tool answer a struct with every field of its schema,
    so that all files agree whichever fields their rows use."""
    import pyarrow as pa

    channels = pa.struct([(channel, pa.int64()) for channel in COLOUR_CHANNELS])
    return pa.schema([
        ("intent", pa.string()), ("request_count", pa.int64()),
        ("adjust", pa.struct([(key, pa.int64()) for key in ADJUST_KEYS])),
        ("selective_adjust", pa.struct([(colour, channels) for colour in COLOURS])),
        ("filter", pa.struct([("name", pa.string()), ("intensity", pa.int64())])),
        ("origin", pa.string()), ("source_intent", pa.string()),
        ("label_id", pa.int64()), ("label_source", pa.string())])


@dataclass(frozen=True)
class PartitionedExportConfig:
    out: Path
    versions: tuple[int, ...] = ()   # empty: the current version (unless all_versions)
    all_versions: bool = False
    split: Split = Split.ALL


@dataclass(frozen=True)
class Partition:
    version_id: int
    split: str
    rows: int
    files: tuple[str, ...]           # relative to the export folder, in order


@dataclass(frozen=True)
class PartitionedExportResult:
    out: Path
    versions: tuple[int, ...]
    splits: tuple[str, ...]
    rows: int
    partitions: tuple[Partition, ...] = field(default=())
    replaced: bool = False           # an earlier export was at `out`

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "versions": list(self.versions), "splits": list(self.splits),
                "rows": self.rows, "replaced": self.replaced,
                "partitions": [{"version": p.version_id, "split": p.split, "rows": p.rows,
                                "files": list(p.files)} for p in self.partitions]}


def check_replaceable(folder: Path) -> None:
    """Nothing when the existing `folder` may be replaced by a partitioned export: it is empty,
    or it is an earlier one (its manifest names every file in it); else `OutputPathError`
    naming it. A user's folder is never deleted."""
    found: list[str] = []
    for top, folders, files in os.walk(folder):
        here = Path(top).relative_to(folder)
        found += [(here / name).as_posix() for name in files]
        found += [(here / name).as_posix() for name in folders
                  if (Path(top) / name).is_symlink()]
    if not found:
        return
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise OutputPathError(
            f"--partitioned {folder} exists and is not a partitioned export of the workbench "
            f"(no {MANIFEST} in it); refusing to replace it. Give a new folder name, or move "
            "that folder away yourself")
    listed = {MANIFEST} | {name for partition in manifest.get("partitions", [])
                           if isinstance(partition, dict)
                           for name in partition.get("files", []) if isinstance(name, str)}
    foreign = sorted(set(found) - listed)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                          else "")
        raise OutputPathError(
            f"--partitioned {folder} is an earlier export but holds files the export did not "
            f"write ({shown}); refusing to replace it. Move them out, or give a new folder name")


def _write_partition(batches: Any, folder: Path, schema: Any, rows_per_file: int,
                     written: Callable[[int], None]) -> tuple[int, list[Path]]:
    """Write record batches into `folder` as part files of at most `rows_per_file` rows (each
    batch a row group); an empty partition gets one empty part file, so every partition read
    back has the schema. Returns the rows and the files."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    files: list[Path] = []
    writer: Any = None
    in_file = rows = 0
    try:
        for batch in batches:
            batch = batch.cast(schema)
            start = 0
            while start < batch.num_rows:
                if writer is None or in_file == rows_per_file:
                    if writer is not None:
                        writer.close()
                    files.append(folder / f"part-{len(files):05d}.parquet")
                    writer, in_file = pq.ParquetWriter(files[-1], schema), 0
                take = min(batch.num_rows - start, rows_per_file - in_file)
                writer.write_batch(batch.slice(start, take))
                start, in_file, rows = start + take, in_file + take, rows + take
                written(take)
        if writer is None:
            files.append(folder / "part-00000.parquet")
            pq.write_table(schema.empty_table(), files[-1])
    finally:
        if writer is not None:
            writer.close()
    return rows, files


def _chosen_versions(session: Session, config: PartitionedExportConfig) -> tuple[int, ...]:
    if config.all_versions:
        return tuple(v["version_id"] for v in list_versions(session))
    if not config.versions:
        return (resolve_version(session, None),)
    return tuple(sorted({resolve_version(session, v) for v in config.versions}))


def run_partitioned(config: PartitionedExportConfig, store: Store,
                    progress: Progress | None = None) -> PartitionedExportResult:
    """Write the chosen versions and splits as a Hive-partitioned Parquet dataset at
    `config.out` (see the module's docstring). The folder is checked before the database is
    read; the database is held read-only while the rows stream out."""
    if config.all_versions and config.versions:
        raise WorkbenchError("give --version or --all-versions, not both")
    out = check_output_tree(Path(config.out), store.path, flag="--partitioned")
    replaced = out.exists() and any(out.iterdir())
    if out.exists():
        check_replaceable(out)
    splits = SPLITS if config.split == Split.ALL else (config.split.value,)
    schema = partitioned_schema()
    rows_per_file = ROWS_PER_FILE   # looked up per run, so a test can lower it
    partitions: list[Partition] = []
    versions: tuple[int, ...] = ()

    with store.session(read_only=True) as session:
        versions = _chosen_versions(session, config)
        if not versions:
            raise WorkbenchError("there is no dataset version yet. Run `workbench curate` "
                                 "(or `workbench demo`).")
        sizes = {v["version_id"]: v for v in list_versions(session)}
        total = sum(sizes[v][f"n_{split}"] for v in versions for split in splits)
        done = 0

        def written(rows: int) -> None:
            nonlocal done
            done += rows
            if progress is not None:
                progress("export", done, total)

        def build(folder: Path) -> None:
            for version_id in versions:
                unlabelled = unlinked_source(curated_in(session, version_id))
                for split in splits:
                    where = folder / f"version={version_id}" / f"split={split}"
                    batches = version_row_label_batches(session, version_id, split, unlabelled,
                                                        BATCH_ROWS)
                    rows, files = _write_partition(batches, where, schema, rows_per_file,
                                                   written)
                    partitions.append(Partition(version_id, split, rows, tuple(
                        path.relative_to(folder).as_posix() for path in files)))
            manifest = {
                "format": EXPORT_FORMAT, "format_version": 1, "layout": LAYOUT,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "database": str(store.path.resolve()), "versions": list(versions),
                "splits": list(splits), "rows": sum(p.rows for p in partitions),
                "rows_per_file": rows_per_file, "columns": schema.names,
                "partitions": [{"version": p.version_id, "split": p.split, "rows": p.rows,
                                "files": list(p.files)} for p in partitions]}
            (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n",
                                           encoding="utf-8")

        if progress is not None:
            progress("export", 0, total)
        replace_folder(out, build, check_replaceable)
    return PartitionedExportResult(out, versions, tuple(splits), sum(p.rows for p in partitions),
                                   tuple(partitions), replaced)


def describe_partitioned(result: PartitionedExportResult) -> list[str]:
    """The text summary of a partitioned export: the total, then a line per partition."""
    versions = ", ".join(map(str, result.versions))
    plural = "s" if len(result.versions) > 1 else ""
    lines = [f"wrote {result.rows} rows of dataset version{plural} {versions} "
             f"({', '.join(result.splits)}) to {result.out}, Parquet partitioned by version and "
             f"split" + (" (replacing the earlier export there)" if result.replaced else "")]
    for p in result.partitions:
        files = f"{len(p.files)} file" + ("s" if len(p.files) > 1 else "")
        lines.append(f"  version={p.version_id}/split={p.split}: {p.rows} rows in {files}")
    return lines
