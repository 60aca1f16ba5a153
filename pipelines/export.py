"""Export a dataset version's rows to JSONL or Parquet (chosen by the file extension).

Each row carries the label it came from (`label_id`, `label_source`: `curation`,
`teacher:<model>`, `curator:<name>`...); rows of versions made before labels existed have no
label id and the source 'export-rate choice (version N)'."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.labels import curated_in, unlinked_source
from workbench.errors import WorkbenchError
from workbench.outputs import check_output_file, write_atomic
from workbench.store import Store
from workbench.store.labels import version_row_labels
from workbench.store.versions import Split, resolve_version, version_rows

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
