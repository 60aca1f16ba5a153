"""Settings: where the LLM endpoint comes from, whether a key is set (never the key), a
connection test, and what the LLM has cost so far."""

from __future__ import annotations

import streamlit as st

from workbench import llm
from workbench.app import state
from workbench.errors import WorkbenchError


def render() -> None:
    st.title("Settings")
    current = state.store()
    st.subheader("Database")
    st.code(str(current.path), language=None)

    st.subheader("LLM endpoint (paraphrasing)")
    try:
        config = llm.llm_config()
    except WorkbenchError as error:
        st.error(str(error))
        st.stop()
    if config is None:
        st.info("No LLM endpoint is configured, so augmentation uses the offline paraphraser. "
                "Set `WORKBENCH_LLM_BASE_URL`, `WORKBENCH_LLM_MODEL` and "
                "`WORKBENCH_LLM_API_KEY` before starting the app, or add an `[llm]` table to "
                "`.streamlit/secrets.toml` (see the README).")
    else:
        shown = config.public_dict()
        st.dataframe([{"setting": key, "value": str(value)} for key, value in shown.items()],
                     hide_index=True, key="llm_settings")
        st.caption("The API key is read from the environment or `.streamlit/secrets.toml` and "
                   "is only ever shown as set or unset.")
        if st.button("Test connection", key="test_connection"):
            # Bounded by the wall clock: at most timeout_s, even against a server that drips.
            with st.spinner(f"Asking {shown['base_url']} (at most {config.timeout_s:g} s) ..."):
                check = llm.test_connection(config, current if current.exists else None)
            (st.success if check.ok else st.error)(check.message)

    if current.exists:
        st.subheader("LLM usage so far")
        usage = llm.usage_summary(state.reader())
        columns = st.columns(4)
        columns[0].metric("Calls", f"{usage['calls']:,}")
        columns[1].metric("Prompt tokens", f"{usage['prompt_tokens']:,}")
        columns[2].metric("Completion tokens", f"{usage['completion_tokens']:,}")
        columns[3].metric("Cost", f"${usage['cost_usd']:,.4f}")
        if usage["unpriced_calls"]:
            st.caption(f"{usage['unpriced_calls']} call(s) have no price: set "
                       "`input_usd_per_1k_tokens` and `output_usd_per_1k_tokens` to count them.")
