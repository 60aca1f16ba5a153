"""The progress callback every long step takes, and the one shape it has everywhere."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """`progress(stage, done, total)`: `done` of `total` units of `stage` are finished, e.g.
    ("epoch", 3, 10), ("embed", 5000, 8252), ("paraphrase", 3, 40); `total` is None when it is
    not known in advance (reading a log file). Called again with the same stage as it moves;
    a smaller `done` starts the stage over (a new round)."""

    def __call__(self, stage: str, done: int, total: int | None, /) -> None: ...
