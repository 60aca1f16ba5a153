"""The three colour-grading tools (SPEC 2): schema, filter catalogue, validation, canonical vectors.

An *answer* is what a teacher or a student returns for one intent: up to three tool calls.
This module imports nothing of ours and nothing heavy, so every layer can use it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ADJUST_KEYS: tuple[str, ...] = (
    "exposure", "contrast", "brightness", "highlights", "shadows", "saturation", "vibrance",
    "temperature", "tint", "hue", "bloom", "sharpen", "structure", "linearOffset",
)
COLOURS: tuple[str, ...] = ("red", "orange", "yellow", "green", "cyan", "blue")
COLOUR_CHANNELS: tuple[str, ...] = ("saturation", "luminance")
TOOLS: tuple[str, ...] = ("adjust", "selective_adjust", "filter")

SLIDER_MIN, SLIDER_MAX = -100, 100
INTENSITY_MIN, INTENSITY_MAX = 0, 100


@dataclass(frozen=True)
class FilterLook:
    """A named look from the catalogue.

    `adjust` is the look expressed in adjust sliders (applied at full intensity); `mono` turns the
    image to greyscale first; `shadow_tint` and `highlight_tint` are RGB colours (0-255) blended into
    the dark and bright tones (split toning). The renderer applies this recipe scaled by intensity.
    """

    name: str
    description: str
    adjust: Mapping[str, int] = field(default_factory=dict)
    mono: bool = False
    shadow_tint: tuple[int, int, int] | None = None
    highlight_tint: tuple[int, int, int] | None = None


def _look(name: str, description: str, mono: bool = False,
          shadow_tint: tuple[int, int, int] | None = None,
          highlight_tint: tuple[int, int, int] | None = None, **adjust: int) -> FilterLook:
    return FilterLook(name, description, adjust, mono, shadow_tint, highlight_tint)


FILTER_CATALOGUE: dict[str, FilterLook] = {look.name: look for look in (
    _look("faded_HighNoon", "Bright, washed-out midday light: lifted blacks, soft contrast, warm haze.",
          exposure=10, contrast=-25, shadows=30, saturation=-10, temperature=15,
          shadow_tint=(120, 110, 90)),
    _look("faded_Dusk", "Soft, low-contrast evening fade with violet shadows.",
          contrast=-20, shadows=25, saturation=-15, temperature=5, tint=15,
          shadow_tint=(90, 70, 120)),
    _look("faded_Matte", "Matte print: blacks lifted to grey, muted colour.",
          contrast=-30, shadows=35, saturation=-20),
    _look("warm_Golden", "Golden-hour warmth: orange highlights, glowing, slightly bright.",
          exposure=5, temperature=40, tint=10, vibrance=20, bloom=15,
          highlight_tint=(255, 190, 110)),
    _look("warm_Amber", "Deep amber cast, like tungsten light or old lacquer.",
          temperature=55, tint=15, saturation=10, highlight_tint=(255, 170, 80)),
    _look("warm_Sunset", "Saturated red-orange sky colours with dark, warm shadows.",
          temperature=45, tint=20, saturation=25, contrast=15,
          shadow_tint=(110, 40, 60), highlight_tint=(255, 150, 90)),
    _look("warm_Cozy", "Gentle warm indoor glow, soft contrast.",
          temperature=30, contrast=-10, bloom=10, highlight_tint=(255, 210, 160)),
    _look("cool_Morning", "Fresh cool morning: slightly blue, airy, soft.",
          exposure=5, temperature=-35, contrast=-10, highlights=10,
          highlight_tint=(200, 225, 255)),
    _look("cool_Arctic", "Icy blue-white with crisp highlights and low saturation.",
          temperature=-60, saturation=-25, highlights=20, contrast=10,
          highlight_tint=(210, 235, 255)),
    _look("cool_Steel", "Cold steel-blue shadows, desaturated, hard contrast.",
          temperature=-40, saturation=-30, contrast=25, shadow_tint=(40, 60, 90)),
    _look("cool_Moonlight", "Night-time blue, darker exposure, low saturation.",
          exposure=-30, temperature=-50, saturation=-35, shadow_tint=(20, 30, 70)),
    _look("mono_Classic", "Neutral black and white with normal contrast.", mono=True),
    _look("mono_Noir", "High-contrast black and white with deep blacks (film noir).",
          mono=True, contrast=45, shadows=-30),
    _look("mono_Soft", "Low-contrast, silvery black and white.", mono=True, contrast=-25, shadows=20),
    _look("mono_Sepia", "Brown-toned monochrome, like an old print.",
          mono=True, shadow_tint=(90, 60, 30), highlight_tint=(240, 220, 180)),
    _look("mono_Selenium", "Cool purple-toned monochrome.", mono=True,
          shadow_tint=(60, 50, 90), highlight_tint=(225, 225, 240)),
    _look("vintage_70s", "Seventies film: warm yellow cast, faded blacks, muted greens.",
          temperature=25, tint=-10, contrast=-15, shadows=20, saturation=-10,
          shadow_tint=(110, 90, 50)),
    _look("vintage_Polaroid", "Instant film: creamy highlights, cyan shadows, soft contrast.",
          contrast=-20, shadows=25, highlights=-15, shadow_tint=(60, 100, 110),
          highlight_tint=(255, 240, 210)),
    _look("vintage_Kodachrome", "Rich, saturated reds and blues with punchy contrast.",
          contrast=20, saturation=25, temperature=10),
    _look("vintage_Faded", "Old, sun-bleached photo: low saturation, lifted blacks, warm.",
          saturation=-35, contrast=-25, shadows=30, temperature=15),
    _look("film_Cinematic", "Teal-and-orange blockbuster grade.",
          contrast=20, saturation=10, shadow_tint=(30, 90, 100), highlight_tint=(255, 180, 120)),
    _look("film_Bleach", "Bleach bypass: desaturated, high contrast, silvery.",
          saturation=-45, contrast=40, structure=20),
    _look("film_Portra", "Soft portrait film: warm skin, gentle contrast, pastel colours.",
          contrast=-10, saturation=-5, temperature=10, tint=5, highlights=-10),
    _look("film_Velvia", "Slide film: very saturated greens and blues, strong contrast.",
          saturation=40, vibrance=20, contrast=25),
    _look("film_Noir", "Dark, desaturated, crushed blacks, a hint of green.",
          exposure=-15, saturation=-50, contrast=35, tint=-10),
    _look("vivid_Pop", "Bright, saturated, punchy colours.", saturation=35, vibrance=30, contrast=15),
    _look("vivid_Tropical", "Lush greens and turquoise water, warm sun.",
          saturation=30, vibrance=25, temperature=10, tint=-15),
    _look("vivid_Neon", "Magenta-cyan night-city neon with strong contrast.",
          saturation=40, contrast=30, tint=30, shadow_tint=(40, 20, 90),
          highlight_tint=(255, 120, 230)),
    _look("mood_Dreamy", "Soft glow, lifted shadows, pastel colours.",
          bloom=40, contrast=-20, shadows=20, saturation=-10, highlight_tint=(255, 225, 240)),
    _look("mood_Moody", "Dark, low-key, desaturated with cool shadows.",
          exposure=-20, contrast=20, saturation=-25, shadows=-20, shadow_tint=(30, 40, 60)),
    _look("mood_Gloomy", "Overcast grey, flat light, muted colour.",
          contrast=-15, saturation=-40, temperature=-15, exposure=-10),
    _look("mood_Horror", "Sickly green shadows, crushed blacks, desaturated.",
          exposure=-25, saturation=-40, tint=-30, contrast=30, shadow_tint=(20, 50, 20)),
    _look("nature_Forest", "Deep greens, earthy shadows.",
          saturation=15, tint=-20, contrast=10, shadow_tint=(30, 60, 30)),
    _look("nature_Desert", "Dusty sand tones, warm and slightly faded.",
          temperature=35, saturation=-10, contrast=-5, highlight_tint=(240, 210, 160)),
    _look("nature_Ocean", "Clear blues and cyans, fresh and bright.",
          temperature=-20, vibrance=25, exposure=5, highlight_tint=(200, 240, 255)),
    _look("nature_Autumn", "Amber and red foliage tones, warm, rich.",
          temperature=30, saturation=20, tint=10, highlight_tint=(255, 180, 100)),
)}
FILTER_NAMES: tuple[str, ...] = tuple(FILTER_CATALOGUE)


class ToolValidationError(ValueError):
    """An answer breaks the tool schema. `field` is a dotted path, `value` the offending value."""

    def __init__(self, field_path: str, value: Any, problem: str):
        self.field = field_path
        self.value = value
        self.problem = problem
        super().__init__(f"{field_path}: {problem} (got {_show(value)})")


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class FilterCall:
    name: str
    intensity: int


@dataclass(frozen=True)
class Answer:
    """Up to three tool calls. A tool that is None was not used.

    `adjust` holds all 14 sliders and `selective_adjust` all 6 colours with both channels, in
    canonical order (missing inputs become 0), so two answers that mean the same compare equal.
    """

    adjust: dict[str, int] | None = None
    selective_adjust: dict[str, dict[str, int]] | None = None
    filter: FilterCall | None = None

    def uses(self, tool: str) -> bool:
        return getattr(self, tool) is not None

    def tool_json(self, tool: str) -> str | None:
        """The canonical JSON of one tool's parameters, or None when the tool is unused.

        Written by hand (keys and ints only, names from the catalogue): it is on ingest's hot
        path, and equals json.dumps(value, separators=(",", ":")) (tests check)."""
        if tool == "adjust":
            if self.adjust is None:
                return None
            return "{" + ",".join(f'"{k}":{v}' for k, v in self.adjust.items()) + "}"
        if tool == "selective_adjust":
            if self.selective_adjust is None:
                return None
            return "{" + ",".join(
                f'"{colour}":{{"saturation":{c["saturation"]},"luminance":{c["luminance"]}}}'
                for colour, c in self.selective_adjust.items()) + "}"
        if tool == "filter":
            if self.filter is None:
                return None
            return f'{{"name":"{self.filter.name}","intensity":{self.filter.intensity}}}'
        raise KeyError(tool)

    def to_dict(self) -> dict[str, Any]:
        return {
            "adjust": None if self.adjust is None else dict(self.adjust),
            "selective_adjust": None if self.selective_adjust is None else {
                colour: dict(channels) for colour, channels in self.selective_adjust.items()},
            "filter": None if self.filter is None else {
                "name": self.filter.name, "intensity": self.filter.intensity},
        }

    def output_key(self) -> str:
        """A short stable hash of the whole answer, to group identical teacher outputs."""
        text = json.dumps(self.to_dict(), separators=(",", ":"))
        return hashlib.sha1(text.encode()).hexdigest()[:16]


def _integer(value: Any, path: str, low: int, high: int) -> int:
    if type(value) is int and low <= value <= high:  # the common case, first (ingest hot path)
        return value
    # bool is an int subclass in Python but never a slider value.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolValidationError(path, value, "must be an integer")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ToolValidationError(path, value, "must be an integer")
        value = int(value)
    if not low <= value <= high:
        raise ToolValidationError(path, value, f"must be in [{low}, {high}]")
    return int(value)


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ToolValidationError(path, value, "must be an object")
    return value


def _no_unknown_keys(given: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in given:
        if key not in allowed:
            raise ToolValidationError(f"{path}.{key}", given[key],
                                      f"unknown key '{key}'; expected one of {', '.join(allowed)}")


def parse_adjust(value: Any, path: str = "adjust") -> dict[str, int] | None:
    if value is None:
        return None
    given = _mapping(value, path)
    _no_unknown_keys(given, ADJUST_KEYS, path)
    return {key: _integer(given.get(key, 0), f"{path}.{key}", SLIDER_MIN, SLIDER_MAX)
            for key in ADJUST_KEYS}


def parse_selective_adjust(value: Any, path: str = "selective_adjust") -> dict[str, dict[str, int]] | None:
    if value is None:
        return None
    given = _mapping(value, path)
    _no_unknown_keys(given, COLOURS, path)
    result: dict[str, dict[str, int]] = {}
    for colour in COLOURS:
        channels = _mapping(given.get(colour, {}), f"{path}.{colour}")
        _no_unknown_keys(channels, COLOUR_CHANNELS, f"{path}.{colour}")
        result[colour] = {
            channel: _integer(channels.get(channel, 0), f"{path}.{colour}.{channel}",
                              SLIDER_MIN, SLIDER_MAX)
            for channel in COLOUR_CHANNELS}
    return result


def parse_filter(value: Any, path: str = "filter") -> FilterCall | None:
    if value is None:
        return None
    given = _mapping(value, path)
    _no_unknown_keys(given, ("name", "intensity"), path)
    if "name" not in given:
        raise ToolValidationError(f"{path}.name", None, "is required")
    name = given["name"]
    if not isinstance(name, str):
        raise ToolValidationError(f"{path}.name", name, "must be a string")
    if name not in FILTER_CATALOGUE:
        raise ToolValidationError(f"{path}.name", name, "is not in the filter catalogue")
    if "intensity" not in given:
        raise ToolValidationError(f"{path}.intensity", None, "is required")
    intensity = _integer(given["intensity"], f"{path}.intensity", INTENSITY_MIN, INTENSITY_MAX)
    return FilterCall(name, intensity)


def parse_answer(value: Any, path: str = "") -> Answer:
    """Validate a `{adjust, selective_adjust, filter}` object (keys optional, null = unused)."""
    prefix = f"{path}." if path else ""
    given = _mapping(value, path or "answer")
    _no_unknown_keys(given, TOOLS, path or "answer")
    return Answer(
        adjust=parse_adjust(given.get("adjust"), f"{prefix}adjust"),
        selective_adjust=parse_selective_adjust(given.get("selective_adjust"),
                                                f"{prefix}selective_adjust"),
        filter=parse_filter(given.get("filter"), f"{prefix}filter"),
    )


def answer_from_json(adjust: str | None, selective_adjust: str | None,
                     filter_: str | None) -> Answer:
    """Rebuild an answer from the per-tool canonical JSON the store keeps (already valid)."""
    return parse_answer({
        "adjust": None if adjust is None else json.loads(adjust),
        "selective_adjust": None if selective_adjust is None else json.loads(selective_adjust),
        "filter": None if filter_ is None else json.loads(filter_),
    })


def adjust_vector(answer: Answer) -> list[int]:
    """The 14 adjust sliders in canonical order; all zero when adjust is unused."""
    if answer.adjust is None:
        return [0] * len(ADJUST_KEYS)
    return [answer.adjust[key] for key in ADJUST_KEYS]


def selective_adjust_vector(answer: Answer) -> list[int]:
    """The 12 selective_adjust numbers, colour by colour: red.saturation, red.luminance, ..."""
    if answer.selective_adjust is None:
        return [0] * (len(COLOURS) * len(COLOUR_CHANNELS))
    return [answer.selective_adjust[colour][channel]
            for colour in COLOURS for channel in COLOUR_CHANNELS]
