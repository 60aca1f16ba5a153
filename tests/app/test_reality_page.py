"""Reality check page (issue 14): create a check in the app, annotate its samples one at a time
(buttons with the keys Y, N, S), read the report; the answers stored are the ones the terminal
annotator stores for the same replies, and the report has the CLI's numbers.

The world is the Errors page's (tests/app/test_errors_page.py): a retrieval run whose dataset
version has three test intents, so a check of n=3 takes them all."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.app.test_errors_page import shared_world
from tests.conftest import curated_store
from workbench.store import Store


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return shared_world(tmp_path_factory)


def copy_of(world, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "w.duckdb"
    shutil.copy(world[0], path)
    return path


@pytest.fixture
def db(world, tmp_path: Path) -> Path:
    return copy_of(world, tmp_path / "app")


def create(at: Any, n: int = 3) -> Any:
    at.number_input(key="reality_n").set_value(n)
    at.button(key="reality_create").click().run()
    assert not at.exception
    return at


def click(at: Any, *keys: str) -> Any:
    for key in keys:
        at.button(key=key).click().run()
        assert not at.exception
    return at


def plain(text: str) -> str:
    """Markdown-escaped text as it reads on screen."""
    return text.replace("\\", "")


def shown_sample(at: Any) -> int:
    """The number of the sample on screen ('Sample 2 of 3')."""
    [heading] = [m.value for m in at.markdown if m.value.startswith("#### Sample ")]
    return int(heading.split()[2])


def replier(replies: list[str]) -> Any:
    """input() for the terminal annotator: these replies, in order."""
    feed = iter(replies)
    return lambda prompt: next(feed)


def stored(db: Path) -> tuple[list[dict], list[dict]]:
    """The check's samples and answers, without their times."""
    store = Store(db)
    samples = store.query("SELECT * EXCLUDE (check_id) FROM reality_samples ORDER BY sample_no")
    answers = store.query("SELECT check_id, sample_no, annotator, relevant, mimics "
                          "FROM reality_answers ORDER BY sample_no, annotator")
    return samples, answers


# ---------------------------------------------------------------------------- empty databases

def test_without_a_database_it_says_how_to_make_one(page, tmp_path: Path) -> None:
    at = page("reality", tmp_path / "none.duckdb").run()
    assert not at.exception
    assert "workbench demo" in at.info[0].body


def test_without_runs_it_says_what_to_train(page, tmp_path: Path) -> None:
    store = curated_store(tmp_path)
    at = page("reality", store.path).run()
    assert not at.exception
    infos = [info.body for info in at.info]
    assert any("No training run yet" in body for body in infos)
    assert any("No reality check yet" in body for body in infos)


# ---------------------------------------------------------------------------- a whole check

def test_create_annotate_and_report_as_the_cli_does(page, db: Path, world, tmp_path: Path,
                                                    monkeypatch, capsys) -> None:
    """One annotator: sample 1 yes/no, sample 2 skipped, sample 3 no/no, then the skipped
    sample 2 yes/yes. The CLI, given the same replies at its prompt on a copy of the same
    database, stores the same check and the same answers; the report's numbers are its."""
    at = page("reality", db)
    at.session_state["reality_annotator"] = "ana"
    at.run()
    create(at)
    assert "Created reality check 1: 3 of the 3 test intents" in plain(at.success[0].body)
    assert at.selectbox(key="reality_check").value == 1
    assert (db.parent / "reality_checks" / "1" / "sheet.png").is_file()   # rendered as the CLI
    assert shown_sample(at) == 1
    assert "Is the student's image relevant to the intent?" in "\n".join(
        m.value for m in at.markdown)
    assert [c for image in at.image for c in image.captions] == ["original · teacher · student"]
    click(at, "reality_yes")
    assert "correctly mimic the teacher" in "\n".join(m.value for m in at.markdown)
    assert stored(db)[1] == []                      # nothing saved before the second answer
    click(at, "reality_no")
    assert "Saved sample 1: relevant yes, mimics no." in at.success[0].body
    assert shown_sample(at) == 2
    click(at, "reality_skip")
    assert shown_sample(at) == 3
    click(at, "reality_no", "reality_no")
    assert any("skipped the 1 sample(s)" in info.body for info in at.info)
    click(at, "reality_unskip")
    assert shown_sample(at) == 2
    click(at, "reality_yes", "reality_yes")
    assert any("has answered all 3 samples" in s.body for s in at.success)
    app_samples, app_answers = stored(db)
    assert [(a["sample_no"], a["relevant"], a["mimics"]) for a in app_answers] == [
        (1, True, False), (2, True, True), (3, False, False)]

    from workbench.cli import main

    cli_db = copy_of(world, tmp_path / "cli")
    run_id = world[1]["run_id"]
    assert main(["reality-check", "create", "--run", run_id, "--n", "3", "--db",
                 str(cli_db)]) == 0
    for replies in (["y", "n", "s", "n", "n"], ["y", "y"]):
        monkeypatch.setattr("builtins.input", replier(replies))
        assert main(["reality-check", "annotate", "1", "--annotator", "ana", "--db",
                     str(cli_db)]) == 0
    assert stored(cli_db) == (app_samples, app_answers)

    capsys.readouterr()
    assert main(["reality-check", "report", "1", "--db", str(cli_db)]) == 0
    cli_report = capsys.readouterr().out
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Relevant": "2 / 3", "Mimics teacher": "1 / 3"}
    for label, value in metrics.items():
        assert f"{label}: {value} (majority of 1 annotator" in cli_report
    report = plain("\n".join(c.value for c in at.caption))
    assert "66.7% of 3 answers were yes" in report and "33.3% of 3 answers were yes" in report
    assert "66.7% of 3 answers were yes" in cli_report
    rows = next(d.value for d in at.dataframe if "stratum" in d.value)
    assert list(rows["relevant (yes)"]) == [1, 1, 0] and list(rows["mimics (yes)"]) == [0, 1, 0]


def test_the_answer_buttons_have_keyboard_shortcuts(page, db: Path) -> None:
    at = page("reality", db).run()
    create(at)
    shortcuts = {key: at.button(key=key).proto.shortcut
                 for key in ("reality_yes", "reality_no", "reality_skip")}
    assert shortcuts == {"reality_yes": "y", "reality_no": "n", "reality_skip": "s"}  # Y, N, S


def test_a_sample_answered_again_replaces_the_earlier_answer(page, db: Path) -> None:
    at = page("reality", db)
    at.session_state["reality_annotator"] = "ben"
    at.run()
    create(at)
    click(at, "reality_yes", "reality_yes", "reality_yes", "reality_yes", "reality_no",
          "reality_no")
    at.selectbox(key="reality_again_pick").set_value(2).run()
    assert shown_sample(at) == 2
    click(at, "reality_no", "reality_no")
    answers = {a["sample_no"]: (a["relevant"], a["mimics"]) for a in stored(db)[1]}
    assert answers == {1: (True, True), 2: (False, False), 3: (False, False)}
    assert {m.label: m.value for m in at.metric} == {"Relevant": "1 / 3",
                                                      "Mimics teacher": "1 / 3"}


def test_two_annotators_and_a_report_without_answers(page, db: Path) -> None:
    at = page("reality", db).run()
    create(at, n=2)
    assert any("No answers yet" in info.body for info in at.info)
    for name, replies in (("ana", ("reality_yes", "reality_yes", "reality_yes", "reality_no")),
                          ("ben", ("reality_yes", "reality_no", "reality_no", "reality_no"))):
        at.text_input(key="reality_annotator").set_value(name).run()
        assert shown_sample(at) == 1                    # each annotator starts at sample 1
        click(at, *replies)
    assert {m.label: m.value for m in at.metric} == {"Relevant": "1 / 2",
                                                      "Mimics teacher": "0 / 2"}
    assert any("Annotators: 2 (ana, ben)" in plain(m.value) for m in at.markdown)


def test_a_missing_image_is_an_error_not_a_traceback(page, db: Path, world,
                                                     tmp_path: Path) -> None:
    from PIL import Image

    from pipelines import reality_check as rc

    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 24), (120, 80, 40)).save(photo)
    rc.create_check(Store(db), world[1]["run_id"], n=2, image=str(photo))
    photo.unlink()
    at = page("reality", db).run()
    assert not at.exception
    assert any("Could not render the sample" in e.body for e in at.error)
    click(at, "reality_yes", "reality_no")          # the questions still work
    assert [(a["relevant"], a["mimics"]) for a in stored(db)[1]] == [(True, False)]
