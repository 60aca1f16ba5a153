"""The SYNTHETIC demo vocabulary compiled to arrays: each look's prototype answer as one slider
vector, the filter catalogue as sliders and families, and cumulative weights for seeded draws."""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from workbench.synthetic import vocabulary as vocab
from workbench.tools import ADJUST_KEYS, COLOURS, FILTER_CATALOGUE, FILTER_NAMES

N_ADJ = len(ADJUST_KEYS)                # 14 adjust sliders
N_SEL = 2 * len(COLOURS)                # 12 selective numbers, colour by colour
DIM = N_ADJ + N_SEL                     # one answer's sliders as a vector
ADJUST, SELECTIVE, FILTER = 0, 1, 2     # tool columns in the boolean "uses" arrays


@dataclass(frozen=True, eq=False)
class Vocab:
    """The vocabulary as arrays, one row per look (or per catalogue filter)."""

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
    edit_cum: list[float]        # cumulative weights of the instructions' edits
    edit_values: np.ndarray      # [edits + 1, DIM] each edit's sliders; the last row is "none"
    edit_adjusts: np.ndarray     # [edits + 1] bool: the edit names adjust sliders
    edit_selective: np.ndarray   # [edits + 1] bool: the edit names colour bands
    edit_filter: np.ndarray      # [edits + 1] the filter the edit always uses, -1 for none
    edit_intensity: np.ndarray   # [edits + 1] float: its intensity
    filter_adjust: np.ndarray    # [filters, N_ADJ] what each catalogue look does, in sliders
    siblings: np.ndarray         # [filters, max siblings] same-family filters (padded by cycling)
    family: np.ndarray           # [filters] family id (the name's prefix: warm, cool, mono...)


def cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def pick(r: random.Random, cum: list[float]) -> int:
    """A weighted draw: the index of the weight whose cumulative span holds the draw."""
    return bisect_right(cum, r.random() * cum[-1])


def adjust_vector(sliders: Mapping[str, int]) -> np.ndarray:
    return np.array([sliders.get(k, 0) for k in ADJUST_KEYS], dtype=np.float32)


def selective_from_adjust() -> np.ndarray:
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


def compile_vocabulary() -> Vocab:
    looks = vocab.LOOKS
    filter_adjust, family, siblings = _filter_tables()
    filter_idx = np.array([FILTER_NAMES.index(lk.filter) if lk.filter else -1 for lk in looks])
    return Vocab(
        looks=looks, proto=_prototypes(looks, filter_adjust, filter_idx),
        has_adjust=np.array([lk.adjust is not None for lk in looks]),
        has_selective=np.array([lk.selective is not None for lk in looks]),
        is_colour=np.array([lk.category == "colour" for lk in looks]),
        is_film=np.array([lk.category in ("era", "genre") for lk in looks]),
        selective_mass=np.array([sum(abs(x) for pair in (lk.selective or {}).values()
                                     for x in pair) for lk in looks], dtype=np.float64),
        filter_idx=filter_idx,
        intensity=np.array([lk.intensity for lk in looks], dtype=np.float32),
        look_cum=cumulative([lk.weight for lk in looks]),
        places=[i for i, lk in enumerate(looks) if lk.category == "place"],
        place_cum=cumulative([lk.weight for lk in looks if lk.category == "place"]),
        phrase_cum=tuple(cumulative([1.0 / (k + 1) for k in range(len(lk.phrases))])
                         for lk in looks),
        template_cum=cumulative([w for _, w, _ in vocab.TEMPLATES]),
        scale_cum=cumulative([w for _, w, _, _ in vocab.SCALE_MODIFIERS]),
        shift_cum=cumulative([s.weight for s in vocab.SHIFTS]),
        edit_cum=cumulative([e.weight for e in vocab.EDITS]),
        edit_values=_edit_values(),
        edit_adjusts=np.array([bool(e.adjust) for e in vocab.EDITS] + [False]),
        edit_selective=np.array([bool(e.selective) for e in vocab.EDITS] + [False]),
        edit_filter=np.array([FILTER_NAMES.index(e.filter) if e.filter else -1
                              for e in vocab.EDITS] + [-1]),
        edit_intensity=np.array([e.intensity for e in vocab.EDITS] + [0], dtype=np.float32),
        filter_adjust=filter_adjust, siblings=siblings, family=family,
    )


def _edit_values() -> np.ndarray:
    """[edits + 1, DIM]: each instruction edit's sliders at its usual strength, the colour bands
    it names, and a last row of zeros for "no edit" (index -1)."""
    values = np.zeros((len(vocab.EDITS) + 1, DIM), dtype=np.float32)
    for i, edit in enumerate(vocab.EDITS):
        values[i, :N_ADJ] = adjust_vector(edit.adjust)
        for colour, (s, lum) in edit.selective.items():
            c = COLOURS.index(colour)
            values[i, N_ADJ + 2 * c:N_ADJ + 2 * c + 2] = (s, lum)
    return values


def _filter_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The catalogue's sliders [filters, N_ADJ], family ids [filters] and same-family siblings."""
    names = FILTER_NAMES
    filter_adjust = np.stack([adjust_vector(FILTER_CATALOGUE[n].adjust) for n in names])
    for i, n in enumerate(names):
        if FILTER_CATALOGUE[n].mono:
            filter_adjust[i, ADJUST_KEYS.index("saturation")] = -100
    families = sorted({n.split("_")[0] for n in names})
    family = np.array([families.index(n.split("_")[0]) for n in names])
    sib_lists = [[j for j in range(len(names)) if family[j] == family[i] and j != i] or [i]
                 for i in range(len(names))]
    width = max(len(s) for s in sib_lists)
    siblings = np.array([[s[k % len(s)] for k in range(width)] for s in sib_lists])
    return filter_adjust, family, siblings


def _prototypes(looks: tuple[vocab.Look, ...], filter_adjust: np.ndarray,
                filter_idx: np.ndarray) -> np.ndarray:
    """[looks, DIM]: each look's sliders, with those of a tool it does not name derived."""
    to_sel = selective_from_adjust()
    proto = np.zeros((len(looks), DIM), dtype=np.float32)
    for i, lk in enumerate(looks):
        if lk.adjust is not None:
            proto[i, :N_ADJ] = adjust_vector(lk.adjust)
        else:  # a filter-only look still pulls a blend towards its filter's sliders
            proto[i, :N_ADJ] = 0.6 * filter_adjust[filter_idx[i]]
        if lk.selective is not None:
            for colour, (s, lum) in lk.selective.items():
                c = COLOURS.index(colour)
                proto[i, N_ADJ + 2 * c] = s
                proto[i, N_ADJ + 2 * c + 1] = lum
        else:
            proto[i, N_ADJ:] = 0.5 * proto[i, :N_ADJ] @ to_sel
    return proto
