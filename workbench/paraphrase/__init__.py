"""Paraphrasers (SPEC 6): write several new intents similar to a marked one.

Two implementations share this small interface: `workbench.paraphrase.llm.LLMParaphraser` (an
LLM behind the OpenAI-compatible client of `workbench.llm`) and the offline default
(`workbench.paraphrase.offline`), so the augmentation pipeline does not care which one runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from workbench.errors import WorkbenchError
from workbench.progress import Progress


class ParaphraseError(WorkbenchError):
    """The paraphraser failed on every source intent of a round (the endpoint is down, the key
    is rejected, the model cannot answer in JSON): the round is not stored."""


@dataclass(frozen=True)
class ParaphraseResult:
    """What a paraphraser made of one source intent.

    `candidates` are new intents (stripped, distinct, none equal to the source ignoring case and
    spacing). `error` says why there are none when the paraphraser failed for this intent (an
    unparseable LLM reply, a timeout); the batch goes on.
    """

    source: str
    candidates: tuple[str, ...] = ()
    error: str | None = None
    cached: bool = False
    usage: dict[str, float] = field(default_factory=dict)  # tokens in/out, cost_usd


class Paraphraser(Protocol):
    name: str  # shown in results and stored with the candidates, e.g. 'offline' or 'llm:gpt-4o-mini'

    def paraphrase(self, intents: Sequence[str], n: int,
                   progress: Progress | None = None) -> list[ParaphraseResult]:
        """Up to `n` candidates for each intent, one result per intent, in order; progress
        ("paraphrase", done, total) after each intent."""
