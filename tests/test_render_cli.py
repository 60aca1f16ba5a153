"""`workbench render` and `workbench gallery` on the tiny world with a retrieval run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines import train
from tests.conftest import LOOKS, curated_store
from workbench import render
from workbench.cli import main
from workbench.store import Store
from workbench.tools import parse_answer


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
    code, out, _ = cli("reality-check", "report", 1)
    assert "Relevant: 3 / 3" in out
    assert "Mimics teacher: 2 / 3" in out  # sample 2 splits 1-1: a tie counts as no
    code, _, err = cli("reality-check", "report")
    assert code == 2 and "needs a check id" in err
