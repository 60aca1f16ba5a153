"""The SYNTHETIC demo's simulated teacher: what it "means" for each intent (a latent answer
derived from the intent's words), the handful of outputs it gives for that intent (the modal
one, near misses, poor ones) with how often each comes back, and how well each exports."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.synthetic import vocabulary as vocab
from workbench.synthetic.intents import TEMPLATE_TOOLS, Intents
from workbench.synthetic.looks import (
    ADJUST,
    DIM,
    FILTER,
    N_ADJ,
    N_SEL,
    SELECTIVE,
    Vocab,
    adjust_vector,
    selective_from_adjust,
)
from workbench.tools import ADJUST_KEYS, FILTER_NAMES

TEACHER_MODEL = "gpt-3.5-turbo-0125"
# Share of intents whose latent answer uses each tool, before teacher noise; tuned so that the
# curated ground truth lands near the paper's 92% / 32% / 66% (SPEC 9).
LATENT_SHARE = (0.925, 0.315, 0.655)
# Teacher output kinds per intent: modal, two near-misses, three poor ones.
MODAL, MINOR_1, MINOR_2, POOR_CONFUSED, POOR_FILTER, POOR_TOOLS = range(6)
N_VARIANTS = 6
_BLOCK = 32_768         # intents whose outputs are made at once, to bound memory
_WHIMS = np.array([ADJUST_KEYS.index(k) for k in (
    "contrast", "highlights", "shadows", "vibrance", "bloom", "sharpen", "structure")])


@dataclass
class Latent:
    values: np.ndarray      # [I, DIM] float
    uses: np.ndarray        # [I, 3] bool
    filter: np.ndarray      # [I] filter index, -1 for none
    intensity: np.ndarray   # [I] float


@dataclass
class Outputs:
    values: np.ndarray      # [I, V, DIM] int8
    uses: np.ndarray        # [I, V, 3] bool
    filter: np.ndarray      # [I, V] int8 filter index (-1 unused)
    intensity: np.ndarray   # [I, V] int8
    keep: np.ndarray        # [I, V, 3] float32: chance an export keeps this tool's output
    cum_p: np.ndarray       # [I, V] float32 cumulative probability of each output


def nearest_filter(v: Vocab, adjust: np.ndarray) -> np.ndarray:
    """The catalogue filter whose sliders point the most the same way as `adjust` [n, N_ADJ]."""
    fa = v.filter_adjust / np.linalg.norm(v.filter_adjust, axis=1, keepdims=True).clip(1e-6)
    norm = np.linalg.norm(adjust, axis=1, keepdims=True).clip(1e-6)
    return np.argmax((adjust / norm) @ fa.T, axis=1)


# --------------------------------------------------------------------------------------------
# Latent answers: what the teacher "means" for each intent, derived from its words.


@dataclass(frozen=True)
class _Parts:
    """Each intent's looks as rows of the vocabulary arrays: `a`, `b` and `c` where `has_a`,
    `has_b` and `has_c` (0 elsewhere, so that they can index; an instruction has no look), and
    what its edits name: adjust sliders, colour bands."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    has_a: np.ndarray
    has_b: np.ndarray
    has_c: np.ndarray
    edits_adjust: np.ndarray
    edits_selective: np.ndarray
    edit_filter: np.ndarray       # [I] the filter an edit always takes ("black and white"), -1
    edit_intensity: np.ndarray    # [I] its intensity

    @classmethod
    def of(cls, it: Intents, v: Vocab) -> _Parts:
        a, b, c = it.look[:, 0], it.look[:, 1], it.look[:, 2]
        has_a, has_b, has_c = a >= 0, b >= 0, c >= 0
        named = v.edit_filter[it.edits].max(axis=1)    # at most one edit names a filter
        which = v.edit_filter[it.edits].argmax(axis=1)
        return cls(np.where(has_a, a, 0), np.where(has_b, b, 0), np.where(has_c, c, 0),
                   has_a, has_b, has_c, v.edit_adjusts[it.edits].any(axis=1),
                   v.edit_selective[it.edits].any(axis=1), named,
                   v.edit_intensity[it.edits[np.arange(len(which)), which]])


def latent_answers(it: Intents, v: Vocab, rng: np.random.Generator) -> Latent:
    """Blend each intent's looks, scale and shift them as its modifiers say, and choose its tools
    from its words, moved to the target shares where the words leave the choice open."""
    p = _Parts.of(it, v)
    values, scale = _blend(it, p, v, rng)
    nearest = nearest_filter(v, values[:, :N_ADJ])
    uses, filt, intensity, protected = _tools_from_words(it, p, v, nearest, scale, rng)
    # The teacher's tool choices are only partly determined by the words: move the shares of
    # tool use to the targets by flipping tools on intents whose wording does not force them.
    salience = _salience(p, v, uses, intensity)
    for tool in (ADJUST, SELECTIVE, FILTER):
        _flip_to_share(uses, tool, LATENT_SHARE[tool], protected[:, tool], salience[:, tool],
                       rng)
    # "sepia but without a filter": a look that is only a filter, its filter dropped, is
    # answered with the look's sliders (its filter's, in its prototype) rather than nothing.
    uses[~uses.any(axis=1), ADJUST] = True
    filt = np.where(uses[:, FILTER], np.where(filt >= 0, filt, nearest), -1)
    intensity = np.where(uses[:, FILTER], intensity.clip(10, 100), 0)
    _derive_unnamed(values, p, v, uses, filt, intensity)
    return Latent(values=values.clip(-100, 100).astype(np.float32), uses=uses,
                  filter=filt.astype(np.int64), intensity=intensity.astype(np.float32))


def _blend(it: Intents, p: _Parts, v: Vocab,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """[I, DIM] sliders the words call for, and [I] each intent's scale with the teacher's
    jitter."""
    n = len(it.text)
    wa = np.where(p.has_c, 0.5, np.where(p.has_b, 0.6, 1.0)).astype(np.float32) * p.has_a
    wb = np.where(p.has_c, 0.45, 0.5).astype(np.float32) * p.has_b
    wc = np.float32(0.4) * p.has_c
    values = (wa[:, None] * v.proto[p.a] + wb[:, None] * v.proto[p.b]
              + wc[:, None] * v.proto[p.c])
    values += (v.edit_values[it.edits] * it.edit_scale[:, :, None]).sum(axis=1)  # instructions
    scale = it.scale * (1 + rng.normal(0, 0.06, n)).astype(np.float32)
    values *= scale[:, None]
    shift_table = np.zeros((len(vocab.SHIFTS) + 1, DIM), dtype=np.float32)  # last row: none
    for i, sh in enumerate(vocab.SHIFTS):
        shift_table[i, :N_ADJ] = adjust_vector(sh.adjust)
    values += shift_table[it.shift[:, 0]] + shift_table[it.shift[:, 1]]
    # The teacher's own reading of this exact phrasing, fixed per intent: small jitter, and now
    # and then a slider it likes to touch (structure, sharpen...) that the words do not explain.
    values += rng.normal(0, 3.5, values.shape).astype(np.float32) * (values != 0)
    whim = rng.random(n) < 0.3
    values[np.flatnonzero(whim), rng.choice(_WHIMS, whim.sum())] += rng.choice(
        [-10, -5, 5, 10], whim.sum())
    return values.clip(-100, 100), scale


def _tools_from_words(it: Intents, p: _Parts, v: Vocab, nearest: np.ndarray, scale: np.ndarray,
                      rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """[I, 3] the tools the words call for, [I] the filter and [I] its intensity, and [I, 3]
    the choices the wording forces (a template or shift), kept when shares are moved."""
    n = len(it.text)
    shifted_adjust = np.zeros(n, dtype=bool)
    drops_filter = np.zeros(n, dtype=bool)
    for k in (0, 1):
        for i, sh in enumerate(vocab.SHIFTS):
            hit = it.shift[:, k] == i
            shifted_adjust |= hit & bool(sh.adjust)
            drops_filter |= hit & sh.drops_filter
    uses = np.zeros((n, 3), dtype=bool)
    uses[:, ADJUST] = ((p.has_a & v.has_adjust[p.a]) | (p.has_b & v.has_adjust[p.b])
                       | (p.has_c & v.has_adjust[p.c]) | shifted_adjust | p.edits_adjust)
    uses[:, SELECTIVE] = _selective_named(p, v)
    filt, intensity = _filter_from_words(p, v, scale, rng)
    forced = it.template_tools > 0
    filt = np.where(forced & (filt < 0), nearest, filt)
    filt = np.where(drops_filter, -1, filt)
    uses[:, FILTER] = filt >= 0
    only = it.template_tools == TEMPLATE_TOOLS["filter_only"]
    uses[only, ADJUST] = False
    uses[only, SELECTIVE] = False
    protected = np.zeros((n, 3), dtype=bool)
    protected[:, ADJUST] = shifted_adjust | only | p.edits_adjust
    protected[:, SELECTIVE] = only | p.edits_selective
    protected[:, FILTER] = forced | drops_filter | (p.edit_filter >= 0)
    return uses, filt, intensity, protected


def _selective_named(p: _Parts, v: Vocab) -> np.ndarray:
    """[I] the words name colour bands: a look with bands, a colour scheme blended in, or an
    edit on a colour ("make the blues pop")."""
    return ((p.has_a & v.has_selective[p.a]) | (p.has_b & v.has_selective[p.b] & v.is_colour[p.b])
            | (p.has_c & v.has_selective[p.c] & v.is_colour[p.c]) | p.edits_selective)


def _filter_from_words(p: _Parts, v: Vocab, scale: np.ndarray,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """[I] the filter (-1 for none) and [I] its intensity. The filter follows the first look, or
    a second look that is nothing but a filter ("sunset polaroid")."""
    b_is_filter = p.has_b & ~v.has_adjust[p.b]
    a_filter = np.where(p.has_a, v.filter_idx[p.a], -1)
    filt = np.where(a_filter >= 0, a_filter, np.where(b_is_filter, v.filter_idx[p.b], -1))
    from_look = np.where(a_filter >= 0, p.a, p.b)
    intensity = (np.where(filt >= 0, v.intensity[from_look] * np.where(p.has_b, 0.9, 1.0), 45.0)
                 * scale + rng.normal(0, 4, len(filt)))
    named = p.edit_filter >= 0                        # an edit that takes a filter
    return (np.where(named, p.edit_filter, filt),
            np.where(named, p.edit_intensity + rng.normal(0, 4, len(filt)), intensity))


def _salience(p: _Parts, v: Vocab, uses: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """[I, 3] how strongly the words call for each tool. The teacher drops a tool first where
    it matters least (weak colour bands, a faint filter) and skips adjust when a strong filter
    already does the job, so its choices stay learnable from the text."""
    mass = np.maximum(v.selective_mass[p.a] * p.has_a, np.maximum(
        np.where(p.has_b & v.is_colour[p.b], v.selective_mass[p.b], 0),
        np.where(p.has_c & v.is_colour[p.c], v.selective_mass[p.c], 0)))
    strength = np.where(uses[:, FILTER], intensity.clip(10, 100), 50.0)
    salience = np.ones((len(uses), 3))
    salience[:, SELECTIVE] = ((mass + 10) / 120) ** 5
    salience[:, FILTER] = (strength / 50 * np.where(p.has_a & v.is_film[p.a], 1.2, 1.0)) ** 5
    salience[:, ADJUST] = (50 / strength) ** 5 * np.where(uses[:, SELECTIVE], 100.0, 1.0)
    return salience


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


def _derive_unnamed(values: np.ndarray, p: _Parts, v: Vocab, uses: np.ndarray, filt: np.ndarray,
                    intensity: np.ndarray) -> None:
    """Tools switched on without a look behind them get values a teacher would derive: adjust
    from the filter, selective_adjust from adjust (in place). An instruction's sliders are
    never replaced, however small the teacher's jitter left them ("decrease the contrast a bit"
    once lost its contrast -12 to the jitter and then to a filter's sliders)."""
    no_adjust_look = uses[:, ADJUST] & ~p.edits_adjust \
        & (np.abs(values[:, :N_ADJ]).max(axis=1) < 5)
    fa = v.filter_adjust[np.where(filt >= 0, filt, 0)] * (intensity / 60)[:, None]
    values[:, :N_ADJ] = np.where(no_adjust_look[:, None], fa, values[:, :N_ADJ])
    sel_from_look = ((p.has_a & v.has_selective[p.a]) | (p.has_b & v.has_selective[p.b])
                     | (p.has_c & v.has_selective[p.c]) | p.edits_selective)
    derived_sel = values[:, :N_ADJ] @ selective_from_adjust()
    values[:, N_ADJ:] = np.where((uses[:, SELECTIVE] & ~sel_from_look)[:, None], derived_sel,
                                 values[:, N_ADJ:])


# --------------------------------------------------------------------------------------------
# The teacher's outputs: a handful per intent, how likely each is and how well it exports.


def teacher_outputs(it: Intents, lat: Latent, v: Vocab, rng: np.random.Generator) -> Outputs:
    """The teacher's outputs for every intent, in blocks of intents to bound memory."""
    parts = [_teacher_block(it, lat, v, rng, lo, min(lo + _BLOCK, len(it.text)))
             for lo in range(0, len(it.text), _BLOCK)]
    return Outputs(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("values", "uses", "filter", "intensity", "keep", "cum_p")))


@dataclass
class _Block:
    """A block's outputs while they are made, one column per output kind (MODAL...)."""

    lat: Latent             # the block's latent answers
    vals: np.ndarray        # [n, V, DIM] float32
    uses: np.ndarray        # [n, V, 3] bool
    filt: np.ndarray        # [n, V] filter index, -1 for none
    inten: np.ndarray       # [n, V] float32

    @property
    def rows(self) -> np.ndarray:
        return np.arange(len(self.vals))


def _teacher_block(it: Intents, whole: Latent, v: Vocab, rng: np.random.Generator,
                   lo: int, hi: int) -> Outputs:
    """Outputs of intents lo..hi-1. The order of the draws from `rng` is the corpus's identity."""
    lat = Latent(whole.values[lo:hi], whole.uses[lo:hi], whole.filter[lo:hi],
                 whole.intensity[lo:hi])
    n = hi - lo
    b = _Block(lat, vals=np.zeros((n, N_VARIANTS, DIM), dtype=np.float32),
               uses=np.repeat(lat.uses[:, None, :], N_VARIANTS, axis=1),
               filt=np.repeat(lat.filter[:, None], N_VARIANTS, axis=1),
               inten=np.zeros((n, N_VARIANTS), dtype=np.float32))
    b.vals[:, MODAL] = _round5(lat.values)
    b.inten[:, MODAL] = lat.intensity
    _near_misses(b, v, rng)
    _confused(b, v, rng)
    _wrong_filter(b, v, rng)
    nearest = nearest_filter(v, lat.values[:, :N_ADJ])
    _wrong_tools(b, v, nearest, rng)
    b.filt = np.where(b.uses[:, :, FILTER], np.where(b.filt >= 0, b.filt, nearest[:, None]), -1)
    b.inten = np.where(b.uses[:, :, FILTER], _round5(b.inten).clip(5, 100), 0)
    _no_empty_tools(b.vals, b.uses, lat.values)
    return Outputs(values=b.vals.astype(np.int8), uses=b.uses, filter=b.filt.astype(np.int8),
                   intensity=b.inten.astype(np.int8), keep=_export_odds(b, v),
                   cum_p=_output_odds(it, lo, hi, rng).astype(np.float32))


def _near_misses(b: _Block, v: Vocab, rng: np.random.Generator) -> None:
    """MINOR_1: the sliders with noise and a nudged slider; MINOR_2: rescaled, sometimes not
    rounded to fives, and now and then a filter of the same family."""
    lv, lat, n = b.lat.values, b.lat, len(b.vals)
    nz = (lv != 0).astype(np.float32)
    extra = np.zeros((n, DIM), dtype=np.float32)
    who = rng.random(n) < 0.4
    extra[b.rows[who], rng.integers(0, N_ADJ, who.sum())] = rng.choice([-10, -5, 5, 10],
                                                                        who.sum())
    b.vals[:, MINOR_1] = _round5(lv + rng.normal(0, 6, (n, DIM)) * nz + extra)
    b.inten[:, MINOR_1] = lat.intensity + rng.normal(0, 8, n)

    raw = lv * rng.uniform(0.8, 1.2, (n, 1)) + rng.normal(0, 4, (n, DIM)) * nz
    b.vals[:, MINOR_2] = np.where((rng.random(n) < 0.3)[:, None],
                                  np.round(raw).clip(-100, 100), _round5(raw))
    b.inten[:, MINOR_2] = lat.intensity * rng.uniform(0.8, 1.2, n)
    related = rng.random(n) < 0.3
    modal = b.filt[:, MODAL]
    sib = v.siblings[np.where(modal >= 0, modal, 0), rng.integers(0, v.siblings.shape[1], n)]
    b.filt[:, MINOR_2] = np.where(related & (modal >= 0), sib, modal)


def _confused(b: _Block, v: Vocab, rng: np.random.Generator) -> None:
    """POOR_CONFUSED: the intent confused with another look entirely, sometimes its filter too."""
    lv, n, modal = b.lat.values, len(b.vals), b.filt[:, MODAL]
    other = rng.integers(0, len(v.looks), n)
    mask = (rng.random((n, DIM)) < 0.3).astype(np.float32)
    b.vals[:, POOR_CONFUSED] = _round5(0.35 * lv + 0.8 * v.proto[other]
                                       + rng.normal(0, 6, (n, DIM)) * mask)
    take = (rng.random(n) < 0.5) & (v.filter_idx[other] >= 0) & (modal >= 0)
    b.filt[:, POOR_CONFUSED] = np.where(take, v.filter_idx[other], modal)
    b.inten[:, POOR_CONFUSED] = b.lat.intensity


def _wrong_filter(b: _Block, v: Vocab, rng: np.random.Generator) -> None:
    """POOR_FILTER: big slider errors and a filter from another family, always used."""
    n, modal = len(b.vals), b.filt[:, MODAL]
    big = np.zeros((n, DIM), dtype=np.float32)
    for _ in range(3):
        big[b.rows, rng.integers(0, DIM, n)] += rng.normal(0, 25, n)
    b.vals[:, POOR_FILTER] = _round5(b.lat.values + big)
    wrong = rng.integers(0, len(FILTER_NAMES), n)
    for _ in range(8):
        same = (v.family[wrong] == v.family[np.where(modal >= 0, modal, 0)]) & (modal >= 0)
        wrong = np.where(same, rng.integers(0, len(FILTER_NAMES), n), wrong)
    b.filt[:, POOR_FILTER] = wrong
    b.uses[:, POOR_FILTER, FILTER] = True
    b.inten[:, POOR_FILTER] = rng.integers(6, 19, n) * 5


def _wrong_tools(b: _Block, v: Vocab, nearest: np.ndarray, rng: np.random.Generator) -> None:
    """POOR_TOOLS: the modal output with a wrong tool choice: a used tool dropped (when two or
    more are used) or an unused one added, with values a teacher would derive for it."""
    lat, n = b.lat, len(b.vals)
    b.vals[:, POOR_TOOLS] = b.vals[:, MODAL]
    b.inten[:, POOR_TOOLS] = lat.intensity
    n_used = lat.uses.sum(axis=1)
    drop = (n_used == 3) | ((n_used == 2) & (rng.random(n) < 0.6))
    pref = np.where(lat.uses, np.array([0.25, 1.0, 1.0]), 0.0) * rng.random((n, 3))
    to_drop = np.argmax(pref, axis=1)
    to_add = np.argmax(np.where(~lat.uses, rng.random((n, 3)) + 0.01, 0.0), axis=1)
    b.uses[b.rows[drop], POOR_TOOLS, to_drop[drop]] = False
    add = ~drop
    b.uses[b.rows[add], POOR_TOOLS, to_add[add]] = True
    adds_filter = add & (to_add == FILTER)
    b.filt[:, POOR_TOOLS] = np.where(adds_filter, nearest, b.filt[:, POOR_TOOLS])
    b.inten[:, POOR_TOOLS] = np.where(adds_filter, 50, b.inten[:, POOR_TOOLS])
    fa = v.filter_adjust[np.where(lat.filter >= 0, lat.filter, 0)] * (lat.intensity / 60)[:, None]
    adds_adjust = add & (to_add == ADJUST)
    b.vals[adds_adjust, POOR_TOOLS, :N_ADJ] = _round5(
        fa[adds_adjust] + rng.normal(0, 5, (adds_adjust.sum(), N_ADJ)))
    adds_sel = add & (to_add == SELECTIVE)
    b.vals[adds_sel, POOR_TOOLS, N_ADJ:] = _round5(
        b.vals[adds_sel, MODAL, :N_ADJ] @ selective_from_adjust()
        + rng.normal(0, 8, (adds_sel.sum(), N_SEL)))


def _export_odds(b: _Block, v: Vocab) -> np.ndarray:
    """[n, V, 3] the chance that one export keeps each tool's output as given: higher the closer
    it is to the latent answer."""
    lat = b.lat
    keep = np.empty((len(b.vals), N_VARIANTS, 3), dtype=np.float32)
    for tool, part in ((ADJUST, slice(0, N_ADJ)), (SELECTIVE, slice(N_ADJ, DIM))):
        cos = _cosine(b.vals[:, :, part], lat.values[:, None, part]).clip(0, 1)
        keep[:, :, tool] = _keep(lat.uses[:, None, tool], b.uses[:, :, tool],
                                 0.08 + 0.87 * cos ** 6)
    close = 1 - np.abs(b.inten - lat.intensity[:, None]) / 100
    same_family = v.family[np.maximum(b.filt, 0)] == v.family[np.maximum(lat.filter, 0)][:, None]
    match = np.where(b.filt == lat.filter[:, None], 0.08 + 0.87 * close ** 4,
                     np.where(same_family, 0.35, 0.12))
    keep[:, :, FILTER] = _keep(lat.uses[:, None, FILTER], b.uses[:, :, FILTER], match)
    return keep


def _output_odds(it: Intents, lo: int, hi: int, rng: np.random.Generator) -> np.ndarray:
    """[n, V] cumulative probability of each output: phrasings with more parts confuse the
    teacher more, so its modal output comes back less often."""
    look, scale, shift, typo = it.look[lo:hi], it.scale[lo:hi], it.shift[lo:hi], it.typo[lo:hi]
    edits, edit_scale = it.edits[lo:hi], it.edit_scale[lo:hi]
    n = hi - lo
    complexity = ((look[:, 1] >= 0).astype(np.float32) + (look[:, 2] >= 0)
                  + (scale != 1) + (shift >= 0).sum(axis=1) + typo
                  + ((edits >= 0).sum(axis=1) - 1).clip(0) + (edit_scale != 1).any(axis=1))
    p_poor = (0.17 + 0.03 * complexity + rng.normal(0, 0.03, n)).clip(0.08, 0.35)
    p_modal = np.minimum((0.6 - 0.05 * complexity + rng.normal(0, 0.07, n)).clip(0.3, 0.85),
                         0.95 - p_poor)
    rest = 1 - p_modal - p_poor
    probs = np.stack([p_modal, 0.6 * rest, 0.4 * rest,
                      0.4 * p_poor, 0.35 * p_poor, 0.25 * p_poor], axis=1)
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0
    return cum


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


def _round5(x: np.ndarray) -> np.ndarray:
    return (np.round(x / 5) * 5).clip(-100, 100)


def _cosine(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    nx, ny = np.linalg.norm(x, axis=-1), np.linalg.norm(y, axis=-1)
    dot = (x * y).sum(axis=-1)
    return np.where((nx > 0) & (ny > 0), dot / np.maximum(nx * ny, 1e-9),
                    np.where((nx == 0) & (ny == 0), 1.0, 0.0))
