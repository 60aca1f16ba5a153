"""Tool calls described for people: one call as a short line for tables, and a teacher's and a
student's answers side by side, parameter by parameter."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from workbench.errors import WorkbenchError
from workbench.tools import (
    ADJUST_KEYS,
    COLOUR_CHANNELS,
    COLOURS,
    TOOLS,
    Answer,
    adjust_vector,
    selective_adjust_vector,
)


def check_tool(tool: str) -> None:
    """A clear error for a name that is not one of TOOLS."""
    if tool not in TOOLS:
        raise WorkbenchError(f"unknown tool {tool!r}; choose one of {', '.join(TOOLS)}")


def describe_output(tool: str, output: str | None) -> str:
    """A tool call's canonical JSON in a short readable form for tables: only the nonzero
    values ('temperature +40, tint -10'; 'orange sat +25 lum +15'; 'warm_Golden @ 50')."""
    if output is None:
        return "not used"
    value = json.loads(output)
    if tool == "adjust":
        parts = [f"{key} {amount:+d}" for key, amount in value.items() if amount]
    elif tool == "selective_adjust":
        parts = [f"{colour} " + " ".join(f"{channel[:3]} {amount:+d}"
                                         for channel, amount in channels.items() if amount)
                 for colour, channels in value.items() if any(channels.values())]
    elif tool == "filter":
        return f"{value['name']} @ {value['intensity']}"
    else:
        raise WorkbenchError(f"unknown tool {tool!r}; the tools are {', '.join(TOOLS)}")
    return ", ".join(parts) or "all zero"


def parameter_table(teacher: Answer, student: Answer, tool: str) -> list[dict[str, Any]]:
    """Teacher and student side by side for one tool, one row per parameter.

    adjust: the 14 sliders; selective_adjust: the 12 values ('red.saturation', ...); integers,
    None on a side that did not use the tool, and `difference` = student - teacher with an unused
    tool counted as zeros (as the cosine counts it). filter: rows 'name' and 'intensity' as text
    (None on a side that used no filter); the difference says 'same' or 'different' for the name
    and gives student - teacher for the intensity when both used a filter."""
    check_tool(tool)
    if tool == "filter":
        t, s = teacher.filter, student.filter
        name_difference = "same" if (t and t.name) == (s and s.name) else "different"
        intensity = None if t is None or s is None else f"{s.intensity - t.intensity:+d}"
        return [
            {"parameter": "name", "teacher": None if t is None else t.name,
             "student": None if s is None else s.name, "difference": name_difference},
            {"parameter": "intensity", "teacher": None if t is None else str(t.intensity),
             "student": None if s is None else str(s.intensity), "difference": intensity},
        ]
    if tool == "adjust":
        names: Sequence[str] = ADJUST_KEYS
        vectors = adjust_vector(teacher), adjust_vector(student)
    else:
        names = [f"{colour}.{channel}" for colour in COLOURS for channel in COLOUR_CHANNELS]
        vectors = selective_adjust_vector(teacher), selective_adjust_vector(student)
    used = teacher.uses(tool), student.uses(tool)
    return [{"parameter": name,
             "teacher": t_value if used[0] else None,
             "student": s_value if used[1] else None,
             "difference": s_value - t_value}
            for name, t_value, s_value in zip(names, *vectors, strict=True)]
