"""The Labels page (issue 13): the label queue one intent at a time with Accept / Edit / Skip and
progress, two curators on one queue, every label, and the commit of labels into a version."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.test_label_queue import queue_world
from workbench.store import Store


def open_as(page, db: Path, curator: str, reason: str = "few_requests") -> AppTest:
    at = page("labels", db)
    at.session_state["curator"] = curator
    at.session_state["labels_reason"] = reason
    return at.run()


def showing(at: AppTest) -> str:
    return at.code[0].value


def progress(at: AppTest) -> str:
    return at.progress[0].proto.text


def test_without_a_database_or_a_version(page, tmp_path: Path) -> None:
    at = page("labels", tmp_path / "none.duckdb").run()
    assert not at.exception and "workbench demo" in at.info[0].body
    store = Store(tmp_path / "empty.duckdb")
    with store.session(create=True):
        pass
    at = page("labels", store.path).run()
    assert not at.exception and "workbench curate" in at.info[0].body


def test_the_queue_one_intent_at_a_time_with_progress(page, tmp_path: Path) -> None:
    store = queue_world(tmp_path)
    at = open_as(page, store.path, "ana")
    assert not at.exception
    # Few requests: single (1), opposite look (2, rate 0.5), golden hour (2, rate 1.0).
    assert showing(at) == "single" and progress(at) == "1 of 3"
    at.button(key="labels_accept").click().run()
    assert showing(at) == "opposite look" and progress(at) == "2 of 3"
    assert "curator\\:ana" in at.success[0].value
    at.button(key="labels_skip").click().run()
    assert showing(at) == "golden hour" and progress(at) == "3 of 3"
    at.button(key="labels_edit").click().run()
    at.slider(key="queue_editor.adjust.temperature").set_value(-40).run()
    at.button(key="queue_editor.save").click().run()
    assert not at.exception
    assert "Nothing left in this queue for you (3 handled" in at.success[-1].value
    with Store(store.path).session(read_only=True) as session:
        rows = session.query("SELECT intent_key, adjust FROM labels WHERE source = "
                             "'curator:ana' ORDER BY label_id")
    assert [row["intent_key"] for row in rows] == ["single", "golden hour"]
    assert '"temperature":-40' in rows[1]["adjust"]


def test_two_curators_get_different_intents(page, tmp_path: Path) -> None:
    store = queue_world(tmp_path)
    ana = open_as(page, store.path, "ana")
    bob = open_as(page, store.path, "bob")
    assert (showing(ana), showing(bob)) == ("single", "opposite look")
    assert "1 held by other curators" in " ".join(c.value for c in bob.caption)
    assert progress(bob) == "1 of 3"                # the queue's size counts held intents
    ana.run()                                       # ana keeps hers on a rerun
    assert showing(ana) == "single"
    ana.button(key="labels_accept").click().run()   # and moves past bob's
    assert showing(ana) == "golden hour" and progress(ana) == "2 of 3"


def test_a_new_reason_starts_again(page, tmp_path: Path) -> None:
    store = queue_world(tmp_path)
    at = open_as(page, store.path, "ana")
    at.button(key="labels_skip").click().run()
    assert progress(at) == "2 of 3"
    at.selectbox(key="labels_reason").set_value("teacher_disagreement").run()
    # Three way and opposite look (need 1 each; three way has more requests); the skip was
    # in the other queue.
    assert showing(at) == "three way" and progress(at) == "1 of 2"
    assert any("agree 0" in m.value for m in at.markdown)
    # The ground truth and the three disagreeing teacher outputs, rendered side by side.
    captions = [caption for image in at.image for caption in image.captions]
    assert captions == ["as it is", "ground truth"] + ["teacher output · 1 request"] * 3
    at.selectbox(key="labels_reason").set_value("student_disagreement").run()
    assert not at.exception and "no student has been evaluated" in at.info[0].body


def test_every_label_and_the_commit(page, tmp_path: Path) -> None:
    store = queue_world(tmp_path)
    at = open_as(page, store.path, "ana")
    at.button(key="labels_edit").click().run()
    at.slider(key="queue_editor.adjust.temperature").set_value(-40).run()
    at.button(key="queue_editor.save").click().run()            # single: changed
    at.button(key="labels_accept").click().run()                # opposite look: same answer
    table = next(d.value for d in at.dataframe if "intent" in d.value and "source" in d.value)
    assert list(table["source"][:2]) == ["curator:ana", "curator:ana"]
    assert set(table["intent"]) == {"single", "opposite look", "golden hour", "three way"}
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Ground truths that change"], metrics["Same answer, new label"]) == ("1", "1")
    at.text_input(key="labels_commit_note").input("two from the queue")
    at.button(key="labels_commit").click().run()
    assert not at.exception
    assert "dataset version 2 (now current) on version 1" in \
        at.success[0].value.replace("\\", "")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Ground truths that change"] == "0"
    with Store(store.path).session(read_only=True) as session:
        assert session.value("SELECT note FROM dataset_versions WHERE version_id = 2") \
            == "two from the queue"
        assert session.value("SELECT l.source FROM dataset_row_labels k JOIN labels l "
                             "USING (label_id) WHERE k.version_id = 2 "
                             "AND k.intent_key = 'single'") == "curator:ana"
