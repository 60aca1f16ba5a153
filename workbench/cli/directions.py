"""The `directions` command: the share of direction requests ("make it darker") a trained
student answers with a grade that moves the picture the way asked (see workbench.directions)."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli.output import emit, progress_bars
from workbench.cli.parsing import Commands, add_progress
from workbench.describe import describe_output
from workbench.directions import (
    ASPECTS,
    EPSILONS,
    SAMPLES,
    DirectionFailure,
    DirectionReport,
    default_direction_set,
    direction_share,
    load_direction_set,
)
from workbench.errors import WorkbenchError
from workbench.store import Store
from workbench.terminal import printable
from workbench.tools import TOOLS

DEFAULT_FAILURES = 10


def _parse_count(text: str) -> int:
    """--failures: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _percent(right: int, asked: int) -> str:
    return f"{right / asked:6.1%}" if asked else "     -"


def _table(report: DirectionReport) -> list[str]:
    """One row per aspect that was asked: asked, right, share, and right/asked per direction."""
    lines = [(f"  {'aspect':<11} {'asked':>5} {'right':>5} {'share':>6}   {'up':>7} "
              f"{'down':>7} {'mono':>7}")]
    for aspect in ASPECTS:
        score = report.aspects.get(aspect)
        if score is None:
            continue
        cells = []
        for direction in ("up", "down", "mono"):
            asked, right = score.directions.get(direction, (0, 0))
            cells.append(f"{f'{right}/{asked}' if asked else '-':>7}")
        lines.append(f"  {aspect:<11} {score.asked:>5} {score.right:>5} "
                     f"{_percent(score.right, score.asked)}   {' '.join(cells)}")
    return lines


def _answer_text(failure: DirectionFailure) -> str:
    parts = [f"{tool} {describe_output(tool, failure.answer.tool_json(tool))}"
             for tool in TOOLS if failure.answer.uses(tool)]
    return "; ".join(parts) or "no tool used"


def _failure_lines(failure: DirectionFailure) -> list[str]:
    request = failure.request
    lines = [(f"  {printable(request.request)!r} (line {request.line}) asked "
              f"{request.expected_text()}"),
             f"    answer: {_answer_text(failure)}"]
    lines += [f"    {failure.measurement.describe(aspect, request.expect[aspect])}"
              for aspect in failure.wrong]
    return lines


def cmd_directions(args: argparse.Namespace, store: Store) -> int:
    from workbench.store.runs import load_run

    path: Path | None = args.file if args.file is not None else default_direction_set()
    if path is None:
        raise WorkbenchError("no direction set found: this install has no tests/directions.jsonl "
                             "(it ships with a source checkout); give one with --file")
    requests = load_direction_set(path)
    row, student = load_run(store, args.run)
    with progress_bars(args) as progress:
        report = direction_share(student, requests, progress)
    data = {"run_id": row["run_id"], "student": row["student"], "file": str(path),
            **report.to_dict()}

    def lines() -> list[str]:
        out = [(f"Directions: run {row['run_id']} ({row['student']}) on {len(requests)} "
                f"requests from {printable(path)}"),
               f"moves the way asked: {report.right} of {report.n} ({report.share:.1%})",
               "",
               *_table(report),
               "",
               f"(measured on the samples {', '.join(SAMPLES)}; a move must pass "
               + ", ".join(f"{aspect} {EPSILONS[aspect] * 100:.2f}" for aspect in ASPECTS)
               + " hundredths of its statistic)"]
        shown = report.failures[:args.failures]
        if shown:
            out += ["", f"First {len(shown)} of {len(report.failures)} failures:"]
            for failure in shown:
                out += _failure_lines(failure)
        return out

    emit(args, data, lines)
    return 0


def add_directions(commands: Commands) -> None:
    p = commands.add("directions", cmd_directions, "Check that a trained student's grades move "
                     "the picture the way instructions ask (\"make it darker\", \"more "
                     "contrast\"), measured on the renders of sample photos.", reads=True)
    p.add_argument("--run", default=None, metavar="RUN",
                   help="a training run id or prefix (default: the latest run)")
    p.add_argument("--file", type=Path, default=None,
                   help="a direction set, JSONL of {\"request\", \"expect\": {aspect: up|down|"
                        "mono}} (default: tests/directions.jsonl of the source checkout)")
    p.add_argument("--failures", type=_parse_count, default=DEFAULT_FAILURES, metavar="N",
                   help="how many failures to print (default: %(default)s)")
    add_progress(p)
