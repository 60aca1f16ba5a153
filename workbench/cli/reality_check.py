"""`workbench reality-check create | render | annotate | report | list`, with the terminal
annotator and the report's text (the pipeline samples, renders and stores; the statistics are
`workbench.agreement`'s)."""

from __future__ import annotations

import argparse
from argparse import ArgumentParser
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from pipelines import reality_check as rc
from workbench.cli.output import emit
from workbench.cli.parsing import Commands, Handler, parse_positive_int
from workbench.cli.renders import IMAGE_HELP
from workbench.store import Store
from workbench.terminal import printable
from workbench.tools import COLOURS, Answer

# ---------------------------------------------------------------------------- the annotator


def summarise(answer: Answer) -> str:
    """One line per answer for annotators: the non-zero parameters of each tool used."""
    parts = []
    if answer.adjust is None:
        parts.append("adjust: not used")
    else:
        sliders = [f"{key} {value:+d}" for key, value in answer.adjust.items() if value]
        parts.append("adjust: " + (", ".join(sliders) or "all 0"))
    if answer.selective_adjust is None:
        parts.append("selective_adjust: not used")
    else:
        colours = [f"{colour} {channel[:3]} {value:+d}" for colour in COLOURS
                   for channel, value in answer.selective_adjust[colour].items() if value]
        parts.append("selective_adjust: " + (", ".join(colours) or "all 0"))
    parts.append("filter: not used" if answer.filter is None
                 else f"filter: {answer.filter.name} at {answer.filter.intensity}")
    return " | ".join(parts)


@dataclass(frozen=True)
class AnnotateResult:
    answered: int       # saved in this session
    skipped: int
    quit: bool          # the annotator stopped with 'q' (or the input ended)
    remaining: int      # samples this annotator has still not answered

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Stop(Enum):
    SKIP = "skip"
    QUIT = "quit"


def _ask_yes_no(ask: Callable[[str], str], show: Callable[[str], None],
                prompt: str) -> bool | _Stop:
    while True:
        try:
            reply = ask(prompt).strip().lower()
        except EOFError:
            return _Stop.QUIT
        if reply in ("s", "skip"):
            return _Stop.SKIP
        if reply in ("q", "quit"):
            return _Stop.QUIT
        try:
            return rc.parse_yes_no(reply)
        except ValueError:
            show("Please answer y or n (or s to skip this sample, q to quit).")


def annotate_interactively(store: Store, check_id: int, annotator: str,
                           ask: Callable[[str], str], show: Callable[[str], None],
                           images_dir: Path | None = None) -> AnnotateResult:
    """Walk `annotator` through the samples they have not answered yet: show the intent, the
    PNG to look at and both answers, ask the two questions, save each sample's answer as soon
    as both are given. 's' skips a sample (it stays unanswered), 'q' or the end of the input
    stops and keeps what was answered. `images_dir` defaults to the check's latest render."""
    queue = rc.annotation_queue(store, check_id, annotator)
    name, pending, total = queue.annotator, queue.pending, queue.n_samples
    folder = Path(images_dir) if images_dir is not None else queue.render_dir
    if not pending:
        show(f"{name} has answered all {total} samples of reality check {check_id}.")
        return AnnotateResult(0, 0, False, 0)
    show(f"Reality check {check_id}: {len(pending)} of {total} samples left for {name}. "
         "Answer y or n; s skips a sample, q quits (answers given so far are kept).")
    if folder is None:
        show("The check has not been rendered yet: run `workbench reality-check render "
             f"{check_id}` and open the PNGs it writes.")
    answered = skipped = 0
    stopped = False
    for sample in pending:
        image = folder / rc.sample_file(sample) if folder is not None else None
        show("\n".join([
            f"\nSample {sample.sample_no} of {total}: {sample.intent_text!r}",
            f"  image:   {image if image is not None else '(not rendered)'}",
            f"  teacher: {summarise(sample.teacher)}",
            f"  student: {summarise(sample.student)}"]))
        replies: list[bool] = []
        stop: _Stop | None = None
        for question in rc.Question:
            reply = _ask_yes_no(ask, show, f"{question.text} [y/n/s/q] ")
            if isinstance(reply, _Stop):
                stop = reply
                break
            replies.append(reply)
        if stop is _Stop.QUIT:
            stopped = True
            break
        if stop is _Stop.SKIP:
            skipped += 1
            continue
        rc.record_answers(store, check_id, name, [(sample.sample_no, replies[0], replies[1])])
        answered += 1
    remaining = len(pending) - answered
    show(f"Saved {answered} answer(s) for {name}; {remaining} sample(s) still unanswered.")
    return AnnotateResult(answered, skipped, stopped, remaining)


# ---------------------------------------------------------------------------- the report


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def format_report(result: rc.CheckReport) -> str:
    """The report as text, headed by poster-like lines ('Relevant: 13 / 15 (majority of 3
    annotators)')."""
    fewest, most = result.annotators_per_sample
    raters = f"{fewest}" if fewest == most else f"{fewest}-{most}"
    names = f" ({', '.join(result.annotators)})" if result.annotators else ""
    lines = [(f"Reality check {result.check_id}: run {result.run_id}, dataset version "
              f"{result.version_id}, {result.n_samples} samples, image {result.image}"),
             f"Annotators: {result.n_annotators}{names}"]
    first = next(iter(result.questions.values()))
    if first.judged == 0:
        lines.append("No answers yet: annotate with `workbench reality-check annotate "
                     f"{result.check_id}` or load a CSV of answers.")
        return "\n".join(lines)
    unjudged = result.n_samples - first.judged
    for question in rc.Question:
        summary = result.questions[question.value]
        lines.append(
            f"{question.label}: {summary.yes_by_majority} / {summary.judged} (majority of "
            f"{raters} annotator{'s' if most != 1 else ''}; a tie counts as no); "
            f"{_percent(summary.yes_share)} of {summary.n_answers} answers were yes")
    if unjudged:
        lines.append(f"({unjudged} of {result.n_samples} samples have no answer yet and are "
                     "left out.)")
    for question in rc.Question:
        agreed = result.questions[question.value].agreement
        kappa = (f"Fleiss' kappa {agreed.kappa:.3f}" if agreed.kappa is not None
                 else f"Fleiss' kappa undefined ({agreed.note})")
        lines.append(f"Agreement on '{question.value}': pairwise {_percent(agreed.percent)} over "
                     f"{agreed.n_items} samples; {kappa}")
    lines.append("")
    lines.append(f"{'#':>3}  {'stratum':<16} {'annot.':>6} {'relevant':>8} {'mimics':>6}  intent")
    for row in result.samples:
        lines.append(f"{row.sample_no:>3}  {row.stratum:<16} {row.n_annotators:>6} "
                     f"{row.relevant_yes:>8} {row.mimics_yes:>6}  {row.intent_text}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the commands


def cmd_list(args: argparse.Namespace, store: Store) -> int:
    checks = rc.list_checks(store)
    emit(args, checks, lambda: [
        f"{check['check_id']:>4}  run {check['run_id']}  version {check['version_id']}  "
        f"{check['n_samples']} samples  {check['n_annotators']} annotator(s)  "
        f"{check['n_answers']} answers" for check in checks]
        or ["no reality checks yet (workbench reality-check create --run RUN)"])
    return 0


def cmd_create(args: argparse.Namespace, store: Store) -> int:
    result = rc.create_check(store, args.run, n=args.n, seed=args.seed, image=args.image,
                             version=args.version, note=args.note)
    paths = rc.render_check(store, result.check_id, rc.default_render_dir(store, result.check_id))
    emit(args, {**result.to_dict(), "images": [str(p) for p in paths]}, lambda: [
        (f"reality check {result.check_id}: {result.n_samples} test intents of run "
        f"{result.run_id} (version {result.version_id}), stratified by quality and "
        f"popularity; images in {paths[-1].parent}"),
        f"Next: workbench reality-check annotate {result.check_id} --annotator NAME"])
    return 0


def cmd_render(args: argparse.Namespace, store: Store) -> int:
    out = args.out or rc.default_render_dir(store, args.check)
    paths = rc.render_check(store, args.check, out, image=args.image_override)
    print(f"wrote {len(paths)} images to {printable(out)}")
    return 0


def cmd_annotate(args: argparse.Namespace, store: Store) -> int:
    if args.answers is not None:
        n = rc.record_answers(store, args.check, args.annotator,
                              rc.read_answers_file(args.answers))
        print(f"recorded {n} answers of {args.annotator} for reality check {args.check}")
        return 0
    session = annotate_interactively(store, args.check, args.annotator, input,
                                     lambda text: print(printable(text, newlines=True)))
    print(f"answered {session.answered}, skipped {session.skipped}, "
          f"{session.remaining} left" + (" (quit)" if session.quit else ""))
    return 0


def cmd_report(args: argparse.Namespace, store: Store) -> int:
    summary = rc.report(store, args.check)
    emit(args, summary, lambda: format_report(summary))
    return 0


def add_commands(commands: Commands) -> None:
    group = commands.group("reality-check", "The human reality check: sample test intents of a "
                           "run, render teacher vs student, collect annotators' answers to the "
                           "poster's two questions, and report relevance, mimicry and agreement.")
    defaults = rc.CheckConfig()

    def of_a_check(name: str, handler: Handler, text: str, **options: bool) -> ArgumentParser:
        """An action on one check, named by its id."""
        command = group.add(name, handler, text, **options)
        command.add_argument("check", type=int,
                             help="the check id (see `workbench reality-check list`)")
        return command

    p = group.add("create", cmd_create, "Draw a stratified sample of a run's test intents, "
                  "store both answers and render them beside the database.")
    p.add_argument("--run", default=defaults.run_id,
                   help="the student run (default: the latest)")
    p.add_argument("--n", type=parse_positive_int, default=defaults.n,
                   help="samples (default: %(default)s, as in the poster)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="sampling seed")
    p.add_argument("--image", default=defaults.image, help=IMAGE_HELP)
    p.add_argument("--version", type=int, default=defaults.version,
                   help="dataset version (default: the run's)")
    p.add_argument("--note", default=defaults.note, help="a note stored with the check")

    p = of_a_check("render", cmd_render, "Render a check's samples again: a strip per sample "
                   "and a contact sheet.", json_flag=False, out_folder=True)
    p.add_argument("--image-override", default=None, metavar="IMAGE",
                   help="use this image instead of the check's")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for the images (default: beside the database; missing folders "
                        "are created; not a file)")

    p = of_a_check("annotate", cmd_annotate, "Answer the two questions for each sample, at "
                   "the prompt or from a CSV.", json_flag=False)
    p.add_argument("--annotator", required=True, help="your name")
    p.add_argument("--answers", type=Path, default=None,
                   help="a CSV with columns sample,relevant,mimics (y/n) instead of answering "
                        "at the prompt")

    of_a_check("report", cmd_report, "Majority counts, yes shares and agreement per question, "
               "and each sample's answers.", reads=True)

    group.add("list", cmd_list, "List the reality checks with their answer counts.", reads=True)
