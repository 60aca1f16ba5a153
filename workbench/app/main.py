"""The app's entry point: `streamlit run workbench/app/main.py` (or `workbench app`).

Pages are listed here and rendered by `st.navigation`; each lives in `views/`.
"""

from __future__ import annotations

import streamlit as st

from workbench.app.views import augmentation, datasets, errors, intents, overview, runs, settings


def run() -> None:
    st.set_page_config(page_title="Distillation workbench", page_icon="🎛️", layout="wide")
    pages = [
        st.Page(overview.render, title="Overview", icon="📊", url_path="overview", default=True),
        st.Page(intents.render, title="Intents", icon="🔎", url_path="intents"),
        st.Page(errors.render, title="Errors", icon="🩺", url_path="errors"),
        st.Page(augmentation.render, title="Augmentation", icon="🧬", url_path="augmentation"),
        st.Page(datasets.render, title="Datasets", icon="🗂️", url_path="datasets"),
        st.Page(runs.render, title="Runs", icon="🏋️", url_path="runs"),
        st.Page(settings.render, title="Settings", icon="⚙️", url_path="settings"),
    ]
    st.navigation(pages).run()


if __name__ == "__main__":
    run()
