"""The SYNTHETIC demo's request stream: which intent each request asks for and when, in which
session, which teacher output it got and how often users exported it, written as log records
(SPEC 3) in time order, in seeded chunks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from workbench.progress import Progress
from workbench.synthetic.intents import draw_intents, requests_per_intent
from workbench.synthetic.looks import N_ADJ, compile_vocabulary
from workbench.synthetic.teacher import (
    N_VARIANTS,
    TEACHER_MODEL,
    Outputs,
    latent_answers,
    teacher_outputs,
)
from workbench.tools import ADJUST_KEYS, COLOURS, FILTER_NAMES

PAPER_INTENTS = 9_252
PAPER_REQUESTS = 27_756
CHUNK = 10_000          # records generated (and reported to `progress`) per step


@dataclass(frozen=True)
class DemoConfig:
    """What to generate. The defaults are the paper's scale."""

    seed: int = 7
    intents: int = PAPER_INTENTS      # unique intents (by log_records.intent_key)
    requests: int = PAPER_REQUESTS    # records
    start: str = "2024-01-01T00:00:00+00:00"
    days: int = 120

    def __post_init__(self) -> None:
        if self.intents < 1:
            raise ValueError(f"intents must be at least 1, got {self.intents}")
        if self.requests < self.intents:
            raise ValueError(f"requests ({self.requests}) must be at least intents "
                             f"({self.intents}): every intent has a request")
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")
        if _start_time(self.start).tzinfo is None:
            raise ValueError(f"start must carry a timezone, got {self.start!r}")

    @classmethod
    def at_scale(cls, requests: int, seed: int = 7) -> DemoConfig:
        """`requests` records with the paper's ratio of unique intents to requests."""
        intents = max(1, round(requests * PAPER_INTENTS / PAPER_REQUESTS))
        return cls(seed=seed, intents=intents, requests=requests)


def generate(config: DemoConfig) -> Iterator[dict[str, Any]]:
    """Yield the corpus's records in time order; the same config always gives the same records."""
    plan = _plan(config)
    for start in range(0, config.requests, CHUNK):
        yield from _chunk(config, plan, start, min(start + CHUNK, config.requests))


def write_jsonl(config: DemoConfig, path: Path, progress: Progress | None = None) -> int:
    """Write the corpus as JSONL; `progress("generate", records written, records in all)` after
    every ~10k records."""
    plan = _plan(config)
    written = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for start in range(0, config.requests, CHUNK):
            records = _chunk(config, plan, start, min(start + CHUNK, config.requests))
            out.write("".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n"
                              for r in records))
            written += len(records)
            if progress is not None:
                progress("generate", written, config.requests)
    return written


# --------------------------------------------------------------------------------------------
# The plan: intents, the teacher's outputs, and which intent each request asks for, in order.


@dataclass
class _Plan:
    text: list[str]
    outputs: Outputs
    order: np.ndarray           # [R] intent of each request, in time order
    text_len: np.ndarray        # [I]
    grid: np.ndarray            # hourly cumulative distribution of request times
    session: np.ndarray         # [R] user session number of each request (consecutive runs)
    start_s: float              # epoch seconds of config.start
    first: np.ndarray           # [R] bool: the intent's first request, always exported, so
                                # every intent survives curation (the paper's 8,252 + 1,000)


def _plan(config: DemoConfig) -> _Plan:
    seq = np.random.SeedSequence([config.seed, 0x5D3A])
    rng_latent, rng_teacher, rng_counts, rng_order = (np.random.default_rng(s)
                                                      for s in seq.spawn(4))
    v = compile_vocabulary()
    it = draw_intents(config.intents, config.seed, v)
    outputs = teacher_outputs(it, latent_answers(it, v, rng_latent), v, rng_teacher)
    per_intent = requests_per_intent(it, config.requests, rng_counts)
    order = rng_order.permutation(np.repeat(np.arange(config.intents, dtype=np.int32),
                                            per_intent))
    first = np.zeros(config.requests, dtype=bool)
    first[np.unique(order, return_index=True)[1]] = True
    return _Plan(text=it.text, outputs=outputs, order=order, first=first,
                 text_len=np.array([len(t) for t in it.text]), grid=_time_grid(config),
                 session=np.cumsum(rng_order.random(config.requests) < 0.45).clip(1) - 1,
                 start_s=_start_time(config.start).timestamp())


def _start_time(start: str) -> datetime:
    return datetime.fromisoformat(start)


# Relative request volume by hour of day (UTC), quieter at night, busiest in the evening.
_HOURLY = (2.0, 1.5, 1.0, 0.8, 0.8, 1.0, 1.5, 2.5, 3.5, 4.5, 5.0, 5.0, 5.5, 5.5, 5.0, 5.0,
           5.5, 6.5, 7.5, 8.5, 9.0, 8.0, 6.0, 3.5)


def _time_grid(config: DemoConfig) -> np.ndarray:
    """Cumulative share of requests at each hour boundary over the period (length hours + 1)."""
    day = np.arange(config.days * 24) // 24
    weight = np.tile(np.array(_HOURLY), config.days)
    weight *= 1 + 0.8 * day / config.days          # adoption grows over the four months
    weight *= np.where(day % 7 >= 5, 1.2, 1.0)     # busier weekends
    cdf = np.concatenate([[0.0], np.cumsum(weight)])
    return cdf / cdf[-1]


# --------------------------------------------------------------------------------------------
# Records: one chunk of requests at a time, each chunk from its own seeded stream.


_SPELLINGS = (0.80, 0.06, 0.05, 0.02, 0.01, 0.03, 0.02, 0.01)   # see _spell
_BANDS = tuple((colour, N_ADJ + 2 * c) for c, colour in enumerate(COLOURS))


def _chunk(config: DemoConfig, plan: _Plan, lo: int, hi: int) -> list[dict[str, Any]]:
    """Records lo..hi-1 (request numbers). The order of the draws from the chunk's stream is the
    corpus's identity."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0xC4, lo]))
    n = hi - lo
    ii = plan.order[lo:hi]
    var, exports = _exports(plan, ii, lo, rng)
    spelling = rng.choice(len(_SPELLINGS), size=n, p=_SPELLINGS).tolist()
    terse = (rng.random(n) < 0.3).tolist()     # the teacher sometimes leaves out zero sliders
    stamps = _timestamps(config, plan, lo, hi, rng)
    out = plan.outputs
    uses = out.uses[ii, var]
    latency, cost = _call_costs(plan, ii, uses, rng)
    sessions = plan.session[lo:hi].tolist()
    vals, uses_l = out.values[ii, var].tolist(), uses.tolist()
    filt, inten = out.filter[ii, var].tolist(), out.intensity[ii, var].tolist()
    texts = [plan.text[i] for i in ii.tolist()]
    return [{
        "request_id": f"demo-{lo + k:09d}",
        "intent": _spell(texts[k], spelling[k]) if spelling[k] else texts[k],
        "created_at": stamps[k],
        "teacher": _teacher_json(vals[k], uses_l[k], filt[k], inten[k], terse[k]),
        "exports": {"adjust": e[0], "selective_adjust": e[1], "filter": e[2]},
        "teacher_model": TEACHER_MODEL,
        "latency_ms": latency[k],
        "cost_usd": cost[k],
        "session_id": f"demo-s{sessions[k]:08d}",
    } for k, e in enumerate(exports)]


def _exports(plan: _Plan, ii: np.ndarray, lo: int,
             rng: np.random.Generator) -> tuple[np.ndarray, list[list[int]]]:
    """[n] which teacher output each request got, and its exports per tool: users export the
    outputs they keep more often."""
    out, n = plan.outputs, len(ii)
    var = (rng.random(n)[:, None] > out.cum_p[ii]).sum(axis=1).clip(0, N_VARIANTS - 1)
    keep = out.keep[ii, var]
    exported = rng.random(n) >= 0.07 + 0.12 * (1 - keep.mean(axis=1))
    events = exported * (1 + rng.poisson(0.35, n))
    counts = rng.binomial(events[:, None], keep)
    # An intent's first request is exported at least once, on the tool users keep most.
    never = plan.first[lo:lo + n] & (counts.sum(axis=1) == 0)
    counts[never, keep[never].argmax(axis=1)] = 1
    return var, counts.tolist()


def _timestamps(config: DemoConfig, plan: _Plan, lo: int, hi: int,
                rng: np.random.Generator) -> list[str]:
    """ISO 8601 times of requests lo..hi-1, in order, spread over the period by `plan.grid`."""
    q = (np.arange(lo, hi) + rng.random(hi - lo)) / config.requests
    hours = np.interp(q, plan.grid, np.arange(len(plan.grid), dtype=np.float64))
    millis = np.round((plan.start_s + hours * 3600) * 1000).astype(np.int64)
    stamps = np.datetime_as_string(millis.astype("datetime64[ms]"), unit="ms")
    return [t + "+00:00" for t in stamps.tolist()]


def _call_costs(plan: _Plan, ii: np.ndarray, uses: np.ndarray,
                rng: np.random.Generator) -> tuple[list[float], list[float]]:
    """Each call's latency (ms) and cost (USD), from its tokens in and out."""
    n = len(ii)
    tokens_out = 160 + 75 * uses.sum(axis=1) + rng.normal(0, 20, n)
    tokens_in = 720 + plan.text_len[ii] // 4
    latency = np.round((380 + 8 * tokens_out) * rng.lognormal(0, 0.22, n), 1).tolist()
    cost = np.round((0.5 * tokens_in + 1.5 * tokens_out) / 1e6, 8).tolist()
    return latency, cost


def _teacher_json(row: list[int], uses: list[bool], filter_index: int, intensity: int,
                  terse: bool) -> dict[str, Any]:
    """The teacher's tool calls as logged; a terse teacher leaves out zero sliders."""
    use_adjust, use_selective, use_filter = uses
    adjust = selective = filter_ = None
    if use_adjust:
        adjust = ({key: x for key, x in zip(ADJUST_KEYS, row) if x} if terse
                  else dict(zip(ADJUST_KEYS, row)))
    if use_selective:
        selective = {colour: {"saturation": row[j], "luminance": row[j + 1]}
                     for colour, j in _BANDS if not terse or row[j] or row[j + 1]}
    if use_filter:
        filter_ = {"name": FILTER_NAMES[filter_index], "intensity": intensity}
    return {"adjust": adjust, "selective_adjust": selective, "filter": filter_}


def _spell(text: str, kind: int) -> str:
    """Another raw spelling of the same intent (same intent_key)."""
    if kind == 1:
        return text.lower()
    if kind == 2:
        return text[:1].upper() + text[1:]
    if kind == 3:
        return text.title()
    if kind == 4:
        return text.upper()
    if kind == 5:
        return text.replace(" ", "  ", 1) if " " in text else text + " "
    if kind == 6:
        return text + " "
    if kind == 7:
        return " " + text
    return text
