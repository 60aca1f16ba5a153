"""Building the `workbench` parser: commands, command groups whose actions are commands of their
own (`workbench review list`), the options several commands share, and argument types.

Each command declares what `_prepare` in `workbench.cli` needs to know before it starts: whether
it only reads the database, whether it may create it, and whether its `--out` is a folder.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

from workbench.store import Store

Handler = Callable[[argparse.Namespace, Store], int]

DB_HELP = "DuckDB file (default: $WORKBENCH_DB, else data/workbench.duckdb)"
OUT_RULES = ("written whole or not at all; missing folders are created; never over the "
             "database, another DuckDB file or the workbench's runs/ and jobs/ folders")
PROGRESS_HELP = "show progress bars (default: when stderr is a terminal)"
LIST_ROWS = 50          # rows a listing shows unless --limit says otherwise


def parse_test_size(text: str) -> float:
    """A --test-size: a number of intents, or a fraction below 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of intents or a fraction, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def parse_positive_int(text: str) -> int:
    """A whole number above 0 (27_756 and 27756 alike)."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def parse_positive_number(text: str) -> float:
    """A finite number above 0 (seconds, megabytes)."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_progress(command: argparse.ArgumentParser) -> None:
    command.add_argument("--progress", action=argparse.BooleanOptionalAction,
                         default=sys.stderr.isatty(), help=PROGRESS_HELP)


def add_table_options(command: argparse.ArgumentParser) -> None:
    """--version, --format and --out of the commands that print a metrics table."""
    command.add_argument("--version", type=int, default=None,
                         help="dataset version (default: current)")
    command.add_argument("--format", choices=["text", "markdown", "csv"], default=None,
                         help="table format (default: from --out's extension, else text)")
    command.add_argument("--out", type=Path, default=None,
                         help="write the table (or JSON) to this file; " + OUT_RULES)


def _command(subparsers: argparse._SubParsersAction, name: str, handler: Handler, text: str, *,
             json_flag: bool, reads: bool, creates: bool, out_folder: bool,
             db_default: object) -> argparse.ArgumentParser:
    # `help` is %-formatted by argparse, `description` is not: one text, two spellings of %.
    command = subparsers.add_parser(name, help=text, description=text.replace("%%", "%"))
    command.add_argument("--db", type=Path, default=db_default, help=DB_HELP)
    if json_flag:
        command.add_argument("--json", action="store_true", help="print JSON instead of text")
    command.set_defaults(handler=handler, read_only=reads, creates=creates, out_folder=out_folder)
    return command


class Group:
    """A command whose first argument picks an action (`list`, `commit`, ...), each a command
    of its own with only the options that mean something to it."""

    def __init__(self, parser: argparse.ArgumentParser):
        self._actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def add(self, name: str, handler: Handler, text: str, *, json_flag: bool = True,
            reads: bool = False, out_folder: bool = False) -> argparse.ArgumentParser:
        # --db is the group's too (`workbench review --db F list`): the action's copy keeps the
        # group's value unless it is given again.
        return _command(self._actions, name, handler, text, json_flag=json_flag, reads=reads,
                        creates=False, out_folder=out_folder, db_default=argparse.SUPPRESS)


class Commands:
    """The top-level commands of `workbench`, in the order `workbench --help` lists them."""

    def __init__(self, parser: argparse.ArgumentParser):
        self._commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(self, name: str, handler: Handler, text: str, *, json_flag: bool = True,
            reads: bool = False, creates: bool = False,
            out_folder: bool = False) -> argparse.ArgumentParser:
        return _command(self._commands, name, handler, text, json_flag=json_flag, reads=reads,
                        creates=creates, out_folder=out_folder, db_default=None)

    def group(self, name: str, text: str) -> Group:
        parser = self._commands.add_parser(name, help=text, description=text.replace("%%", "%"))
        parser.add_argument("--db", type=Path, default=None, help=DB_HELP)
        return Group(parser)
