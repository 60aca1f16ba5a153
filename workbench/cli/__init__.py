"""The `workbench` command: argument parsing and printing only; the work is in pipelines/.

`main` builds the parser, prepares the store (read-only for the commands that only read; write
access checked before any work; `--out` checked) and runs the command's handler, turning every
error into one line. The commands live by group: `data` (demo, ingest, curate, status,
versions, export, quarantine), `models` (train, predict, runs, evaluate, baselines, experiment),
`augmentation` (augment, slices, review), `renders` (render, gallery), `reality_check`,
`directions`, `jobs`, `labels` (labels list, show, set, export, stats, commit), `label`
(teacher labelling and student suggestions), `app_server`, `serve` (the OpenAI-compatible
gateway), `ab` (the online A/B test) and `traffic` (`simulate-traffic`: simulated demo users
for the online test); `parsing` and `output` are what they share.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from workbench.cli import (
    ab,
    app_server,
    augmentation,
    data,
    directions,
    jobs,
    label,
    labels,
    models,
    reality_check,
    renders,
    serve,
    traffic,
)
from workbench.cli.parsing import Commands
from workbench.errors import WorkbenchError
from workbench.outputs import check_output_file, check_output_folder
from workbench.store import Store
from workbench.terminal import printable

__all__ = ["EXIT_INTERNAL_ERROR", "EXIT_USER_ERROR", "build_parser", "main"]

# Exit codes: 2 a user-facing error (one line), 70 an internal error (a bug: the traceback goes
# to a file), 130 interrupted, 141 the reader of our output went away (`| head`).
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 70


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="The distillation workbench: curate teacher-LLM tool-call logs and distil "
                    "them into small student models.")
    commands = Commands(parser)
    for add in (data.add_demo, data.add_ingest, data.add_curate, data.add_status,
                data.add_versions, data.add_export, models.add_evaluate, models.add_train,
                models.add_predict, models.add_runs, models.add_experiment,
                augmentation.add_augment, augmentation.add_slices, augmentation.add_review,
                models.add_baselines, directions.add_directions,
                renders.add_render, renders.add_gallery, reality_check.add_commands,
                jobs.add_commands, app_server.add_app, data.add_quarantine,
                label.add_label, labels.add_commands, serve.add_serve, ab.add_ab,
                traffic.add_simulate_traffic):
        add(commands)
    return parser


def _prepare(args: argparse.Namespace) -> Store:
    """The store for this command, after the checks that must pass before any work starts.

    Commands that only read open the database read-only, so they work on a read-only file and
    beside other readers; every other command is checked for write access first (when the
    database exists, or when the command creates it)."""
    store = Store.at(args.db, read_only=args.read_only)
    leaves_it = getattr(args, "if_missing", False) and store.exists   # demo --if-missing
    if not args.read_only and (store.exists or args.creates) and not leaves_it:
        store.check_writable()
    out = getattr(args, "out", None)
    if out is not None:
        if args.out_folder:
            check_output_folder(out, store.path)
        else:
            check_output_file(out, store.path)
    return store


def _crash_report(error: BaseException) -> str:
    """Write the traceback of an unexpected error to a file in the temp folder; say where."""
    import tempfile
    import traceback
    from datetime import datetime

    folder = Path(tempfile.gettempdir()) / "workbench-errors"
    path = folder / f"{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.txt"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(f"workbench {' '.join(sys.argv[1:])}\n\n" + "".join(
            traceback.format_exception(type(error), error, error.__traceback__)),
            encoding="utf-8")
    except OSError as write_error:
        return f"the details could not be written ({write_error.strerror or write_error})"
    return f"details written to {path}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args, _prepare(args)))
    except WorkbenchError as error:
        print(f"error: {printable(error, newlines=True)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted; the database is unchanged by the unfinished step", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Whoever read our output stopped reading (`workbench quarantine | head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as error:  # noqa: BLE001 (the last line of defence: no traceback on screen)
        print(f"internal error: {type(error).__name__}: {printable(error)}; "
              f"{_crash_report(error)}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
