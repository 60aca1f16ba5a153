"""Errors page: empty databases, and a small world with a trained retrieval student, its test
evaluation, a hand-made evaluation whose gaps are known, and a mining evaluation."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import curated_store
from workbench.paraphrase import ParaphraseResult
from workbench.progress import Progress
from workbench.store import Store
from workbench.store.versions import Split, version_rows
from workbench.tools import answer_from_json, parse_answer


class Scripted:
    """A paraphraser answering from a table (as in tests/test_augment.py)."""

    name = "scripted"

    def __init__(self, table: dict[str, list[str]]):
        self.table = table

    def paraphrase(self, intents: Sequence[str], n: int,
                   progress: Progress | None = None) -> list[ParaphraseResult]:
        return [ParaphraseResult(text, tuple(self.table.get(text, [])[:n])) for text in intents]


def build_world(folder: Path) -> dict[str, Any]:
    """The curated world (3 test, 15 training intents) plus, in this order:
    evaluation 1: a retrieval run on the test split (every answer right: each look has one
        teacher output, and every test intent has training neighbours of the same look);
    evaluation 2: the same run, hand-made answers for the three test intents (sorted by key):
        the first exact, the second with an extra slider (adjust cosine 1/sqrt 2), the third
        without adjust (cosine 0) and with a wrong filter (mono_Sepia);
    evaluation 3: mining (the run on its training split);
    augmentation round 1: one training intent paraphrased into three new candidates and a test
        intent with '!' appended (dropped: near_test)."""
    from pipelines import augment, evaluate, train
    from workbench.embeddings import load_encoder

    encoder = load_encoder()
    store = curated_store(folder)
    run = train.run(train.TrainConfig(student="retrieval", student_config={"runtime": "torch"}),
                    store, encoder=encoder)
    evaluate.evaluate_run(run.run_id, None, store, encoder=encoder)
    with store.session() as session:
        test = version_rows(session, 1, Split.TEST)
        training = version_rows(session, 1, Split.TRAIN)

    def perturbed(i: int, row: dict) -> Any:
        truth = answer_from_json(row["adjust"], row["selective_adjust"], row["filter"])
        if i == 0:
            return truth
        if i == 1:
            assert truth.adjust is not None and truth.adjust["exposure"] == 0
            return parse_answer({"adjust": {**truth.adjust, "exposure": 40},
                                 "filter": truth.to_dict()["filter"]})
        return parse_answer({"filter": {"name": "mono_Sepia", "intensity": 50}})

    samples = [evaluate.Sample(row["intent_key"], row["intent_key"], row["request_count"],
                               answer_from_json(row["adjust"], row["selective_adjust"],
                                                row["filter"]), perturbed(i, row))
               for i, row in enumerate(test)]
    with store.atomic() as session:
        evaluate.evaluate_samples(session, samples, evaluate.EvaluationKind.RUN, run.run_id, 1,
                                  Split.TEST)
    augment.mine(run.run_id, store, encoder)
    source = training[0]
    scripted = Scripted({source["intent_text"]: [
        "a sunny honey glow", "icy polar chill", "dusty old photograph",
        test[0]["intent_text"] + "!"]})
    augment.run(augment.AugmentConfig(sources=(source["intent_key"],), n=4), store,
                encoder=encoder, paraphraser=scripted)
    return {"run_id": run.run_id, "test": test, "train": training, "source": source}


def shared_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """`build_world` once per test session (the Errors and Augmentation page tests share it):
    (its database, what `build_world` returned). Tests work on copies of the database."""
    folder = tmp_path_factory.getbasetemp() / "app-pages-world"
    done = folder / "world.json"
    if not done.exists():
        folder.mkdir(exist_ok=True)
        done.write_text(json.dumps(build_world(folder)))
    return folder / "w.duckdb", json.loads(done.read_text())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return shared_world(tmp_path_factory)


@pytest.fixture
def db(world, tmp_path: Path) -> Path:
    """A copy of the world's database for one test (the runs stay in the world's folder)."""
    path = tmp_path / "w.duckdb"
    shutil.copy(world[0], path)
    return path


def texts(rows: list[dict]) -> list[str]:
    return [row["intent_text"] for row in rows]


# ---------------------------------------------------------------------------- empty databases

def test_without_a_database_it_says_how_to_make_one(page, tmp_path: Path) -> None:
    at = page("errors", tmp_path / "none.duckdb").run()
    assert not at.exception
    assert "workbench demo" in at.info[0].body


def test_without_evaluations_it_says_what_to_run(page, tmp_path: Path) -> None:
    store = curated_store(tmp_path)
    at = page("errors", store.path).run()
    assert not at.exception
    assert "No evaluation of a student run yet" in at.info[0].body
    assert "workbench evaluate --run" in at.info[0].body
    at.radio(key="errors_kind").set_value("mining").run()
    assert "No mining evaluation yet" in at.info[0].body
    assert not at.tabs


# ---------------------------------------------------------------------------- a populated world

def test_the_newest_evaluation_lists_intents_largest_gap_first(page, db: Path, world) -> None:
    test = world[1]["test"]
    at = page("errors", db).run()
    assert not at.exception
    evaluation = at.selectbox(key="errors_evaluation")
    assert evaluation.options[0].startswith("#2 · run ") and evaluation.options[1].startswith("#1")
    # the tool tabs, then the answer editor's
    assert [tab.label for tab in at.tabs][:3] == ["Adjust", "Selective Adjust", "Filter"]
    adjust = at.dataframe(key="errors_table_adjust_2_1").value
    # The third intent has no adjust (gap = the mean), the second an extra slider.
    assert list(adjust["intent"]) == texts([test[2], test[1], test[0]])
    gaps = list(adjust["gap"])
    assert gaps == sorted(gaps, reverse=True) and gaps[0] > gaps[1] > 0 > gaps[2]
    assert list(adjust["flagged"]) == [True, True, False]
    assert list(adjust["teacher used"]) == [True] * 3
    assert list(adjust["student used"]) == [False, True, True]
    wrong = at.dataframe(key="errors_table_filter_2_1").value
    assert wrong.iloc[0]["intent"] == test[2]["intent_text"]
    assert wrong.iloc[0]["student filter"] == "mono_Sepia" and bool(wrong.iloc[0]["flagged"])
    assert not wrong["flagged"].iloc[1:].any()


def test_choosing_another_evaluation_lists_its_intents(page, db: Path, world) -> None:
    at = page("errors", db).run()
    at.selectbox(key="errors_evaluation").set_value(1).run()
    assert not at.exception
    adjust = at.dataframe(key="errors_table_adjust_1_1").value
    assert sorted(adjust["intent"]) == sorted(texts(world[1]["test"]))
    assert not adjust["flagged"].any()          # the retrieval student gets every look right
    at.checkbox(key="errors_flagged_adjust").check().run()
    assert any("No intent here" in info.body for info in at.info)


def test_an_intent_is_compared_parameter_by_parameter_with_renders(page, db: Path,
                                                                    world) -> None:
    second = world[1]["test"][1]
    at = page("errors", db).run()
    intent = at.selectbox(key="errors_intent")
    assert intent.value == world[1]["test"][2]["intent_key"]      # the worst comes first
    intent.set_value(second["intent_key"]).run()
    assert not at.exception
    assert second["intent_text"] in at.text[0].value
    tables = {len(d.value): d.value for d in at.dataframe if "parameter" in d.value}
    adjust, selective = tables[14], tables[12]
    filter_ = next(d.value for d in at.dataframe if "side" in d.value).set_index("side")
    assert list(adjust.loc[adjust["difference"] != 0, "parameter"]) == ["exposure"]
    assert adjust.set_index("parameter").loc["exposure", "student"] == 40
    assert selective["teacher"].isna().all() and selective["student"].isna().all()
    assert list(filter_.index) == ["teacher", "student", "difference"]
    assert list(filter_.loc["difference"]) == ["same", "+0"]
    assert filter_.loc["teacher", "name"] == json.loads(second["filter"])["name"]
    strips = [image for image in at.image if "original · teacher · student" in image.captions]
    assert len(strips) == 1


def test_selected_intents_are_sent_to_augmentation(page, db: Path, world) -> None:
    test = world[1]["test"]
    at = page("errors", db).run()
    keys = [test[2]["intent_key"], test[1]["intent_key"]]
    at.multiselect(key="errors_send_selection").set_value(keys).run()
    at.button(key="errors_send").click().run()
    assert not at.exception
    assert at.session_state["augmentation_sources"] == keys
    assert at.session_state["augmentation_sources_version"] == 1
    assert "Sent 2 intent(s)" in at.success[0].body and "Augmentation" in at.success[0].body
    assert "refuse" in at.warning[0].body        # test intents cannot be augmented


def test_training_intents_from_a_mining_evaluation_can_be_picked(page, db: Path,
                                                                 world) -> None:
    at = page("errors", db).run()
    at.radio(key="errors_kind").set_value("mining").run()
    assert at.selectbox(key="errors_evaluation").value == 3
    at.button(key="errors_add_intent").click().run()      # the compared intent
    chosen = at.multiselect(key="errors_send_selection").value
    assert chosen == [at.selectbox(key="errors_intent").value]
    at.button(key="errors_send").click().run()
    assert not at.exception
    assert at.session_state["augmentation_sources"] == chosen
    assert {row["intent_key"] for row in world[1]["train"]} >= set(chosen)
    assert not at.warning


def test_sending_nothing_says_so(page, db: Path) -> None:
    at = page("errors", db).run()
    at.button(key="errors_send").click().run()
    assert "Select at least one intent" in at.warning[0].body
    assert "augmentation_sources" not in at.session_state


def test_intent_text_is_shown_as_text_not_markdown(page, tmp_path: Path, world) -> None:
    """A crafted intent reaches the screen only through text elements and tables."""
    path = tmp_path / "w.duckdb"
    shutil.copy(world[0], path)
    key = world[1]["test"][2]["intent_key"]
    with Store(path).atomic() as session:
        session.execute("UPDATE dataset_rows SET intent_text = ? WHERE intent_key = ?",
                        ["**bold** <img src=x onerror=alert(1)>", key])
    at = page("errors", path).run()
    assert not at.exception
    assert at.text[0].value.startswith("Intent: **bold** <img")
    assert all("<img" not in markdown.value for markdown in at.markdown)


# ---------------------------------------------------------------------------- the editor

def test_the_compared_intent_can_be_relabelled_from_the_students_answer(page, db: Path,
                                                                         world) -> None:
    """Issue 13: the editor on the Errors page starts from the ground truth, offers the
    student's answer, and saves a curator's label."""
    worst = world[1]["test"][2]          # the student: no adjust, filter mono_Sepia @ 50
    at = page("errors", db)
    at.session_state["curator"] = "ana"
    at.run()
    assert at.selectbox(key="errors_intent").value == worst["intent_key"]
    start = at.selectbox(key="errors_editor.start")
    assert start.options[0].startswith("ground truth of version 1 (curation)")
    assert start.options[1].startswith("the student's answer (run ")
    truth = json.loads(worst["filter"])
    assert at.selectbox(key="errors_editor.filter.name").value == truth["name"]
    start.set_value(1).run()
    assert not at.toggle(key="errors_editor.use.adjust").value
    assert at.selectbox(key="errors_editor.filter.name").value == "mono_Sepia"
    at.button(key="errors_editor.save").click().run()
    assert not at.exception
    [label] = Store(db).query("SELECT source, adjust, filter, edited_from FROM labels "
                              "WHERE kind = 'curator'")
    assert (label["source"], label["adjust"], label["edited_from"]) == ("curator:ana", None,
                                                                        None)
    assert json.loads(label["filter"]) == {"name": "mono_Sepia", "intensity": 50}


# ---------------------------------------------------------------------------- issue 14

def mining_evaluation(db: Path, world, edits: list[Callable[[dict], None]]) -> list[str]:
    """A mining evaluation of the training split, every answer exact but for the first
    len(edits) intents by key, whose answers (as dicts) `edits` change in turn. Returns those
    intents' texts."""
    from pipelines import evaluate

    rows = sorted(world[1]["train"], key=lambda row: row["intent_key"])

    def truth(row: dict) -> Any:
        return answer_from_json(row["adjust"], row["selective_adjust"], row["filter"])

    def predicted(i: int, row: dict) -> Any:
        answer = truth(row).to_dict()
        if i < len(edits):
            edits[i](answer)
        return parse_answer(answer)

    samples = [evaluate.Sample(row["intent_key"], row["intent_key"], row["request_count"],
                               truth(row), predicted(i, row)) for i, row in enumerate(rows)]
    with Store(db).atomic() as session:
        evaluate.evaluate_samples(session, samples, evaluate.EvaluationKind.MINING,
                                  world[1]["run_id"], 1, Split.TRAIN)
    return texts(rows[:len(edits)])


def other_slider(answer: dict) -> None:
    answer["adjust"] = {"exposure": 30}


def no_adjust(answer: dict) -> None:
    answer["adjust"] = None


def tied_evaluation(db: Path, world) -> list[str]:
    """Every answer exact but for the first four intents by key (a, b, c, d): a uses another
    slider than the teacher (adjust cosine 0, both used), b leaves adjust out (cosine 0, a
    tool-selection mismatch), c leaves adjust out and picks a wrong filter (flagged on two
    tools: worse than b), d leaves the filter out. Returns the four intents' texts."""
    def no_adjust_wrong_filter(answer: dict) -> None:
        answer["adjust"] = None
        answer["filter"] = {"name": "mono_Sepia", "intensity": 50}

    def no_filter(answer: dict) -> None:
        answer["filter"] = None

    return mining_evaluation(db, world, [other_slider, no_adjust, no_adjust_wrong_filter,
                                         no_filter])


def test_ties_at_the_same_cosine_put_a_tool_selection_mismatch_first(page, db: Path,
                                                                     world) -> None:
    """Issue 14: at the same cosine the rows were in key order; now a tool-selection mismatch
    comes first, then the intents wrong on more tools, then the intent."""
    a, b, c, d = tied_evaluation(db, world)
    at = page("errors", db)
    at.session_state["errors_kind"] = "mining"
    at.run()
    assert not at.exception
    assert at.selectbox(key="errors_evaluation").value == 4
    adjust = at.dataframe(key="errors_table_adjust_4_1").value
    assert list(adjust["cosine"])[:3] == [0.0, 0.0, 0.0]
    assert list(adjust["intent"])[:3] == [c, b, a]              # key order would be a, b, c
    rest = list(adjust["intent"])[3:]
    assert rest == sorted(rest) and not adjust["flagged"].iloc[3:].any()
    wrong = at.dataframe(key="errors_table_filter_4_1").value
    assert list(wrong["intent"])[:2] == [d, c]                  # no filter before a wrong one
    assert list(wrong["flagged"])[:3] == [True, True, False]
    assert any("at the same cosine, a tool-selection mismatch" in caption.value
               for caption in at.caption)


# ---------------------------------------------------------------------------- issue 15

def opposed_evaluation(db: Path, world) -> list[str]:
    """Every answer exact but for the first three intents by key: a answers the teacher's
    adjust with every slider negated (temperature +40 answered -40, say: cosine -1, the
    opposite look), b uses another slider than the teacher (cosine 0, both used), c leaves
    adjust out (cosine 0, a tool-selection mismatch). Returns the three intents' texts."""
    def negated(answer: dict) -> None:
        answer["adjust"] = {key: -value for key, value in answer["adjust"].items()}

    return mining_evaluation(db, world, [negated, other_slider, no_adjust])


def test_the_most_opposed_answers_come_first(page, db: Path, world) -> None:
    """Issue 15: cosines are stored signed, so an opposite answer (cosine -1) is listed before
    the answers at cosine 0 (clamped, it tied with them and came after the mismatch)."""
    from workbench.store.evaluations import tool_errors

    a, b, c = opposed_evaluation(db, world)
    at = page("errors", db)
    at.session_state["errors_kind"] = "mining"
    at.run()
    assert not at.exception
    assert at.selectbox(key="errors_evaluation").value == 4
    adjust = at.dataframe(key="errors_table_adjust_4_1").value
    assert list(adjust["cosine"])[:4] == [pytest.approx(-1.0), 0.0, 0.0, 1.0]
    # -1 first; then, at cosine 0, the tool-selection mismatch (c) before b (the page's tie-break).
    assert list(adjust["intent"])[:3] == [a, c, b]
    assert list(adjust["flagged"])[:3] == [True, True, True]
    gaps = list(adjust["gap"])
    assert gaps == sorted(gaps, reverse=True) and gaps[0] == pytest.approx(gaps[1] + 1)
    # The store's own order agrees: the lowest signed cosine first.
    with Store(db).session() as session:
        stored = tool_errors(session, 4, "adjust", limit=3)
    assert stored[0]["intent_text"] == a
    assert [row["cosine"] for row in stored] == [pytest.approx(-1.0), 0.0, 0.0]
    # The intent compared below, worst first over the three tools, shows the signed cosine.
    at.selectbox(key="errors_intent").set_value(
        next(row["intent_key"] for row in stored if row["intent_text"] == a)).run()
    assert not at.exception
    assert any(caption.value.startswith("teacher used, student used · cosine -1.000")
               for caption in at.caption)


def test_the_renders_can_be_enlarged_with_the_filter_names_whole(page, db: Path,
                                                                 world) -> None:
    worst = world[1]["test"][2]               # the student: no adjust, filter mono_Sepia @ 50
    at = page("errors", db).run()
    assert at.selectbox(key="errors_intent").value == worst["intent_key"]
    assert not [image for image in at.image if any(
        caption.startswith("student · filter") for caption in image.captions)]   # closed
    at.session_state["errors_enlarge"] = True
    at.run()
    assert not at.exception
    enlarged = {caption: image for image in at.image for caption in image.captions
                if caption.startswith(("teacher (ground truth)", "student"))}
    truth = json.loads(worst["filter"])
    teacher = f"teacher (ground truth) · filter: {truth['name']} @ {truth['intensity']}"
    assert set(enlarged) == {teacher, "student · filter: mono_Sepia @ 50"}
