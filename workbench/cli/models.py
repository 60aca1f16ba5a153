"""The model commands: train, predict, runs, evaluate, baselines, and the paper's experiments."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipelines import augment, evaluate, experiments, predict, train
from workbench.cli.output import emit, progress_bars, table_format
from workbench.cli.parsing import (
    OUT_RULES,
    Commands,
    add_progress,
    add_table_options,
    parse_positive_int,
)
from workbench.errors import WorkbenchError
from workbench.store import Store
from workbench.students import STUDENT_KINDS
from workbench.terminal import printable


def cmd_evaluate(args: argparse.Namespace, store: Store) -> int:
    from workbench.report import render

    if args.predictions is not None:
        result = evaluate.run(evaluate.EvaluateConfig(predictions=args.predictions,
                                                      version=args.version), store)
    else:
        result = evaluate.evaluate_run(args.run or None, args.version, store)
    emit(args, result, lambda: render(
        result.subsets, table_format(args), f"Evaluation {result.evaluation_id}: "
        f"{result.source} on dataset version {result.version_id}, test split"), out=args.out)
    return 0


def _settings(pairs: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise WorkbenchError(f"--set takes KEY=VALUE, got {pair!r}")
        try:
            settings[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            settings[key.strip()] = value
    return settings


def cmd_train(args: argparse.Namespace, store: Store) -> int:
    with progress_bars(args) as progress:
        result = train.run(train.TrainConfig(student=args.student, version=args.version,
                                             student_config=_settings(args.set), note=args.note),
                           store, progress)
    emit(args, result, lambda: [
        (f"run {result.run_id}: {result.student} trained on {result.n_train} intents of "
        f"dataset version {result.version_id} in {result.duration_s:.1f} s"),
        f"  model: {result.artifact_path}",
        f"Next: workbench evaluate --run {result.run_id}"])
    return 0


def cmd_predict(args: argparse.Namespace, store: Store) -> int:
    result = predict.run(predict.PredictConfig(inp=args.inp, out=args.out, run=args.run), store)
    print(f"wrote {result.predictions} predictions of run {result.run_id} to {result.out}")
    return 0


def cmd_runs(args: argparse.Namespace, store: Store) -> int:
    from workbench.store.runs import list_runs

    runs = list_runs(store)

    def lines() -> list[str]:
        if not runs:
            return ["no training runs yet (run `workbench train --student heads`)"]
        return [f"{r['run_id']}  {r['student']:<9} version {r['version_id']:>3}  "
                f"train {r['n_train']:>6}  {r['duration_s']:>8.1f} s  {r['device']}  "
                f"{r['size_bytes'] / 2**20:.1f} MiB"
                + (f"  {printable(r['note'])}" if r.get("note") else "") for r in runs]

    emit(args, runs, lines)
    return 0


def cmd_rq1(args: argparse.Namespace, store: Store) -> int:
    from workbench.report import rq1_comparison

    with progress_bars(args) as progress:
        result = experiments.rq1(experiments.RQ1Config(
            version=args.version, students=tuple(args.students)), store, progress)

    def lines() -> list[str]:
        version = result.rows[0].evaluation.version_id
        ids = ", ".join(str(r.evaluation.evaluation_id) for r in result.rows)
        return [f"RQ1 on dataset version {version}, test split (evaluations {ids})",
                *(f"  {r.label}: run {r.run.run_id}, trained in {r.run.duration_s:.0f} s"
                  for r in result.rows if r.run is not None),
                "",
                rq1_comparison([(r.label, r.evaluation.subsets) for r in result.rows],
                               table_format(args))]

    emit(args, result, lines, out=args.out)
    return 0


def cmd_rq2(args: argparse.Namespace, store: Store) -> int:
    from workbench.report import rq2_table

    with progress_bars(args) as progress:
        result = experiments.rq2(experiments.RQ2Config(
            version=args.version, student=args.student, fraction=args.fraction, seed=args.seed,
            n=args.n, threshold=args.threshold,
            paraphraser=augment.ParaphraserChoice(args.paraphraser), control=args.control),
            store, progress)

    def lines() -> list[str]:
        aug = result.augmentation
        sources = None
        if len(result.rows) > 3:  # the random control: say which intents each round augmented
            sources = ["-", "-", "flagged by mining", "random (control)"]
        dropped = ", ".join(f"{reason} {n}" for reason, n in sorted(aug.dropped.items())) \
            or "none"
        return [(f"RQ2 with the {args.student} student, test split of dataset version "
                 f"{result.rows[0].evaluation.version_id} ({result.seconds / 60:.1f} min)"), "",
                rq2_table([(row.train_percent, row.augmentations, row.train_size, row.overall)
                           for row in result.rows], table_format(args), sources),
                "",
                (f"Augmentation round {aug.augmentation_id} ({aug.paraphraser}): mining flagged "
                 f"{aug.n_flagged} of {result.rows[1].train_size} training intents; "
                 f"{aug.n_generated} candidates generated, {aug.n_kept} kept, dropped: "
                 f"{dropped}; paraphraser failures {aug.n_failed}."),
                "Runs: " + ", ".join(f"{row.label}: {row.run.run_id} (evaluation "
                                     f"{row.evaluation.evaluation_id})" for row in result.rows)]

    emit(args, result, lines, out=args.out)
    return 0


def cmd_baselines(args: argparse.Namespace, store: Store) -> int:
    from workbench.report import render

    result = evaluate.baselines(args.version, store)
    ceiling, floor = result.self_consistency, result.constant
    data = {"self_consistency": ceiling.to_dict(),
            "constant": {**floor.to_dict(), "answer": result.constant_answer.to_dict()}}

    def lines() -> list[str]:
        fmt = table_format(args)
        return [
            render(ceiling.subsets, fmt, f"Ceiling: teacher self-consistency (evaluation "
                   f"{ceiling.evaluation_id}, version {ceiling.version_id} test split; "
                   f"{ceiling.n_samples} non-chosen teacher outputs scored against the ground "
                   "truth; n counts their intents)", details=args.details),
            "",
            render(floor.subsets, fmt, f"Floor: constant predictor (evaluation "
                   f"{floor.evaluation_id}; every intent gets the training split's mean answer: "
                   "each tool, mean sliders, most common filter)", details=args.details)]

    emit(args, data, lines, out=args.out)
    return 0


def add_augment_options(command: argparse.ArgumentParser,
                        defaults: augment.AugmentConfig | experiments.RQ2Config) -> None:
    """--n, --threshold and --paraphraser of an augmentation round (augment, experiment rq2)."""
    command.add_argument("--n", type=parse_positive_int, default=defaults.n,
                         help="candidates per flagged intent (default: %(default)s)")
    command.add_argument("--threshold", type=float, default=defaults.threshold,
                         help="drop candidates at or above this cosine to a training or test "
                              "intent or a kept candidate (default: %(default)s)")
    command.add_argument("--paraphraser", choices=[choice.value
                                                   for choice in augment.ParaphraserChoice],
                         default=defaults.paraphraser.value,
                         help="auto: the LLM when one is configured, else offline")


def add_evaluate(commands: Commands) -> None:
    p = commands.add("evaluate", cmd_evaluate, "Score predictions on a dataset version's test "
                     "split (SPEC 5) and print the RQ1-style table.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", type=Path,
                        help="JSONL, one line per test intent: intent, adjust, selective_adjust, "
                             "filter")
    source.add_argument("--run", nargs="?", const="", metavar="RUN",
                        help="a training run id or prefix (no value: the latest run)")
    add_table_options(p)


def add_train(commands: Commands) -> None:
    p = commands.add("train", cmd_train, "Train a student on a dataset version's training split.")
    p.add_argument("--student", required=True, choices=STUDENT_KINDS,
                   help="retrieval: nearest training intent; heads: MiniLM + small heads (fast); "
                        "seq2seq: a generative encoder-decoder (the paper's kind)")
    p.add_argument("--version", type=int, default=None, help="dataset version (default: current)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a student setting, e.g. --set epochs=30 (repeatable; JSON values)")
    p.add_argument("--note", default=train.TrainConfig.note, help="a note stored with the run")
    add_progress(p)


def add_predict(commands: Commands) -> None:
    p = commands.add("predict", cmd_predict, "Predict tool calls for intents with a trained "
                     "student.", json_flag=False, reads=True)
    p.add_argument("--run", default=None, help="run id or prefix (default: the latest run)")
    p.add_argument("--in", dest="inp", type=Path, required=True,
                   help="JSONL with an 'intent' per line")
    p.add_argument("--out", type=Path, required=True,
                   help="predictions JSONL to write; " + OUT_RULES)


def add_runs(commands: Commands) -> None:
    commands.add("runs", cmd_runs, "List training runs.", reads=True)


def add_experiment(commands: Commands) -> None:
    group = commands.group("experiment", "Run a paper experiment end to end: rq1 trains and "
                           "evaluates every student beside the ceiling and the floor; rq2 trains "
                           "on 100%% and 12.5%% of the data, augments the low-data model once "
                           "and retrains.")
    rq1 = experiments.RQ1Config()
    p = group.add("rq1", cmd_rq1, "The paper's RQ1: the ceiling, the floor, and every student "
                  "trained and evaluated on one test split.")
    p.add_argument("--students", nargs="+", default=list(rq1.students), choices=STUDENT_KINDS,
                   help="students to train (default: all)")
    add_table_options(p)
    add_progress(p)

    rq2 = experiments.RQ2Config()
    p = group.add("rq2", cmd_rq2, "The paper's RQ2: 100%% vs 12.5%% of the training data vs "
                  "12.5%% + one augmentation round, on the same test split.")
    p.add_argument("--student", default=rq2.student, choices=STUDENT_KINDS,
                   help="the student (default: %(default)s)")
    p.add_argument("--fraction", type=float, default=rq2.fraction,
                   help="share of the training split for the low-data runs (default: "
                        "%(default)s)")
    p.add_argument("--seed", type=int, default=rq2.seed, help="subsample and paraphraser seed")
    p.add_argument("--control", action="store_true",
                   help="also run the same round on as many random training intents")
    add_augment_options(p, rq2)
    add_table_options(p)
    add_progress(p)


def add_baselines(commands: Commands) -> None:
    p = commands.add("baselines", cmd_baselines, "The ceiling (teacher self-consistency) and the "
                     "floor (constant predictor) on the test split.")
    add_table_options(p)
    p.add_argument("--details", action=argparse.BooleanOptionalAction, default=True,
                   help="also print the P/R detail tables (default: yes)")
