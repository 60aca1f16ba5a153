"""The answer editor (issue 13) in AppTest: prefilled from the ground truth or a suggestion;
Reset; the difference from the ground truth in the paper's terms; bad values cannot be saved; and
on the Intents page, a save that shows with the curator's name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_intents import intent_world
from workbench.store import Store

GROUND_TRUTH = {"adjust": {"temperature": 30, "contrast": 40},
                "filter": {"name": "warm_Golden", "intensity": 40}}
SUGGESTION = {"adjust": {"temperature": -20}, "selective_adjust": {"blue": {"saturation": 30}}}


def _host(saved: str, fail: bool) -> None:  # runs inside AppTest: imports must be local
    import json as json_
    from pathlib import Path as Path_

    from workbench.app import editor
    from workbench.errors import WorkbenchError
    from workbench.tools import parse_answer

    truth = parse_answer({"adjust": {"temperature": 30, "contrast": 40},
                          "filter": {"name": "warm_Golden", "intensity": 40}})
    suggestion = parse_answer({"adjust": {"temperature": -20},
                               "selective_adjust": {"blue": {"saturation": 30}}})

    def save(request: editor.SaveRequest) -> str:
        if fail:
            raise WorkbenchError("the store said no")
        Path_(saved).write_text(json_.dumps({
            "answer": request.answer.to_dict(), "note": request.note,
            "curator": request.curator, "edited_from": request.edited_from}))
        return "saved it"

    editor.answer_editor("ed", subject="golden hour", save=save, reference=truth, starts=[
        editor.StartingPoint("ground truth", truth, 7),
        editor.StartingPoint("a student's suggestion", suggestion, None)])


@pytest.fixture
def host(tmp_path: Path):
    def make(fail: bool = False) -> AppTest:
        at = AppTest.from_function(_host, args=(str(tmp_path / "saved.json"), fail),
                                   default_timeout=60)
        at.session_state["curator"] = "ana"
        return at.run()
    return make


def after(at: AppTest) -> str:
    """The URL of the edited preview (Streamlit names media by their bytes)."""
    [url] = [image.value[0] for image in at.image if image.captions == ["after: your edit"]]
    return url


def difference(at: AppTest) -> dict[str, str]:
    table = next(d.value for d in at.dataframe if "difference" in d.value)
    return dict(zip(table["tool"], table["difference"], strict=True))


def test_it_starts_from_the_ground_truth_and_reset_goes_back(host) -> None:
    at = host()
    assert not at.exception
    assert at.toggle(key="ed.use.adjust").value
    assert not at.toggle(key="ed.use.selective_adjust").value
    assert (at.slider(key="ed.adjust.temperature").value,
            at.slider(key="ed.adjust.contrast").value) == (30, 40)
    assert at.selectbox(key="ed.filter.name").value == "warm_Golden"
    assert len([s for s in at.slider if s.key.startswith("ed.adjust.")]) == 14
    assert len([s for s in at.slider if s.key.startswith("ed.selective_adjust.")]) == 12
    assert any("Golden-hour warmth" in caption.value.replace("\\", "")   # its description
               for caption in at.caption)
    untouched = after(at)
    at.slider(key="ed.adjust.temperature").set_value(-40).run()
    assert after(at) != untouched                       # the preview follows the slider
    at.button(key="ed.reset").click().run()
    assert at.slider(key="ed.adjust.temperature").value == 30
    assert after(at) == untouched
    # Starting from the suggestion fills its values; Reset returns to it.
    at.selectbox(key="ed.start").set_value(1).run()
    assert at.slider(key="ed.adjust.temperature").value == -20
    assert at.toggle(key="ed.use.selective_adjust").value and \
        not at.toggle(key="ed.use.filter").value
    assert at.slider(key="ed.selective_adjust.blue.saturation").value == 30
    at.slider(key="ed.adjust.temperature").set_value(10).run()
    at.button(key="ed.reset").click().run()
    assert at.slider(key="ed.adjust.temperature").value == -20


def test_the_difference_from_the_ground_truth_in_the_papers_terms(host) -> None:
    at = host()
    assert difference(at) == {"Adjust": "cosine 1.00", "Selective Adjust": "not used by either",
                              "Filter": "same filter"}
    assert any("Same as the current ground truth" in caption.value for caption in at.caption)
    # contrast 40 -> 0: cos = (30*30) / (sqrt(30² + 40²) * 30) = 900 / 1500 = 0.6
    at.slider(key="ed.adjust.contrast").set_value(0)
    at.slider(key="ed.filter.intensity").set_value(50).run()
    assert difference(at)["Adjust"] == "cosine 0.60"
    assert difference(at)["Filter"] == "same filter, intensity +10"
    at.selectbox(key="ed.filter.name").set_value("cool_Morning")
    at.toggle(key="ed.use.selective_adjust").set_value(True).run()   # the sliders come alive
    at.slider(key="ed.selective_adjust.red.luminance").set_value(-10).run()
    assert difference(at)["Filter"] == "different filter, intensity +10"
    assert difference(at)["Selective Adjust"] == ("switched on (the reference does not use "
                                                  "it); cosine 0.00")
    # The opposite direction counts as it is: temperature 30 -> -30 with contrast 0 is -0.6.
    at.slider(key="ed.adjust.temperature").set_value(-30).run()
    assert difference(at)["Adjust"] == "cosine -0.60"


def test_save_hands_over_the_answer_note_curator_and_starting_label(host,
                                                                   tmp_path: Path) -> None:
    at = host()
    at.slider(key="ed.adjust.temperature").set_value(-40)
    at.text_input(key="ed.note").input("morning light is cooler").run()
    at.button(key="ed.save").click().run()
    assert not at.exception and [s.value for s in at.success] == ["saved it"]
    saved = json.loads((tmp_path / "saved.json").read_text())
    assert saved["answer"]["adjust"]["temperature"] == -40
    assert saved["answer"]["adjust"]["contrast"] == 40
    assert saved["answer"]["filter"] == {"name": "warm_Golden", "intensity": 40}
    assert (saved["note"], saved["curator"], saved["edited_from"]) == (
        "morning light is cooler", "ana", 7)
    assert at.text_input(key="ed.note").value == ""          # ready for the next one


def test_bad_values_cannot_be_saved(host, tmp_path: Path) -> None:
    at = host()
    at.text_area(key="ed.json").input('{"adjust": {"temperature": -140}}')
    at.button(key="ed.load_json").click().run()
    [error] = [e.value.replace("\\", "") for e in at.error]    # shown Markdown-escaped
    assert "adjust.temperature" in error and "-140" in error and "Not loaded" in error
    assert at.slider(key="ed.adjust.temperature").value == 30       # the controls kept theirs
    at.text_area(key="ed.json").input('{"filter": {"name": "sepia_Dream", "intensity": 50}}')
    at.button(key="ed.load_json").click().run()
    error = at.error[0].value.replace("\\", "")
    assert "sepia_Dream" in error and "filter.name" in error
    at.text_area(key="ed.json").input("{adjust: -40")
    at.button(key="ed.load_json").click().run()
    assert "not JSON" in at.error[0].value
    assert not (tmp_path / "saved.json").exists()
    # A good paste loads into the controls.
    at.text_area(key="ed.json").input('{"adjust": {"temperature": -40}}')
    at.button(key="ed.load_json").click().run()
    assert at.slider(key="ed.adjust.temperature").value == -40
    assert not at.toggle(key="ed.use.filter").value


def test_a_refused_save_says_why_and_saves_nothing(host, tmp_path: Path) -> None:
    at = host(fail=True)
    at.button(key="ed.save").click().run()
    assert not at.exception and not at.success
    assert at.error[0].value == "Nothing saved: the store said no"
    assert not (tmp_path / "saved.json").exists()


def test_on_the_intents_page_a_saved_label_shows_with_the_curators_name(page,
                                                                         tmp_path: Path) -> None:
    store = intent_world(tmp_path)
    at = page("intents", store.path)
    at.session_state["curator"] = "ana"
    at.run()
    at.selectbox(key="intents_open").set_value("golden hour").run()
    labels = next(d.value for d in at.dataframe if "wins next commit" in d.value)
    assert list(labels["source"]) == ["curation"] and list(labels["ground truth"]) == ["✓"]
    curation_label = int(labels["label"][0])
    assert at.slider(key="intent_editor.adjust.temperature").value == 50   # the ground truth
    at.slider(key="intent_editor.adjust.temperature").set_value(-40)
    at.text_input(key="intent_editor.note").input("cooler").run()
    at.button(key="intent_editor.save").click().run()
    assert not at.exception
    labels = next(d.value for d in at.dataframe if "wins next commit" in d.value)
    assert list(labels["source"]) == ["curator:ana", "curation"]
    assert labels["Adjust"][0] == "temperature -40" and labels["note"][0] == "cooler"
    assert int(labels["edited from"][0]) == curation_label
    assert list(labels["wins next commit"]) == ["✓", ""]
    assert list(labels["ground truth"]) == ["", "✓"]      # until a version is committed
    assert any("curator\\:ana" in s.value for s in at.success)
    with Store(store.path).session(read_only=True) as session:
        assert session.value("SELECT count(*) FROM labels WHERE source = 'curator:ana'") == 1
