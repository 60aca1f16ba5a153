"""Hypothesis strategies for raw tool answers (valid by construction)."""

from __future__ import annotations

from hypothesis import strategies as st

from workbench import tools

sliders = st.integers(min_value=-100, max_value=100)
raw_answers = st.fixed_dictionaries({}, optional={
    "adjust": st.none() | st.dictionaries(st.sampled_from(tools.ADJUST_KEYS), sliders),
    "selective_adjust": st.none() | st.dictionaries(
        st.sampled_from(tools.COLOURS),
        st.dictionaries(st.sampled_from(tools.COLOUR_CHANNELS), sliders)),
    "filter": st.none() | st.fixed_dictionaries({
        "name": st.sampled_from(tools.FILTER_NAMES),
        "intensity": st.integers(min_value=0, max_value=100)}),
})
answers = raw_answers.map(tools.parse_answer)
