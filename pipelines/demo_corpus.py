"""The SYNTHETIC demo log corpus (SPEC 9): invented teacher-call logs in the log contract (SPEC 3).

Nothing here comes from real users or a real teacher LLM. The generator invents user intents
from the vocabulary in `pipelines.demo_vocabulary` (looks, phrasings, modifiers, combinations,
typos), gives every intent a latent "correct" answer derived from its words, and simulates a
GPT-3.5-like teacher that answers each request with that answer plus noise (often repeating
itself, sometimes poorly), and users whose per-tool exports favour the better outputs. Request
and session ids start with "demo-" so that synthetic rows are recognisable wherever they go.

At the default config it has the paper's scale: exactly 9,252 distinct intents (by
`workbench.logs.intent_key`) and 27,756 requests, three per intent on average, popular intents
requested many times and a long tail requested once. `DemoConfig.at_scale` keeps the paper's
intent/request ratio at any size (1M+ requests for load tests). Everything is seeded: the same
config always yields the same records.
"""

from __future__ import annotations

import json
import math
import random
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipelines import demo_vocabulary as vocab
from workbench.logs import intent_key
from workbench.tools import ADJUST_KEYS, COLOURS, FILTER_CATALOGUE, FILTER_NAMES

PAPER_INTENTS = 9_252
PAPER_REQUESTS = 27_756
TEACHER_MODEL = "gpt-3.5-turbo-0125"
CHUNK = 10_000          # records generated (and reported to `progress`) per step

N_ADJ = len(ADJUST_KEYS)                # 14 adjust sliders
N_SEL = 2 * len(COLOURS)                # 12 selective numbers, colour by colour
DIM = N_ADJ + N_SEL                     # one answer's sliders as a vector
ADJUST, SELECTIVE, FILTER = 0, 1, 2     # tool columns in the boolean "uses" arrays

# Share of intents whose latent answer uses each tool, before teacher noise; tuned so that the
# curated ground truth lands near the paper's 92% / 32% / 66% (SPEC 9).
LATENT_SHARE = (0.925, 0.315, 0.655)
# Teacher output kinds per intent: modal, two near-misses, three poor ones.
MODAL, MINOR_1, MINOR_2, POOR_CONFUSED, POOR_FILTER, POOR_TOOLS = range(6)
N_VARIANTS = 6


@dataclass(frozen=True)
class DemoConfig:
    """What to generate. The defaults are the paper's scale."""

    seed: int = 7
    intents: int = PAPER_INTENTS      # unique intents (by workbench.logs.intent_key)
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


def write_jsonl(config: DemoConfig, path: Path,
                progress: Callable[[int], None] | None = None) -> int:
    """Write the corpus as JSONL; `progress(records written so far)` after every ~10k records."""
    plan = _plan(config)
    written = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for start in range(0, config.requests, CHUNK):
            records = _chunk(config, plan, start, min(start + CHUNK, config.requests))
            out.write("".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n"
                              for r in records))
            written += len(records)
            if progress is not None:
                progress(written)
    return written


# --------------------------------------------------------------------------------------------
# The compiled vocabulary: looks as vectors, the filter catalogue as vectors.


@dataclass(frozen=True, eq=False)
class _Vocab:
    looks: tuple[vocab.Look, ...]
    proto: np.ndarray            # [looks, DIM] prototype sliders (derived ones for unused tools)
    has_adjust: np.ndarray       # [looks] bool
    has_selective: np.ndarray    # [looks] bool
    is_colour: np.ndarray        # [looks] bool: colour schemes carry their bands into blends
    is_film: np.ndarray          # [looks] bool: film eras and genres, named for their filter
    selective_mass: np.ndarray   # [looks] sum of |selective_adjust| in the prototype
    filter_idx: np.ndarray       # [looks] index into FILTER_NAMES, -1 for none
    intensity: np.ndarray        # [looks] float
    look_cum: list[float]        # cumulative popularity, for weighted draws
    places: list[int]            # looks that are places, and their cumulative popularity
    place_cum: list[float]
    phrase_cum: tuple[list[float], ...]
    template_cum: list[float]
    scale_cum: list[float]
    shift_cum: list[float]
    filter_adjust: np.ndarray    # [filters, N_ADJ] what each catalogue look does, in sliders
    siblings: np.ndarray         # [filters, max siblings] same-family filters (padded by cycling)
    family: np.ndarray           # [filters] family id (the name's prefix: warm, cool, mono...)


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _selective_from_adjust() -> np.ndarray:
    """[N_ADJ, N_SEL]: how a teacher would echo adjust sliders in colour bands."""
    a = {key: i for i, key in enumerate(ADJUST_KEYS)}
    m = np.zeros((N_ADJ, N_SEL), dtype=np.float32)
    sat = {c: 2 * i for i, c in enumerate(COLOURS)}
    for colour, coef in (("red", .3), ("orange", .5), ("yellow", .4), ("green", -.2),
                         ("cyan", -.4), ("blue", -.5)):
        m[a["temperature"], sat[colour]] = coef
    for colour, coef in (("red", .3), ("green", -.4), ("blue", .2)):
        m[a["tint"], sat[colour]] = coef
    for colour in COLOURS:
        m[a["saturation"], sat[colour]] = .3
        m[a["vibrance"], sat[colour]] = .2
        m[a["exposure"], sat[colour] + 1] = .25
        m[a["brightness"], sat[colour] + 1] = .15
    m[a["highlights"], sat["yellow"] + 1] = .2
    m[a["highlights"], sat["orange"] + 1] = .1
    return m


def _adjust_vector(sliders: dict[str, int] | Any) -> np.ndarray:
    return np.array([sliders.get(k, 0) for k in ADJUST_KEYS], dtype=np.float32)


def _compile() -> _Vocab:
    looks = vocab.LOOKS
    names = list(FILTER_NAMES)
    filter_adjust = np.stack([_adjust_vector(FILTER_CATALOGUE[n].adjust) for n in names])
    for i, n in enumerate(names):
        if FILTER_CATALOGUE[n].mono:
            filter_adjust[i, ADJUST_KEYS.index("saturation")] = -100
    families = sorted({n.split("_")[0] for n in names})
    family = np.array([families.index(n.split("_")[0]) for n in names])
    sib_lists = [[j for j in range(len(names)) if family[j] == family[i] and j != i] or [i]
                 for i in range(len(names))]
    width = max(len(s) for s in sib_lists)
    siblings = np.array([[s[k % len(s)] for k in range(width)] for s in sib_lists])

    to_sel = _selective_from_adjust()
    proto = np.zeros((len(looks), DIM), dtype=np.float32)
    filter_idx = np.array([names.index(lk.filter) if lk.filter else -1 for lk in looks])
    for i, lk in enumerate(looks):
        if lk.adjust is not None:
            proto[i, :N_ADJ] = _adjust_vector(lk.adjust)
        else:  # a filter-only look still pulls a blend towards its filter's sliders
            proto[i, :N_ADJ] = 0.6 * filter_adjust[filter_idx[i]]
        if lk.selective is not None:
            for colour, (s, lum) in lk.selective.items():
                c = COLOURS.index(colour)
                proto[i, N_ADJ + 2 * c] = s
                proto[i, N_ADJ + 2 * c + 1] = lum
        else:
            proto[i, N_ADJ:] = 0.5 * proto[i, :N_ADJ] @ to_sel
    return _Vocab(
        looks=looks, proto=proto,
        has_adjust=np.array([lk.adjust is not None for lk in looks]),
        has_selective=np.array([lk.selective is not None for lk in looks]),
        is_colour=np.array([lk.category == "colour" for lk in looks]),
        is_film=np.array([lk.category in ("era", "genre") for lk in looks]),
        selective_mass=np.array([sum(abs(x) for pair in (lk.selective or {}).values()
                                     for x in pair) for lk in looks], dtype=np.float64),
        filter_idx=filter_idx,
        intensity=np.array([lk.intensity for lk in looks], dtype=np.float32),
        look_cum=_cumulative([lk.weight for lk in looks]),
        places=[i for i, lk in enumerate(looks) if lk.category == "place"],
        place_cum=_cumulative([lk.weight for lk in looks if lk.category == "place"]),
        phrase_cum=tuple(_cumulative([1.0 / (k + 1) for k in range(len(lk.phrases))])
                         for lk in looks),
        template_cum=_cumulative([w for _, w, _ in vocab.TEMPLATES]),
        scale_cum=_cumulative([w for _, w, _, _ in vocab.SCALE_MODIFIERS]),
        shift_cum=_cumulative([s.weight for s in vocab.SHIFTS]),
        filter_adjust=filter_adjust, siblings=siblings, family=family,
    )


# --------------------------------------------------------------------------------------------
# Intents: draw unique phrasings with their structure.


@dataclass
class _Intents:
    """Column-wise description of the unique intents (one row per intent)."""

    text: list[str]
    look: np.ndarray         # [I, 3] look indices (a, b, c), -1 where absent
    scale: np.ndarray        # [I]
    shift: np.ndarray        # [I, 2] indices into SHIFTS, -1 where absent
    template_tools: np.ndarray   # [I] 0 from the look, 1 filter forced, 2 filter only
    typo: np.ndarray         # [I] bool
    logp: np.ndarray         # [I] log-probability of the draw: how common such a phrasing is


def _pick(r: random.Random, cum: list[float]) -> int:
    return bisect_right(cum, r.random() * cum[-1])


def _typo(r: random.Random, text: str) -> str:
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not spots:
        return text
    i = r.choice(spots)
    w = words[i]
    k = r.randrange(len(w) - 1)
    kind = r.randrange(4)
    if kind == 0:
        w = w[:k] + w[k + 1] + w[k] + w[k + 2:]          # swap two letters
    elif kind == 1:
        w = w[:k] + w[k + 1:]                            # drop a letter
    elif kind == 2:
        w = w[:k] + w[k] + w[k:]                         # double a letter
    else:
        near = vocab.KEYBOARD_NEIGHBOURS.get(w[k].lower())
        if not near:
            return text
        w = w[:k] + r.choice(near) + w[k + 1:]           # hit the neighbouring key
    words[i] = w
    return " ".join(words)


def _case(r: random.Random, text: str) -> str:
    u = r.random()
    if u < 0.55:
        return text.lower()
    if u < 0.80:
        return text
    if u < 0.95:
        return text[:1].upper() + text[1:]
    return text.title()


def _draw(r: random.Random, v: _Vocab) -> tuple[str, tuple[int, int, int], float,
                                                 tuple[int, int], int, bool, float]:
    """One random intent: (text, looks, scale, shifts, template tools, typo, log-probability)."""
    looks = v.looks
    total = v.look_cum[-1]
    logp = 0.0
    u = r.random()
    a = _pick(r, v.look_cum)
    logp += math.log(looks[a].weight / total)
    b = c = -1
    if u < 0.50:
        logp += math.log(0.50)
        p = _pick(r, v.phrase_cum[a])
        logp += math.log((1.0 / (p + 1)) / v.phrase_cum[a][-1])
        core = looks[a].phrases[p]
    else:
        b = _pick(r, v.look_cum)
        for _ in range(3):  # two places ("Paris in Tokyo") or the same look: try another
            if b != a and not (looks[a].category == looks[b].category == "place"):
                break
            b = _pick(r, v.look_cum)
        if b == a:
            b = (a + 1) % len(looks)
        logp += math.log(looks[b].weight / total)
        if u < 0.94:
            logp += math.log(0.44)
            core, lp = _pair(r, v, a, b)
            logp += lp
        else:
            logp += math.log(0.06)
            c = v.places[_pick(r, v.place_cum)]
            if c in (a, b):
                c = v.places[(v.places.index(c) + 1) % len(v.places)]
            logp += math.log(looks[c].weight / v.place_cum[-1])
            if looks[a].adjectives:
                core = f"{r.choice(looks[a].adjectives)} {looks[b].name} in {looks[c].name}"
            else:
                core = f"{looks[a].name}, {looks[b].name} in {looks[c].name}"

    t = _pick(r, v.template_cum)
    form, tw, tools_kind = vocab.TEMPLATES[t]
    logp += math.log(tw / v.template_cum[-1])
    template_tools = {"": 0, "filter": 1, "filter_only": 2}[tools_kind]

    scale = 1.0
    before: list[str] = []
    after: list[str] = []
    if r.random() < 0.16:
        s = _pick(r, v.scale_cum)
        factor, sw, words_before, words_after = vocab.SCALE_MODIFIERS[s]
        scale = factor
        logp += math.log(0.16 * sw / v.scale_cum[-1])
        if r.random() < 0.55:
            before.append(r.choice(words_before))
        else:
            after.append(r.choice(words_after))
    else:
        logp += math.log(0.84)

    shifts = [-1, -1]
    n_shifts = 0
    if template_tools != 2:
        u = r.random()
        n_shifts = 2 if u < 0.05 else 1 if u < 0.27 else 0
    for k in range(n_shifts):
        sh = _pick(r, v.shift_cum)
        shift = vocab.SHIFTS[sh]
        if sh in shifts or (shift.drops_filter and template_tools):
            continue
        shifts[k] = sh
        logp += math.log(0.25 * shift.weight / v.shift_cum[-1])
        if shift.before and not before and r.random() < 0.35:
            before.append(r.choice(shift.before))
        else:
            after.append(r.choice(shift.after))

    text = form.format(x=" ".join([*before, core]))
    if after:
        text += r.choice(vocab.SUFFIX_JOINERS) + " and ".join(after)
    typo = r.random() < 0.05
    if typo:
        text = _typo(r, text)
        logp += math.log(0.05)
    return (_case(r, text), (a, b, c), scale, (shifts[0], shifts[1]), template_tools, typo,
            logp)


def _pair(r: random.Random, v: _Vocab, a: int, b: int) -> tuple[str, float]:
    """Two looks in one phrase; returns the phrase and the log-probability of its pattern."""
    la, lb = v.looks[a], v.looks[b]
    fits = []
    for pattern, weight, rule in vocab.COMBINATIONS:
        ok = (rule == "any"
              or (rule == "place" and lb.category == "place" and la.category != "place")
              or (rule == "adjective" and bool(la.adjectives))
              or (rule == "time" and la.category == "time" and lb.category != "time"
                  and " at " not in lb.name))
        if ok:
            fits.append((pattern, weight, rule))
    cum = _cumulative([w for _, w, _ in fits])
    pattern, weight, rule = fits[_pick(r, cum)]
    first = r.choice(la.adjectives) if rule == "adjective" else la.phrases[
        _pick(r, v.phrase_cum[a])]
    second = lb.phrases[_pick(r, v.phrase_cum[b])] if r.random() < 0.7 else lb.name
    return pattern.format(a=first, b=second), math.log(weight / cum[-1])


def _draw_intents(config: DemoConfig, v: _Vocab) -> _Intents:
    r = random.Random(config.seed * 1_000_003 + 11)
    seen: set[str] = set()
    text: list[str] = []
    looks: list[tuple[int, int, int]] = []
    scale: list[float] = []
    shifts: list[tuple[int, int]] = []
    template_tools: list[int] = []
    typo: list[bool] = []
    logp: list[float] = []
    attempts = 0
    while len(text) < config.intents:
        attempts += 1
        if attempts > 50 * config.intents + 10_000:
            raise ValueError(f"could not invent {config.intents} distinct intents")
        d = _draw(r, v)
        key = intent_key(d[0])
        if not key or len(d[0].strip()) > 500 or key in seen:
            continue
        seen.add(key)
        text.append(d[0])
        looks.append(d[1])
        scale.append(d[2])
        shifts.append(d[3])
        template_tools.append(d[4])
        typo.append(d[5])
        logp.append(d[6])
    return _Intents(text=text, look=np.array(looks, dtype=np.int64),
                    scale=np.array(scale, dtype=np.float32),
                    shift=np.array(shifts, dtype=np.int64),
                    template_tools=np.array(template_tools, dtype=np.int8),
                    typo=np.array(typo, dtype=bool), logp=np.array(logp))


# --------------------------------------------------------------------------------------------
# Latent answers: what the teacher "means" for each intent, derived from its words.


@dataclass
class _Latent:
    values: np.ndarray      # [I, DIM] float
    uses: np.ndarray        # [I, 3] bool
    filter: np.ndarray      # [I] filter index, -1 for none
    intensity: np.ndarray   # [I] float


def _nearest_filter(v: _Vocab, adjust: np.ndarray) -> np.ndarray:
    """The catalogue filter whose sliders point the most the same way as `adjust` [n, N_ADJ]."""
    fa = v.filter_adjust / np.linalg.norm(v.filter_adjust, axis=1, keepdims=True).clip(1e-6)
    norm = np.linalg.norm(adjust, axis=1, keepdims=True).clip(1e-6)
    return np.argmax((adjust / norm) @ fa.T, axis=1)


_WHIMS = np.array([ADJUST_KEYS.index(k) for k in (
    "contrast", "highlights", "shadows", "vibrance", "bloom", "sharpen", "structure")])


def _latent(it: _Intents, v: _Vocab, rng: np.random.Generator) -> _Latent:
    n = len(it.text)
    a, b, c = it.look[:, 0], it.look[:, 1], it.look[:, 2]
    has_b, has_c = b >= 0, c >= 0
    bi, ci = np.where(has_b, b, 0), np.where(has_c, c, 0)
    wa = np.where(has_c, 0.5, np.where(has_b, 0.6, 1.0)).astype(np.float32)
    wb = np.where(has_c, 0.45, 0.5).astype(np.float32) * has_b
    wc = np.float32(0.4) * has_c
    values = (wa[:, None] * v.proto[a] + wb[:, None] * v.proto[bi]
              + wc[:, None] * v.proto[ci])
    scale = it.scale * (1 + rng.normal(0, 0.06, n)).astype(np.float32)
    values *= scale[:, None]
    shift_table = np.zeros((len(vocab.SHIFTS) + 1, DIM), dtype=np.float32)  # last row: none
    for i, sh in enumerate(vocab.SHIFTS):
        shift_table[i, :N_ADJ] = _adjust_vector(sh.adjust)
    values += shift_table[it.shift[:, 0]] + shift_table[it.shift[:, 1]]
    # The teacher's own reading of this exact phrasing, fixed per intent: small jitter, and now
    # and then a slider it likes to touch (structure, sharpen...) that the words do not explain.
    values += rng.normal(0, 3.5, values.shape).astype(np.float32) * (values != 0)
    whim = rng.random(n) < 0.3
    values[np.flatnonzero(whim), rng.choice(_WHIMS, whim.sum())] += rng.choice(
        [-10, -5, 5, 10], whim.sum())
    values = values.clip(-100, 100)

    shifted_adjust = np.zeros(n, dtype=bool)
    drops_filter = np.zeros(n, dtype=bool)
    for k in (0, 1):
        for i, sh in enumerate(vocab.SHIFTS):
            hit = it.shift[:, k] == i
            shifted_adjust |= hit & bool(sh.adjust)
            drops_filter |= hit & sh.drops_filter
    uses = np.zeros((n, 3), dtype=bool)
    uses[:, ADJUST] = (v.has_adjust[a] | (has_b & v.has_adjust[bi]) | (has_c & v.has_adjust[ci])
                       | shifted_adjust)
    uses[:, SELECTIVE] = (v.has_selective[a] | (has_b & v.has_selective[bi] & v.is_colour[bi])
                          | (has_c & v.has_selective[ci] & v.is_colour[ci]))
    # The filter follows the first look, or a second look that is nothing but a filter
    # ("sunset polaroid").
    b_is_filter = has_b & ~v.has_adjust[bi]
    filt = np.where(v.filter_idx[a] >= 0, v.filter_idx[a],
                    np.where(b_is_filter, v.filter_idx[bi], -1))
    from_look = np.where(v.filter_idx[a] >= 0, a, bi)
    intensity = (np.where(filt >= 0, v.intensity[from_look] * np.where(has_b, 0.9, 1.0), 45.0)
                 * scale + rng.normal(0, 4, n))
    forced = it.template_tools > 0
    nearest = _nearest_filter(v, values[:, :N_ADJ])
    filt = np.where(forced & (filt < 0), nearest, filt)
    filt = np.where(drops_filter, -1, filt)
    uses[:, FILTER] = filt >= 0
    only = it.template_tools == 2
    uses[only, ADJUST] = False
    uses[only, SELECTIVE] = False

    # The teacher's tool choices are only partly determined by the words: move the shares of
    # tool use to the targets by flipping tools on intents whose wording does not force them.
    protected = np.zeros((n, 3), dtype=bool)
    protected[:, ADJUST] = shifted_adjust | only
    protected[:, SELECTIVE] = only
    protected[:, FILTER] = forced | drops_filter
    # Salience: how strongly the words call for a tool. The teacher drops a tool first where
    # it matters least (weak colour bands, a faint filter) and skips adjust when a strong filter
    # already does the job, so its choices stay learnable from the text.
    mass = np.maximum(v.selective_mass[a], np.maximum(
        np.where(has_b & v.is_colour[bi], v.selective_mass[bi], 0),
        np.where(has_c & v.is_colour[ci], v.selective_mass[ci], 0)))
    strength = np.where(uses[:, FILTER], intensity.clip(10, 100), 50.0)
    salience = np.ones((n, 3))
    salience[:, SELECTIVE] = ((mass + 10) / 120) ** 5
    salience[:, FILTER] = (strength / 50 * np.where(v.is_film[a], 1.2, 1.0)) ** 5
    salience[:, ADJUST] = (50 / strength) ** 5 * np.where(uses[:, SELECTIVE], 100.0, 1.0)
    for tool in (ADJUST, SELECTIVE, FILTER):
        _flip_to_share(uses, tool, LATENT_SHARE[tool], protected[:, tool], salience[:, tool],
                       rng)
    filt = np.where(uses[:, FILTER], np.where(filt >= 0, filt, nearest), -1)
    intensity = np.where(uses[:, FILTER], intensity.clip(10, 100), 0)

    # Tools switched on without a look behind them get values a teacher would derive.
    no_adjust_look = uses[:, ADJUST] & (np.abs(values[:, :N_ADJ]).max(axis=1) < 5)
    fa = v.filter_adjust[np.where(filt >= 0, filt, 0)] * (intensity / 60)[:, None]
    values[:, :N_ADJ] = np.where(no_adjust_look[:, None], fa, values[:, :N_ADJ])
    sel_from_look = (v.has_selective[a] | (has_b & v.has_selective[bi])
                     | (has_c & v.has_selective[ci]))
    derived_sel = values[:, :N_ADJ] @ _selective_from_adjust()
    values[:, N_ADJ:] = np.where((uses[:, SELECTIVE] & ~sel_from_look)[:, None], derived_sel,
                                 values[:, N_ADJ:])
    return _Latent(values=values.clip(-100, 100).astype(np.float32), uses=uses,
                   filter=filt.astype(np.int64), intensity=intensity.astype(np.float32))


def _flip_to_share(uses: np.ndarray, tool: int, share: float, protected: np.ndarray,
                   salience: np.ndarray, rng: np.random.Generator) -> None:
    """Switch `tool` off (or on) for unprotected intents until `share` of intents use it."""
    n = len(uses)
    excess = int(uses[:, tool].sum()) - round(share * n)
    others = uses.sum(axis=1) - uses[:, tool]
    if excess > 0:   # drop it where another tool remains; low salience is dropped first
        pool = np.flatnonzero(uses[:, tool] & ~protected & (others > 0))
        weight = 1.0 / salience[pool]
    elif excess < 0:
        pool = np.flatnonzero(~uses[:, tool] & ~protected)
        weight = salience[pool]
    else:
        return
    k = min(abs(excess), len(pool))
    if k:
        chosen = rng.choice(pool, size=k, replace=False, p=weight / weight.sum())
        uses[chosen, tool] = excess < 0


# --------------------------------------------------------------------------------------------
# The teacher: a handful of outputs per intent, and how likely each is and how well it exports.


@dataclass
class _Outputs:
    values: np.ndarray      # [I, V, DIM] int8
    uses: np.ndarray        # [I, V, 3] bool
    filter: np.ndarray      # [I, V] int8 filter index (-1 unused)
    intensity: np.ndarray   # [I, V] int8
    keep: np.ndarray        # [I, V, 3] float32: chance an export keeps this tool's output
    cum_p: np.ndarray       # [I, V] float32 cumulative probability of each output


def _round5(x: np.ndarray) -> np.ndarray:
    return (np.round(x / 5) * 5).clip(-100, 100)


def _cosine(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    nx, ny = np.linalg.norm(x, axis=-1), np.linalg.norm(y, axis=-1)
    dot = (x * y).sum(axis=-1)
    return np.where((nx > 0) & (ny > 0), dot / np.maximum(nx * ny, 1e-9),
                    np.where((nx == 0) & (ny == 0), 1.0, 0.0))


def _teacher(it: _Intents, lat: _Latent, v: _Vocab, rng: np.random.Generator) -> _Outputs:
    """The teacher's outputs for every intent, in blocks of intents to bound memory."""
    parts = [_teacher_block(it, lat, v, rng, lo, min(lo + _BLOCK, len(it.text)))
             for lo in range(0, len(it.text), _BLOCK)]
    return _Outputs(*(np.concatenate([getattr(p, f) for p in parts])
                      for f in ("values", "uses", "filter", "intensity", "keep", "cum_p")))


_BLOCK = 32_768


def _teacher_block(it: _Intents, whole: _Latent, v: _Vocab, rng: np.random.Generator,
                   lo: int, hi: int) -> _Outputs:
    n = hi - lo
    lat = _Latent(whole.values[lo:hi], whole.uses[lo:hi], whole.filter[lo:hi],
                  whole.intensity[lo:hi])
    look, scale, shift, typo = it.look[lo:hi], it.scale[lo:hi], it.shift[lo:hi], it.typo[lo:hi]
    lv, lu = lat.values, lat.uses
    nz = (lv != 0).astype(np.float32)
    vals = np.zeros((n, N_VARIANTS, DIM), dtype=np.float32)
    uses = np.repeat(lu[:, None, :], N_VARIANTS, axis=1)
    filt = np.repeat(lat.filter[:, None], N_VARIANTS, axis=1)
    inten = np.zeros((n, N_VARIANTS), dtype=np.float32)
    rows = np.arange(n)

    vals[:, MODAL] = _round5(lv)
    inten[:, MODAL] = lat.intensity

    extra = np.zeros((n, DIM), dtype=np.float32)
    who = rng.random(n) < 0.4
    extra[rows[who], rng.integers(0, N_ADJ, who.sum())] = rng.choice([-10, -5, 5, 10], who.sum())
    vals[:, MINOR_1] = _round5(lv + rng.normal(0, 6, (n, DIM)) * nz + extra)
    inten[:, MINOR_1] = lat.intensity + rng.normal(0, 8, n)

    raw = lv * rng.uniform(0.8, 1.2, (n, 1)) + rng.normal(0, 4, (n, DIM)) * nz
    vals[:, MINOR_2] = np.where((rng.random(n) < 0.3)[:, None], np.round(raw).clip(-100, 100),
                                _round5(raw))
    inten[:, MINOR_2] = lat.intensity * rng.uniform(0.8, 1.2, n)
    related = rng.random(n) < 0.3
    sib = v.siblings[np.where(filt[:, 0] >= 0, filt[:, 0], 0),
                     rng.integers(0, v.siblings.shape[1], n)]
    filt[:, MINOR_2] = np.where(related & (filt[:, 0] >= 0), sib, filt[:, 0])

    other = rng.integers(0, len(v.looks), n)          # confused with another look entirely
    mask = (rng.random((n, DIM)) < 0.3).astype(np.float32)
    vals[:, POOR_CONFUSED] = _round5(0.35 * lv + 0.8 * v.proto[other]
                                     + rng.normal(0, 6, (n, DIM)) * mask)
    take = (rng.random(n) < 0.5) & (v.filter_idx[other] >= 0) & (filt[:, 0] >= 0)
    filt[:, POOR_CONFUSED] = np.where(take, v.filter_idx[other], filt[:, 0])
    inten[:, POOR_CONFUSED] = lat.intensity

    big = np.zeros((n, DIM), dtype=np.float32)
    for _ in range(3):
        big[rows, rng.integers(0, DIM, n)] += rng.normal(0, 25, n)
    vals[:, POOR_FILTER] = _round5(lv + big)
    wrong = rng.integers(0, len(FILTER_NAMES), n)
    for _ in range(8):
        same = (v.family[wrong] == v.family[np.where(filt[:, 0] >= 0, filt[:, 0], 0)]) & (
            filt[:, 0] >= 0)
        wrong = np.where(same, rng.integers(0, len(FILTER_NAMES), n), wrong)
    filt[:, POOR_FILTER] = wrong
    uses[:, POOR_FILTER, FILTER] = True
    inten[:, POOR_FILTER] = rng.integers(6, 19, n) * 5

    # Wrong tool choice: drop a used tool (when two or more are used) or add an unused one.
    vals[:, POOR_TOOLS] = vals[:, MODAL]
    inten[:, POOR_TOOLS] = lat.intensity
    n_used = lu.sum(axis=1)
    drop = (n_used == 3) | ((n_used == 2) & (rng.random(n) < 0.6))
    pref = np.where(lu, np.array([0.25, 1.0, 1.0]), 0.0) * rng.random((n, 3))
    to_drop = np.argmax(pref, axis=1)
    to_add = np.argmax(np.where(~lu, rng.random((n, 3)) + 0.01, 0.0), axis=1)
    uses[rows[drop], POOR_TOOLS, to_drop[drop]] = False
    add = ~drop
    uses[rows[add], POOR_TOOLS, to_add[add]] = True
    nearest = _nearest_filter(v, lv[:, :N_ADJ])
    adds_filter = add & (to_add == FILTER)
    filt[:, POOR_TOOLS] = np.where(adds_filter, nearest, filt[:, POOR_TOOLS])
    inten[:, POOR_TOOLS] = np.where(adds_filter, 50, inten[:, POOR_TOOLS])
    fa = v.filter_adjust[np.where(lat.filter >= 0, lat.filter, 0)] * (lat.intensity / 60)[:, None]
    adds_adjust = add & (to_add == ADJUST)
    vals[adds_adjust, POOR_TOOLS, :N_ADJ] = _round5(fa[adds_adjust]
                                                    + rng.normal(0, 5, (adds_adjust.sum(), N_ADJ)))
    adds_sel = add & (to_add == SELECTIVE)
    vals[adds_sel, POOR_TOOLS, N_ADJ:] = _round5(
        vals[adds_sel, MODAL, :N_ADJ] @ _selective_from_adjust()
        + rng.normal(0, 8, (adds_sel.sum(), N_SEL)))

    filt = np.where(uses[:, :, FILTER], np.where(filt >= 0, filt, nearest[:, None]), -1)
    inten = np.where(uses[:, :, FILTER], _round5(inten).clip(5, 100), 0)
    _no_empty_tools(vals, uses, lv)

    keep = np.empty((n, N_VARIANTS, 3), dtype=np.float32)
    for tool, part in ((ADJUST, slice(0, N_ADJ)), (SELECTIVE, slice(N_ADJ, DIM))):
        cos = _cosine(vals[:, :, part], lv[:, None, part]).clip(0, 1)
        keep[:, :, tool] = _keep(lu[:, None, tool], uses[:, :, tool], 0.08 + 0.87 * cos ** 6)
    close = 1 - np.abs(inten - lat.intensity[:, None]) / 100
    same_family = v.family[np.maximum(filt, 0)] == v.family[np.maximum(lat.filter, 0)][:, None]
    match = np.where(filt == lat.filter[:, None], 0.08 + 0.87 * close ** 4,
                     np.where(same_family, 0.35, 0.12))
    keep[:, :, FILTER] = _keep(lu[:, None, FILTER], uses[:, :, FILTER], match)

    # How often each output comes back: phrasings with more parts confuse the teacher more.
    complexity = ((look[:, 1] >= 0).astype(np.float32) + (look[:, 2] >= 0)
                  + (scale != 1) + (shift >= 0).sum(axis=1) + typo)
    p_poor = (0.17 + 0.03 * complexity + rng.normal(0, 0.03, n)).clip(0.08, 0.35)
    p_modal = np.minimum((0.6 - 0.05 * complexity + rng.normal(0, 0.07, n)).clip(0.3, 0.85),
                         0.95 - p_poor)
    rest = 1 - p_modal - p_poor
    probs = np.stack([p_modal, 0.6 * rest, 0.4 * rest,
                      0.4 * p_poor, 0.35 * p_poor, 0.25 * p_poor], axis=1)
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0
    return _Outputs(values=vals.astype(np.int8), uses=uses, filter=filt.astype(np.int8),
                    intensity=inten.astype(np.int8), keep=keep, cum_p=cum.astype(np.float32))


def _keep(latent_uses: np.ndarray, output_uses: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Chance that one export keeps a tool's output as given."""
    return np.where(latent_uses & output_uses, quality,
                    np.where(latent_uses | output_uses, 0.3, 0.92))


def _no_empty_tools(vals: np.ndarray, uses: np.ndarray, latent: np.ndarray) -> None:
    """A used adjust or selective_adjust needs a non-zero slider: keep the latent's strongest."""
    for tool, part in ((ADJUST, slice(0, N_ADJ)), (SELECTIVE, slice(N_ADJ, DIM))):
        block = vals[:, :, part]
        empty = uses[:, :, tool] & ~(block != 0).any(axis=2)
        if not empty.any():
            continue
        i, k = np.nonzero(empty)
        lat = latent[i, part]
        j = np.argmax(np.abs(lat), axis=1)
        sign = np.where(lat[np.arange(len(i)), j] < 0, -5, 5)
        block[i, k, j] = sign
        vals[:, :, part] = block


# --------------------------------------------------------------------------------------------
# Popularity, time and the request stream.


def _request_counts(n_intents: int, n_requests: int, rng: np.random.Generator) -> np.ndarray:
    """Requests per intent: each >= 1, summing exactly to n_requests, with a Zipf-like tail."""
    u = rng.random(n_intents)
    counts = np.select([u < 0.44, u < 0.66, u < 0.75, u < 0.80], [1, 2, 3, 4], 0)
    tail = counts == 0
    counts[tail] = np.floor(5 * rng.random(tail.sum()) ** (-1 / 2.33)).astype(np.int64)
    counts = np.minimum(counts, max(5, n_requests // 20)).astype(np.int64)
    target = n_requests - n_intents
    excess = counts - 1
    if 0 < excess.sum() != target:   # rescale the tail, then fix the remainder one by one
        scaled = excess * (target / excess.sum())
        excess = np.floor(scaled + rng.random(n_intents)).astype(np.int64)
    diff = target - int(excess.sum())
    while diff != 0:
        if diff > 0:
            pick = rng.choice(n_intents, size=diff, p=(excess + 1) / (excess + 1).sum())
            np.add.at(excess, pick, 1)
        else:
            pool = np.flatnonzero(excess > 0)
            pick = rng.choice(pool, size=min(-diff, len(pool)), replace=False)
            excess[pick] -= 1
        diff = target - int(excess.sum())
    return excess + 1


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


@dataclass
class _Plan:
    text: list[str]
    outputs: _Outputs
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
    v = _compile()
    it = _draw_intents(config, v)
    lat = _latent(it, v, rng_latent)
    outputs = _teacher(it, lat, v, rng_teacher)
    counts = _request_counts(config.intents, config.requests, rng_counts)
    # Common phrasings get the most requests (with some luck): rank by draw probability.
    rank = np.argsort(-(it.logp + rng_counts.normal(0, 0.35, config.intents)), kind="stable")
    per_intent = np.empty(config.intents, dtype=np.int64)
    per_intent[rank] = np.sort(counts)[::-1]
    order = rng_order.permutation(np.repeat(np.arange(config.intents, dtype=np.int32),
                                            per_intent))
    first = np.zeros(config.requests, dtype=bool)
    first[np.unique(order, return_index=True)[1]] = True
    return _Plan(text=it.text, outputs=outputs, order=order, first=first,
                 text_len=np.array([len(t) for t in it.text]), grid=_time_grid(config),
                 session=np.cumsum(rng_order.random(config.requests) < 0.45).clip(1) - 1,
                 start_s=_start_time(config.start).timestamp())


_SPELLINGS = (0.80, 0.06, 0.05, 0.02, 0.01, 0.03, 0.02, 0.01)   # see _spell


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


def _chunk(config: DemoConfig, plan: _Plan, lo: int, hi: int) -> list[dict[str, Any]]:
    """Records lo..hi-1 (request numbers), generated from their own seeded stream."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0xC4, lo]))
    out = plan.outputs
    n = hi - lo
    ii = plan.order[lo:hi]
    var = (rng.random(n)[:, None] > out.cum_p[ii]).sum(axis=1).clip(0, N_VARIANTS - 1)
    keep = out.keep[ii, var]
    exported = rng.random(n) >= 0.07 + 0.12 * (1 - keep.mean(axis=1))
    events = exported * (1 + rng.poisson(0.35, n))
    counts = rng.binomial(events[:, None], keep)
    # An intent's first request is exported at least once, on the tool users keep most.
    never = plan.first[lo:hi] & (counts.sum(axis=1) == 0)
    counts[never, keep[never].argmax(axis=1)] = 1
    exports = counts.tolist()
    spelling = rng.choice(len(_SPELLINGS), size=n, p=_SPELLINGS).tolist()
    terse = (rng.random(n) < 0.3).tolist()     # the teacher sometimes leaves out zero sliders

    q = (np.arange(lo, hi) + rng.random(n)) / config.requests
    hours = np.interp(q, plan.grid, np.arange(len(plan.grid), dtype=np.float64))
    millis = np.round((plan.start_s + hours * 3600) * 1000).astype(np.int64)
    stamps = np.datetime_as_string(millis.astype("datetime64[ms]"), unit="ms")
    sessions = plan.session[lo:hi].tolist()

    uses = out.uses[ii, var]
    n_used = uses.sum(axis=1)
    tokens_out = 160 + 75 * n_used + rng.normal(0, 20, n)
    tokens_in = 720 + plan.text_len[ii] // 4
    latency = np.round((380 + 8 * tokens_out) * rng.lognormal(0, 0.22, n), 1).tolist()
    cost = np.round((0.5 * tokens_in + 1.5 * tokens_out) / 1e6, 8).tolist()

    vals = out.values[ii, var].tolist()
    uses_l = uses.tolist()
    filt = out.filter[ii, var].tolist()
    inten = out.intensity[ii, var].tolist()
    texts = [plan.text[i] for i in ii.tolist()]
    stamps_l = [t + "+00:00" for t in stamps.tolist()]
    names = FILTER_NAMES
    bands = tuple((colour, N_ADJ + 2 * c) for c, colour in enumerate(COLOURS))
    records = []
    for k in range(n):
        row = vals[k]
        use_adjust, use_selective, use_filter = uses_l[k]
        short = terse[k]
        adjust = selective = filter_ = None
        if use_adjust:
            adjust = ({key: x for key, x in zip(ADJUST_KEYS, row) if x} if short
                      else dict(zip(ADJUST_KEYS, row)))
        if use_selective:
            selective = {colour: {"saturation": row[j], "luminance": row[j + 1]}
                         for colour, j in bands if not short or row[j] or row[j + 1]}
        if use_filter:
            filter_ = {"name": names[filt[k]], "intensity": inten[k]}
        e = exports[k]
        records.append({
            "request_id": f"demo-{lo + k:09d}",
            "intent": _spell(texts[k], spelling[k]) if spelling[k] else texts[k],
            "created_at": stamps_l[k],
            "teacher": {"adjust": adjust, "selective_adjust": selective, "filter": filter_},
            "exports": {"adjust": e[0], "selective_adjust": e[1], "filter": e[2]},
            "teacher_model": TEACHER_MODEL,
            "latency_ms": latency[k],
            "cost_usd": cost[k],
            "session_id": f"demo-s{sessions[k]:08d}",
        })
    return records
