"""The Errors page's comparison preview (original, teacher, student) is a `render.comparison`
strip with the captions the page used to draw by hand. (The Intents page's preview is the answer
editor's: tests/app/test_editor.py.)"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from workbench import render
from workbench.app.views import errors
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


def test_the_errors_strip_is_original_teacher_and_student() -> None:
    image = render.fit_image(render.load_image("coffee"), 640)
    expected = render.compare_strip([("original", image),
                                     ("teacher", render.render(image, TEACHER)),
                                     ("student", render.render(image, STUDENT))],
                                    errors.STRIP_HEIGHT)
    assert np.array_equal(pixels(errors._strip("coffee", jsons(TEACHER), jsons(STUDENT))),
                          expected)
