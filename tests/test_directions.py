"""Directions (workbench.directions and `workbench directions`): the statistics worked by hand on
tiny images, hand-picked answers that must (or must not) move an aspect, the loader's errors,
the direction set itself, and the command on a tiny trained run."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipelines import train
from tests.conftest import curated_store
from workbench import directions
from workbench.cli import main
from workbench.directions import (
    ASPECTS,
    EPSILONS,
    MONO_SHARE,
    OWN_SLIDERS,
    Direction,
    DirectionRequest,
    check,
    default_direction_set,
    direction_share,
    load_direction_set,
    measure,
)
from workbench.errors import WorkbenchError
from workbench.tools import Answer, parse_answer

UP, DOWN, MONO = Direction.UP, Direction.DOWN, Direction.MONO


def adjust(**sliders: int) -> Answer:
    return parse_answer({"adjust": sliders})


def look(name: str, intensity: int) -> Answer:
    return parse_answer({"filter": {"name": name, "intensity": intensity}})


def request(text: str, **expect: Direction) -> DirectionRequest:
    return DirectionRequest(text, expect)


# --------------------------------------------------------------------------- statistics by hand


def test_statistics_of_a_pure_red_image():
    # Every pixel (1, 0, 0): luma 0.2126 everywhere, so std 0; chroma 1; R - B = 1;
    # (R + B) / 2 - G = 0.5; every Laplacian 0. Every pixel is in both quarters.
    image = np.zeros((3, 3, 3), dtype=np.uint8)
    image[..., 0] = 255
    everywhere = np.ones((3, 3), dtype=bool)
    stats = directions._statistics(image, everywhere, everywhere)
    assert stats == pytest.approx({
        "brightness": 0.2126, "contrast": 0.0, "saturation": 1 / 0.2126,
        "warmth": 1 / 0.2126, "tint": 0.5 / 0.2126, "shadows": 0.2126, "highlights": 0.2126,
        "sharpness": 0.0}, rel=1e-5, abs=1e-7)


def test_statistics_of_a_white_dot_on_black():
    # A 3 x 3 grey image, black but for a white centre: luma mean 1/9, std sqrt(1/9 - 1/81) =
    # sqrt(8)/9, so contrast = sqrt(8); no colour. The one interior Laplacian is 4 * 1 - 0 = 4,
    # so sharpness = 4 / (sqrt(8) / 9) = 9 sqrt(2). The dark mask (the corners) has luma 0,
    # the bright mask (the centre) 1.
    image = np.zeros((3, 3, 3), dtype=np.uint8)
    image[1, 1] = 255
    dark = np.ones((3, 3), dtype=bool)
    dark[1, 1] = False
    stats = directions._statistics(image, dark, ~dark)
    assert stats == pytest.approx({
        "brightness": 1 / 9, "contrast": math.sqrt(8), "saturation": 0.0, "warmth": 0.0,
        "tint": 0.0, "shadows": 0.0, "highlights": 1.0, "sharpness": 9 * math.sqrt(2)},
        rel=1e-5, abs=1e-7)


def test_a_black_result_stays_finite():
    # Mean luma 0 is divided as LUMA_FLOOR: the ratios are 0, not NaN.
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    mask = np.ones((4, 4), dtype=bool)
    stats = directions._statistics(image, mask, mask)
    assert all(value == 0.0 for value in stats.values())


def test_the_empty_answer_changes_nothing():
    measurement = measure(Answer())
    assert all(change == 0.0 for change in measurement.changes.values())
    assert measurement.saturation_share == 1.0
    assert not any(measurement.moves(aspect, direction) for aspect in ASPECTS
                   for direction in (UP, DOWN))


# --------------------------------------------------------------------------- hand-picked answers


@pytest.mark.parametrize(("answer", "aspect", "direction"), [
    (adjust(exposure=40), "brightness", UP),
    (adjust(exposure=-40), "brightness", DOWN),
    (adjust(temperature=50), "warmth", UP),
    (adjust(temperature=-50), "warmth", DOWN),
    (adjust(tint=50), "tint", UP),
    (adjust(tint=-50), "tint", DOWN),
    (adjust(shadows=60), "shadows", UP),
    (adjust(shadows=-60), "shadows", DOWN),
    (adjust(highlights=-60), "highlights", DOWN),
    (adjust(highlights=60), "highlights", UP),
    (adjust(contrast=-50), "contrast", DOWN),
    (adjust(contrast=50), "contrast", UP),
    (adjust(saturation=40), "saturation", UP),
    (adjust(saturation=-40), "saturation", DOWN),
    (adjust(sharpen=50), "sharpness", UP),
    (adjust(sharpen=-50), "sharpness", DOWN),
    (look("warm_Amber", 80), "warmth", UP),
    (look("cool_Arctic", 80), "warmth", DOWN),
    (look("vivid_Pop", 80), "saturation", UP),
])
def test_an_answer_moves_its_aspect_one_way_only(answer, aspect, direction):
    measurement = measure(answer)
    other = DOWN if direction == UP else UP
    assert measurement.moves(aspect, direction)
    assert not measurement.moves(aspect, other)


def test_saturation_minus_100_is_black_and_white():
    measurement = measure(adjust(saturation=-100))
    assert measurement.saturation_share == 0.0
    assert measurement.moves("saturation", MONO) and measurement.moves("saturation", DOWN)


def test_a_monochrome_filter_at_full_intensity_desaturates():
    measurement = measure(look("mono_Classic", 100))
    assert measurement.moves("saturation", DOWN)
    assert measurement.moves("saturation", MONO)   # plain grey: nothing left


def test_half_desaturated_is_down_but_not_black_and_white():
    # Saturation -50 halves the chroma (the renderer scales it by 1 - 0.5): about half is left,
    # far above MONO_SHARE.
    measurement = measure(adjust(saturation=-50))
    assert measurement.saturation_share == pytest.approx(0.5, abs=0.05)
    assert measurement.moves("saturation", DOWN) and not measurement.moves("saturation", MONO)


def test_exposure_alone_is_not_a_colour_or_sharpness_change():
    # Why the colour, contrast and sharpness statistics are relative to brightness: a plain
    # exposure change must not count as warmer, more saturated, pinker or sharper.
    for answer in (adjust(exposure=20), adjust(exposure=-20)):
        measurement = measure(answer)
        for aspect in ("saturation", "warmth", "tint", "sharpness"):
            assert abs(measurement.changes[aspect]) < EPSILONS[aspect], (answer, aspect)
    for answer in (adjust(contrast=40), adjust(contrast=-40)):   # nor contrast as sharpening
        assert abs(measure(answer).changes["sharpness"]) < EPSILONS["sharpness"], answer


def test_epsilons_are_below_half_of_what_a_slider_at_10_does():
    # EPSILONS is about a third of the smaller change its own slider makes at +10 and -10 (see
    # the module); re-measured here so the constants cannot drift from the renderer.
    for aspect, slider in OWN_SLIDERS.items():
        up = measure(adjust(**{slider: 10})).changes[aspect]
        down = measure(adjust(**{slider: -10})).changes[aspect]
        assert up > 0 > down, aspect
        assert 0 < EPSILONS[aspect] < min(up, -down) / 2, aspect


# --------------------------------------------------------------------------- check


def test_an_empty_answer_fails_every_request():
    requests = [request("make it darker", brightness=DOWN),
                request("warmer", warmth=UP),
                request("black and white", saturation=MONO)]
    report = check(requests, [Answer()] * 3)
    assert (report.n, report.right, report.share) == (3, 0, 0.0)
    assert [failure.wrong for failure in report.failures] == [
        ("brightness",), ("warmth",), ("saturation",)]
    assert {aspect: (score.asked, score.right) for aspect, score in report.aspects.items()} == {
        "brightness": (1, 0), "warmth": (1, 0), "saturation": (1, 0)}


def test_two_aspects_fail_when_only_one_moves():
    asked = request("brighter and warmer", brightness=UP, warmth=UP)
    report = check([asked, request("brighter", brightness=UP)],
                   [adjust(exposure=30), adjust(exposure=30)])
    assert (report.n, report.right) == (2, 1)
    (failure,) = report.failures
    assert failure.request is asked and failure.wrong == ("warmth",)
    assert report.aspects["brightness"].directions == {"up": (2, 2)}
    assert report.aspects["warmth"].directions == {"up": (1, 0)}
    both = check([asked], [adjust(exposure=30, temperature=30)])
    assert both.right == 1 and not both.failures


def test_the_report_as_json():
    report = check([request("darker", brightness=DOWN)], [adjust(exposure=20)])
    data = json.loads(json.dumps(report.to_dict()))
    assert (data["n"], data["right"], data["share"]) == (1, 0, 0.0)
    (failure,) = data["failures"]
    assert failure["request"] == "darker" and failure["expected"] == {"brightness": "down"}
    assert failure["changes"]["brightness"] > 0
    assert failure["answer"]["adjust"]["exposure"] == 20
    assert data["aspects"]["brightness"] == {"asked": 1, "right": 0, "share": 0.0,
                                             "directions": {"down": {"asked": 1, "right": 0}}}


def test_describe_says_what_happened_in_words_and_numbers():
    darker = measure(adjust(exposure=20))
    text = darker.describe("brightness", DOWN)
    assert text.startswith("brightness went up by ") and "asked: down" in text
    assert "stayed within" in measure(Answer()).describe("warmth", UP)
    assert "kept 100%" in measure(Answer()).describe("saturation", MONO)


def test_check_needs_one_answer_per_request():
    with pytest.raises(WorkbenchError, match="2 direction requests but 1 answers"):
        check([request("a", brightness=UP), request("b", brightness=DOWN)], [Answer()])


def test_direction_share_predicts_with_any_student():
    class Fixed:
        """Brighter for anything that says 'bright', else nothing."""

        def predict(self, texts):
            return [adjust(exposure=30) if "bright" in text else Answer() for text in texts]

    report = direction_share(Fixed(), [request("brighter", brightness=UP),
                                       request("darker", brightness=DOWN)])
    assert (report.n, report.right) == (2, 1)
    assert report.failures[0].request.request == "darker"


# --------------------------------------------------------------------------- loading


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_good_file_loads_with_lines_and_notes(tmp_path):
    path = write(tmp_path, '{"request": "darker", "expect": {"brightness": "down"}}', "",
                 '{"request": " B&W ", "expect": {"saturation": "mono"}, "note": "why"}')
    loaded = load_direction_set(path)
    assert loaded == [DirectionRequest("darker", {"brightness": DOWN}, "", 1),
                      DirectionRequest("B&W", {"saturation": MONO}, "why", 3)]


@pytest.mark.parametrize(("line", "problem"), [
    ('{"request": "darker", "expect": {"brightness": "down"}', "line 1: not valid JSON"),
    ('["darker"]', "line 1: expected a JSON object"),
    ('{"request": "darker", "expect": {"darkness": "up"}}', "line 1: unknown aspect 'darkness'"),
    ('{"request": "darker", "expect": {"brightness": "lower"}}',
     "line 1: brightness: bad expectation 'lower'"),
    ('{"request": "darker", "expect": {"brightness": "mono"}}',
     "line 1: brightness: 'mono' (black and white) applies to saturation only"),
    ('{"request": "  ", "expect": {"brightness": "down"}}',
     "line 1: 'request' must be a non-empty string"),
    ('{"expect": {"brightness": "down"}}', "line 1: 'request' must be a non-empty string"),
    ('{"request": "darker", "expect": {}}', "line 1: 'expect' must be a non-empty object"),
    ('{"request": "darker", "expect": {"brightness": "down"}, "why": 1}',
     "line 1: unknown key(s) why"),
    ('{"request": "darker", "expect": {"brightness": "down"}, "note": 3}',
     "line 1: 'note' must be a string"),
])
def test_a_bad_line_is_named(tmp_path, line, problem):
    path = write(tmp_path, line)
    with pytest.raises(WorkbenchError) as error:
        load_direction_set(path)
    assert f"{path}: 1 bad line(s)" in str(error.value)
    assert problem in str(error.value)


def test_duplicates_are_named_with_both_lines(tmp_path):
    path = write(tmp_path, '{"request": "Make it  darker", "expect": {"brightness": "down"}}',
                 '{"request": "warmer", "expect": {"warmth": "up"}}',
                 '{"request": "make it darker", "expect": {"brightness": "down"}}')
    with pytest.raises(WorkbenchError, match=r"line 3: duplicate request 'make it darker' "
                                             r"\(first on line 1\)"):
        load_direction_set(path)


def test_every_bad_line_is_reported_not_dropped(tmp_path):
    path = write(tmp_path, "nope", '{"request": "ok", "expect": {"tint": "up"}}', "nor this")
    with pytest.raises(WorkbenchError) as error:
        load_direction_set(path)
    assert "2 bad line(s)" in str(error.value)
    assert "line 1:" in str(error.value) and "line 3:" in str(error.value)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(WorkbenchError, match="no such direction file"):
        load_direction_set(tmp_path / "absent.jsonl")
    with pytest.raises(WorkbenchError, match="no direction requests"):
        load_direction_set(write(tmp_path, "", "  "))


# --------------------------------------------------------------------------- the set itself


def test_the_direction_set():
    path = default_direction_set()
    assert path == Path(__file__).parent / "directions.jsonl"
    requests = load_direction_set(path)   # loading also rejects duplicates and bad lines
    assert len(requests) >= 150
    asked = Counter((aspect, direction) for r in requests for aspect, direction in r.expect.items())
    for aspect in ASPECTS:
        assert asked[aspect, UP] >= 5 and asked[aspect, DOWN] >= 5, aspect
    assert asked["saturation", MONO] >= 10
    assert sum(len(r.expect) > 1 for r in requests) >= 20   # several edits in one request
    ups = sum(n for (_, d), n in asked.items() if d == UP)
    downs = sum(n for (_, d), n in asked.items() if d in (DOWN, MONO))
    assert 0.8 < ups / downs < 1.25   # roughly balanced


def test_the_teacher_like_answers_for_a_few_requests_pass():
    # The measurement agrees with what an editor would do for a handful of requests of the set.
    by_text = {r.request: r for r in load_direction_set(default_direction_set())}
    pairs = [("make it darker", adjust(exposure=-25)),
             ("black and white", look("mono_Classic", 100)),
             ("brighter and less saturated", adjust(exposure=20, saturation=-20)),
             ("darker and warmer", adjust(exposure=-25, temperature=25)),
             ("lift the shadows and pull down the highlights", adjust(shadows=40, highlights=-40)),
             ("it's too blue", adjust(temperature=20)),
             ("blur it slightly", adjust(sharpen=-30))]
    report = check([by_text[text] for text, _ in pairs], [answer for _, answer in pairs])
    assert report.right == len(pairs), [f.to_dict() for f in report.failures]


def test_mono_share_is_the_documented_fifteen_percent():
    assert MONO_SHARE == 0.15


# --------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def run_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny curated world with a retrieval run."""
    store = curated_store(tmp_path_factory.mktemp("directions"))
    train.run(train.TrainConfig(student="retrieval"), store)
    return store.path


def workbench(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_command_prints_the_share_table_and_failures(run_db, capsys):
    code, out, err = workbench(capsys, "directions", "--db", run_db, "--failures", "2",
                               "--no-progress")
    assert code == 0, err
    n = len(load_direction_set(default_direction_set()))
    assert f"on {n} requests from " in out
    assert "moves the way asked: " in out and f" of {n} (" in out
    assert "  aspect      asked right  share" in out and "  brightness " in out
    assert "First 2 of " in out and "    answer: " in out and "(asked: " in out


def test_the_command_as_json(run_db, capsys, tmp_path):
    path = write(tmp_path, '{"request": "warm golden sunset", "expect": {"warmth": "up"}}',
                 '{"request": "cold blue winter", "expect": {"warmth": "up"}}')
    code, out, err = workbench(capsys, "directions", "--db", run_db, "--file", path, "--json",
                               "--no-progress")
    assert code == 0, err
    data = json.loads(out)
    # The tiny world's warm look answers temperature +40 and the cold one -40 (tests/conftest).
    assert (data["n"], data["right"], data["share"]) == (2, 1, 0.5)
    assert data["student"] == "retrieval" and data["file"] == str(path)
    assert [f["request"] for f in data["failures"]] == ["cold blue winter"]


def test_the_command_without_a_direction_set(run_db, capsys, monkeypatch):
    monkeypatch.setattr("workbench.cli.directions.default_direction_set", lambda: None)
    code, out, err = workbench(capsys, "directions", "--db", run_db)
    assert code == 2 and out == ""
    assert err.startswith("error: no direction set found") and "--file" in err


def test_the_command_with_a_bad_file_or_run(run_db, capsys, tmp_path):
    code, _, err = workbench(capsys, "directions", "--db", run_db, "--file",
                             write(tmp_path, '{"request": "x", "expect": {"glow": "up"}}'))
    assert code == 2 and "unknown aspect 'glow'" in err
    code, _, err = workbench(capsys, "directions", "--db", run_db, "--run", "nosuchrun")
    assert code == 2 and "no training run 'nosuchrun'" in err
    with pytest.raises(SystemExit):   # argparse's own usage error
        main(["directions", "--db", str(run_db), "--failures", "-1"])
    assert "must be 0 or more" in capsys.readouterr().err
