"""The app's comparison previews (Intents: original and the teacher's ground truth; Errors:
original, teacher, student) are `render.comparison` strips with the captions the pages used to
draw by hand."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from workbench import render
from workbench.app.views import errors, intents
from workbench.tools import Answer, parse_answer

TEACHER = parse_answer({"adjust": {"temperature": 40},
                        "filter": {"name": "warm_Golden", "intensity": 50}})
STUDENT = parse_answer({"adjust": {"contrast": 30}})


def jsons(answer: Answer) -> tuple[str | None, str | None, str | None]:
    return (answer.tool_json("adjust"), answer.tool_json("selective_adjust"),
            answer.tool_json("filter"))


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def test_the_intents_preview_is_original_and_ground_truth() -> None:
    image = render.fit_image(render.load_image("chelsea"), intents.PREVIEW_SIDE)
    expected = render.compare_strip([("original", image), ("teacher ground truth",
                                                           render.render(image, TEACHER))],
                                    intents.PREVIEW_HEIGHT)
    assert np.array_equal(pixels(intents._preview("chelsea", *jsons(TEACHER))), expected)


def test_the_errors_strip_is_original_teacher_and_student() -> None:
    image = render.fit_image(render.load_image("coffee"), 640)
    expected = render.compare_strip([("original", image),
                                     ("teacher", render.render(image, TEACHER)),
                                     ("student", render.render(image, STUDENT))],
                                    errors.STRIP_HEIGHT)
    assert np.array_equal(pixels(errors._strip("coffee", jsons(TEACHER), jsons(STUDENT))),
                          expected)
