"""SYNTHETIC demo intents: unique phrasings drawn from the vocabulary (looks, combinations,
templates, modifiers, shifts, casing, typos) with their structure, and how popular each is."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

from workbench.log_records import intent_key
from workbench.synthetic import vocabulary as vocab
from workbench.synthetic.looks import Vocab, cumulative, pick

TEMPLATE_TOOLS = {"": 0, "filter": 1, "filter_only": 2}   # from the look, filter forced, only
# Share of intents that are instructions alone ("increase the contrast", "darken it a bit and
# make it warmer"). With the looks that carry a shift ("golden hour, but warmer", about one in
# five), about half of all intents say which way some slider should go: people type such
# requests at least as often as look names.
INSTRUCTION_SHARE = 0.35
MAX_EDITS = 3
NO_EDITS = (-1, -1, -1)


@dataclass
class Intents:
    """Column-wise description of the unique intents (one row per intent)."""

    text: list[str]
    look: np.ndarray         # [I, 3] look indices (a, b, c), -1 where absent
    scale: np.ndarray        # [I]
    shift: np.ndarray        # [I, 2] indices into SHIFTS, -1 where absent
    template_tools: np.ndarray   # [I] 0 from the look, 1 filter forced, 2 filter only
    typo: np.ndarray         # [I] bool
    logp: np.ndarray         # [I] log-probability of the draw: how common such a phrasing is
    edits: np.ndarray        # [I, 3] an instruction's edits (indices into EDITS), -1 where absent
    edit_scale: np.ndarray   # [I, 3] each edit's strength (1 usual, 0.5 "a bit", a number's)

    @property
    def is_instruction(self) -> np.ndarray:
        """[I] bool: the intent is made of edits alone, no look."""
        return self.look[:, 0] < 0


def draw_intents(count: int, seed: int, v: Vocab) -> Intents:
    """`count` intents with distinct `intent_key`s, drawn in a fixed order from `seed`."""
    r = random.Random(seed * 1_000_003 + 11)
    seen: set[str] = set()
    draws: list[_Draw] = []
    attempts = 0
    while len(draws) < count:
        attempts += 1
        if attempts > 50 * count + 10_000:
            raise ValueError(f"could not invent {count} distinct intents")
        d = _draw(r, v)
        key = intent_key(d.text)
        if not key or len(d.text.strip()) > 500 or key in seen:
            continue
        seen.add(key)
        draws.append(d)
    return Intents(text=[d.text for d in draws],
                   look=np.array([d.looks for d in draws], dtype=np.int64),
                   scale=np.array([d.scale for d in draws], dtype=np.float32),
                   shift=np.array([d.shifts for d in draws], dtype=np.int64),
                   template_tools=np.array([d.template_tools for d in draws], dtype=np.int8),
                   typo=np.array([d.typo for d in draws], dtype=bool),
                   logp=np.array([d.logp for d in draws]),
                   edits=np.array([d.edits for d in draws], dtype=np.int64).reshape(-1, MAX_EDITS),
                   edit_scale=np.array([d.edit_scale for d in draws],
                                       dtype=np.float32).reshape(-1, MAX_EDITS))


def requests_per_intent(it: Intents, n_requests: int, rng: np.random.Generator) -> np.ndarray:
    """[I] requests of each intent, summing to `n_requests`: common phrasings get the most
    requests (with some luck), ranked by how probable their draw was."""
    n_intents = len(it.text)
    counts = _request_counts(n_intents, n_requests, rng)
    rank = np.argsort(-(it.logp + rng.normal(0, 0.35, n_intents)), kind="stable")
    per_intent = np.empty(n_intents, dtype=np.int64)
    per_intent[rank] = np.sort(counts)[::-1]
    return per_intent


# --------------------------------------------------------------------------------------------
# One draw: the parts of a phrasing, each with its share of the draw's log-probability.


@dataclass
class _Odds:
    """The running log-probability of one draw, multiplied by each choice's probability."""

    logp: float = 0.0

    def times(self, p: float) -> None:
        self.logp += math.log(p)


@dataclass(frozen=True)
class _Draw:
    text: str
    looks: tuple[int, int, int]
    scale: float
    shifts: tuple[int, int]
    template_tools: int
    typo: bool
    logp: float
    edits: tuple[int, int, int] = NO_EDITS
    edit_scale: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass
class _Words:
    """Modifier words around the core phrase: before it ("very golden hour") and after the
    intent ("golden hour, but warmer")."""

    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)


def _draw(r: random.Random, v: Vocab) -> _Draw:
    """One random intent and its structure. The order of the draws from `r` is the corpus's
    identity: changing it changes every intent of every seed."""
    if r.random() < INSTRUCTION_SHARE:
        return _instruction(r, v)
    odds = _Odds()
    odds.times(1 - INSTRUCTION_SHARE)
    looks, core = _core(r, v, odds)
    form, template_tools = _template(r, v, odds)
    words = _Words()
    scale = _scale(r, v, words, odds)
    shifts = _shifts(r, v, template_tools, words, odds)
    text = form.format(x=" ".join([*words.before, core]))
    if words.after:
        text += r.choice(vocab.SUFFIX_JOINERS) + " and ".join(words.after)
    typo = r.random() < 0.05
    if typo:
        text = _typo(r, text)
        odds.times(0.05)
    return _Draw(_case(r, text), looks, scale, shifts, template_tools, typo, odds.logp)


def _core(r: random.Random, v: Vocab, odds: _Odds) -> tuple[tuple[int, int, int], str]:
    """The looks (a, b, c; -1 where absent) and the phrase naming them: one look (half the
    intents), two in a combination, or an adjective, a look and a place."""
    looks = v.looks
    u = r.random()
    a = pick(r, v.look_cum)
    odds.times(looks[a].weight / v.look_cum[-1])
    if u < 0.50:
        odds.times(0.50)
        p = pick(r, v.phrase_cum[a])
        odds.times((1.0 / (p + 1)) / v.phrase_cum[a][-1])
        return (a, -1, -1), looks[a].phrases[p]
    b = _second_look(r, v, a)
    odds.times(looks[b].weight / v.look_cum[-1])
    if u < 0.94:
        odds.times(0.44)
        return (a, b, -1), _pair(r, v, a, b, odds)
    odds.times(0.06)
    c = v.places[pick(r, v.place_cum)]
    if c in (a, b):
        c = v.places[(v.places.index(c) + 1) % len(v.places)]
    odds.times(looks[c].weight / v.place_cum[-1])
    if looks[a].adjectives:
        return (a, b, c), f"{r.choice(looks[a].adjectives)} {looks[b].name} in {looks[c].name}"
    return (a, b, c), f"{looks[a].name}, {looks[b].name} in {looks[c].name}"


def _second_look(r: random.Random, v: Vocab, a: int) -> int:
    looks = v.looks
    b = pick(r, v.look_cum)
    for _ in range(3):  # two places ("Paris in Tokyo") or the same look: try another
        if b != a and not (looks[a].category == looks[b].category == "place"):
            break
        b = pick(r, v.look_cum)
    if b == a:
        b = (a + 1) % len(looks)
    return b


def _pair(r: random.Random, v: Vocab, a: int, b: int, odds: _Odds) -> str:
    """Two looks in one phrase, in a combination pattern that fits them."""
    la, lb = v.looks[a], v.looks[b]
    fits = [(pattern, weight, rule) for pattern, weight, rule in vocab.COMBINATIONS
            if _fits(rule, la, lb)]
    cum = cumulative([w for _, w, _ in fits])
    pattern, weight, rule = fits[pick(r, cum)]
    first = r.choice(la.adjectives) if rule == "adjective" else la.phrases[
        pick(r, v.phrase_cum[a])]
    second = lb.phrases[pick(r, v.phrase_cum[b])] if r.random() < 0.7 else lb.name
    odds.times(weight / cum[-1])
    return pattern.format(a=first, b=second)


def _fits(rule: str, la: vocab.Look, lb: vocab.Look) -> bool:
    """Whether a COMBINATIONS rule reads well for looks `la` then `lb`."""
    return (rule == "any"
            or (rule == "place" and lb.category == "place" and la.category != "place")
            or (rule == "adjective" and bool(la.adjectives))
            or (rule == "time" and la.category == "time" and lb.category != "time"
                and " at " not in lb.name))


def _template(r: random.Random, v: Vocab, odds: _Odds) -> tuple[str, int]:
    """The sentence around the phrase ("make it {x}") and what it forces on the tools."""
    form, weight, tools_kind = vocab.TEMPLATES[pick(r, v.template_cum)]
    odds.times(weight / v.template_cum[-1])
    return form, TEMPLATE_TOOLS[tools_kind]


def _scale(r: random.Random, v: Vocab, words: _Words, odds: _Odds) -> float:
    """How strong the look is ("slightly", "to the max"): 1 for most intents."""
    if r.random() >= 0.16:
        odds.times(0.84)
        return 1.0
    factor, weight, words_before, words_after = vocab.SCALE_MODIFIERS[pick(r, v.scale_cum)]
    odds.times(0.16 * weight / v.scale_cum[-1])
    if r.random() < 0.55:
        words.before.append(r.choice(words_before))
    else:
        words.after.append(r.choice(words_after))
    return factor


def _shifts(r: random.Random, v: Vocab, template_tools: int, words: _Words,
            odds: _Odds) -> tuple[int, int]:
    """Up to two shifts ("warmer", "no filter"): indices into SHIFTS, -1 where absent."""
    shifts = [-1, -1]
    n_shifts = 0
    if template_tools != TEMPLATE_TOOLS["filter_only"]:
        u = r.random()
        n_shifts = 2 if u < 0.05 else 1 if u < 0.27 else 0
    for k in range(n_shifts):
        sh = pick(r, v.shift_cum)
        shift = vocab.SHIFTS[sh]
        if sh in shifts or (shift.drops_filter and template_tools):
            continue
        shifts[k] = sh
        odds.times(0.25 * shift.weight / v.shift_cum[-1])
        if shift.before and not words.before and r.random() < 0.35:
            words.before.append(r.choice(shift.before))
        else:
            words.after.append(r.choice(shift.after))
    return shifts[0], shifts[1]


# --------------------------------------------------------------------------------------------
# Instructions: edits alone, each a clause ("boost the contrast a bit"), joined.


def _instruction(r: random.Random, v: Vocab) -> _Draw:
    """One to three edits on different aspects, each in its own words, joined into a request."""
    odds = _Odds()
    odds.times(INSTRUCTION_SHARE)
    u = r.random()
    wanted = 3 if u < 0.06 else 2 if u < 0.30 else 1
    odds.times((0.06, 0.24, 0.70)[3 - wanted])
    edits: list[int] = []
    scales: list[float] = []
    clauses: list[str] = []
    for _ in range(wanted):
        e = pick(r, v.edit_cum)
        edit = vocab.EDITS[e]
        if any(vocab.EDITS[x].aspect == edit.aspect for x in edits):
            continue
        odds.times(edit.weight / v.edit_cum[-1])
        clause, scale = _clause(r, edit, bool(clauses), odds)
        edits.append(e)
        scales.append(scale)
        clauses.append(clause)
    text = clauses[0]
    for clause in clauses[1:]:
        text += r.choice(vocab.EDIT_JOINERS) + clause
    typo = r.random() < 0.07
    if typo:
        text = _typo(r, text)
        odds.times(0.07)
    text = text.upper() if r.random() < 0.03 else _case(r, text)
    pad = MAX_EDITS - len(edits)
    return _Draw(text, (-1, -1, -1), 1.0, (-1, -1), 0, typo, odds.logp,
                 (*edits, *(-1,) * pad), (*scales, *(1.0,) * pad))  # type: ignore[arg-type]


def _clause(r: random.Random, edit: vocab.Edit, later: bool, odds: _Odds) -> tuple[str, float]:
    """One edit in words and its strength: a slider name with a verb or a number, an
    imperative, or an adjective; the first clause sits in a sentence ("make it {a}")."""
    kinds = [k for k, present in (("noun", edit.nouns), ("imperative", edit.imperatives),
                                  ("adjective", edit.adjectives)) if present]
    if (edit.nouns or edit.sliders) and not edit.fixed and r.random() < 0.15:
        odds.times(0.15)
        return _number(r, edit)
    if edit.complaints and r.random() < 0.2:
        odds.times(0.2)
        form = _weighted(r, vocab.COMPLAINT_FORMS, odds) if not later else "it's {c}"
        return form.format(c=_one(r, edit.complaints, odds)), 1.0
    kind = r.choice(kinds)
    odds.times(1 / len(kinds))
    scale, before, after = _strength(r, edit, kind == "adjective", odds)
    if kind == "adjective":
        clause = _one(r, edit.adjectives, odds)
        clause = f"{before} {clause}" if before else clause
        form = _weighted(r, vocab.ADJECTIVE_FORMS, odds) if not later else (
            "make it {a}" if r.random() < 0.4 else "{a}")
        clause = form.format(a=clause)
    elif kind == "noun":
        clause = _noun_phrase(r, edit, odds)
    else:
        clause = _one(r, edit.imperatives, odds).format(o=_weighted(r, vocab.OBJECTS, odds))
    if after:
        clause += " " + after
    if kind != "adjective" and not later:
        prefix, suffix, weight = vocab.IMPERATIVE_FORMS[pick(r, _IMPERATIVE_CUM)]
        odds.times(weight / _IMPERATIVE_CUM[-1])
        if any(word in clause for word in ("whole", "entire")):
            suffix = ""    # "darken the whole picture" needs no "for the whole picture"
        clause = prefix + clause + suffix
    return clause, scale


_IMPERATIVE_CUM = cumulative([w for _, _, w in vocab.IMPERATIVE_FORMS])
_BARE = ("{n}", "more ", "less ", "higher ", "up ", "add ", "+", "-")


def _noun_phrase(r: random.Random, edit: vocab.Edit, odds: _Odds) -> str:
    """A verb on the slider's name: "increase the contrast", "saturation down"."""
    form = _one(r, vocab.UP_VERBS if edit.up else vocab.DOWN_VERBS, odds)
    noun = _one(r, edit.nouns, odds)
    if not form.startswith(_BARE) and r.random() < 0.6:
        noun = "the " + noun
    return form.format(n=noun)


def _number(r: random.Random, edit: vocab.Edit) -> tuple[str, float]:
    """A slider name with an amount ("contrast +20"); the strength makes the edit's main slider
    land near the amount. The amount's sign is the main slider's ("highlights -20" for taming
    them), whichever verbs the edit's nouns take."""
    main = max(abs(x) for x in edit.adjust.values())
    raises = max(edit.adjust.values(), key=abs) > 0
    form = r.choice([f for f, up in vocab.NUMBER_FORMS if up == raises])
    amount = r.choice((5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100))
    return form.format(n=r.choice(edit.nouns + edit.sliders), k=amount), amount / main


def _strength(r: random.Random, edit: vocab.Edit, adjective: bool,
              odds: _Odds) -> tuple[float, str, str]:
    """(scale, words before an adjective, words after the clause): usual strength mostly;
    words go before adjectives only ("a bit warmer", "boost the contrast a bit")."""
    u = r.random()
    if edit.fixed or u >= 0.26:
        odds.times(0.74)
        return 1.0, "", ""
    scale, before, after = vocab.STRENGTHS[0 if u < 0.14 else 1]
    odds.times(0.13)
    if adjective and r.random() < 0.5:
        return scale, r.choice(before), ""
    return scale, "", r.choice(after)


def _one(r: random.Random, options: tuple[str, ...], odds: _Odds) -> str:
    """A phrase from `options`, earlier ones more common."""
    cum = cumulative([1.0 / (k + 1) for k in range(len(options))])
    k = pick(r, cum)
    odds.times((1.0 / (k + 1)) / cum[-1])
    return options[k]


def _weighted(r: random.Random, options: tuple[tuple[str, float], ...], odds: _Odds) -> str:
    cum = cumulative([w for _, w in options])
    k = pick(r, cum)
    odds.times(options[k][1] / cum[-1])
    return options[k][0]


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


# --------------------------------------------------------------------------------------------
# Popularity.


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
            chosen = rng.choice(n_intents, size=diff, p=(excess + 1) / (excess + 1).sum())
            np.add.at(excess, chosen, 1)
        else:
            pool = np.flatnonzero(excess > 0)
            chosen = rng.choice(pool, size=min(-diff, len(pool)), replace=False)
            excess[chosen] -= 1
        diff = target - int(excess.sum())
    return excess + 1
