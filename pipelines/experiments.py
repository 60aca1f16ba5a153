"""Experiments that chain steps: RQ1 (every student against the teacher, beside the ceiling and
the floor). Each step stores its own run and evaluation, so every number traces to its data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines import evaluate, train
from workbench.store import Store
from workbench.students.base import Progress

DEFAULT_STUDENTS = ("retrieval", "heads", "seq2seq")
ENCODER_STUDENTS = ("retrieval", "heads")  # built on a sentence-transformers encoder


@dataclass(frozen=True)
class RQ1Config:
    version: int | None = None
    students: tuple[str, ...] = DEFAULT_STUDENTS
    student_configs: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class RQ1Row:
    label: str                       # what the table calls it
    evaluation: evaluate.EvaluationResult
    run: train.TrainResult | None = None


@dataclass(frozen=True)
class RQ1Result:
    rows: list[RQ1Row]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [{"label": row.label, "evaluation": row.evaluation.to_dict(),
                          "run": None if row.run is None else row.run.to_dict()}
                         for row in self.rows]}


def rq1(config: RQ1Config, store: Store, progress: Progress | None = None) -> RQ1Result:
    baselines = evaluate.baselines(config.version, store)
    version_id = baselines.constant.version_id
    rows = [RQ1Row("Teacher self-consistency (ceiling)", baselines.self_consistency),
            RQ1Row("Constant mean answer (floor)", baselines.constant)]
    shared = None  # the default sentence encoder, loaded once for every student that uses it
    for student in config.students:
        settings = config.student_configs.get(student, {})
        encoder = None
        if student in ENCODER_STUDENTS and settings.get("encoder") is None:
            if shared is None:
                from workbench.embeddings import load_encoder
                from workbench.students.base import device_name

                shared = load_encoder(device=device_name())
            encoder = shared
        run = train.run(train.TrainConfig(student=student, version=version_id,
                                          student_config=settings, note="experiment rq1"),
                        store, progress, encoder)
        rows.append(RQ1Row(f"{student} student",
                           evaluate.evaluate_run(run.run_id, version_id, store, encoder), run))
    return RQ1Result(rows)
