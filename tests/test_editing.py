"""The editor's core (issue 13): an answer as control values and back, validated; the preview
photo downscaled once; one edit's preview as JPEG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from PIL import Image

from tests.strategies import answers
from workbench import editing, render
from workbench.tools import FILTER_NAMES, Answer, ToolValidationError, parse_answer


@settings(max_examples=60, deadline=None)
@given(answers)
def test_controls_and_back_give_the_same_answer(answer: Answer) -> None:
    values = editing.controls_from_answer(answer)
    assert set(values) == set(editing.CONTROL_NAMES)
    assert editing.answer_from_controls(values) == answer


def test_an_unused_tool_is_switched_off_with_neutral_values() -> None:
    values = editing.controls_from_answer(parse_answer({"adjust": {"temperature": -40}}))
    assert values["use.adjust"] and not values["use.selective_adjust"] \
        and not values["use.filter"]
    assert values["adjust.temperature"] == -40 and values["adjust.exposure"] == 0
    assert values["selective_adjust.blue.luminance"] == 0
    assert (values["filter.name"], values["filter.intensity"]) == (FILTER_NAMES[0], 50)
    # Switching the filter on starts from that neutral call; switching adjust off drops it.
    values["use.filter"], values["use.adjust"] = True, False
    assert editing.answer_from_controls(values) == parse_answer(
        {"filter": {"name": FILTER_NAMES[0], "intensity": 50}})
    assert editing.controls_from_answer(None)["use.adjust"] is False


@pytest.mark.parametrize(("name", "value", "field"), [
    ("adjust.temperature", -140, "adjust.temperature"),
    ("selective_adjust.red.saturation", 101, "selective_adjust.red.saturation"),
    ("filter.name", "sepia_Dream", "filter.name"),
    ("filter.intensity", -1, "filter.intensity"),
    ("adjust.tint", 2.5, "adjust.tint"),
])
def test_a_bad_value_names_the_field_and_the_value(name: str, value: object,
                                                   field: str) -> None:
    values = {key: True if key.startswith("use.") else v
              for key, v in editing.controls_from_answer(None).items()}
    values[name] = value
    with pytest.raises(ToolValidationError) as raised:
        editing.answer_from_controls(values)
    assert raised.value.field == field and raised.value.value == value
    assert field in str(raised.value) and str(value) in str(raised.value)


def pixels(jpeg: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.format == "JPEG"
        return np.asarray(image.convert("RGB")).astype(np.float64)


def test_the_photo_is_downscaled_once_to_the_preview_size() -> None:
    photo = editing.preview_photo("coffee")       # 400 x 600 in scikit-image
    assert max(photo.image.shape[:2]) == editing.PREVIEW_SIDE
    assert photo.image.shape[:2] == (320, 480) and photo.name == "coffee"
    assert pixels(photo.jpeg).shape == (320, 480, 3)
    upload = io.BytesIO()
    Image.new("RGB", (100, 50), (200, 100, 50)).save(upload, format="PNG")
    small = editing.preview_photo(upload.getvalue(), name="mine.png")
    assert small.image.shape == (50, 100, 3) and small.name == "mine.png"   # never upscaled
    with pytest.raises(render.ImageError, match="not an image"):
        editing.preview_photo(b"not an image")


def test_a_cooler_temperature_makes_a_bluer_preview() -> None:
    photo = editing.preview_photo("astronaut")
    before = pixels(editing.preview_jpeg(photo, Answer()))
    cooler = pixels(editing.preview_jpeg(photo, parse_answer({"adjust": {"temperature": -40}})))
    assert before.shape == cooler.shape == photo.image.shape
    # The JPEG is the render at the preview size, up to compression (4:2:0 chroma at
    # quality 90: a few levels per pixel, the channel means within one level).
    exact = render.render(photo.image, parse_answer({"adjust": {"temperature": -40}}))
    assert np.abs(cooler - exact).mean() < 4.0
    assert np.abs(cooler.mean(axis=(0, 1)) - exact.mean(axis=(0, 1))).max() < 1.0
    blue_minus_red = (cooler[..., 2] - cooler[..., 0]).mean() \
        - (before[..., 2] - before[..., 0]).mean()
    assert blue_minus_red > 10
