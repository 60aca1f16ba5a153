"""The tools' JSON schema against the validator: what one accepts, the other accepts."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import raw_answers
from workbench import tools
from workbench.tool_schema import answer_schema, tool_definitions, tool_parameters

VALIDATOR = jsonschema.Draft202012Validator(answer_schema())


def schema_accepts(value: Any) -> bool:
    return VALIDATOR.is_valid(value)


def validator_accepts(value: Any) -> bool:
    try:
        tools.parse_answer(value)
    except tools.ToolValidationError:
        return False
    return True


def test_the_schemas_are_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(answer_schema())
    for tool in tools.TOOLS:
        jsonschema.Draft202012Validator.check_schema(tool_parameters(tool))


def test_the_function_definitions_name_the_three_tools_with_their_parameters():
    definitions = tool_definitions()
    assert [d["function"]["name"] for d in definitions] == ["adjust", "selective_adjust", "filter"]
    assert all(d["type"] == "function" for d in definitions)
    adjust = definitions[0]["function"]["parameters"]
    assert list(adjust["properties"]) == list(tools.ADJUST_KEYS)
    assert adjust["properties"]["temperature"] == {
        "type": "integer", "minimum": -100, "maximum": 100,
        "description": "negative cooler (bluer), positive warmer (more orange)"}
    selective = definitions[1]["function"]["parameters"]
    assert list(selective["properties"]) == list(tools.COLOURS)
    assert list(selective["properties"]["cyan"]["properties"]) == ["saturation", "luminance"]
    filter_ = definitions[2]["function"]
    assert filter_["parameters"]["properties"]["name"]["enum"] == list(tools.FILTER_NAMES)
    assert filter_["parameters"]["required"] == ["name", "intensity"]
    # The teacher reads what each look does in the filter's description.
    assert "cool_Arctic: Icy blue-white" in filter_["description"]
    json.dumps(definitions)  # plain JSON, as the request sends it


@settings(max_examples=200, deadline=None)
@given(raw_answers)
def test_every_valid_answer_validates_against_the_schema(raw: dict):
    assert validator_accepts(raw)
    assert schema_accepts(raw)
    # Each tool's arguments against that tool's own schema (what a tool call is checked by).
    for tool in tools.TOOLS:
        if raw.get(tool) is not None:
            assert jsonschema.Draft202012Validator(tool_parameters(tool)).is_valid(raw[tool])


@pytest.mark.parametrize("bad", [
    {"adjust": {"temperature": 101}},
    {"adjust": {"temperature": -150}},
    {"adjust": {"temperature": 20.5}},
    {"adjust": {"temperature": "20"}},
    {"adjust": {"temperature": True}},
    {"adjust": {"warmth": 20}},
    {"selective_adjust": {"red": {"saturation": 101}}},
    {"selective_adjust": {"purple": {"saturation": 10}}},
    {"selective_adjust": {"red": None}},
    {"filter": {"name": "warm_Golden", "intensity": 101}},
    {"filter": {"name": "warm_Golden", "intensity": -1}},
    {"filter": {"name": "no_SuchLook", "intensity": 50}},
    {"filter": {"name": "warm_Golden"}},
    {"filter": {"intensity": 50}},
    {"vignette": {"amount": 3}},
    [],
])
def test_invalid_answers_fail_both(bad: Any):
    assert not validator_accepts(bad)
    assert not schema_accepts(bad)


# Values near and past the edges, of every JSON type, in every place: the two always agree.
edge_values = (st.integers(min_value=-130, max_value=130) | st.sampled_from([0.0, 50.0, 20.5])
               | st.sampled_from(["10", None, True, {}]))
any_raw = st.fixed_dictionaries({}, optional={
    "adjust": st.none() | st.dictionaries(
        st.sampled_from([*tools.ADJUST_KEYS, "warmth"]), edge_values, max_size=4),
    "selective_adjust": st.none() | st.dictionaries(
        st.sampled_from([*tools.COLOURS, "purple"]),
        st.none() | st.dictionaries(st.sampled_from([*tools.COLOUR_CHANNELS, "hue"]),
                                    edge_values, max_size=2), max_size=3),
    "filter": st.none() | st.fixed_dictionaries({}, optional={
        "name": st.sampled_from([*tools.FILTER_NAMES[:3], "warm_golden", 7]),
        "intensity": edge_values}),
})


@settings(max_examples=300, deadline=None)
@given(any_raw)
def test_the_schema_and_the_validator_agree_on_any_answer(raw: dict):
    assert schema_accepts(raw) == validator_accepts(raw), raw
