"""Experiments that chain steps: RQ1 (every student against the teacher, beside the ceiling and
the floor) and RQ2 (is augmentation effective in low data?). Each step stores its own run,
evaluation and dataset version, so every number traces to its data."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from pipelines import augment, evaluate, review, train
from workbench.directions import (
    DirectionReport,
    check,
    default_direction_set,
    direction_share,
    load_direction_set,
)
from workbench.embeddings import Encoder
from workbench.errors import WorkbenchError
from workbench.progress import Progress
from workbench.stats import Interval, mean_ci, paired_ci, paired_differences
from workbench.store import Store, runs
from workbench.store.candidates import ReviewFilter, Status
from workbench.store.versions import (
    Split,
    current_version_id,
    resolve_version,
    set_current_version,
    subsample_version,
    version_rows,
)
from workbench.tools import TOOLS

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
    # Instructions with the way they must move the picture (workbench.directions); None: the
    # source checkout's tests/directions.jsonl when there is one, else no direction check.
    directions: Path | None = None


@dataclass(frozen=True)
class RQ1Row:
    label: str                       # what the table calls it
    evaluation: evaluate.EvaluationResult
    run: train.TrainResult | None = None
    directions: DirectionReport | None = None   # the floor and the students, when checked


@dataclass(frozen=True)
class RQ1Result:
    rows: list[RQ1Row]
    direction_set: str | None = None            # the file the direction shares come from

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [{"label": row.label, "evaluation": row.evaluation.to_dict(),
                          "run": None if row.run is None else row.run.to_dict(),
                          "directions": None if row.directions is None
                          else row.directions.to_dict()}
                         for row in self.rows],
                "direction_set": self.direction_set}


def rq1(config: RQ1Config, store: Store, progress: Progress | None = None) -> RQ1Result:
    """The ceiling, the floor and every student on the test split; beside them, the share of
    the direction set each answers the way asked (the teacher is not asked: it is not here)."""
    path = config.directions or default_direction_set()
    requests = load_direction_set(path) if path is not None else None
    baselines = evaluate.baselines(config.version, store)
    version_id = baselines.constant.version_id
    floor_directions = None if requests is None else check(
        requests, [baselines.constant_answer] * len(requests))
    rows = [RQ1Row("Teacher self-consistency (ceiling)", baselines.self_consistency),
            RQ1Row("Constant mean answer (floor)", baselines.constant,
                   directions=floor_directions)]
    shared = _SharedEncoder()
    for student in config.students:
        settings = config.student_configs.get(student, {})
        encoder = shared.for_student(student, settings)
        run = train.run(train.TrainConfig(student=student, version=version_id,
                                          student_config=settings, note="experiment rq1"),
                        store, progress, encoder)
        directions = None
        if requests is not None:
            directions = direction_share(runs.load_run(store, run.run_id, encoder)[1], requests)
        rows.append(RQ1Row(f"{student} student",
                           evaluate.evaluate_run(run.run_id, version_id, store, encoder), run,
                           directions))
    return RQ1Result(rows, None if path is None else str(path))


# ---------------------------------------------------------------------------------------- RQ2
#
# Every arm runs once per seed; seed s draws the 12.5% sample, seeds the paraphraser and seeds
# the student's training, so each arm has a spread and two arms pair up by seed. All arms are
# scored on the test split of the base version (the subsample and augmented versions carry it
# unchanged, and each evaluation names the base version).
#
#   full       100% of the training split
#   low        the seeded share (12.5%)
#   mined      low + one round mined with a strategy (auto-approved)
#   control    low + exactly as many augmentations of random training intents as `mined` kept
#   iterative  low + `rounds` rounds, LLM2LLM style: each round mines the latest student's errors
#              on the seed (low) intents, paraphrases them into the grown set and retrains from
#              scratch on it; round 1 is the `mined` arm of the first strategy

SEEDED_STUDENTS = ("heads", "seq2seq")    # students whose training draws from a seed
QUICK_STUDENT_SETTINGS: dict[str, dict[str, Any]] = {"heads": {"epochs": 10},
                                                     "seq2seq": {"epochs": 1}}
QUICK_SEEDS = 2
QUICK_ROUNDS = 2
REVIEWER = "experiment rq2"               # who the experiment's own review decisions are by
ROUND_SEED_STEP = 1000                    # iterative round r paraphrases with seed + 1000 (r-1)


class ArmKind(str, Enum):
    FULL = "full"
    LOW = "low"
    MINED = "mined"
    CONTROL = "control"
    ITERATIVE = "iterative"


@dataclass(frozen=True)
class RQ2Config:
    """RQ2 over seeds. `mining` holds the strategies' parameters (margin, worst_percent,
    clusters, slice_gap); its own `strategy` is replaced by each of `strategies` in turn. The
    iterative arm mines with the first strategy."""

    version: int | None = None
    student: str = "heads"             # the default (fast, real-time) student
    student_config: dict[str, Any] = field(default_factory=dict)
    fraction: float = 0.125            # the paper's low-data regime: 1/8 of the training split
    seeds: int = 5                     # repetitions; each a different sample, paraphrase, init
    first_seed: int = 0                # seeds first_seed .. first_seed + seeds - 1
    strategies: tuple[augment.MiningStrategy, ...] = (augment.MiningStrategy.MEAN,
                                                      augment.MiningStrategy.WORST)
    mining: augment.MiningConfig = field(default_factory=augment.MiningConfig)
    rounds: int = 3                    # iterative arm: rounds of mine, augment, retrain
    n: int = 5                         # candidates per flagged intent
    threshold: float = 0.9             # dedup cosine
    paraphraser: augment.ParaphraserChoice = augment.ParaphraserChoice.AUTO

    def __post_init__(self) -> None:
        if not 0 < self.fraction < 1:
            raise WorkbenchError(f"the low-data fraction must be in (0, 1), got {self.fraction}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 2:
            raise WorkbenchError(f"a 95% interval needs at least 2 seeds, got {self.seeds!r}")
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 1:
            raise WorkbenchError(f"the iterative arm needs at least 1 round, got {self.rounds!r}")
        if self.n < 1:
            raise WorkbenchError(f"n must be at least 1, got {self.n}")
        if not 0 < self.threshold <= 1:
            raise WorkbenchError(f"the dedup threshold must be in (0, 1], got {self.threshold}")
        try:
            strategies = tuple(augment.MiningStrategy(s) for s in self.strategies)
        except ValueError:
            names = ", ".join(member.value for member in augment.MiningStrategy)
            raise WorkbenchError(f"unknown mining strategy in {list(self.strategies)}; choose "
                                 f"from {names}") from None
        if not strategies:
            raise WorkbenchError("name at least one mining strategy")
        if len(set(strategies)) < len(strategies):
            raise WorkbenchError(f"a mining strategy is named twice: "
                                 f"{', '.join(s.value for s in strategies)}")
        object.__setattr__(self, "strategies", strategies)
        if self.student in SEEDED_STUDENTS and "seed" in self.student_config:
            raise WorkbenchError("the experiment seeds the student itself (seed s trains with "
                                 "seed s); leave seed out of the student settings and use "
                                 "--first-seed")

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    @property
    def percent(self) -> float:
        return round(100 * self.fraction, 1)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "student": self.student,
                "student_config": self.student_config, "fraction": self.fraction,
                "seeds": self.seed_list, "strategies": [s.value for s in self.strategies],
                "mining": {**asdict(self.mining), "strategy": None}, "rounds": self.rounds,
                "n": self.n, "threshold": self.threshold,
                "paraphraser": augment.ParaphraserChoice(self.paraphraser).value}


def quick(config: RQ2Config) -> RQ2Config:
    """The experiment made small, for tests and a first look: 2 seeds, 2 rounds and a few
    epochs (settings given in `student_config` win)."""
    settings = {**QUICK_STUDENT_SETTINGS.get(config.student, {}), **config.student_config}
    return replace(config, seeds=QUICK_SEEDS, rounds=QUICK_ROUNDS, student_config=settings)


@dataclass(frozen=True)
class RQ2Trial:
    """One arm on one seed: what it trained on and how it scored on the test split."""

    seed: int
    version_id: int                    # the dataset version trained on
    train_size: int
    augmentations: int                 # training intents beyond the low-data sample
    overall: float | None              # All test intents
    tools: dict[str, float | None]     # each tool's final score, All test intents
    run_id: str
    evaluation_id: int
    augmentation_ids: tuple[int, ...] = ()
    mining_evaluation_id: int | None = None
    flagged: int | None = None         # intents mining flagged (mined and iterative rounds)
    sources: int | None = None         # intents sent to the paraphraser
    note: str = ""                     # when the arm could not add what it set out to

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "augmentation_ids": list(self.augmentation_ids)}


def _mean_of(trials: Sequence[RQ2Trial], name: str) -> float:
    """The mean over the seeds of one numeric field of the trials (train_size, ...)."""
    return sum(getattr(trial, name) for trial in trials) / len(trials)


def _tool_intervals(trials: Sequence[RQ2Trial]) -> dict[str, Interval]:
    return {tool: mean_ci([v for t in trials if (v := t.tools.get(tool)) is not None])
            for tool in TOOLS}


@dataclass(frozen=True)
class RQ2Arm:
    key: str                           # 'full', 'low', 'mined:worst', 'control:worst', ...
    kind: ArmKind
    label: str
    train_percent: float
    strategy: str | None
    trials: tuple[RQ2Trial, ...]       # one per seed, in seed order

    @property
    def values(self) -> list[float | None]:
        return [trial.overall for trial in self.trials]

    @property
    def overall(self) -> Interval:
        return mean_ci([v for v in self.values if v is not None])

    def mean_of(self, name: str) -> float:
        return _mean_of(self.trials, name)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind.value, "label": self.label,
                "train_percent": self.train_percent, "strategy": self.strategy,
                "overall": self.overall.to_dict(),
                "tools": {tool: ci.to_dict() for tool, ci in _tool_intervals(self.trials).items()},
                "train_size": self.mean_of("train_size"),
                "augmentations": self.mean_of("augmentations"),
                "trials": [trial.to_dict() for trial in self.trials]}


@dataclass(frozen=True)
class RQ2Comparison:
    """arm - against, paired by seed."""

    arm: str
    against: str
    label: str
    differences: tuple[float, ...]
    interval: Interval

    def to_dict(self) -> dict[str, Any]:
        return {"arm": self.arm, "against": self.against, "label": self.label,
                "differences": list(self.differences), **self.interval.to_dict()}


@dataclass(frozen=True)
class RQ2CurvePoint:
    round: int
    trials: tuple[RQ2Trial, ...]

    @property
    def overall(self) -> Interval:
        return mean_ci([t.overall for t in self.trials if t.overall is not None])

    def to_dict(self) -> dict[str, Any]:
        return {"round": self.round, "overall": self.overall.to_dict(),
                "train_size": _mean_of(self.trials, "train_size"),
                "augmentations": _mean_of(self.trials, "augmentations"),
                "trials": [trial.to_dict() for trial in self.trials]}


@dataclass(frozen=True)
class RQ2Result:
    config: RQ2Config
    base_version_id: int
    test_intents: int
    arms: list[RQ2Arm]
    curve: list[RQ2CurvePoint]         # the iterative arm after rounds 1 .. rounds
    comparisons: list[RQ2Comparison]
    seconds: float

    def arm(self, key: str) -> RQ2Arm:
        return next(arm for arm in self.arms if arm.key == key)

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "base_version_id": self.base_version_id,
                "test_intents": self.test_intents, "seeds": self.config.seed_list,
                "arms": [arm.to_dict() for arm in self.arms],
                "curve": {"strategy": self.config.strategies[0].value,
                          "start": self.arm("low").overall.to_dict(),
                          "points": [point.to_dict() for point in self.curve]},
                "comparisons": [c.to_dict() for c in self.comparisons],
                "seconds": self.seconds}


def rq2(config: RQ2Config, store: Store, progress: Progress | None = None) -> RQ2Result:
    """RQ2 over `config.seeds` seeds: 100%, the low-data share, one mined round per strategy,
    a random control of the same size per strategy, and the iterative arm; then each arm's
    mean and 95% interval and the paired differences.

    The current-version pointer is put back afterwards: the experiment's versions stay in the
    history (with their lineage) without becoming the data everyone else trains on."""
    started = time.perf_counter()
    with store.session() as session:
        base = resolve_version(session, config.version)
        previous_current = current_version_id(session)
        test_intents = len(version_rows(session, base, Split.TEST))
    experiment = _RQ2Run(config, store, progress, base)
    try:
        for seed in config.seed_list:
            experiment.one_seed(seed)
    finally:
        if previous_current is not None:
            with store.atomic() as session:
                set_current_version(session, previous_current)
    return rq2_result(config, base, test_intents, experiment.trials, experiment.rounds,
                      time.perf_counter() - started)


class _RQ2Run:
    """The experiment's state while it runs: the trials of each arm, seed after seed."""

    def __init__(self, config: RQ2Config, store: Store, progress: Progress | None,
                 base: int) -> None:
        self.config, self.store, self.progress, self.base = config, store, progress, base
        self.shared = _SharedEncoder()
        self.encoder = self.shared.for_student(config.student, config.student_config)
        self.trials: dict[str, list[RQ2Trial]] = {}
        self.rounds: list[list[RQ2Trial]] = [[] for _ in range(config.rounds)]
        self.done = 0
        self.total = config.seeds * (2 + 2 * len(config.strategies) + config.rounds - 1)

    # -- steps ------------------------------------------------------------------------------
    def one_seed(self, seed: int) -> None:
        config = self.config
        self._add("full", self._train_and_evaluate(self.base, seed, "100%"))
        with self.store.atomic() as session:
            low = subsample_version(session, self.base, config.fraction, seed,
                                    note=f"experiment rq2 seed {seed}: {config.fraction:.1%} of "
                                         f"version {self.base}'s training split")
            seed_keys = [row["intent_key"] for row in version_rows(session, low, Split.TRAIN)]
        low_trial = self._add("low", self._train_and_evaluate(low, seed, f"{config.percent}%"))
        mined = {}
        for strategy in config.strategies:
            mined[strategy] = self._add(f"mined:{strategy.value}",
                                        self._mined(seed, low_trial, strategy))
            self._add(f"control:{strategy.value}",
                      self._control(seed, low_trial, mined[strategy], strategy, seed_keys))
        self._iterate(seed, low_trial, mined[config.strategies[0]], set(seed_keys))

    def _mined(self, seed: int, low: RQ2Trial, strategy: augment.MiningStrategy) -> RQ2Trial:
        """One round mined from the low-data run with `strategy`, auto-approved, retrained."""
        self._point_current_at(low.version_id)
        try:
            result = augment.run(augment.AugmentConfig(
                run_id=low.run_id, n=self.config.n, threshold=self.config.threshold,
                paraphraser=self.config.paraphraser, auto_approve=True, seed=seed,
                skip_decided=False, mining=replace(self.config.mining, strategy=strategy)),
                self.store, self.progress, encoder=self.shared.get())
        except augment.NothingToAugment as error:
            self._tick()    # the arm is the low-data run itself: mining sent no intent
            return replace(low, flagged=0, sources=0, note=str(error))
        found: dict[str, Any] = {"augmentation_ids": (result.augmentation_id,),
                                 "flagged": result.n_flagged, "sources": result.n_sources,
                                 "mining_evaluation_id": result.mining_evaluation_id}
        if result.committed_version_id is None:
            self._tick()
            return replace(low, **found, note="dedup kept no candidate; nothing was added")
        return self._train_and_evaluate(result.committed_version_id, seed,
                                        f"{self.config.percent}% + mining ({strategy.value})",
                                        low.train_size, **found)

    def _control(self, seed: int, low: RQ2Trial, mined: RQ2Trial,
                 strategy: augment.MiningStrategy, seed_keys: list[str]) -> RQ2Trial:
        """As many augmentations as `mined` added, paraphrased from training intents drawn at
        random: does choosing the student's errors matter, or only the added data?

        The intents are taken in a seeded random order; a round paraphrases about as many as
        the mined round needed for its count (a quarter more), the first kept candidates up to
        the count are approved and the rest rejected (by "experiment rq2"); when a round falls
        short, the next intents of the order are paraphrased onto the version it made."""
        target = mined.augmentations
        if target == 0:
            self._tick()
            return replace(low, note="the mined arm added nothing, so neither does its control")
        order = sorted(seed_keys)
        random.Random(f"rq2 control {seed} {strategy.value}").shuffle(order)
        per_source = target / max(1, mined.sources or 0)   # kept candidates per source intent
        parent, need, used, ids = low.version_id, target, 0, []
        while need > 0 and used < len(order):
            take = min(len(order) - used, max(1, math.ceil(1.25 * need / max(per_source, 0.05))))
            sources = tuple(order[used:used + take])
            used += take
            self._point_current_at(parent)
            result = augment.run(augment.AugmentConfig(
                sources=sources, version=parent, n=self.config.n,
                threshold=self.config.threshold, paraphraser=self.config.paraphraser,
                seed=seed, skip_decided=False), self.store, self.progress,
                encoder=self.shared.get())
            ids.append(result.augmentation_id)
            per_source = result.n_kept / len(sources)
            if not result.n_kept:
                continue
            kept = [row["candidate_id"] for row in review.list_candidates(
                self.store, ReviewFilter(augmentation_id=result.augmentation_id,
                                         status=Status.PENDING), limit=result.n_kept)]
            if kept[need:]:
                review.set_status(self.store, ReviewFilter(candidate_ids=tuple(kept[need:])),
                                  Status.REJECTED, by=f"{REVIEWER} (beyond the mined count)")
            review.set_status(self.store, ReviewFilter(candidate_ids=tuple(kept[:need])),
                              Status.APPROVED, by=REVIEWER)
            committed = review.commit(
                self.store, result.augmentation_id, by=REVIEWER,
                note=f"experiment rq2 seed {seed}: random control for mining ({strategy.value})")
            parent, need = committed.version_id, need - committed.committed
        note = "" if need == 0 else (f"the random intents gave only {target - need} kept "
                                     f"augmentations of the {target} the mined arm added")
        return self._train_and_evaluate(
            parent, seed, f"{self.config.percent}% + random control ({strategy.value})",
            low.train_size, augmentation_ids=tuple(ids), sources=used, note=note)

    def _iterate(self, seed: int, low: RQ2Trial, first: RQ2Trial, seed_keys: set[str]) -> None:
        """Rounds 2.. of the iterative arm (round 1 is `first`, the mined arm): mine the latest
        student on the grown set, keep the flagged seed intents (LLM2LLM augments from the seed
        data only, never from augmentations), paraphrase them onto the grown version with a
        seed of their own, retrain from scratch."""
        config = self.config
        strategy = config.strategies[0]
        latest = first
        self.rounds[0].append(first)
        for number in range(2, config.rounds + 1):
            _, mining_id, flagged, _ = augment.mine(
                latest.run_id, self.store, self.shared.get(), self.progress,
                mining=replace(config.mining, strategy=strategy), seed=seed)
            sources = tuple(key for key in flagged if key in seed_keys)
            found: dict[str, Any] = {"mining_evaluation_id": mining_id,
                                     "flagged": len(flagged), "sources": len(sources),
                                     "augmentation_ids": ()}
            committed = None
            if sources:
                self._point_current_at(latest.version_id)
                result = augment.run(augment.AugmentConfig(
                    sources=sources, version=latest.version_id, n=config.n,
                    threshold=config.threshold, paraphraser=config.paraphraser,
                    auto_approve=True, seed=seed + ROUND_SEED_STEP * (number - 1),
                    skip_decided=False), self.store, self.progress, encoder=self.shared.get())
                found["augmentation_ids"] = (result.augmentation_id,)
                committed = result.committed_version_id
            if committed is None:
                self._tick()
                latest = replace(latest, **found, note=f"round {number}: " + (
                    "dedup kept no candidate" if sources else "mining flagged no seed intent")
                    + "; the set did not grow")
            else:
                latest = self._train_and_evaluate(
                    committed, seed, f"{config.percent}% + iterative round {number} "
                    f"({strategy.value})", low.train_size, **found)
            self.rounds[number - 1].append(latest)

    # -- helpers ----------------------------------------------------------------------------
    def _train_and_evaluate(self, version_id: int, seed: int, what: str,
                            grown_from: int | None = None, **found: Any) -> RQ2Trial:
        """Train on a version with the seed's student seed; score on the base test split.
        `what` names the arm in the run's note; `grown_from` is the low-data sample's size,
        when the version grew from it; `found` fills the trial's other fields."""
        settings = dict(self.config.student_config)
        if self.config.student in SEEDED_STUDENTS:
            settings["seed"] = seed
        run = train.run(train.TrainConfig(student=self.config.student, version=version_id,
                                          student_config=settings,
                                          note=f"experiment rq2 seed {seed}: {what}"),
                        self.store, self.progress, self.encoder)
        evaluation = evaluate.evaluate_run(run.run_id, self.base, self.store, self.encoder)
        scores = evaluation.subsets[0]  # All
        self._tick()
        added = 0 if grown_from is None else run.n_train - grown_from
        return RQ2Trial(seed, version_id, run.n_train, added,
                        scores.overall, {tool: scores.tools[tool].final for tool in TOOLS},
                        run.run_id, evaluation.evaluation_id, **found)

    def _point_current_at(self, version_id: int) -> None:
        """A round's commit builds on the current version: make it the one the arm grows."""
        with self.store.atomic() as session:
            set_current_version(session, version_id)

    def _add(self, key: str, trial: RQ2Trial) -> RQ2Trial:
        self.trials.setdefault(key, []).append(trial)
        return trial

    def _tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress("rq2 (arm x seed)", self.done, self.total)


def rq2_result(config: RQ2Config, base: int, test_intents: int,
               trials: Mapping[str, Sequence[RQ2Trial]], rounds: Sequence[Sequence[RQ2Trial]],
               seconds: float) -> RQ2Result:
    """The arms, the curve and the paired comparisons from the trials: `trials` by arm key
    ('full', 'low', 'mined:<strategy>', 'control:<strategy>'), each in seed order, and the
    iterative arm's trials round by round (rounds[0] is round 1)."""
    percent = config.percent
    arms = [RQ2Arm("full", ArmKind.FULL, "100% of the training split", 100.0, None,
                   tuple(trials["full"])),
            RQ2Arm("low", ArmKind.LOW, f"{percent:g}%", percent, None, tuple(trials["low"]))]
    for strategy in config.strategies:
        name = strategy.value
        arms.append(RQ2Arm(f"mined:{name}", ArmKind.MINED, f"{percent:g}% + mining ({name})",
                           percent, name, tuple(trials[f"mined:{name}"])))
        arms.append(RQ2Arm(f"control:{name}", ArmKind.CONTROL,
                           f"{percent:g}% + random, as many as {name}", percent, name,
                           tuple(trials[f"control:{name}"])))
    first = config.strategies[0].value
    arms.append(RQ2Arm("iterative", ArmKind.ITERATIVE,
                       f"{percent:g}% + {config.rounds} rounds of mining ({first})", percent,
                       first, tuple(rounds[-1])))
    curve = [RQ2CurvePoint(number, tuple(found)) for number, found in enumerate(rounds, start=1)]
    by_key = {arm.key: arm for arm in arms}

    def compare(key: str, against: str, label: str) -> RQ2Comparison:
        a, b = by_key[key].values, by_key[against].values
        return RQ2Comparison(key, against, label, tuple(paired_differences(a, b)),
                             paired_ci(a, b))

    comparisons = []
    for strategy in config.strategies:
        name = strategy.value
        comparisons += [compare(f"mined:{name}", f"control:{name}",
                                f"mining ({name}) - its random control"),
                        compare(f"mined:{name}", "low", f"mining ({name}) - {percent:g}%")]
    if config.rounds > 1:
        comparisons += [compare("iterative", "low",
                                f"{config.rounds} rounds ({first}) - {percent:g}%"),
                        compare("iterative", f"mined:{first}",
                                f"{config.rounds} rounds ({first}) - 1 round")]
    comparisons.append(compare("full", "low", f"100% - {percent:g}% (the gap)"))
    return RQ2Result(config, base, test_intents, arms, curve, comparisons, seconds)
