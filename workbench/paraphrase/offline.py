"""The offline paraphraser (SPEC 6): rewords an intent with a fixed thesaurus and templates.

It is the default when no LLM endpoint is configured, so augmentation runs on a machine with no
network. What it can do: swap words and phrases for near-synonyms from `lexicon` ("cool
morning" -> "chilly dawn"), insert, remove or swap intensity modifiers ("slightly cool
morning"), strip a known frame and put another around the intent ("make it look like a 70s
film" -> "70s film vibe"), swap the order of two known words ("warm and bright" -> "bright and
warm"), and, if asked, add one realistic typo to a share of candidates.

What it cannot do: invent new looks or new ways of describing one, understand anything it has no
entry for (a place such as "Morocco" only gets frames and amount words: "Morocco vibe", "a
hint of Morocco"), or judge whether a reworded intent still asks for the same look (synonyms are
near-synonyms: "icy" is colder than "cool"). Its candidates are therefore treated exactly like
an LLM's: embedding dedup, then human review.

Output is deterministic for a given seed and source (the random generator is seeded from a
SHA-256 of both, not from Python's salted `hash()`).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from workbench.paraphrase import ParaphraseResult, lexicon
from workbench.progress import Progress

MAX_CHARS = 500  # longest candidate returned
# Sources longer than this are not reworded: frames would push them past MAX_CHARS and a
# paragraph is not a look request anyway.
MAX_SOURCE_CHARS = 2 * MAX_CHARS
_ATTEMPTS_PER_CANDIDATE = 12

_MOD_KINDS = frozenset({"mod:up", "mod:down", "mod:cmp_up", "mod:cmp_down"})
_ADJ_KINDS = frozenset({"adj", "cmp"})
_SMALL_WORDS = frozenset({"a", "an", "the", "it", "of", "this", "my", "{x}"})
_NO_PREFIX_BEFORE = frozenset({"a", "an", "the", "not", "no", "never", "without", "don't", "dont"})
_ARTICLE_BLOCKERS = frozenset({"bit", "little", "touch", "tad", "lot", "hint"})
_LEAD_PUNCT = "\"'([{"
_TRAIL_PUNCT = "\"')]}.,!?;:"
_KEY_DROP = re.compile(r"[-_]+")


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _key(text: str) -> str:
    """Comparison key: case-folded, hyphens as spaces, whitespace collapsed, end punctuation off."""
    return _collapse(_KEY_DROP.sub(" ", text.casefold())).strip(".!?,;: ")


@dataclass(frozen=True)
class _Entry:
    kind: str  # adj, cmp, noun, attr, adv, or mod:<group>
    alts: tuple[str, ...]


@dataclass(frozen=True)
class _Segment:
    """One word, or one lexicon phrase, of the core with the punctuation around it."""

    text: str
    kind: str | None = None
    alts: tuple[str, ...] = ()
    lead: str = ""
    trail: str = ""

    def render(self) -> str:
        return f"{self.lead}{self.text}{self.trail}"


def _build_index() -> dict[tuple[str, ...], _Entry]:
    """Phrase (as a word tuple) -> kind and alternatives, from every set in the lexicon."""
    groups: list[tuple[str, tuple[str, ...]]] = []
    for kind, sets in (("adj", lexicon.ADJECTIVES), ("cmp", lexicon.COMPARATIVES),
                       ("noun", lexicon.NOUNS), ("attr", lexicon.ATTRIBUTES),
                       ("adv", lexicon.ADVERBIALS)):
        groups.extend((kind, s) for s in sets)
    groups.extend((f"mod:{name}", words) for name, words in lexicon.MODIFIERS.items())
    kinds: dict[str, str] = {}
    alts: dict[str, list[str]] = {}
    for kind, words in groups:
        for word in words:
            kinds.setdefault(word, kind)
            bucket = alts.setdefault(word, [])
            for other in words:
                if _key(other) != _key(word) and other not in bucket:
                    bucket.append(other)
    return {tuple(w.split()): _Entry(kinds[w], tuple(alts[w])) for w in kinds}


_INDEX = _build_index()
_MAX_PHRASE = max(len(k) for k in _INDEX)
_NEGATIONS = frozenset({"no", "without", "not", "zero", "never", "minus"})
_PREFIXES = sorted((tuple(p.split()) for p in lexicon.PREFIX_FRAMES), key=len, reverse=True)
_SUFFIXES = sorted((tuple(s.split()) for s in lexicon.SUFFIX_FRAMES), key=len, reverse=True)
_SUFFIX_WORDS = frozenset(w for s in _SUFFIXES for w in s)
_FILLER = (frozenset({"", "a", "an", "the", "it", "this", "my", "some", "of"})
           | frozenset(w for group in lexicon.MODIFIERS.values() for m in group for w in m.split())
           | lexicon.FIXED_WORDS)


def _split_token(token: str) -> _Segment:
    body = token.lstrip(_LEAD_PUNCT)
    lead = token[: len(token) - len(body)]
    core = body.rstrip(_TRAIL_PUNCT)
    trail = body[len(core):]
    if not core:  # a token of punctuation only
        return _Segment(text=token)
    return _Segment(text=core, lead=lead, trail=trail)


def _segments(words: list[str]) -> list[_Segment]:
    """Split the core into segments, matching the longest lexicon phrase at each position."""
    tokens = [_split_token(w) for w in words]
    norms = [t.text.casefold() for t in tokens]
    out: list[_Segment] = []
    i = 0
    while i < len(tokens):
        for length in range(min(_MAX_PHRASE, len(tokens) - i), 0, -1):
            entry = _INDEX.get(tuple(norms[i:i + length]))
            if entry is None:
                continue
            inner = tokens[i:i + length]
            # no punctuation inside a phrase: "black, and white" is not "black and white"
            if any(t.trail for t in inner[:-1]) or any(t.lead for t in inner[1:]):
                continue
            out.append(_Segment(" ".join(t.text for t in inner), entry.kind, entry.alts,
                                inner[0].lead, inner[-1].trail))
            i += length
            break
        else:
            out.append(tokens[i])
            i += 1
    return out


@dataclass(frozen=True)
class _Parsed:
    prefix: str  # the source's own frame, as typed ("Make it look like a ")
    suffix: str  # (" vibe please!")
    segments: tuple[_Segment, ...]


def _parse(text: str) -> _Parsed:
    """Strip known frames (repeatedly, so "please make it warm look" is handled) from `text`."""
    words = text.split()
    low = [w.casefold() for w in words]
    start, end = 0, len(words)
    changed = True
    while changed:
        changed = False
        for pre in _PREFIXES:
            stop = start + len(pre)
            if stop < end and tuple(low[start:stop]) == pre and _has_content(low[stop:end]):
                if pre[-1] in ("a", "an") and low[stop].strip(_TRAIL_PUNCT) in _ARTICLE_BLOCKERS:
                    continue  # "give it a bit warmer" is "give it" + "a bit warmer"
                start, changed = stop, True
                break
        for suf in _SUFFIXES:
            begin = end - len(suf)
            tail = tuple(w.strip(_TRAIL_PUNCT) for w in low[begin:end])
            if (begin > start and tail == suf and _has_content(low[start:begin])
                    and not _protected(low, begin, start)):
                end, changed = begin, True
                break
    core = words[start:end]
    prefix = " ".join(words[:start]) + " " if start else ""
    suffix = " " + " ".join(words[end:]) if end < len(words) else ""
    # trailing punctuation of the core ("warm!") belongs to the frame
    if core and not suffix:
        last = core[-1].rstrip(".!?")
        if last and last != core[-1]:
            suffix = core[-1][len(last):]
            core = core[:-1] + [last]
    return _Parsed(prefix, suffix, tuple(_segments(core)))


def _has_content(low: list[str]) -> bool:
    """True when the words hold more than articles and modifiers ("the look" keeps "look")."""
    return any(w.strip(_TRAIL_PUNCT + _LEAD_PUNCT) not in _FILLER for w in low)


def _protected(low: list[str], begin: int, start: int) -> bool:
    """True when the suffix at `begin` ends a lexicon phrase ("earth tones") or is the object of
    a negation ("but no filter" asks for no filter tool), so it stays."""
    if begin > start and low[begin - 1].strip(_TRAIL_PUNCT) in _NEGATIONS:
        return True
    for length in range(2, _MAX_PHRASE + 1):
        first = begin + 1 - length
        if first < start:
            break
        words = tuple(w.strip(_TRAIL_PUNCT) for w in low[first:])
        if words in _INDEX:
            return True
    return False


def _match_case(original: str, new: str) -> str:
    if len(original) > 1 and original.isupper():
        return new.upper()
    if original[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def _render(segments: Sequence[_Segment]) -> str:
    return " ".join(s.render() for s in segments)


def _with_article(prefix: str, core: str) -> str:
    """Fix the article a frame ends with: "give it a " + "autumn" -> "give it an "."""
    low = prefix.casefold()
    if not (low.endswith((" a ", " an ")) or low in ("a ", "an ")):
        return prefix
    head = prefix[: prefix.rstrip().rfind(" ") + 1] if " " in prefix.rstrip() else ""
    first = core[:1].casefold()
    an = (first != "" and first in "aeiou") or core.startswith(("8", "11 ", "18 ", "11s", "18s"))
    article = prefix.rstrip()[len(head):]
    word = "an" if an else "a"
    return head + _match_case(article, word) + " "


# ---------------------------------------------------------------- operations on segments

def _substitute(segs: list[_Segment], rng: random.Random) -> list[_Segment] | None:
    """Replace one or two known words or phrases with a near-synonym."""
    spots = [i for i, s in enumerate(segs) if s.alts and s.kind not in _MOD_KINDS]
    if not spots:
        return None
    count = 1 if len(spots) == 1 or rng.random() < 0.6 else 2
    out = list(segs)
    for i in rng.sample(spots, count):
        seg = out[i]
        out[i] = replace(seg, text=_match_case(seg.text, rng.choice(seg.alts)))
    return out


def _modify(segs: list[_Segment], rng: random.Random) -> list[_Segment] | None:
    """Remove or swap an intensity modifier, or insert one before the first free adjective."""
    mods = [i for i, s in enumerate(segs) if s.kind in _MOD_KINDS]
    if mods and rng.random() < 0.6:
        i = rng.choice(mods)
        seg = segs[i]
        if rng.random() < 0.5 and len(segs) > 1 and any(s.kind not in _MOD_KINDS for s in segs):
            out = segs[:i] + segs[i + 1:]
            if i == 0:
                # the next word starts the intent: it takes the quote and the capital
                out[0] = replace(out[0], lead=seg.lead + out[0].lead,
                                 text=_match_case(seg.text[:1], out[0].text))
            return out
        same = lexicon.MODIFIERS[(seg.kind or "mod:down").split(":", 1)[1]]
        choices = [w for w in same if w != seg.text.casefold()]
        out = list(segs)
        out[i] = replace(seg, text=_match_case(seg.text, rng.choice(choices)))
        return out
    # An adjective that starts the core or a coordinated part of it ("moody rainy night" ->
    # "very moody rainy night", "soft and romantic" -> "soft and slightly romantic"), never one
    # after another adjective or an unknown word ("cyberpunk extremely neon city").
    targets = [i for i, s in enumerate(segs) if s.kind in _ADJ_KINDS
               and s.text.casefold() not in lexicon.NON_GRADABLE
               and (i == 0 or segs[i - 1].trail == ","
                    or segs[i - 1].text.casefold() in ("and", "but", "or"))]
    if not targets:
        return None
    i = targets[0] if rng.random() < 0.7 else rng.choice(targets)
    seg = segs[i]
    direction = "up" if rng.random() < 0.5 else "down"
    group = direction if seg.kind == "adj" else f"cmp_{direction}"
    word = rng.choice(lexicon.MODIFIERS[group])
    out = list(segs)
    lead = ""
    if i == 0:  # the modifier now starts the intent: it takes the quote and the capital
        lead = seg.lead
        if seg.text[:1].isupper() and not seg.text.isupper():
            word = _match_case(seg.text, word)
        out[0] = replace(seg, text=_lower_first(seg), lead="")
    out.insert(i, _Segment(word, f"mod:{group}", lexicon.MODIFIERS[group], lead=lead))
    return out


def _reorder(segs: list[_Segment]) -> list[_Segment] | None:
    """Swap two known words where that is safe: "warm and bright", "cool morning"."""
    kinds = [s.kind for s in segs]
    if len(segs) == 3 and kinds[0] == kinds[2] == "adj" and segs[1].text.casefold() == "and":
        a, conj, b = segs
        return [replace(b, text=_match_case(a.text, b.text), lead=a.lead, trail=""),
                conj, replace(a, text=_lower_first(a), lead="", trail=b.trail)]
    if len(segs) != 2 or any(s.lead for s in segs) or segs[0].trail not in ("", ","):
        return None
    a, b = segs
    if kinds == ["adj", "adj"] and a.trail == ",":
        return [replace(b, text=_match_case(a.text, b.text), trail=","),
                replace(a, text=_lower_first(a), trail=b.trail)]
    if kinds == ["adj", "noun"] and not a.trail:
        return [replace(b, text=_match_case(a.text, b.text), trail=","),
                replace(a, text=_lower_first(a), trail=b.trail)]
    return None


def _lower_first(seg: _Segment) -> str:
    if seg.text[:1].isupper() and not seg.text.isupper():
        return seg.text[:1].lower() + seg.text[1:]
    return seg.text


def _typo(text: str, rng: random.Random) -> str:
    """One realistic typo in one word of 4+ letters: swapped, dropped or doubled letter."""
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not spots:
        return text
    i = rng.choice(spots)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    how = rng.randrange(3)
    if how == 0:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif how == 1:
        w = w[:j] + w[j + 1:]
    else:
        w = w[:j] + w[j] + w[j:]
    words[i] = w
    return " ".join(words)


# ---------------------------------------------------------------- frames

def _core_kind(segs: Sequence[_Segment]) -> str:
    """Which frames fit: 'adj' (make it {x}), 'noun' (like a {x}) or 'other' (neutral only)."""
    content = [s for s in segs if s.kind not in _MOD_KINDS and any(c.isalnum() for c in s.text)]
    if not content:
        return "other"
    last = content[-1].kind
    if last in _ADJ_KINDS:
        return "adj"
    if last == "noun" and len(content) >= 2:
        return "noun"
    return "other"


def _frames_for(kind: str) -> tuple[str, ...]:
    if kind == "adj":
        return lexicon.NEUTRAL_FRAMES + lexicon.ADJECTIVE_FRAMES
    if kind == "noun":
        return lexicon.NEUTRAL_FRAMES + lexicon.NOUN_FRAMES
    return lexicon.NEUTRAL_FRAMES


def _wrap(frame: str, segs: Sequence[_Segment]) -> str | None:
    """Put `frame` around the core, or None when that would stack frames.

    Stacking is: a frame word already in the core ("moody" and "{x} mood"), a suffix frame after
    a core that ends in one ("warm hues" + "{x} tones"), a prefix frame before a core that
    starts with one or with an article ("give it a" + "a bit more warmth").
    """
    prefix, suffix = frame.split("{x}")
    core_words = [w.strip(_TRAIL_PUNCT + _LEAD_PUNCT).casefold()
                  for s in segs for w in s.text.split()]
    core_words = [w for w in core_words if w]
    if not core_words:
        return None
    for fw in {w.casefold() for w in frame.split()} - _SMALL_WORDS:
        if any(w == fw or (len(fw) >= 4 and w.startswith(fw)) for w in core_words):
            return None
    if suffix.strip() and core_words[-1] in _SUFFIX_WORDS:
        return None
    if any(tuple(core_words[:len(p)]) == p for p in _PREFIXES):
        return None  # a core that still starts with a frame ("make it") takes no other
    if prefix.strip() and core_words[0] in _NO_PREFIX_BEFORE:
        return None  # "give it a a bit warmer look", "make it feel not too bright"
    if prefix.rstrip().endswith((" a", " an")) and any("," in s.render() for s in segs):
        return None  # "give it a wedding, soft and romantic look"
    first = segs[0]
    lowered = list(segs)
    if prefix.strip() and first.kind is not None and _lower_first(first) != first.text:
        # sentence case belongs to the whole intent: "Warm morning" -> "Make it warm morning"
        lowered[0] = replace(first, text=_lower_first(first))
        prefix = prefix[:1].upper() + prefix[1:]
    core = _render(lowered)
    return _with_article(prefix, core) + core + suffix


# ---------------------------------------------------------------- the paraphraser

def _seed_for(seed: int, text: str) -> int:
    digest = hashlib.sha256(f"{seed}\x00{text}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


class OfflineParaphraser:
    """Rewords intents with the fixed thesaurus and templates in `lexicon`; no network.

    `typo_rate` is the share of candidates (0..1) that get one realistic typo, to mimic what
    users type; it is 0 (off) by default.
    """

    name = "offline"

    def __init__(self, seed: int = 0, typo_rate: float = 0.0) -> None:
        if not 0.0 <= typo_rate <= 1.0:
            raise ValueError(f"typo_rate must be between 0 and 1, got {typo_rate}")
        self.seed = seed
        self.typo_rate = typo_rate

    def paraphrase(self, intents: Sequence[str], n: int,
                   progress: Progress | None = None) -> list[ParaphraseResult]:
        """Up to `n` distinct candidates for each intent, one result per intent, in order."""
        if n < 0:
            raise ValueError(f"n must be 0 or more, got {n}")
        results: list[ParaphraseResult] = []
        total = len(intents)
        for done, intent in enumerate(intents, start=1):
            results.append(ParaphraseResult(source=intent, candidates=self.candidates(intent, n)))
            if progress is not None:
                progress("paraphrase", done, total)
        return results

    def candidates(self, source: str, n: int) -> tuple[str, ...]:
        """Up to `n` distinct rewordings of `source`, never the source itself."""
        text = _collapse(source)
        if n <= 0 or not text or len(text) > MAX_SOURCE_CHARS:
            return ()
        rng = random.Random(_seed_for(self.seed, text))
        parsed = _parse(text)
        segs = list(parsed.segments)
        has_frame = bool(parsed.prefix or parsed.suffix)
        can_reorder = _reorder(segs) is not None
        extra = ["frame", "mod"] + (["reorder"] if can_reorder else [])
        rng.shuffle(extra)
        plan = (["sub"] if any(s.alts and s.kind not in _MOD_KINDS for s in segs) else []) + extra

        seen = {_key(text)}
        out: list[str] = []
        for attempt in range(n * _ATTEMPTS_PER_CANDIDATE + 8):
            if len(out) >= n:
                break
            primary = plan[attempt % len(plan)]
            cand = self._one(parsed, segs, primary, has_frame, rng)
            if cand is None:
                continue
            if self.typo_rate and rng.random() < self.typo_rate:
                cand = _typo(cand, rng)
            cand = _collapse(cand)
            key = _key(cand)
            if not key or key in seen or len(cand) > MAX_CHARS:
                continue
            seen.add(key)
            out.append(cand)
        return tuple(out)

    def _one(self, parsed: _Parsed, segs: list[_Segment], primary: str, has_frame: bool,
             rng: random.Random) -> str | None:
        """One candidate built around the `primary` operation, plus optional extra ones."""
        new = segs
        amount = False  # a modifier was asked for but there is no adjective: use an amount frame
        if primary == "sub" or (primary != "reorder" and rng.random() < 0.3):
            new = _substitute(new, rng) or new
        if primary == "mod" or (primary not in ("reorder", "mod") and rng.random() < 0.25):
            modified = _modify(new, rng)
            amount = modified is None and primary == "mod"
            new = modified or new
        if primary == "reorder":
            if rng.random() < 0.3:
                new = _substitute(new, rng) or new
            swapped = _reorder(new)  # a reordered core takes no frame: "morning, cool"
            return None if swapped is None else _render(swapped)
        if not new:
            return None
        if amount:
            return _wrap(rng.choice(lexicon.AMOUNT_FRAMES), new)
        if primary == "frame" or rng.random() < 0.4:
            frames = list(_frames_for(_core_kind(new)))
            if has_frame:
                frames.append("{x}")  # stripping the frame is a change too
            frame = rng.choice(frames)
            return _wrap(frame, new)
        core = _render(new)
        return _with_article(parsed.prefix, core) + core + parsed.suffix
