"""Typos corrected against the training vocabulary before a student reads a request.

People type "incrase the contrats" and "lower the brigthness". A student reads such a word as
noise: the sentence embedding of "brigthness" is not that of "brightness", and the heads
student's bag shares only some character trigrams with it. None of those misspellings is in the
demo corpus's vocabulary, while the word meant is, many times. So before predicting, each word
the training intents never used is replaced by the training word closest to it in spelling:

- only words of letters, four or more of them, that neither the training intents nor the
  encoder's tokenizer know as a whole word (numbers, short words, "hint", "entirely" and "parts"
  are left exactly as typed: a training vocabulary of a thousand-odd words alone would turn
  them into "tint", "entire" and "paris");
- within Damerau-Levenshtein distance 1 (one letter added, dropped, changed, or two neighbours
  swapped: "contrats" -> "contrast"), or 2 for words of eight letters or more;
- among the candidates, the nearest, then the one the training intents used most often; a word
  with no candidate stays as typed. Only training words seen at least `MIN_COUNT` times are
  targets, so a typo that slipped into the training data is not a target itself.

The vocabulary is saved with the run (`vocabulary.json`), so a loaded student corrects as it did
when it was trained, whatever the database holds later.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

VOCABULARY_FILE = "vocabulary.json"
MIN_COUNT = 2          # a training word used fewer times is never a correction's target
MIN_LENGTH = 4         # shorter words are left as typed: too many neighbours to guess
CACHE_WORDS = 65_536   # corrections remembered per speller
_WORD = re.compile(r"[^\W\d_]+")


def damerau_levenshtein(a: str, b: str, limit: int) -> int:
    """The optimal-string-alignment distance of `a` and `b` (insertions, deletions,
    substitutions and swaps of neighbours, each 1), or `limit + 1` once it must exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


class Speller:
    """Corrects the words of a text that its vocabulary lacks (see the module docstring)."""

    def __init__(self, counts: dict[str, int], dictionary: Iterable[str] = ()):
        self.counts = dict(counts)
        self.dictionary = frozenset(word.lower() for word in dictionary)
        self._targets = sorted((word for word, n in self.counts.items()
                                if n >= MIN_COUNT and len(word) >= MIN_LENGTH - 1),
                               key=lambda word: -self.counts[word])
        # Bounded: a server meets endless new words, and each is worked out once.
        self._nearest = lru_cache(maxsize=CACHE_WORDS)(self._nearest_uncached)

    @classmethod
    def from_texts(cls, texts: Iterable[str], dictionary: Iterable[str] = ()) -> Speller:
        """The vocabulary of `texts` (the training intents); `dictionary`: other words known to
        be spelled right, never corrected (the tokenizer's whole words)."""
        return cls(Counter(word for text in texts for word in _WORD.findall(text.lower())),
                   dictionary)

    def word(self, word: str) -> str:
        """The training word meant by `word`, or `word` itself."""
        lowered = word.lower()
        if len(lowered) < MIN_LENGTH or lowered in self.counts or lowered in self.dictionary:
            return word
        return self._nearest(lowered) or word

    def _nearest_uncached(self, lowered: str) -> str | None:
        limit = 2 if len(lowered) >= 8 else 1
        best, best_distance = None, limit + 1
        for target in self._targets:            # most used first: ties keep the first
            distance = damerau_levenshtein(lowered, target, limit)
            if distance < best_distance:
                best, best_distance = target, distance
                if distance == 1:
                    break
        return best

    def correct(self, text: str) -> str:
        """`text` with each word the vocabulary lacks replaced by its correction."""
        return _WORD.sub(lambda match: self.word(match.group()), text)

    def save(self, folder: Path) -> None:
        (Path(folder) / VOCABULARY_FILE).write_text(
            json.dumps(self.counts, sort_keys=True) + "\n", encoding="utf-8")   # ASCII, with \u escapes

    @classmethod
    def load(cls, folder: Path, dictionary: Iterable[str] = ()) -> Speller:
        return cls(json.loads((Path(folder) / VOCABULARY_FILE).read_text(encoding="utf-8")),
                   dictionary)


def tokenizer_words(tokenizer: object) -> list[str]:
    """The whole words of a WordPiece / BPE tokenizer's vocabulary (letters only, no `##`
    continuation pieces): words the encoder knows, so not typos."""
    vocab: dict[str, int] = getattr(tokenizer, "get_vocab", dict)()
    words = (token.lstrip("\u2581\u0120") for token in vocab)   # SentencePiece / BPE word starts
    return [word for word in words if word.isalpha()]


def corrected(speller: Speller | None, intents: Sequence[str]) -> Sequence[str]:
    """The intents as a student with this speller reads them (unchanged without one)."""
    if speller is None:
        return intents
    return [speller.correct(text) for text in intents]
