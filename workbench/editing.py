"""What the answer editor needs below the UI: an answer as flat control values and back, and the
preview at the editor's preview size (the photo downscaled once, each edit rendered and encoded
as JPEG). How an edit differs from the ground truth is `pipelines.labels.compare_answers`.

The editor's speed budget (a slider move re-renders the preview in under 150 ms p95) is spent
here: `preview_jpeg` renders at `PREVIEW_SIDE` on an image that `preview_photo` downscaled once,
and encodes JPEG (about 1 ms at this size; PNG would take 40 to 60 ms).
`benchmarks/editor_benchmark.py` times it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from workbench.render import RGBImage, fit_image, load_image, render
from workbench.tools import (
    ADJUST_KEYS,
    COLOUR_CHANNELS,
    COLOURS,
    FILTER_NAMES,
    INTENSITY_MAX,
    INTENSITY_MIN,
    SLIDER_MAX,
    SLIDER_MIN,
    TOOLS,
    Answer,
    parse_answer,
)

PREVIEW_SIDE = 480          # px, the preview photo's longer side
JPEG_QUALITY = 90
DEFAULT_FILTER = FILTER_NAMES[0]
DEFAULT_INTENSITY = 50      # a filter switched on with no value to start from

# The flat names of the editor's controls, one per widget: "use.<tool>" (bool), "adjust.<key>",
# "selective_adjust.<colour>.<channel>", "filter.name", "filter.intensity".
USE = {tool: f"use.{tool}" for tool in TOOLS}
ADJUST_CONTROLS = {key: f"adjust.{key}" for key in ADJUST_KEYS}
SELECTIVE_CONTROLS = {(colour, channel): f"selective_adjust.{colour}.{channel}"
                      for colour in COLOURS for channel in COLOUR_CHANNELS}
FILTER_NAME, FILTER_INTENSITY = "filter.name", "filter.intensity"
CONTROL_NAMES: tuple[str, ...] = (*USE.values(), *ADJUST_CONTROLS.values(),
                                  *SELECTIVE_CONTROLS.values(), FILTER_NAME, FILTER_INTENSITY)
SLIDER_RANGE = (SLIDER_MIN, SLIDER_MAX)
INTENSITY_RANGE = (INTENSITY_MIN, INTENSITY_MAX)


def controls_from_answer(answer: Answer | None) -> dict[str, Any]:
    """Every control's value for an answer (None: no tool used). A tool that is not used is
    switched off and its controls keep neutral values (0; the first filter at 50), so switching
    it on starts from a neutral call."""
    answer = answer or Answer()
    values: dict[str, Any] = {USE[tool]: answer.uses(tool) for tool in TOOLS}
    adjust = answer.adjust or {}
    values.update({name: adjust.get(key, 0) for key, name in ADJUST_CONTROLS.items()})
    selective = answer.selective_adjust or {}
    values.update({name: selective.get(colour, {}).get(channel, 0)
                   for (colour, channel), name in SELECTIVE_CONTROLS.items()})
    values[FILTER_NAME] = answer.filter.name if answer.filter else DEFAULT_FILTER
    values[FILTER_INTENSITY] = answer.filter.intensity if answer.filter else DEFAULT_INTENSITY
    return values


def answer_from_controls(values: Mapping[str, Any]) -> Answer:
    """The answer the controls say: each switched-on tool with its values, validated by the tool
    schema (`workbench.tools.parse_answer`). Raises `ToolValidationError` naming the field and
    the value (an out-of-range slider, an unknown filter name)."""
    raw: dict[str, Any] = {}
    if values.get(USE["adjust"]):
        raw["adjust"] = {key: values.get(name, 0) for key, name in ADJUST_CONTROLS.items()}
    if values.get(USE["selective_adjust"]):
        raw["selective_adjust"] = {
            colour: {channel: values.get(SELECTIVE_CONTROLS[(colour, channel)], 0)
                     for channel in COLOUR_CHANNELS} for colour in COLOURS}
    if values.get(USE["filter"]):
        raw["filter"] = {"name": values.get(FILTER_NAME), "intensity": values.get(FILTER_INTENSITY)}
    return parse_answer(raw)


# ------------------------------------------------------------------------------ the preview

@dataclass(frozen=True)
class PreviewPhoto:
    """A photo downscaled once to the preview size, and its JPEG (the 'before' panel)."""

    name: str
    image: RGBImage          # (h, w, 3), longer side at most PREVIEW_SIDE
    jpeg: bytes


def preview_photo(source: str | bytes, name: str | None = None,
                  side: int = PREVIEW_SIDE) -> PreviewPhoto:
    """A sample name or uploaded bytes, loaded (with `render.load_image`'s limits and errors)
    and downscaled to `side`. Do this once per photo; every edit renders on the small copy."""
    image = fit_image(load_image(source), side)
    label = name if name is not None else (source if isinstance(source, str) else "uploaded")
    return PreviewPhoto(label, image, encode_jpeg(image))


def encode_jpeg(image: RGBImage) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def preview_jpeg(photo: PreviewPhoto, answer: Answer) -> bytes:
    """The answer rendered on the preview photo, as JPEG bytes: one slider move's work."""
    return encode_jpeg(render(photo.image, answer))
