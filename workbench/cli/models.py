"""The model commands: train, predict, runs, evaluate, baselines, and the paper's experiments."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
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
from workbench.students.parallel import is_main_process
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
    # Under `accelerate launch` with several processes, only the main one shows progress and
    # prints the run; the others train their shards and exit 0 once it is recorded.
    main = is_main_process()
    with progress_bars(args) as progress:
        result = train.run(train.TrainConfig(student=args.student, version=args.version,
                                             student_config=_settings(args.set), note=args.note),
                           store, progress if main else None)
    if not main:
        return 0
    emit(args, result, lambda: [
        (f"run {result.run_id}: {result.student} trained on {result.n_train} intents of "
        f"dataset version {result.version_id} in {result.duration_s:.1f} s"
        + (f" by {result.processes} processes" if result.processes > 1 else "")),
        f"  model: {result.artifact_path}",
        f"Next: workbench evaluate --run {result.run_id}"])
    return 0


def cmd_predict(args: argparse.Namespace, store: Store) -> int:
    result = predict.run(predict.PredictConfig(inp=args.inp, out=args.out, run=args.run), store)
    print(f"wrote {result.predictions} predictions of run {result.run_id} to {result.out}")
    return 0


def cmd_runs(args: argparse.Namespace, store: Store) -> int:
    from workbench.store.runs import list_runs

    runs = [{**row, "processes": train.run_processes(row)} for row in list_runs(store)]

    def lines() -> list[str]:
        if not runs:
            return ["no training runs yet (run `workbench train --student heads`)"]
        return [f"{r['run_id']}  {r['student']:<9} version {r['version_id']:>3}  "
                f"train {r['n_train']:>6}  {r['duration_s']:>8.1f} s  {r['device']} x"
                f"{r['processes']}  {r['size_bytes'] / 2**20:.1f} MiB"
                + (f"  {printable(r['note'])}" if r.get("note") else "") for r in runs]

    emit(args, runs, lines)
    return 0


def cmd_rq1(args: argparse.Namespace, store: Store) -> int:
    from workbench.report import rq1_comparison

    with progress_bars(args) as progress:
        result = experiments.rq1(experiments.RQ1Config(
            version=args.version, students=tuple(args.students), directions=args.directions),
            store, progress)

    def lines() -> list[str]:
        version = result.rows[0].evaluation.version_id
        ids = ", ".join(str(r.evaluation.evaluation_id) for r in result.rows)
        return [f"RQ1 on dataset version {version}, test split (evaluations {ids})",
                *(f"  {r.label}: run {r.run.run_id}, trained in {r.run.duration_s:.0f} s"
                  for r in result.rows if r.run is not None),
                "",
                rq1_comparison([(r.label, r.evaluation.subsets) for r in result.rows],
                               table_format(args)),
                "", *_direction_lines(result, table_format(args))]

    emit(args, result, lines, out=args.out)
    return 0


def rq2_config(args: argparse.Namespace) -> experiments.RQ2Config:
    """The experiment's config from the rq2 flags; --quick first makes it small, then
    --seeds and --rounds given on the command line win."""
    config = experiments.RQ2Config(
        version=args.version, student=args.student, student_config=_settings(args.set),
        fraction=args.fraction, first_seed=args.first_seed,
        strategies=tuple(augment.MiningStrategy(s) for s in args.strategies),
        mining=augment.MiningConfig(margin=args.margin, worst_percent=args.worst_percent,
                                    clusters=args.clusters, slice_gap=args.slice_gap),
        n=args.n, threshold=args.threshold,
        paraphraser=augment.ParaphraserChoice(args.paraphraser))
    if args.quick:
        config = experiments.quick(config)
    given = {name: value for name, value in (("seeds", args.seeds), ("rounds", args.rounds))
             if value is not None}
    return replace(config, **given) if given else config


def _direction_lines(result: experiments.RQ1Result, fmt: str) -> list[str]:
    """The share of the direction set each row answers the way asked, or why there is none."""
    from workbench.report import csv_table, markdown_table, text_table

    if result.direction_set is None:
        return [("Directions: no direction set (tests/directions.jsonl is in a source "
                 "checkout; give one with --directions FILE).")]
    rows = [["Model", "Moves as asked", "Share"]]
    rows += [[r.label, f"{r.directions.right}/{r.directions.n}", f"{r.directions.share:.1%}"]
             for r in result.rows if r.directions is not None]
    table = {"csv": csv_table, "markdown": markdown_table}.get(fmt, text_table)
    return [(f"Directions: the share of the instructions in {result.direction_set} that each "
             "answers so that the picture moves the way asked (`workbench directions --run RUN` "
             "lists the failures)"), "", table(rows)]


def cmd_rq2(args: argparse.Namespace, store: Store) -> int:
    from workbench.report import (
        rq2_arms_table,
        rq2_curve_table,
        rq2_differences_table,
        sparkline,
    )

    with progress_bars(args) as progress:
        result = experiments.rq2(rq2_config(args), store, progress)
    config = result.config

    def lines() -> list[str]:
        fmt = table_format(args)
        seeds = config.seed_list
        low = result.arm("low")
        curve = [(0, low.mean_of("train_size"), 0.0, low.overall, low.values)] + [
            (point.round, sum(t.train_size for t in point.trials) / len(point.trials),
             sum(t.augmentations for t in point.trials) / len(point.trials), point.overall,
             [t.overall for t in point.trials]) for point in result.curve]
        out = [(f"RQ2 with the {config.student} student over {len(seeds)} seeds "
                f"({seeds[0]}-{seeds[-1]}), test split of dataset version "
                f"{result.base_version_id} ({result.test_intents:,} intents); "
                f"{result.seconds / 60:.1f} min"), "",
               rq2_arms_table([(arm.label, arm.train_percent, arm.mean_of("train_size"),
                                arm.mean_of("augmentations"), arm.overall, arm.values)
                               for arm in result.arms], fmt),
               "", (f"Iterative arm (mining with {config.strategies[0].value}, paraphrase the "
                    "flagged seed intents, retrain from scratch on the grown set; round 0 is "
                    f"the {config.percent:g}% arm, round 1 the one-round mined arm): "
                    + sparkline([row[3].mean for row in curve])),
               rq2_curve_table(curve, fmt),
               "", "Paired differences (arm minus arm, seed by seed; mean and 95% t interval):",
               rq2_differences_table([(c.label, c.interval, c.differences)
                                      for c in result.comparisons], fmt), ""]
        out += [_verdict(c) for c in result.comparisons if c.arm.startswith("mined:")
                and c.against.startswith("control:")]
        notes = [f"  {arm.label}, seed {t.seed}: {t.note}" for arm in result.arms
                 for t in arm.trials if t.note]
        if notes:
            out += ["", "Notes:", *notes]
        out += ["", ("Every run, evaluation, augmentation round and dataset version is "
                     "stored; --json lists them per arm and seed.")]
        return out

    emit(args, result, lines, out=args.out)
    return 0


def _verdict(comparison: experiments.RQ2Comparison) -> str:
    """One sentence: does this mined arm beat its random control, by the paired interval?"""
    from workbench.report import rq2_verdict

    return rq2_verdict(comparison.arm.split(":", 1)[1], comparison.interval)


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


def add_strategy_parameters(command: argparse.ArgumentParser,
                            mining: augment.MiningConfig) -> None:
    """--margin, --worst-percent and the slices' --clusters and --slice-gap, each for its
    mining strategy (augment, experiment rq2)."""
    command.add_argument("--margin", type=float, default=mining.margin,
                         help="margin: how far below the tool's mean cosine "
                              "(default: %(default)s)")
    command.add_argument("--worst-percent", type=float, default=mining.worst_percent,
                         help="worst: the share of training intents, in %% "
                              "(default: %(default)s)")
    add_slice_options(command, mining.clusters, mining.slice_gap)


def add_slice_options(command: argparse.ArgumentParser, clusters: int | None,
                      gap: float) -> None:
    command.add_argument("--clusters", type=parse_positive_int, default=clusters,
                         help="slices: k for k-means (default: round(sqrt(n/2)) of the n "
                              "training intents, within 2 to 60)")
    command.add_argument("--slice-gap", type=float, default=gap,
                         help="slices: flag a slice whose Overall is at least this below the "
                              "student's on the whole training split (default: %(default)s)")


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
    p = commands.add("train", cmd_train, "Train a student on a dataset version's training split "
                     "(heads and seq2seq also data-parallel under `accelerate launch`: see the "
                     "README).")
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
                           "on 100%% and 12.5%% of the data, augments the low-data model "
                           "(mined and random, once and iteratively) and retrains, over seeds.")
    rq1 = experiments.RQ1Config()
    p = group.add("rq1", cmd_rq1, "The paper's RQ1: the ceiling, the floor, and every student "
                  "trained and evaluated on one test split.")
    p.add_argument("--students", nargs="+", default=list(rq1.students), choices=STUDENT_KINDS,
                   help="students to train (default: all)")
    p.add_argument("--directions", type=Path, default=None, metavar="FILE",
                   help="a direction set to check every student on (default: "
                        "tests/directions.jsonl of the source checkout)")
    add_table_options(p)
    add_progress(p)

    rq2 = experiments.RQ2Config()
    mining = rq2.mining
    p = group.add("rq2", cmd_rq2, "The paper's RQ2 over seeds: 100%% vs 12.5%% of the training "
                  "data vs 12.5%% + one round mined with each strategy vs 12.5%% + a random "
                  "control of the same size, and an iterative arm (mine, augment, retrain, "
                  "--rounds times), all on the same test split; each arm's mean and 95%% "
                  "interval over the seeds and the paired differences.")
    p.add_argument("--student", default=rq2.student, choices=STUDENT_KINDS,
                   help="the student (default: %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a student setting, e.g. --set epochs=30 (repeatable; JSON values; the "
                        "experiment sets the seed)")
    p.add_argument("--fraction", type=float, default=rq2.fraction,
                   help="share of the training split for the low-data runs (default: "
                        "%(default)s)")
    p.add_argument("--seeds", type=parse_positive_int, default=None,
                   help=f"seeds per arm; seed s draws the sample, the paraphrases and the "
                        f"student's initialisation (default: {rq2.seeds}; "
                        f"{experiments.QUICK_SEEDS} with --quick)")
    p.add_argument("--first-seed", type=int, default=rq2.first_seed,
                   help="the first seed (default: %(default)s)")
    p.add_argument("--strategies", nargs="+", default=[s.value for s in rq2.strategies],
                   choices=[s.value for s in augment.MiningStrategy],
                   help="mining strategies, one mined arm and one random control each; the "
                        "first also drives the iterative arm (default: "
                        f"{' '.join(s.value for s in rq2.strategies)})")
    p.add_argument("--rounds", type=parse_positive_int, default=None,
                   help=f"rounds of the iterative arm (default: {rq2.rounds}; "
                        f"{experiments.QUICK_ROUNDS} with --quick)")
    p.add_argument("--quick", action="store_true",
                   help=f"a small run for tests and a first look: {experiments.QUICK_SEEDS} "
                        f"seeds, {experiments.QUICK_ROUNDS} rounds, few epochs")
    add_strategy_parameters(p, mining)
    add_augment_options(p, rq2)
    add_table_options(p)
    add_progress(p)


def add_baselines(commands: Commands) -> None:
    p = commands.add("baselines", cmd_baselines, "The ceiling (teacher self-consistency) and the "
                     "floor (constant predictor) on the test split.")
    add_table_options(p)
    p.add_argument("--details", action=argparse.BooleanOptionalAction, default=True,
                   help="also print the P/R detail tables (default: yes)")
