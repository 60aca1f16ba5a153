"""`workbench render` and `workbench gallery` on the tiny world with a retrieval run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines import reality_check as rc
from pipelines import render as render_step
from pipelines import train
from tests.conftest import LOOKS, curated_store
from workbench import render
from workbench.cli import main
from workbench.store import Store, runs
from workbench.tools import Answer, parse_answer


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, str]:
    store = curated_store(tmp_path_factory.mktemp("render"))
    return store, train.run(train.TrainConfig(student="retrieval"), store).run_id


@pytest.fixture
def cli(world, capsys):
    store, _ = world

    def run(*args: object) -> tuple[int, str, str]:
        code = main([str(a) for a in args] + ["--db", str(store.path)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


def png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def test_the_teacher_answer_of_a_known_intent_is_rendered(cli, tmp_path) -> None:
    intent = "black and white noir"  # LOOKS: contrast +40, mono_Noir at 80
    code, out, err = cli("render", intent, "--image", "coffee", "--out", tmp_path / "t.png")
    assert code == 0, err
    assert "the teacher's ground truth (dataset version 1)" in out
    adjust, filter_ = LOOKS[intent]
    expected = render.render(render.fit_image(render.load_image("coffee"), 1024),
                             parse_answer({"adjust": adjust, "filter": filter_}))
    assert np.array_equal(png(tmp_path / "t.png"), expected)


def test_an_unknown_intent_needs_a_run_and_then_works(cli, world, tmp_path) -> None:
    code, _, err = cli("render", "a look nobody asked for", "--out", tmp_path / "u.png")
    assert code == 2 and "has no teacher answer; render a student's prediction with --run" in err
    code, out, err = cli("render", "a look nobody asked for", "--run", "--out", tmp_path / "u.png")
    assert code == 0, err
    assert f"run {world[1]}'s prediction" in out
    assert png(tmp_path / "u.png").shape == (512, 512, 3)  # astronaut


def test_compare_writes_a_three_panel_strip(cli, tmp_path) -> None:
    code, _, err = cli("render", "cold blue winter", "--compare", "--out", tmp_path / "c.png",
                       "--image", "chelsea")
    assert code == 0, err
    strip = png(tmp_path / "c.png")
    assert strip.shape[1] > 2.5 * strip.shape[0]  # three panels side by side


def test_gallery_and_image_errors(cli, tmp_path) -> None:
    code, out, err = cli("gallery", "--out", tmp_path / "g.png", "--intent", "warm golden sunset",
                         "--intent", "something new")
    assert code == 0, err
    assert "2 intents" in out
    assert png(tmp_path / "g.png").shape[0] > 2 * 200
    (tmp_path / "notes.txt").write_text("not an image")
    code, _, err = cli("render", "cold blue winter", "--image", tmp_path / "notes.txt",
                       "--out", tmp_path / "x.png")
    assert code == 2 and "notes.txt" in err
    code, _, err = cli("render", "cold blue winter", "--image", "mona_lisa",
                       "--out", tmp_path / "x.png")
    assert code == 2 and "astronaut" in err


def test_reality_check_from_the_terminal(cli, tmp_path) -> None:
    code, out, err = cli("reality-check", "create", "--n", 3, "--seed", 1)
    assert code == 0, err
    assert out.startswith("reality check 1: 3 test intents")
    for name, marks in (("ana", "yyy"), ("ben", "yny")):
        answers = tmp_path / f"{name}.csv"
        answers.write_text("sample,relevant,mimics\n" +
                           "".join(f"{i},y,{m}\n" for i, m in enumerate(marks, start=1)))
        code, out, err = cli("reality-check", "annotate", 1, "--annotator", name,
                             "--answers", answers)
        assert (code, out.strip()) == (0, f"recorded 3 answers of {name} for reality check 1")
    code, out, _ = cli("reality-check", "list", "--json")   # JSON only, no text after it
    assert code == 0 and [c["n_answers"] for c in json.loads(out)] == [6]
    code, out, _ = cli("reality-check", "report", 1)
    assert "Relevant: 3 / 3" in out
    assert "Mimics teacher: 2 / 3" in out  # sample 2 splits 1-1: a tie counts as no
    with pytest.raises(SystemExit) as refused:     # argparse: the check id is required
        cli("reality-check", "report")
    assert refused.value.code == 2


# --- the comparison strips: the same pixels and captions as the panels each step built by hand


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.png"
    pixels = Image.new("RGB", (64, 48))
    pixels.putdata([(4 * x, 5 * y, 128) for y in range(48) for x in range(64)])
    pixels.save(path)
    return path


def teacher_of(intent: str) -> Answer:
    adjust, filter_ = LOOKS[intent.removeprefix("very ").removeprefix("soft ")]
    return parse_answer({"adjust": adjust, "filter": filter_})


def test_compare_and_gallery_are_original_teacher_student(world, small, tmp_path) -> None:
    store, run_id = world
    image = render.load_image(small)
    [known, unknown] = ["cold blue winter", "a look nobody asked for"]
    _, student = runs.load_run(store, run_id)
    predicted = dict(zip([known, unknown], student.predict([known, unknown]), strict=True))
    for intent, teacher in ((known, teacher_of(known)), (unknown, None)):
        render_step.render_intent(render_step.RenderConfig(
            intent=intent, image=str(small), out=tmp_path / "c.png", compare=True), store)
        middle = ("teacher", render.render(image, teacher)) if teacher is not None \
            else ("teacher: not in the data", image)
        expected = render.compare_strip([("original", image), middle, (
            f"student ({run_id})", render.render(image, predicted[intent]))], 256)
        assert np.array_equal(png(tmp_path / "c.png"), expected), intent

    render_step.gallery(render_step.GalleryConfig(out=tmp_path / "g.png", intents=(known, unknown),
                                                  image=str(small), height=40), store)
    rows = [(known, [("original", image), ("teacher", render.render(image, teacher_of(known))),
                     ("student", render.render(image, predicted[known]))]),
            (unknown, [("original", image), ("teacher: not in the data", image),
                       ("student", render.render(image, predicted[unknown]))])]
    assert np.array_equal(png(tmp_path / "g.png"), render.contact_sheet(rows, 40))


def test_reality_check_strips_and_sheet(world, small, tmp_path) -> None:
    store, run_id = world
    copy = tmp_path / "world"  # a copy: the terminal test above numbers its check 1
    shutil.copytree(store.path.parent, copy)
    store = Store(copy / store.path.name, lock_timeout=2.0)
    check = rc.create_check(store, run_id, n=2, seed=1)
    paths = rc.render_check(store, check.check_id, tmp_path / "renders", image=small, height=40)
    image = render.load_image(small)
    rows = []
    for sample, path in zip(rc.check_samples(store, check.check_id), paths, strict=False):
        teacher, student = render.render(image, sample.teacher), render.render(image, sample.student)
        expected = render.compare_strip([
            (f"#{sample.sample_no} original: {sample.intent_text}", image),
            ("teacher", teacher), ("student", student)], 40)
        assert np.array_equal(png(path), expected), path.name
        rows.append((f"{sample.sample_no}. {sample.intent_text}",
                     [("original", image), ("teacher", teacher), ("student", student)]))
    assert len(rows) == 2 and paths[-1].name == rc.SHEET_FILE
    assert np.array_equal(png(paths[-1]), render.contact_sheet(rows, 32))  # max(32, 40 * 5 // 8)
