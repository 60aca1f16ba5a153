"""The paraphraser that asks an LLM (SPEC 6): its prompt, the reply it asks for, and
`LLMParaphraser`, one chat request per source intent through `workbench.llm.LLMClient` (which
bounds the time, caches replies and records the cost).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from workbench.errors import WorkbenchError
from workbench.llm import LLMClient, Purpose
from workbench.log_records import INTENT_MAX_CHARS, intent_key
from workbench.paraphrase import ParaphraseResult
from workbench.progress import Progress

_PARAPHRASE_SYSTEM = (
    "You help a video colour-grading app. Users type a short description of the look they want "
    "for their video, such as \"cool morning\", \"golden hour\" or \"Morocco\". Given one such "
    "description, write new descriptions that a user could type for the same look: the same "
    "colours, light and mood in different words, each as short as the original. Do not repeat "
    "the original, do not number them. Answer with JSON only, in the form "
    "{\"intents\": [\"...\", \"...\"]}.")

_IntentText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                               max_length=INTENT_MAX_CHARS)]


class IntentsReply(BaseModel):
    """The reply a paraphrase prompt asks for: {"intents": [...]}."""

    model_config = ConfigDict(extra="ignore")
    intents: list[_IntentText] = Field(min_length=1)


def paraphrase_messages(intent: str, n: int) -> list[dict[str, str]]:
    """The chat messages that ask for `n` paraphrases of one intent."""
    quoted = json.dumps(intent.strip(), ensure_ascii=False)
    return [{"role": "system", "content": _PARAPHRASE_SYSTEM},
            {"role": "user", "content": f"Write {n} different descriptions of the same look as "
                                        f"{quoted}."}]


def first_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in `text`: models wrap JSON in ``` fences or in prose."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue  # a brace in prose, or a broken object: try the next one
        if isinstance(value, dict):
            return value
    raise ValueError("no JSON object in the reply")


def parse_intents(text: str) -> list[str]:
    """The intents of a paraphrase reply, validated; raises ValueError when it has none."""
    return IntentsReply.model_validate(first_json_object(text)).intents


def new_candidates(source: str, intents: Sequence[str], n: int) -> tuple[str, ...]:
    """Up to `n` intents, first spelling kept, without repeats or the source (SPEC 3 identity)."""
    seen = {intent_key(source)}
    kept: list[str] = []
    for text in intents:
        key = intent_key(text)
        if key and key not in seen:
            seen.add(key)
            kept.append(" ".join(text.split()))
    return tuple(kept[:n])


class LLMParaphraser:
    """The `Paraphraser` that asks an LLM, one chat request per source intent."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client
        self.name = f"llm:{client.config.model}"

    def __repr__(self) -> str:
        return f"LLMParaphraser({self.client!r})"

    def close(self) -> None:
        self.client.close()

    def paraphrase(self, intents: Sequence[str], n: int,
                   progress: Progress | None = None) -> list[ParaphraseResult]:
        """Up to `n` candidates per intent; a failed intent gets an error result, never raises."""
        if n < 1:
            raise WorkbenchError(f"ask for at least 1 paraphrase per intent, not {n}")
        replies = self.client.complete_many(
            [paraphrase_messages(source, n) for source in intents], parse_intents,
            purpose=Purpose.PARAPHRASE, n=n, progress=progress)
        results = [ParaphraseResult(
            source=source,
            candidates=() if reply.value is None else new_candidates(source, reply.value, n),
            error=reply.error, cached=reply.cached, usage=reply.usage())
            for source, reply in zip(intents, replies, strict=True)]
        return results
