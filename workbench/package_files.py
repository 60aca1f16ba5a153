"""Files the workbench ships with its code, found both in a source checkout and in an install.

In a checkout, `db/` (the SQL migrations) and `.streamlit/config.toml` (the app's Streamlit
settings) sit beside the `workbench` package and are the one copy of each. A wheel carries copies
inside the package, read through importlib.resources: pyproject.toml maps `db/` to the package
`workbench.migrations` and `.streamlit/` to `workbench.app.streamlit_config`.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

_PARENT = Path(__file__).resolve().parent.parent   # the checkout, or site-packages when installed


def source_checkout() -> Path | None:
    """The source checkout the package runs from (as an editable install does), or None when it
    is installed (from a wheel or `pip install .`)."""
    if (_PARENT / "pyproject.toml").is_file() and (_PARENT / "db").is_dir():
        return _PARENT
    return None


def migrations_folder() -> Traversable:
    """The folder of `NNN_name.sql` migrations."""
    checkout = source_checkout()
    return checkout / "db" if checkout else files("workbench.migrations")


def streamlit_config() -> Traversable:
    """The app's Streamlit settings (`.streamlit/config.toml` of the checkout)."""
    checkout = source_checkout()
    folder = checkout / ".streamlit" if checkout else files("workbench.app.streamlit_config")
    return folder / "config.toml"


def streamlit_flags() -> list[str]:
    """The app's Streamlit settings as `streamlit run` flags (`--theme.base light`...), so that
    they apply wherever `workbench app` is started: Streamlit itself reads `.streamlit/` only in
    the current folder and the home folder."""
    config = streamlit_config()
    try:
        settings = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise WorkbenchError(f"cannot read the app's Streamlit settings {config}: {error}. "
                             "Restore the file, or reinstall the workbench.") from None
    flags: list[str] = []
    for key, value in _flatten(settings):
        if not isinstance(value, str | int | float):
            raise WorkbenchError(f"{config}: {key} = {value!r} cannot be passed to `streamlit "
                                 "run`: give it a single string, number or true/false.")
        flags += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return flags


def _flatten(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """("theme.base", "light") for every option of a TOML table, nested tables included."""
    options: list[tuple[str, Any]] = []
    for key, value in table.items():
        if isinstance(value, dict):
            options += _flatten(value, f"{prefix}{key}.")
        else:
            options.append((f"{prefix}{key}", value))
    return options
