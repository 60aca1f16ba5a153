"""`workbench label`: teacher (re)labelling through the configured LLM endpoint, or a trained
run's predictions stored as student suggestions (`--student RUN`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines import label
from pipelines.label_queue import QueueReason
from workbench.cli.output import emit, progress_bars
from workbench.cli.parsing import Commands, add_progress, parse_positive_int
from workbench.errors import WorkbenchError
from workbench.store import Store
from workbench.store.versions import Split

_TEACHER_ONLY = ("max_usd", "dry_run", "model", "temperature")
# The queue's reasons a terminal can name (a selection on the app's map lives in the browser).
_QUEUE_REASONS = [r.value for r in QueueReason if r is not QueueReason.SELECTED]


def _selection(args: argparse.Namespace) -> label.IntentSelection:
    return label.IntentSelection(
        intents_file=args.intents, queue=args.queue,
        split=None if args.split is None else Split(args.split), version=args.version,
        limit=args.limit)


def _parse_usd(text: str) -> float:
    try:
        value = float(text.lstrip("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected dollars such as 0.50, got {text!r}")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def cmd_label(args: argparse.Namespace, store: Store) -> int:
    if args.student is not None:
        given = [f"--{name.replace('_', '-')}" for name in _TEACHER_ONLY
                 if getattr(args, name) not in (None, False)]
        if given:
            raise WorkbenchError(f"{', '.join(given)} apply to teacher labelling, not to "
                                 "--student (a run's predictions cost nothing)")
        with progress_bars(args) as progress:
            suggested = label.run_student(
                label.StudentLabelConfig(run=args.student, selection=_selection(args)), store,
                progress)
        emit(args, suggested, lambda: [
            (f"{suggested.source}: {suggested.labelled} new suggestion(s), {suggested.reused} "
             f"already there (reused), for {suggested.intents} intents of "
             f"{suggested.selection}; suggestions are never chosen by the default precedence")])
        return 0

    def show(estimate: label.Estimate) -> None:
        # Before any call: on stdout with the rest of the text, on stderr beside --json.
        print(estimate.describe(), file=sys.stderr if args.json else sys.stdout, flush=True)

    with progress_bars(args) as progress:
        result = label.run(label.LabelConfig(
            selection=_selection(args), max_usd=args.max_usd, dry_run=args.dry_run,
            model=args.model, temperature=args.temperature), store, progress,
            on_estimate=show)
    emit(args, result, lambda: label.describe(result))
    return 0


def add_label(commands: Commands) -> None:
    p = commands.add(
        "label", cmd_label,
        "Label intents with the teacher LLM (the configured OpenAI-compatible endpoint): each "
        "answer is stored as a teacher:<model> label, each reply that is not an answer as a "
        "failure with the raw reply. Prints a token and cost estimate before any call; replies "
        "are cached, so a rerun costs nothing. With --student RUN, stores a trained run's "
        "predictions as student:<run> suggestions instead (offline).", creates=True)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--intents", type=Path, default=None, metavar="FILE",
                        help="a file of intents: one a line, or JSONL with an \"intent\" string "
                             "(new intents need no logs)")
    source.add_argument("--queue", default=None, choices=_QUEUE_REASONS,
                        metavar="REASON",
                        help="the intents of the label queue for this reason, most needing a "
                             "person first: " + ", ".join(_QUEUE_REASONS))
    source.add_argument("--split", choices=[Split.TRAIN.value, Split.TEST.value], default=None,
                        help="a dataset version's split (with --version; default the current "
                             "version)")
    p.add_argument("--version", type=int, default=None,
                   help="with --split or --queue: the dataset version (default: current)")
    p.add_argument("--limit", type=parse_positive_int, default=None,
                   help="at most this many intents, in order")
    p.add_argument("--student", default=None, metavar="RUN",
                   help="store this trained run's predictions as student:<run> suggestions "
                        "instead of asking the teacher")
    p.add_argument("--max-usd", type=_parse_usd, default=None, metavar="USD",
                   help="stop before the run would spend more than this (needs the prices in "
                        "the [llm] settings)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the estimate only: no call, nothing stored")
    p.add_argument("--model", default=None,
                   help="the teacher model on the configured endpoint (default: the "
                        "configured model)")
    p.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature (default: the configured one)")
    add_progress(p)
