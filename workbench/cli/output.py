"""What the commands print: their result as text or, with --json, as JSON, through one helper;
tables to a file with --out; progress bars on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workbench.outputs import write_text_atomic
from workbench.progress import Progress
from workbench.terminal import printable


def emit(args: argparse.Namespace, data: Any, text: Callable[[], str | Iterable[str]],
         out: Path | None = None) -> None:
    """With --json, `data` (its `to_dict()` when it has one) as indented JSON; else the lines
    `text()` makes. Printed with control characters escaped, or written to `out` atomically."""
    if getattr(args, "json", False):
        plain = data.to_dict() if hasattr(data, "to_dict") else data
        write_or_print(json.dumps(plain, indent=2, default=str), out)
        return
    lines = text()
    write_or_print(lines if isinstance(lines, str) else "\n".join(lines), out)


def write_or_print(text: str, out: Path | None) -> None:
    """Print `text` (escaped for the terminal), or write it to `out` atomically."""
    if out is None:
        print(printable(text, newlines=True))
        return
    write_text_atomic(out, text + "\n")
    print(f"wrote {printable(out)}", file=sys.stderr)


def table_format(args: argparse.Namespace) -> str:
    """--format, else what --out's extension says, else text."""
    if args.format:
        return str(args.format)
    suffix = args.out.suffix.lower() if args.out else ""
    return {".md": "markdown", ".csv": "csv"}.get(suffix, "text")


class _Bars:
    """A tqdm bar per stage, on stderr."""

    def __init__(self) -> None:
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None or done < bar.n or bar.total != total:  # a new round of the same stage
            if bar is not None:
                bar.close()
            bar = self.bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr)
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


@contextmanager
def progress_bars(args: argparse.Namespace) -> Iterator[Progress | None]:
    """Progress bars while the block runs when --progress is on (by default when stderr is a
    terminal), closed however it ends; None when they are off."""
    if not args.progress:
        yield None
        return
    bars = _Bars()
    try:
        yield bars
    finally:
        bars.close()
