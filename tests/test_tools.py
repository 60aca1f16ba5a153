"""The tool schema: validation messages name field and value; vectors are canonical."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given

from tests.strategies import raw_answers
from workbench import tools
from workbench.tools import ToolValidationError, parse_answer


def test_missing_sliders_mean_zero_and_order_is_canonical():
    answer = parse_answer({"adjust": {"linearOffset": 5, "exposure": -3}})
    assert tools.adjust_vector(answer) == [-3] + [0] * 12 + [5]
    assert answer.selective_adjust is None and answer.filter is None


def test_selective_vector_goes_colour_by_colour():
    answer = parse_answer({"selective_adjust": {"orange": {"luminance": 7}, "red": {"saturation": 1}}})
    assert tools.selective_adjust_vector(answer) == [1, 0, 0, 7] + [0] * 8


def test_unused_tools_give_zero_vectors():
    answer = parse_answer({})
    assert tools.adjust_vector(answer) == [0] * 14
    assert tools.selective_adjust_vector(answer) == [0] * 12


@pytest.mark.parametrize("answer, field, fragment", [
    ({"adjust": {"exposure": 101}}, "adjust.exposure", "[-100, 100]"),
    ({"adjust": {"exposure": 12.5}}, "adjust.exposure", "integer"),
    ({"adjust": {"exposure": "10"}}, "adjust.exposure", "integer"),
    ({"adjust": {"exposure": True}}, "adjust.exposure", "integer"),
    ({"adjust": {"glow": 3}}, "adjust.glow", "unknown key"),
    ({"adjust": [1, 2]}, "adjust", "object"),
    ({"selective_adjust": {"purple": {"saturation": 1}}}, "selective_adjust.purple", "unknown key"),
    ({"selective_adjust": {"red": {"hue": 1}}}, "selective_adjust.red.hue", "unknown key"),
    ({"selective_adjust": {"red": {"luminance": -101}}}, "selective_adjust.red.luminance", "[-100"),
    ({"filter": {"name": "sparkle", "intensity": 5}}, "filter.name", "catalogue"),
    ({"filter": {"name": "mono_Noir"}}, "filter.intensity", "required"),
    ({"filter": {"name": "mono_Noir", "intensity": 101}}, "filter.intensity", "[0, 100]"),
    ({"filter": {"name": "mono_Noir", "intensity": -1}}, "filter.intensity", "[0, 100]"),
    ({"filter": {"name": 3, "intensity": 1}}, "filter.name", "string"),
    ({"crop": {}}, "answer.crop", "unknown key"),
])
def test_invalid_answers_name_field_and_value(answer, field, fragment):
    with pytest.raises(ToolValidationError) as caught:
        parse_answer(answer)
    assert caught.value.field == field
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(field)


def test_integral_float_is_accepted_as_integer():
    assert parse_answer({"adjust": {"contrast": 10.0}}).adjust["contrast"] == 10


def test_catalogue_documents_every_look():
    assert 30 <= len(tools.FILTER_CATALOGUE) <= 60
    for name, look in tools.FILTER_CATALOGUE.items():
        assert look.name == name and len(look.description) > 15
        assert set(look.adjust) <= set(tools.ADJUST_KEYS)
        assert all(-100 <= v <= 100 for v in look.adjust.values())
    assert "faded_HighNoon" in tools.FILTER_CATALOGUE


@given(raw_answers)
def test_canonical_form_round_trips(raw):
    answer = parse_answer(raw)
    again = parse_answer(answer.to_dict())
    assert again == answer and again.output_key() == answer.output_key()
    assert len(tools.adjust_vector(answer)) == 14
    assert len(tools.selective_adjust_vector(answer)) == 12


def test_core_imports_nothing_heavy():
    code = ("import sys, workbench.tools, workbench.log_records, workbench.metrics, "
            "workbench.report, workbench.describe, workbench.progress; "
            "print(sorted(m for m in ('duckdb', 'torch', 'streamlit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@given(raw_answers)
def test_tool_json_is_compact_canonical_json(raw):
    import json

    answer = parse_answer(raw)
    for tool, value in answer.to_dict().items():
        expected = None if value is None else json.dumps(value, separators=(",", ":"))
        assert answer.tool_json(tool) == expected
