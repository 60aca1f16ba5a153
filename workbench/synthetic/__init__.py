"""The SYNTHETIC demo log corpus (SPEC 9): invented teacher-call logs in the log contract (SPEC 3).

Nothing here comes from real users or a real teacher LLM. The generator invents user intents
from the vocabulary (looks, phrasings, modifiers, combinations, typos), gives every intent a
latent "correct" answer derived from its words, and simulates a GPT-3.5-like teacher that answers
each request with that answer plus noise (often repeating itself, sometimes poorly), and users
whose per-tool exports favour the better outputs. Request and session ids start with "demo-" so
that synthetic rows are recognisable wherever they go.

At the default config it has the paper's scale: exactly 9,252 distinct intents (by
`workbench.log_records.intent_key`) and 27,756 requests, three per intent on average, popular
intents requested many times and a long tail requested once. `DemoConfig.at_scale` keeps the paper's
intent/request ratio at any size (1M+ requests for load tests). Everything is seeded: the same
config always yields the same records.

Modules, from the bottom up: `vocabulary` (plain data), `looks` (the vocabulary as arrays),
`intents` (unique phrasings and their popularity), `teacher` (latent answers and the teacher's
outputs), `requests` (the request stream and its records). `pipelines.demo` is the step that
generates, ingests and curates a corpus.
"""

from workbench.synthetic.requests import (
    PAPER_INTENTS,
    PAPER_REQUESTS,
    DemoConfig,
    generate,
    write_jsonl,
)

__all__ = ["PAPER_INTENTS", "PAPER_REQUESTS", "DemoConfig", "generate", "write_jsonl"]
