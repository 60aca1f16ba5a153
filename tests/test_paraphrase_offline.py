"""The offline paraphraser: deterministic, never echoes, no stacked frames, no corpus imports."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.paraphrase import Paraphraser, ParaphraseResult, lexicon, offline
from workbench.paraphrase.offline import OfflineParaphraser

SOURCES = ["golden hour", "cool morning", "black and white", "moody rainy night", "Morocco",
           "make it look like a 70s film", "a bit warmer please", "warm and bright",
           "vintage film look", "less saturated", "teal and orange", "soft pastel sunset"]


def key(text: str) -> str:
    return " ".join(text.casefold().split())


def check_invariants(result: ParaphraseResult, n: int) -> None:
    assert result.error is None
    assert len(result.candidates) <= n
    keys = [key(c) for c in result.candidates]
    assert len(set(keys)) == len(keys), result.candidates
    assert key(result.source) not in keys
    for c in result.candidates:
        assert 1 <= len(c) <= 500
        assert c == c.strip()


def test_it_is_a_paraphraser_named_offline():
    p: Paraphraser = OfflineParaphraser()
    assert p.name == "offline"


def test_same_seed_gives_same_output():
    assert OfflineParaphraser(7).paraphrase(SOURCES, 5) == OfflineParaphraser(7).paraphrase(SOURCES, 5)


def test_different_seeds_usually_differ():
    a = OfflineParaphraser(0).paraphrase(SOURCES, 5)
    b = OfflineParaphraser(1).paraphrase(SOURCES, 5)
    differing = sum(x.candidates != y.candidates for x, y in zip(a, b, strict=True))
    assert differing >= len(SOURCES) // 2


def test_output_does_not_depend_on_batch_neighbours():
    alone = OfflineParaphraser().paraphrase(["cool morning"], 5)[0]
    batched = OfflineParaphraser().paraphrase(["golden hour", "cool morning"], 5)[1]
    assert alone == batched


@pytest.mark.parametrize("n", [0, 1, 3, 5, 8])
def test_n_is_respected_and_results_follow_the_input(n):
    results = OfflineParaphraser().paraphrase(SOURCES, n)
    assert [r.source for r in results] == SOURCES
    for r in results:
        check_invariants(r, n)
        if n == 0:
            assert r.candidates == ()
        else:
            assert r.candidates  # every source here has words to work with


def test_negative_n_is_an_error():
    with pytest.raises(ValueError, match="n must be"):
        OfflineParaphraser().paraphrase(["warm"], -1)


@pytest.mark.parametrize("source", ["Golden Hour", "GOLDEN HOUR", "  golden   hour ", "golden hour"])
def test_never_echoes_the_source_in_any_case_or_spacing(source):
    for seed in range(5):
        cands = OfflineParaphraser(seed).paraphrase([source], 10)[0].candidates
        assert "golden hour" not in {key(c) for c in cands}


def test_synonyms_are_substituted_for_known_words():
    synonyms = {"cold", "chilly", "icy", "crisp", "frosty", "cool-toned", "dawn", "sunrise",
                "early morning", "daybreak", "first light"}
    for seed in range(5):
        cands = OfflineParaphraser(seed).paraphrase(["cool morning"], 5)[0].candidates
        assert any(s in c for c in cands for s in synonyms), cands


def test_multi_word_phrases_are_substituted_as_a_whole():
    cands = OfflineParaphraser().paraphrase(["black and white"], 8)[0].candidates
    assert any(w in c for c in cands for w in ("monochrome", "b&w", "b/w", "greyscale",
                                               "grayscale", "mono"))
    assert not any("black and monochrome" in c or "b&w and white" in c for c in cands)


FRAME_WORDS = ["make", "give", "look", "vibe", "vibes", "feel", "style", "tones", "mood",
               "please", "aesthetic", "something", "like"]


@pytest.mark.parametrize("source", ["make it look like a 70s film", "make it look vintage please",
                                    "give it a moody look", "warm tones vibe", "something cool",
                                    "vintage style", "make it feel cozy"])
def test_frames_are_not_stacked(source):
    for seed in range(10):
        for c in OfflineParaphraser(seed).paraphrase([source], 8)[0].candidates:
            words = c.casefold().split()
            for w in FRAME_WORDS:
                assert words.count(w) <= 1, c
            assert not ("make" in words and "give" in words), c
            assert "make it make" not in c.casefold()


def test_direction_words_are_never_dropped_or_framed_away():
    for seed in range(5):
        for c in OfflineParaphraser(seed).paraphrase(["less saturated"], 8)[0].candidates:
            assert "less" in c or "more" in c, c
        for c in OfflineParaphraser(seed).paraphrase(["not too bright"], 8)[0].candidates:
            assert c.startswith("not too "), c  # no "give it a not too bright look"


def test_unknown_words_still_get_candidates_from_frames_and_amounts():
    for source in ("Morocco", "zxqv"):
        cands = OfflineParaphraser().paraphrase([source], 5)[0].candidates
        assert len(cands) == 5
        assert all(source in c for c in cands)


def test_capitalised_place_names_keep_their_capital():
    cands = OfflineParaphraser().paraphrase(["Morocco sunset"], 5)[0].candidates
    assert all("Morocco" in c for c in cands)


@pytest.mark.parametrize("source", ["", "   ", "\t\n"])
def test_empty_sources_give_no_candidates_and_no_error(source):
    [result] = OfflineParaphraser().paraphrase([source], 5)
    assert result.candidates == () and result.error is None


@pytest.mark.parametrize("source", ["ça va 🌅", "夕焼けの海", "\ud800 warm", "ＷＡＲＭ", "!!!",
                                    "warm\u200bmorning", "make it", "the look"])
def test_odd_unicode_does_not_crash(source):
    [result] = OfflineParaphraser().paraphrase([source], 5)
    check_invariants(result, 5)


@pytest.mark.parametrize("source", ["warm " * 99, "moody rainy night " * 27, "x" * 499,
                                    "golden hour " * 1000])
def test_long_sources_never_give_candidates_over_500_chars(source):
    [result] = OfflineParaphraser().paraphrase([source], 5)
    check_invariants(result, 5)


def test_progress_is_called_once_per_intent():
    calls: list[tuple[str, int, int | None]] = []
    OfflineParaphraser().paraphrase(
        ["warm", "cool", "Morocco"], 3,
        progress=lambda stage, done, total: calls.append((stage, done, total)))
    assert calls == [("paraphrase", 1, 3), ("paraphrase", 2, 3), ("paraphrase", 3, 3)]


def test_typos_are_off_by_default_and_keep_the_invariants_when_on():
    plain = OfflineParaphraser().paraphrase(SOURCES, 5)
    typos = OfflineParaphraser(typo_rate=1.0).paraphrase(SOURCES, 5)
    assert plain == OfflineParaphraser(typo_rate=0.0).paraphrase(SOURCES, 5)
    assert plain != typos
    for r in typos:
        check_invariants(r, 5)
    with pytest.raises(ValueError, match="typo_rate"):
        OfflineParaphraser(typo_rate=1.5)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.integers(min_value=0, max_value=6), st.integers())
def test_invariants_hold_for_any_text(source, n, seed):
    [result] = OfflineParaphraser(seed).paraphrase([source], n)
    assert result.source == source
    check_invariants(result, n)


def test_lexicon_is_lower_case_and_a_few_hundred_entries():
    sets = (lexicon.ADJECTIVES + lexicon.COMPARATIVES + lexicon.NOUNS + lexicon.ATTRIBUTES
            + lexicon.ADVERBIALS)
    entries = [w for s in sets for w in s]
    assert 150 <= len(entries) <= 700
    assert all(w == w.lower().strip() and w for w in entries)
    assert all(len(set(s)) == len(s) >= 2 for s in sets)
    for frame in (lexicon.NEUTRAL_FRAMES + lexicon.ADJECTIVE_FRAMES + lexicon.NOUN_FRAMES
                  + lexicon.AMOUNT_FRAMES):
        assert frame.count("{x}") == 1


def test_does_not_read_the_demo_corpus_or_pipelines():
    for module in (offline, lexicon):
        text = inspect.getsource(module)
        assert "pipelines" not in text and "synthetic" not in text and "demo_" not in text
    code = ("import sys, workbench.paraphrase.offline; print(sorted(m for m in sys.modules "
            "if m.startswith(('pipelines', 'tests', 'workbench.synthetic'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_negated_frame_word_is_content_not_a_frame() -> None:
    # "but no filter" asks for no filter tool: it must survive every rewording.
    for source in ("70s film, wintertime feel but no filter", "warm look without filter"):
        candidates = OfflineParaphraser(seed=0).candidates(source, 8)
        assert candidates
        assert all(c.endswith(("no filter", "without filter")) for c in candidates), candidates
