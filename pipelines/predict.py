"""Predict tool calls with a trained student for a JSONL file of intents."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError, listing
from workbench.log_readers import LogFormat, read_records
from workbench.log_records import INTENT_MAX_CHARS
from workbench.outputs import check_output_file, write_atomic
from workbench.store import Store, runs


@dataclass(frozen=True)
class PredictConfig:
    inp: Path
    out: Path
    run: str | None = None   # None: the latest run


@dataclass(frozen=True)
class PredictResult:
    run_id: str
    predictions: int
    out: Path


def read_intents(path: Path) -> list[str]:
    """`intent` of every JSONL line; an error lists every bad line."""
    if not path.exists():
        raise WorkbenchError(f"{path}: no such file")
    intents, problems = [], []
    for raw in read_records(path, LogFormat.JSONL):
        text = None if raw.record is None else raw.record.get("intent")
        if raw.record is None:
            problems.append(f"{raw.location}: {raw.problem}")
        elif not isinstance(text, str) or not text.strip():
            problems.append(f"{raw.location}: needs an 'intent' string")
        elif len(text.strip()) > INTENT_MAX_CHARS:
            problems.append(f"{raw.location}: intent has {len(text.strip())} characters, "
                            f"the limit is {INTENT_MAX_CHARS}")
        else:
            intents.append(text.strip())
    if problems:
        raise WorkbenchError(listing(f"{path}: {len(problems)} bad line(s)", problems))
    if not intents:
        raise WorkbenchError(f"{path}: no intents")
    return intents


def run(config: PredictConfig, store: Store) -> PredictResult:
    """Predict every intent of the input; the output is checked before the model is loaded and
    written atomically (a missing folder above it is created)."""
    check_output_file(Path(config.out), store.path)
    intents = read_intents(Path(config.inp))
    row, student = runs.load_run(store, config.run)
    answers = student.predict(intents)

    def write(path: Path) -> None:
        with path.open("w", encoding="utf-8") as handle:
            for text, answer in zip(intents, answers, strict=True):
                handle.write(json.dumps({"intent": text, **answer.to_dict()},
                                        ensure_ascii=False) + "\n")

    write_atomic(Path(config.out), write)
    return PredictResult(row["run_id"], len(answers), config.out)
