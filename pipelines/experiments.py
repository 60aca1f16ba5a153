"""Experiments that chain steps: RQ1 (every student against the teacher, beside the ceiling and
the floor) and RQ2 (is augmentation effective in low data?). Each step stores its own run,
evaluation and dataset version, so every number traces to its data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines import augment, evaluate, train
from workbench.embeddings import Encoder
from workbench.errors import WorkbenchError
from workbench.progress import Progress
from workbench.store import Store
from workbench.store.versions import (
    Split,
    current_version_id,
    resolve_version,
    set_current_version,
    subsample_version,
    version_rows,
)

DEFAULT_STUDENTS = ("retrieval", "heads", "seq2seq")
ENCODER_STUDENTS = ("retrieval", "heads")  # built on a sentence-transformers encoder


class _SharedEncoder:
    """The default sentence encoder, loaded once for every step that uses it."""

    def __init__(self) -> None:
        self.encoder: Encoder | None = None

    def get(self) -> Encoder:
        if self.encoder is None:
            from workbench.embeddings import load_encoder
            from workbench.students.base import device_name

            self.encoder = load_encoder(device=device_name())
        return self.encoder

    def for_student(self, student: str, settings: dict[str, Any]) -> Encoder | None:
        """The shared encoder when the student uses the default one, else None (it loads its own)."""
        if student in ENCODER_STUDENTS and settings.get("encoder") is None:
            return self.get()
        return None


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
    shared = _SharedEncoder()
    for student in config.students:
        settings = config.student_configs.get(student, {})
        encoder = shared.for_student(student, settings)
        run = train.run(train.TrainConfig(student=student, version=version_id,
                                          student_config=settings, note="experiment rq1"),
                        store, progress, encoder)
        rows.append(RQ1Row(f"{student} student",
                           evaluate.evaluate_run(run.run_id, version_id, store, encoder), run))
    return RQ1Result(rows)


# ---------------------------------------------------------------------------------------- RQ2

@dataclass(frozen=True)
class RQ2Config:
    version: int | None = None
    student: str = "heads"             # the default (fast, real-time) student
    student_config: dict[str, Any] = field(default_factory=dict)
    fraction: float = 0.125            # the paper's low-data regime: 1/8 of the training split
    seed: int = 0                      # for the subsample and the offline paraphraser
    n: int = 5                         # candidates per flagged intent
    threshold: float = 0.9             # dedup cosine
    paraphraser: augment.ParaphraserChoice = augment.ParaphraserChoice.AUTO
    control: bool = False              # also augment as many *random* training intents


@dataclass(frozen=True)
class RQ2Row:
    label: str
    train_percent: float
    augmentations: int
    train_size: int
    run: train.TrainResult
    evaluation: evaluate.EvaluationResult

    @property
    def overall(self) -> float | None:
        return self.evaluation.subsets[0].overall  # All

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "train_percent": self.train_percent,
                "augmentations": self.augmentations, "train_size": self.train_size,
                "overall": self.overall, "run": self.run.to_dict(),
                "evaluation": self.evaluation.to_dict()}


@dataclass(frozen=True)
class RQ2Result:
    rows: list[RQ2Row]
    augmentation: augment.AugmentResult
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [row.to_dict() for row in self.rows],
                "augmentation": self.augmentation.to_dict(), "seconds": self.seconds}


def rq2(config: RQ2Config, store: Store, progress: Progress | None = None) -> RQ2Result:
    """Train on 100% and on a seeded share of the training split; augment the low-data model's
    errors once (auto-approved) and retrain; evaluate all three on the same test split.

    The current-version pointer is put back afterwards: the experiment's versions stay in the
    history (with their lineage) without becoming the data everyone else trains on."""
    import time

    started = time.perf_counter()
    with store.session() as session:
        base = resolve_version(session, config.version)
        previous_current = current_version_id(session)
    shared = _SharedEncoder()
    encoder = shared.for_student(config.student, config.student_config)

    def train_and_evaluate(version_id: int, note: str) -> tuple[train.TrainResult,
                                                                evaluate.EvaluationResult]:
        run = train.run(train.TrainConfig(student=config.student, version=version_id,
                                          student_config=config.student_config,
                                          note=f"experiment rq2: {note}"),
                        store, progress, encoder)
        return run, evaluate.evaluate_run(run.run_id, version_id, store, encoder)

    try:
        full_run, full_eval = train_and_evaluate(base, "100%")
        with store.atomic() as session:
            low = subsample_version(session, base, config.fraction, config.seed,
                                    note=f"experiment rq2: {config.fraction:.1%} of version "
                                         f"{base}'s training split (seed {config.seed})")
        low_run, low_eval = train_and_evaluate(low, f"{config.fraction:.1%}")
        augmented = augment.run(augment.AugmentConfig(
            run_id=low_run.run_id, n=config.n, threshold=config.threshold,
            paraphraser=config.paraphraser, auto_approve=True, seed=config.seed,
            skip_decided=False), store, progress, encoder=shared.get())
        if augmented.committed_version_id is None:
            raise WorkbenchError("augmentation kept no candidate, so there is nothing to "
                                 "retrain on; lower the dedup threshold or ask for more")
        aug_run, aug_eval = train_and_evaluate(augmented.committed_version_id,
                                               f"{config.fraction:.1%} + augmentation")
        control_row = None
        if config.control:
            control_row = _random_control(config, store, low, augmented.n_sources, shared,
                                          progress, train_and_evaluate)
    finally:
        if previous_current is not None:
            with store.atomic() as session:
                set_current_version(session, previous_current)
    percent = round(100 * config.fraction, 1)
    rows = [RQ2Row("100% of the training split", 100.0, 0, full_run.n_train, full_run,
                   full_eval),
            RQ2Row(f"{percent}%", percent, 0, low_run.n_train, low_run, low_eval),
            RQ2Row(f"{percent}% + one augmentation round", percent, augmented.n_kept,
                   aug_run.n_train, aug_run, aug_eval)]
    if control_row is not None:
        rows.append(control_row)
    return RQ2Result(rows, augmented, time.perf_counter() - started)


def _random_control(config: RQ2Config, store: Store, low: int, n_sources: int,
                    shared: _SharedEncoder, progress: Progress | None,
                    train_and_evaluate: Any) -> RQ2Row:
    """The same round on as many training intents drawn at random instead of mined: does
    choosing the student's errors matter, or only the added data?"""
    import random

    with store.session() as session:
        keys = sorted(row["intent_key"] for row in version_rows(session, low, Split.TRAIN))
    sources = tuple(random.Random(config.seed).sample(keys, min(n_sources, len(keys))))
    # The control builds on the low version like the augmented arm: made current first, so its
    # commit does not rebase onto the augmented version (rq2 restores the current one after).
    with store.atomic() as session:
        set_current_version(session, low)
    control = augment.run(augment.AugmentConfig(
        sources=sources, version=low, n=config.n, threshold=config.threshold,
        paraphraser=config.paraphraser, auto_approve=True, seed=config.seed,
        skip_decided=False), store, progress, encoder=shared.get())
    if control.committed_version_id is None:
        raise WorkbenchError("the random control kept no candidate")
    run, evaluation = train_and_evaluate(control.committed_version_id,
                                         f"{config.fraction:.1%} + random-intent control")
    percent = round(100 * config.fraction, 1)
    return RQ2Row(f"{percent}% + the same round on random intents (control)", percent,
                  control.n_kept, run.n_train, run, evaluation)
