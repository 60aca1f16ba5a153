"""The app's entry point: `streamlit run workbench/app/main.py` (or `workbench app`).

Pages are listed here and rendered by `st.navigation` through `state.run_page` (the notice and
retries for a busy database); each lives in `views/`. Icons are Material Symbols (shipped with
Streamlit), so they render without an emoji font.
"""

from __future__ import annotations

import streamlit as st

from workbench.app import state
from workbench.app.views import (
    augmentation,
    data,
    datasets,
    errors,
    intents,
    labels,
    online,
    overview,
    quarantine,
    reality,
    runs,
    settings,
)


def run() -> None:
    st.set_page_config(page_title="Distillation workbench", page_icon=":material/tune:",
                       layout="wide")
    pages = [
        st.Page(overview.render, title="Overview", icon=":material/dashboard:",
                url_path="overview", default=True),
        data.page(),
        quarantine.page(),
        st.Page(intents.render, title="Intents", icon=":material/search:", url_path="intents"),
        st.Page(errors.render, title="Errors", icon=":material/troubleshoot:",
                url_path="errors"),
        st.Page(augmentation.render, title="Augmentation", icon=":material/auto_awesome:",
                url_path="augmentation"),
        st.Page(labels.render, title="Labels", icon=":material/label:", url_path="labels"),
        st.Page(reality.render, title="Reality check", icon=":material/fact_check:",
                url_path="reality-check"),
        st.Page(datasets.render, title="Datasets", icon=":material/folder_copy:",
                url_path="datasets"),
        st.Page(runs.render, title="Runs", icon=":material/model_training:", url_path="runs"),
        st.Page(online.render, title="Online", icon=":material/insights:", url_path="online"),
        st.Page(settings.render, title="Settings", icon=":material/settings:",
                url_path="settings"),
    ]
    # Every page goes through run_page: a database held by another process for writing (a big
    # ingest, a curation) shows who holds it and is retried, never a traceback.
    state.run_page(st.navigation(pages).run)


if __name__ == "__main__":
    run()
