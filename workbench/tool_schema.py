"""The three tools (SPEC 2) as JSON schema: the function definitions a teacher LLM is sent, and
the schema of a whole answer, both generated from `workbench.tools` so they cannot drift from
the validator (tests check that the validator and the schema accept the same answers).

Like `tools`, this module imports nothing heavy and nothing of ours but `tools`.
"""

from __future__ import annotations

from typing import Any

from workbench.tools import (
    ADJUST_KEYS,
    COLOUR_CHANNELS,
    COLOURS,
    FILTER_CATALOGUE,
    FILTER_NAMES,
    INTENSITY_MAX,
    INTENSITY_MIN,
    SLIDER_MAX,
    SLIDER_MIN,
    TOOLS,
)

# What each adjust slider does, in a few words: a teacher that knows which way "temperature"
# goes answers better than one guessing from the name.
ADJUST_HELP: dict[str, str] = {
    "exposure": "overall exposure: negative darker, positive brighter",
    "contrast": "negative flatter, positive punchier",
    "brightness": "midtone brightness",
    "highlights": "bright tones: negative recovers them, positive brightens them",
    "shadows": "dark tones: negative deepens them, positive lifts them",
    "saturation": "colour strength: -100 is greyscale",
    "vibrance": "strength of the muted colours only",
    "temperature": "negative cooler (bluer), positive warmer (more orange)",
    "tint": "negative greener, positive more magenta",
    "hue": "rotates every hue",
    "bloom": "a soft glow around bright areas",
    "sharpen": "edge sharpness",
    "structure": "local contrast of textures and detail",
    "linearOffset": "lifts (positive) or lowers (negative) the black point",
}

TOOL_HELP: dict[str, str] = {
    "adjust": ("Global colour and light sliders, each an integer from -100 to 100; 0 or a "
               "missing slider leaves it unchanged."),
    "selective_adjust": ("Saturation and luminance of one colour range at a time (red, orange, "
                         "yellow, green, cyan, blue), each an integer from -100 to 100; 0 or a "
                         "missing value leaves it unchanged."),
    "filter": ("Apply one named look from the catalogue at an intensity from 0 to 100. The "
               "looks: "),
}


def _slider(description: str, low: int = SLIDER_MIN, high: int = SLIDER_MAX) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high, "description": description}


def tool_parameters(tool: str) -> dict[str, Any]:
    """The JSON schema of one tool's arguments (an object; unknown keys are not allowed)."""
    if tool == "adjust":
        return {"type": "object", "additionalProperties": False,
                "properties": {key: _slider(ADJUST_HELP[key]) for key in ADJUST_KEYS}}
    if tool == "selective_adjust":
        colour = {"type": "object", "additionalProperties": False,
                  "properties": {channel: _slider(f"{channel} of this colour range")
                                 for channel in COLOUR_CHANNELS}}
        return {"type": "object", "additionalProperties": False,
                "properties": {name: {**colour, "description": f"the {name} range"}
                               for name in COLOURS}}
    if tool == "filter":
        return {"type": "object", "additionalProperties": False, "required": ["name", "intensity"],
                "properties": {
                    "name": {"type": "string", "enum": list(FILTER_NAMES),
                             "description": "the look's name, exactly as in the catalogue"},
                    "intensity": _slider("how strongly the look is applied",
                                         INTENSITY_MIN, INTENSITY_MAX)}}
    raise KeyError(tool)


def tool_description(tool: str) -> str:
    """What a tool does, as the teacher reads it (the filter's includes the whole catalogue)."""
    if tool == "filter":
        looks = "; ".join(f"{look.name}: {look.description}"
                          for look in FILTER_CATALOGUE.values())
        return TOOL_HELP["filter"] + looks
    return TOOL_HELP[tool]


def tool_definitions() -> list[dict[str, Any]]:
    """The `tools` of an OpenAI-compatible chat request: one function per tool, in SPEC order."""
    return [{"type": "function",
             "function": {"name": tool, "description": tool_description(tool),
                          "parameters": tool_parameters(tool)}}
            for tool in TOOLS]


def answer_schema() -> dict[str, Any]:
    """The JSON schema of a whole answer `{adjust, selective_adjust, filter}`: each key
    optional, null or absent = the tool is not used (what `tools.parse_answer` accepts)."""
    return {"type": "object", "additionalProperties": False,
            "properties": {tool: {"anyOf": [{"type": "null"}, tool_parameters(tool)]}
                           for tool in TOOLS}}
