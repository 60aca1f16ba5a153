"""The packages to build (the rest of the configuration is in pyproject.toml).

Everything under workbench/ and pipelines/, plus two packages that pyproject.toml maps onto
folders of the checkout, so that the wheel carries the files the code reads at run time while the
checkout keeps one copy of each: `workbench.migrations` is db/ (the SQL migrations) and
`workbench.app.streamlit_config` is .streamlit/ (the app's Streamlit settings). pyproject.toml
alone cannot add mapped packages to the ones it finds.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["workbench*", "pipelines*"]),
                "workbench.migrations", "workbench.app.streamlit_config"])
