"""The LLM paraphraser's own parts, without a server: its prompt, the reply it asks for, how a
reply becomes candidates, and where it lives (`workbench.paraphrase.llm`, above the client).

The paraphraser against a scripted OpenAI-compatible server (cache, cost, retries, bounded time)
is in test_llm.py, where it drives the client.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.llm import LLMClient, LLMConfig
from workbench.paraphrase import Paraphraser
from workbench.paraphrase.llm import (
    LLMParaphraser,
    first_json_object,
    new_candidates,
    paraphrase_messages,
    parse_intents,
)
from workbench.store import Store

ROOT = Path(__file__).resolve().parent.parent


def offline_paraphraser() -> LLMParaphraser:
    """A paraphraser whose client was never used: nothing here may reach a server or a file."""
    config = LLMConfig(base_url="http://127.0.0.1:9/v1", model="tiny-model")
    return LLMParaphraser(LLMClient(config, Store(Path("/nonexistent/w.duckdb"))))


def test_it_is_a_paraphraser_named_after_its_model() -> None:
    paraphraser: Paraphraser = offline_paraphraser()
    assert paraphraser.name == "llm:tiny-model"


def test_asking_for_no_paraphrases_is_an_error() -> None:
    with pytest.raises(WorkbenchError, match="at least 1"):
        offline_paraphraser().paraphrase(["a"], n=0)


def test_the_prompt_names_the_intent_quoted_and_how_many() -> None:
    system, user = paraphrase_messages('  the "blue" hour  ', 4)
    assert (system["role"], user["role"]) == ("system", "user")
    assert '{"intents": [' in system["content"]          # the JSON shape it asks for
    assert user["content"] == 'Write 4 different descriptions of the same look as ' \
                              '"the \\"blue\\" hour".'


@pytest.mark.parametrize("reply", [
    'Sure! ```json\n{"intents": ["icy dawn", "frosty sunrise"]}\n``` Enjoy your video.',
    'Here you go {not json} and then {"intents": ["icy dawn", "frosty sunrise"]}',
    '{"intents": ["  icy dawn ", "frosty sunrise"], "note": "extra keys are fine"}',
])
def test_replies_in_fences_or_prose_parse(reply: str) -> None:
    assert [text.strip() for text in parse_intents(reply)] == ["icy dawn", "frosty sunrise"]


@pytest.mark.parametrize("reply", [
    "icy dawn, frosty sunrise",                    # no JSON at all
    '{"intents": "icy dawn"}',                     # not a list
    '{"intents": []}',                             # empty
    '{"intents": ["icy dawn", 3]}',                # not strings
    '{"intents": ["icy dawn", "   "]}',            # empty after strip
    '{"intents": ["' + "x" * 501 + '"]}',          # longer than an intent may be
    '{"looks": ["icy dawn"]}',                     # wrong key
    '["icy dawn", "frosty sunrise"]',              # not an object
])
def test_replies_of_the_wrong_shape_are_rejected(reply: str) -> None:
    with pytest.raises(ValueError):
        parse_intents(reply)


def test_the_first_json_object_skips_lists_and_broken_braces() -> None:
    text = 'a list [1, 2], a {broken one, then {"a": {"b": 1}} and {"c": 2}'
    assert first_json_object(text) == {"a": {"b": 1}}
    with pytest.raises(ValueError, match="no JSON object"):
        first_json_object(json.dumps(["only", "a", "list"]))


def test_candidates_drop_the_source_and_repeats_and_keep_the_first_spelling() -> None:
    # "Cool  Morning" is the source (case and spacing aside), "COOL tone" repeats "cool  tone",
    # "" has no identity; the first 3 of what is left, spaces collapsed.
    replies = ["cool  tone", "Cool  Morning", "COOL tone", "", "icy dawn", "blue hour", "dusk"]
    assert new_candidates("cool morning", replies, 3) == ("cool tone", "icy dawn", "blue hour")
    assert new_candidates("cool morning", ["cool morning"], 3) == ()


def test_the_client_module_knows_nothing_of_paraphrasing() -> None:
    # The client is a layer below the paraphrasers: importing it loads no paraphraser.
    code = ("import sys, workbench.llm; print(sorted(m for m in sys.modules "
            "if m.startswith('workbench.paraphrase')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
    import workbench.llm

    assert not hasattr(workbench.llm, "LLMParaphraser")
