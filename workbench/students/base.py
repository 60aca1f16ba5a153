"""The one interface every student implements (SPEC 8): train, predict, save, load, size.

A student answers all three tools from the intent text alone. It never touches the store: the
train pipeline hands it texts and ground-truth answers and records the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from workbench.progress import Progress
from workbench.tools import Answer


@dataclass(frozen=True)
class TrainingData:
    intents: Sequence[str]     # display text of each training intent
    answers: Sequence[Answer]  # its teacher ground truth


class Student(Protocol):
    kind: str
    # A student that learns by gradient descent sets `data_parallel = True` on its class: under
    # `accelerate launch` with several processes it trains on a shard of every batch in each
    # (`workbench.students.parallel`). Without it, the main process trains it alone.

    def train(self, data: TrainingData, progress: Progress | None = None) -> None:
        """Fit on the training data. Seeded by the student's config."""

    def predict(self, intents: Sequence[str], batch_size: int = 256) -> list[Answer]:
        """One valid answer per intent, in order."""

    def save(self, folder: Path) -> None:
        """Write everything needed to `load` into `folder` (config included, as JSON)."""

    def config_dict(self) -> dict[str, Any]:
        """The settings, as stored with the run."""

    def size_bytes(self) -> int:
        """Parameters or index size, for the benchmark table."""


def trains_data_parallel(student: Student) -> bool:
    """Whether `student` trains data-parallel under a launch of several processes."""
    return bool(getattr(student, "data_parallel", False))


def device_name(prefer: str = "auto") -> str:
    """'cuda' when a GPU is present and 'cpu' was not asked for, else 'cpu'.

    'cuda' without a GPU falls back to the CPU rather than failing, so a model trained on a GPU
    machine loads on a CPU one; the run records the device it actually trained on."""
    import torch

    if prefer == "cpu":
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"
