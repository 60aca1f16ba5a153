"""Students on a tiny world: 6 clearly different looks, 10 phrasings each (60 intents).

Each student must learn it (scores on its training data far above a constant predictor), answer
every text with a valid answer (garbage included), survive save/load with identical predictions
and train deterministically. The encoder is loaded once for the module; the heads train for a
few dozen tiny epochs (well under a second each on a CPU).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.metrics import SubsetScore, score_intent, subset_score
from workbench.onnx_encoder import ONNX_FILE
from workbench.students import load_student, make_student
from workbench.students.base import Student, TrainingData
from workbench.tools import Answer, parse_answer

LOOKS: dict[str, tuple[tuple[str, str], dict[str, Any]]] = {
    "sunset": (("warm sunset", "orange sunset glow"), {
        "adjust": {"temperature": 60, "saturation": 30, "contrast": 10},
        "filter": {"name": "warm_Sunset", "intensity": 70}}),
    "winter": (("cold winter morning", "icy frozen dawn"), {
        "adjust": {"temperature": -60, "exposure": 20, "saturation": -20},
        "selective_adjust": {"blue": {"saturation": 40}},
        "filter": {"name": "cool_Morning", "intensity": 50}}),
    "noir": (("black and white noir", "dark monochrome detective film"), {
        "adjust": {"saturation": -100, "contrast": 50, "shadows": -30},
        "filter": {"name": "mono_Noir", "intensity": 90}}),
    "forest": (("lush green forest", "mossy woodland trees"), {
        "adjust": {"vibrance": 40, "tint": -30},
        "selective_adjust": {"green": {"saturation": 60, "luminance": -10},
                             "yellow": {"saturation": 20}}}),
    "neon": (("neon city night", "cyberpunk street lights"), {
        "adjust": {"exposure": -30, "tint": 40, "contrast": 30},
        "selective_adjust": {"cyan": {"saturation": 50}, "blue": {"saturation": 50}},
        "filter": {"name": "vivid_Neon", "intensity": 80}}),
    "vintage": (("faded vintage film", "old 1970s photo"), {
        "adjust": {"contrast": -40, "shadows": 40, "saturation": -40},
        "filter": {"name": "vintage_70s", "intensity": 60}}),
}
TEMPLATES = ("{}", "{} vibe", "make it {}", "a {} feel", "{} please")
GARBAGE = ["", "   ", "🙂", "x" * 5000, "the of and", "42"]


def tiny_world() -> TrainingData:
    intents, answers = [], []
    for phrases, answer in LOOKS.values():
        for phrase in phrases:
            for template in TEMPLATES:
                intents.append(template.format(phrase))
                answers.append(parse_answer(answer))
    return TrainingData(intents, answers)


DATA = tiny_world()
# The embedding students; the generative seq2seq student has its own tests/test_seq2seq.py.
KINDS = ("retrieval", "heads")

# Few epochs, small batches: ~150 optimiser steps on 60 intents.
HEADS_SETTINGS = {"epochs": 40, "batch_size": 16, "hidden": 128, "device": "cpu"}


def score(data: TrainingData, predictions: list[Answer]) -> SubsetScore:
    scores = [s for text, truth, predicted in zip(data.intents, data.answers, predictions,
                                                  strict=True)
              for s in score_intent(text, truth, predicted)]
    return subset_score("train", scores)


def constant_answer(data: TrainingData) -> Answer:
    """The floor: every tool used, mean sliders, the most common filter (as `baselines` does)."""
    n = len(data.answers)
    adjust = {key: round(sum((a.adjust or {}).get(key, 0) for a in data.answers) / n)
              for key in ("temperature", "saturation", "contrast", "exposure", "shadows",
                          "vibrance", "tint")}
    names = [a.filter.name for a in data.answers if a.filter]
    return parse_answer({
        "adjust": adjust,
        "selective_adjust": {"blue": {"saturation": 20}, "green": {"saturation": 10}},
        "filter": {"name": max(set(names), key=names.count), "intensity": 70}})


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    # The models here are tiny: a second intra-op thread saves nothing, and on a busy shared
    # machine its barrier waits made each training step 10-100x slower (minutes, not seconds).
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def encoder() -> Any:
    from workbench.embeddings import load_encoder

    return load_encoder()


@pytest.fixture(scope="module")
def retrieval(encoder: Any) -> Student:
    student = make_student("retrieval", {"device": "cpu"}, encoder=encoder)
    student.train(DATA)
    return student


@pytest.fixture(scope="module")
def heads(encoder: Any) -> Student:
    student = make_student("heads", HEADS_SETTINGS, encoder=encoder)
    student.train(DATA)
    return student


@pytest.fixture(params=KINDS)
def student(request: pytest.FixtureRequest) -> Student:
    trained: Student = request.getfixturevalue(request.param)
    return trained


def test_the_constant_floor_is_low() -> None:
    # The thresholds below mean something only because guessing one answer scores far lower:
    # one filter name out of five (accuracy .2) and mean sliders that point nowhere in particular.
    floor = score(DATA, [constant_answer(DATA)] * len(DATA.intents))
    assert floor.tools["filter"].quality == pytest.approx(0.2)
    assert floor.overall is not None and floor.overall < 0.6


def test_retrieval_answers_its_training_intents_exactly(retrieval: Student) -> None:
    # Every training intent is its own nearest neighbour (cosine 1), so it gets its own truth.
    assert retrieval.predict(DATA.intents) == list(DATA.answers)
    assert score(DATA, retrieval.predict(DATA.intents)).overall == 1.0


def test_heads_learn_the_tiny_world(heads: Student) -> None:
    # Six well-separated looks, ~150 steps: the heads fit them nearly perfectly. The bar (.9 for
    # every selection F1 and quality) leaves room for rounding and an odd phrasing, and sits far
    # above the constant floor (overall .47: adjust quality .27, filter accuracy .2).
    result = score(DATA, heads.predict(DATA.intents))
    numbers = {f"{tool} {part}": value for tool, scores in result.tools.items()
               for part, value in (("selection", scores.selection), ("quality", scores.quality))}
    assert all(value is not None and value >= 0.9 for value in numbers.values()), numbers
    assert result.overall is not None and result.overall >= 0.9
    intensity_error = result.tools["filter"].intensity_error
    assert intensity_error is not None and intensity_error <= 10


@pytest.mark.parametrize("kind", KINDS)
def test_unseen_phrasings_get_the_right_filter(kind: str, request: pytest.FixtureRequest) -> None:
    trained: Student = request.getfixturevalue(kind)
    unseen = {"sunset": "sunset at the beach", "noir": "black & white crime movie",
              "neon": "neon lights in the city at night", "vintage": "vintage faded film look"}
    predicted = trained.predict(list(unseen.values()))
    for look, answer in zip(unseen, predicted, strict=True):
        expected = LOOKS[look][1]["filter"]["name"]
        assert answer.filter is not None and answer.filter.name == expected, look


def test_every_prediction_is_a_valid_answer(student: Student) -> None:
    # Empty, whitespace-only and meaningless texts are embedded like any other text (the
    # tokenizer truncates long ones): they get some valid answer, never an exception.
    texts = [*DATA.intents[:5], *GARBAGE]
    predicted = student.predict(texts)
    assert len(predicted) == len(texts)
    for answer in predicted:
        assert isinstance(answer, Answer)
        assert parse_answer(answer.to_dict()) == answer
    assert student.predict([]) == []


def test_batch_size_does_not_change_predictions(student: Student) -> None:
    texts = list(DATA.intents[::7])
    assert student.predict(texts, batch_size=3) == student.predict(texts)


def test_save_and_load_give_identical_predictions(student: Student, encoder: Any,
                                                  tmp_path: Path) -> None:
    student.save(tmp_path)
    loaded = load_student(tmp_path, encoder=encoder)
    assert loaded.kind == student.kind
    assert loaded.config_dict() == student.config_dict()
    texts = [*DATA.intents, *GARBAGE]
    assert loaded.predict(texts) == student.predict(texts)
    assert loaded.size_bytes() == student.size_bytes() > 0


def test_a_saved_student_answers_through_onnx_with_the_torch_encoders_numbers(
        student: Student, encoder: Any, tmp_path: Path) -> None:
    student.save(tmp_path)
    assert (tmp_path / ONNX_FILE).exists()
    loaded: Any = load_student(tmp_path, encoder=encoder)
    assert loaded.onnx is not None
    texts = [*DATA.intents[:10], *GARBAGE]
    expected = encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert np.abs(loaded.onnx.encode(texts) - expected).max() < 1e-4
    # Length buckets: a long text among short ones changes nothing, each row comes back in
    # its place (the same numbers as encoding it alone), and no text gives (0, D).
    mixed = ["warm", "a golden hour glow with soft faded shadows and a little more contrast",
             "", "b&w", *DATA.intents[:20]]
    alone = np.concatenate([loaded.onnx.encode([text]) for text in mixed])
    assert np.abs(loaded.onnx.encode(mixed) - alone).max() < 1e-5
    assert loaded.onnx.encode([]).shape == (0, expected.shape[1])


def test_the_torch_runtime_saves_no_onnx_twin(encoder: Any, tmp_path: Path) -> None:
    student = make_student("retrieval", {"runtime": "torch", "device": "cpu"}, encoder=encoder)
    student.train(DATA)
    student.save(tmp_path)
    assert not (tmp_path / ONNX_FILE).exists()
    loaded: Any = load_student(tmp_path, encoder=encoder)
    assert loaded.onnx is None
    assert loaded.predict(list(DATA.intents)) == student.predict(list(DATA.intents))


def test_heads_training_is_deterministic_and_reports_epochs(heads: Student,
                                                            encoder: Any) -> None:
    seen: list[tuple[str, int, int]] = []
    again = make_student("heads", HEADS_SETTINGS, encoder=encoder)
    again.train(DATA, lambda stage, done, total: seen.append((stage, done, total)))
    texts = [*DATA.intents, *GARBAGE]
    assert again.predict(texts) == heads.predict(texts)
    epochs = [(done, total) for stage, done, total in seen if stage == "epoch"]
    assert epochs == [(i, 40) for i in range(1, 41)]
    assert ("embed", 60, 60) in seen


def test_the_bag_reads_words_bigrams_numbers_and_trigrams() -> None:
    from workbench.students.heads import lexical_features, lexical_ids

    version_1 = ["less", "contrast", "+20", "less contrast", "contrast +20",
                 "<le", "les", "ess", "ss>",
                 "<co", "con", "ont", "ntr", "tra", "ras", "ast", "st>",
                 "#+", "#+small"]
    assert lexical_features("Less  CONTRAST +20", version=1) == version_1
    # Version 2 (the default) adds the skip-bigram and the number's sign beside its word.
    assert lexical_features("Less  CONTRAST +20") == [*version_1, "less _ +20", "contrast #+"]
    assert lexical_features("not so saturated")[-1:] == ["not _ saturated"]
    assert lexical_features("-20 shadows, tint 5")[-4:] == [
        "-20 _ tint", "shadows _ 5", "#- shadows", "tint #+"]
    assert lexical_features("saturation -100", version=1)[-2:] == ["#-", "#-big"]
    # A typo keeps most of the word's trigrams: "contrats" shares 5 of "contrast"'s 8.
    typo = set(lexical_features("contrats")) & set(lexical_features("contrast"))
    assert typo == {"<co", "con", "ont", "ntr", "tra"}
    assert lexical_ids("", 64) == [0]
    assert all(0 <= i < 64 for i in lexical_ids("boost the contrast", 64))


# Opposite instructions on one slider, and held-out phrasings of each.
DIRECTIONS = {"up": (("increase the contrast", "boost the contrast", "more contrast",
                      "raise the contrast", "add contrast", "push the contrast"),
                     ("please increase the contrast", "more contrast please")),
              "down": (("decrease the contrast", "reduce the contrast", "less contrast",
                        "lower the contrast", "cut the contrast", "drop the contrast"),
                       ("please decrease the contrast", "less contrast please"))}


def test_heads_tell_increase_from_decrease(encoder: Any) -> None:
    """With the bag, the heads learn which way each phrasing goes, held-out ones included."""
    intents, answers = [], []
    for way, (train, _) in DIRECTIONS.items():
        for text in train:
            intents.append(text)
            answers.append(parse_answer({"adjust": {"contrast": 40 if way == "up" else -40}}))
    student = make_student("heads", HEADS_SETTINGS, encoder=encoder)
    student.train(TrainingData(intents, answers))
    for way, (train, held_out) in DIRECTIONS.items():
        for answer in student.predict([*train, *held_out]):
            assert answer.adjust is not None
            assert (answer.adjust["contrast"] > 0) == (way == "up")


def test_heads_saved_before_the_bag_still_load(encoder: Any, tmp_path: Path) -> None:
    """A run saved when the first layer was trunk.0 (and the second trunk.3) and the config
    had no lexical_buckets loads as the same student."""
    import json

    import torch

    student = make_student("heads", {**HEADS_SETTINGS, "epochs": 2, "lexical_buckets": 0},
                           encoder=encoder)
    student.train(DATA)
    student.save(tmp_path)
    state = torch.load(tmp_path / "heads.pt", weights_only=True)
    old = {key.replace("first.", "trunk.0.").replace("trunk.2.", "trunk.3."): value
           for key, value in state.items()}
    torch.save(old, tmp_path / "heads.pt")
    stored = json.loads((tmp_path / "student.json").read_text())
    del stored["config"]["lexical_buckets"]
    (tmp_path / "student.json").write_text(json.dumps(stored))
    loaded = load_student(tmp_path, encoder=encoder)
    assert loaded.predict(list(DATA.intents)) == student.predict(list(DATA.intents))


def test_heads_saved_with_the_first_bag_keep_its_features(encoder: Any, tmp_path: Path) -> None:
    """A run saved before lexical_version existed read version-1 features; it loads as
    version 1 and answers as it did."""
    import json

    student = make_student("heads", {**HEADS_SETTINGS, "epochs": 3, "lexical_buckets": 256,
                                     "lexical_version": 1}, encoder=encoder)
    student.train(DATA)
    student.save(tmp_path)
    stored = json.loads((tmp_path / "student.json").read_text())
    del stored["config"]["lexical_version"]
    (tmp_path / "student.json").write_text(json.dumps(stored))
    loaded = load_student(tmp_path, encoder=encoder)
    assert loaded.config.lexical_version == 1
    assert loaded.predict(list(DATA.intents)) == student.predict(list(DATA.intents))


def test_heads_read_typos_as_the_training_word_meant(encoder: Any, tmp_path: Path) -> None:
    """`spelling`: the saved vocabulary corrects a typo of a training word before anything
    reads it; a run saved before spelling existed reads it as typed."""
    import json

    student = make_student("heads", {**HEADS_SETTINGS, "epochs": 3}, encoder=encoder)
    student.train(DATA)
    assert student.predict(["cyberpnuk street lihgts"]) == \
        student.predict(["cyberpunk street lights"])
    student.save(tmp_path)
    loaded = load_student(tmp_path, encoder=encoder)
    assert loaded.predict(["icy frozne dwan"]) == student.predict(["icy frozen dawn"])
    stored = json.loads((tmp_path / "student.json").read_text())
    del stored["config"]["spelling"]
    (tmp_path / "student.json").write_text(json.dumps(stored))
    old: Any = load_student(tmp_path, encoder=encoder)
    assert old.speller is None
    assert old.predict(["cyberpnuk street lihgts"]) == \
        old._predict_whole(["cyberpnuk street lihgts"], 256)


def test_heads_saved_before_clauses_answer_requests_whole(encoder: Any, tmp_path: Path) -> None:
    """New heads runs answer a request of several clauses clause by clause; a run saved before
    that setting existed answers it whole, as it did."""
    import json

    from workbench.students.clauses import answer_by_clauses

    student = make_student("heads", {**HEADS_SETTINGS, "epochs": 3}, encoder=encoder)
    assert student.config.clauses
    student.train(DATA)
    requests = ["brighter and less saturated", "warmer, more contrast", "golden hour"]
    whole = student._predict_whole(requests, 256)
    assert student.predict(requests) == answer_by_clauses(
        requests, whole, lambda texts: student._predict_whole(texts, 256))
    student.save(tmp_path)
    stored = json.loads((tmp_path / "student.json").read_text())
    del stored["config"]["clauses"]
    (tmp_path / "student.json").write_text(json.dumps(stored))
    loaded = load_student(tmp_path, encoder=encoder)
    assert not loaded.config.clauses
    assert loaded.predict(requests) == whole


@pytest.mark.parametrize(("setting", "message"), [
    ({"bag_dropout": 1.0}, "bag_dropout must be in [0, 1), got 1.0"),
    ({"bag_dropout": -0.1}, "bag_dropout must be in [0, 1), got -0.1"),
    ({"lexical_version": 3}, "lexical_version must be one of 1, 2, got 3"),
])
def test_heads_config_names_a_bad_bag_setting(setting: dict, message: str) -> None:
    from workbench.students.heads import HeadsConfig

    with pytest.raises(ValueError) as error:
        HeadsConfig(**setting)
    assert str(error.value) == message


def test_bag_dropout_leaves_features_out_but_never_a_whole_intent() -> None:
    import random

    from workbench.students.heads import _bags

    ids = [list(range(40)), [7]]
    flat, offsets, weights = _bags(ids, "cpu", 0.5, random.Random(0))
    kept = len(flat) - 1  # the second intent keeps its only feature
    assert offsets.tolist() == [0, kept]
    assert flat.tolist()[-1] == 7
    assert 10 <= kept <= 30                         # about half of 40 (binomial, p = 0.5)
    assert weights[:kept].tolist() == pytest.approx([kept ** -0.5] * kept)
    full, _, _ = _bags(ids, "cpu")                  # no dropout: everything, 1 / sqrt(40)
    assert full.tolist() == [*range(40), 7]


def test_fine_tuning_saves_the_encoder_and_leaves_the_shared_one_alone(encoder: Any,
                                                                       tmp_path: Path) -> None:
    # One frozen epoch, then one joint epoch (2 steps of 32) through the real encoder.
    before = [p.detach().clone() for p in encoder.parameters()]
    seen: list[tuple[int, int]] = []
    student = make_student("heads", {"fine_tune_encoder": True, "epochs": 1,
                                     "fine_tune_epochs": 1, "batch_size": 32, "hidden": 32,
                                     "device": "cpu"}, encoder=encoder)
    student.train(DATA, lambda stage, done, total: seen.append((done, total))
                  if stage == "epoch" else None)
    assert seen == [(1, 2), (2, 2)]
    assert all(bool((p == q).all()) for p, q in zip(encoder.parameters(), before, strict=True))
    tuned = student.encoder.parameters()  # type: ignore[attr-defined]
    assert any(bool((p != q).any()) for p, q in zip(tuned, before, strict=True))
    student.save(tmp_path)
    assert (tmp_path / "encoder").is_dir()
    texts = list(DATA.intents[::6])
    assert load_student(tmp_path).predict(texts) == student.predict(texts)


def test_settings_are_checked(encoder: Any) -> None:
    with pytest.raises(WorkbenchError, match="unknown setting.*epoch"):
        make_student("heads", {"epoch": 3})
    with pytest.raises(WorkbenchError, match="device"):
        make_student("retrieval", {"device": "tpu"})
    with pytest.raises(WorkbenchError, match="hidden"):
        make_student("heads", {"hidden": 0})
    with pytest.raises(WorkbenchError, match="unknown student"):
        make_student("oracle", None)
    assert make_student("heads", None, encoder=encoder).config_dict()["seed"] == 0


def test_untrained_students_say_so(tmp_path: Path, encoder: Any) -> None:
    for kind in KINDS:
        with pytest.raises(WorkbenchError, match="not trained"):
            make_student(kind, None, encoder=encoder).predict(["golden hour"])
    with pytest.raises(WorkbenchError, match="no saved student"):
        load_student(tmp_path)


def test_importing_the_students_package_does_not_import_torch() -> None:
    code = ("import sys, workbench.students; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
