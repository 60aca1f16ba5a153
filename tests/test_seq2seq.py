"""The seq2seq student: its target text, a parser that survives any generation, and a tiny
training run that learns, saves and loads."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given

from tests.strategies import answers
from workbench.errors import WorkbenchError
from workbench.metrics import score_intent, tool_score
from workbench.students.base import TrainingData
from workbench.students.seq2seq import (
    MISSING_INTENSITY,
    Seq2SeqConfig,
    Seq2SeqStudent,
    format_answer,
    parse_generation,
)
from workbench.tools import TOOLS, Answer, parse_answer

GOLDEN_HOUR = parse_answer({   # the poster's example
    "adjust": {"contrast": 10, "brightness": 10, "highlights": 20, "shadows": -10,
               "saturation": 15, "vibrance": 15, "temperature": 30, "tint": 10},
    "selective_adjust": {"red": {"saturation": 20, "luminance": 10},
                         "orange": {"saturation": 30, "luminance": 20},
                         "yellow": {"saturation": 40, "luminance": 30},
                         "green": {"saturation": -20}, "cyan": {"saturation": -20}},
    "filter": {"name": "faded_HighNoon", "intensity": 40}})


def assert_valid(answer: Answer) -> None:
    assert isinstance(answer, Answer)
    assert parse_answer(answer.to_dict()) == answer


# -- the target text -------------------------------------------------------------------------
def test_format_is_concise_with_only_non_zero_values():
    assert format_answer(GOLDEN_HOUR) == (
        "adjust contrast 10 brightness 10 highlights 20 shadows -10 saturation 15 vibrance 15 "
        "temperature 30 tint 10 ; selective red 20 10 orange 30 20 yellow 40 30 green -20 0 "
        "cyan -20 0 ; filter faded_HighNoon 40")
    assert format_answer(Answer()) == "adjust none ; selective none ; filter none"
    # Used with every value at 0 is not the same as unused.
    assert format_answer(parse_answer({"adjust": {}, "selective_adjust": {}})) == \
        "adjust ; selective ; filter none"


@given(answers)
def test_round_trip(answer):
    parsed, problems = parse_generation(format_answer(answer))
    assert parsed == answer
    assert problems == []


def test_uncased_and_tokenizer_spacing_are_undone():
    text = "ADJUST Exposure - 5 linear ##offset 7 ; selective none ; filter warm _ golden 40"
    answer, problems = parse_generation(text)
    assert answer.adjust is not None
    assert (answer.adjust["exposure"], answer.adjust["linearOffset"]) == (-5, 7)
    assert answer.filter is not None and answer.filter.name == "warm_Golden"
    assert problems == []


# -- any text gives a valid answer -----------------------------------------------------------
def _garbage() -> list[str]:
    rng = random.Random(7)
    noise = bytes(rng.randrange(256) for _ in range(4000))
    words = ["adjust", "selective", "filter", "none", ";", "exposure", "red", "mono_Noir", "-",
             "_", "999", "-0.5", "1e9", "NaN", "inf", "{", "}", ":", ",", "🙂"]
    return [
        "", " ", "🙂🙂", "\x00\x01\x02", noise.decode("utf-8", errors="replace"),
        noise.decode("latin-1"),
        "lorem ipsum dolor sit amet " * 400,                           # ~10 KB of prose
        "9" * 10_000,                                                  # one huge number
        "adjust exposure " + "9" * 10_000,
        "filter " + "x" * 10_000 + " 5",
        " ".join(rng.choice(words) for _ in range(2000)),              # ~10 KB of near-misses
        '{"adjust": {"exposure": 10}, "filter": {"name": "mono_Noir", "intensity": 30}}',
    ]


@pytest.mark.parametrize("text", _garbage())
def test_garbage_gives_a_valid_answer_and_says_so(text):
    answer, problems = parse_generation(text)
    assert_valid(answer)
    assert problems and all(isinstance(p, str) for p in problems)


def test_truncation_at_every_position_never_raises():
    text = format_answer(GOLDEN_HOUR)
    for cut in range(len(text) + 1):
        answer, problems = parse_generation(text[:cut])
        assert_valid(answer)
        if cut < len(text) - 1:   # only "... faded_HighNoon 4" reads as complete
            assert problems, text[:cut]
    assert parse_generation(text) == (GOLDEN_HOUR, [])


def test_truncated_text_is_read_as_far_as_it_goes():
    answer, problems = parse_generation("adjust temperature 30 tint ; selective orange 30 ; "
                                        "filter warm_Gol")
    assert answer.adjust is not None and answer.adjust["temperature"] == 30
    assert answer.adjust["tint"] == 0
    assert answer.selective_adjust is not None
    assert answer.selective_adjust["orange"] == {"saturation": 30, "luminance": 0}
    assert answer.filter is not None
    assert (answer.filter.name, answer.filter.intensity) == ("warm_Golden", MISSING_INTENSITY)
    assert len(problems) == 4


def test_adversarial_text_is_repaired_field_by_field():
    answer, problems = parse_generation(
        "adjust exposure 999999 exposure -5 hue abc ; filter faded_highnoon 250 ; "
        "filter mono_noir 3")
    expected = parse_answer({"adjust": {"exposure": 100},
                             "filter": {"name": "faded_HighNoon", "intensity": 100}})
    assert answer == expected
    text = "\n".join(problems)
    assert "adjust.exposure: 999999 out of [-100, 100], clipped" in text
    assert "adjust.exposure given again" in text
    assert "adjust.hue: value 'abc' is not a number" in text
    assert "filter.intensity: 250 out of [0, 100], clipped" in text
    assert "filter given again" in text
    assert "no selective segment" in text


@pytest.mark.parametrize("text, expected", [
    (";;; adjust ;; ; ; selective ;;; filter ; none", {"adjust": {}, "selective_adjust": {}}),
    ("adjust ; adjust exposure 5 ; selective adjust none", {"adjust": {}, "selective_adjust": {}}),
    ("adjust exposure 5; DROP TABLE intents; --", {"adjust": {"exposure": 5}}),
    ("<b>adjust contrast 12</b> <script>alert(1)</script>", {"adjust": {"contrast": 12}}),
    ("adjust glow 40 contrast 3.6 tint -7.5 12 ; selective purple 10 10 blue 5 x",
     {"adjust": {"contrast": 4, "tint": -8}, "selective_adjust": {"blue": {"saturation": 5}}}),
])
def test_nested_separators_and_markup(text, expected):
    answer, problems = parse_generation(text)
    assert answer == parse_answer(expected)
    assert problems


@pytest.mark.parametrize("written, read", [
    ("MONO_NOIR", "mono_Noir"),        # case-insensitive match
    ("wram_golden", "warm_Golden"),    # 2 edits: nearest catalogue name
    ("mono_noi", "mono_Noir"),         # a unique prefix: cut-off text
    ("sepia_tone", None),              # too far from every name: the filter is dropped
    ("mono_", None),                   # an ambiguous prefix is not guessed
])
def test_filter_names(written, read):
    answer, problems = parse_generation(f"adjust none ; selective none ; filter {written} 30")
    assert (answer.filter.name if answer.filter else None) == read
    assert (problems == []) == (written.lower() == (read or "").lower())


# -- a tiny training run -----------------------------------------------------------------------
LOOKS = {
    "warm": ({"adjust": {"temperature": 40, "exposure": 10},
              "filter": {"name": "warm_Golden", "intensity": 60}},
             ["golden hour", "warm sunset", "sunny beach", "golden glow", "warm summer evening",
              "amber light", "cozy fireplace", "sunset over the sea", "golden afternoon",
              "warm tones"]),
    "mono": ({"filter": {"name": "mono_Noir", "intensity": 80}},
             ["black and white", "film noir", "monochrome", "noir detective", "grayscale photo",
              "old black and white movie", "dark noir look", "b&w", "monochrome street",
              "classic noir"]),
    "cool": ({"adjust": {"temperature": -40},
              "selective_adjust": {"blue": {"saturation": 30, "luminance": 10}}},
             ["cold winter", "icy blue", "cool morning", "arctic", "frozen lake", "blue hour",
              "snowy mountains", "cold blue tones", "winter frost", "chilly ocean"]),
}
# Two of MiniLM's six layers and a one-layer 64-d decoder: about 15 s on a busy 2-core CPU.
TINY = Seq2SeqConfig(epochs=20, batch_size=8, lr=5e-4, decoder_lr=3e-3, warmup=0.1,
                     max_target_len=24, encoder_layers=2, decoder_layers=1, decoder_hidden=64,
                     decoder_heads=2, device="cpu", seed=1)


@pytest.fixture
def one_thread() -> Iterator[None]:
    # Tiny matrices on a shared 2-core machine: a second OpenMP thread mostly spins against the
    # other processes (ten times slower under load), so the test trains on one.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_tiny_training_learns_saves_and_loads(tmp_path: Path, one_thread: None,
                                              capfd: pytest.CaptureFixture[str]):
    intents = [text for _, texts in LOOKS.values() for text in texts]
    truth = [parse_answer(answer) for answer, texts in LOOKS.values() for _ in texts]
    student = Seq2SeqStudent(TINY)
    epochs_seen: list[int] = []
    started = time.perf_counter()
    student.train(TrainingData(intents, truth),
                  lambda stage, done, total: epochs_seen.append(done) if stage == "epoch" else None)
    seconds = time.perf_counter() - started
    assert seconds < 60, f"training took {seconds:.0f} s"
    assert epochs_seen == list(range(1, TINY.epochs + 1))

    predicted = student.predict(intents)
    for answer in predicted:
        assert_valid(answer)
    scores = [s for i, (t, p) in enumerate(zip(truth, predicted))
              for s in score_intent(str(i), t, p)]
    by_tool = {tool: tool_score(tool, [s for s in scores if s.tool == tool]) for tool in TOOLS}
    # Always-unused scores 0 tool selection on every tool; the student must reach 0.8 on each
    # (it reaches 1.0 with this seed) and name at least 80% of the filters right.
    for tool, score in by_tool.items():
        assert score.selection is not None and score.selection >= 0.8, (tool, score)
    assert by_tool["filter"].quality is not None and by_tool["filter"].quality >= 0.8
    assert student.last_parse_failures == sum(1 for p in student.last_parse_problems if p)
    assert student.size_bytes() > 0

    student.save(tmp_path / "run")
    loaded = Seq2SeqStudent.load(tmp_path / "run")
    assert loaded.config == TINY
    assert loaded.generate(intents) == student.generate(intents)
    assert loaded.predict(intents) == predicted
    assert loaded.predict(["", "🙂"]) == student.predict(["", "🙂"])
    # Typos are read as the training word meant (spelling), by the loaded student too; a run
    # saved before spelling existed reads them as typed.
    assert loaded.speller is not None
    assert loaded.generate(["cyberpnuk street lihgts"]) == \
        student.generate(["cyberpunk street lights"])
    stored = json.loads((tmp_path / "run" / "student.json").read_text())
    del stored["config"]["spelling"]
    (tmp_path / "run" / "student.json").write_text(json.dumps(stored))
    assert Seq2SeqStudent.load(tmp_path / "run").speller is None
    # transformers' own bars ("Loading weights", "Writing model shards") stay quiet: the
    # workbench reports its own progress, and none at all with --no-progress
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "Writing model shards" not in err


def test_config_is_checked():
    with pytest.raises(ValueError, match="device"):
        Seq2SeqConfig(device="tpu")
    with pytest.raises(ValueError, match="epochs"):
        Seq2SeqConfig(epochs=0)
    with pytest.raises(ValueError, match="decoder_hidden"):
        Seq2SeqConfig(decoder_hidden=100, decoder_heads=3)
    with pytest.raises(ValueError, match="encoder_layers"):
        Seq2SeqConfig(encoder_layers=7)


@pytest.mark.slow
def test_a_local_checkpoint_is_fine_tuned_with_its_own_tokenizer(tmp_path: Path,
                                                                 one_thread: None):
    # Stands in for e.g. google/flan-t5-base (not on this machine): a tiny bert2bert checkpoint
    # saved to disk, loaded through AutoTokenizer and AutoModelForSeq2SeqLM.
    from transformers import (
        AutoModel,
        AutoTokenizer,
        BertConfig,
        BertLMHeadModel,
        EncoderDecoderModel,
    )

    from workbench.embeddings import model_path

    tokenizer = AutoTokenizer.from_pretrained(model_path())
    encoder = AutoModel.from_pretrained(model_path())
    encoder.encoder.layer = encoder.encoder.layer[:1]
    encoder.config.num_hidden_layers = 1
    decoder = BertLMHeadModel(BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=64, is_decoder=True, add_cross_attention=True))
    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    model.config.decoder_start_token_id = tokenizer.cls_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.sep_token_id
    model.save_pretrained(tmp_path / "checkpoint")
    tokenizer.save_pretrained(tmp_path / "checkpoint")

    config = Seq2SeqConfig(model=str(tmp_path / "checkpoint"), epochs=1, batch_size=2,
                           max_target_len=12, device="cpu")
    student = Seq2SeqStudent(config)
    noir = parse_answer({"filter": {"name": "mono_Noir", "intensity": 80}})
    student.train(TrainingData(["noir", "black and white", "b&w"], [noir] * 3))
    predicted = student.predict(["noir", ""])
    for answer in predicted:
        assert_valid(answer)
    # One epoch on three intents writes word salad: repaired, and counted.
    assert student.last_parse_failures == 2
    student.save(tmp_path / "run")
    loaded = Seq2SeqStudent.load(tmp_path / "run")
    assert loaded.config == config
    assert loaded.generate(["noir", ""]) == student.generate(["noir", ""])


def test_the_parser_needs_no_torch():
    code = ("import sys, workbench.students.seq2seq as s; s.parse_generation('adjust none'); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_missing_checkpoint_is_a_clear_error(tmp_path: Path):
    student = Seq2SeqStudent(Seq2SeqConfig(model=str(tmp_path / "nowhere"), epochs=1))
    with pytest.raises(WorkbenchError, match="cannot load the seq2seq checkpoint"):
        student.train(TrainingData(["noir"], [Answer()]))
