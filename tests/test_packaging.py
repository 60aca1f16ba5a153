"""The workbench installs like a package (issue 12, item 8): the wheel carries the SQL migrations
and the app's Streamlit settings, and an install from it works from any folder, writing nothing
into the source checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from workbench import cli, package_files
from workbench.errors import WorkbenchError
from workbench.store import Store, default_db_path, migrations

ROOT = Path(__file__).resolve().parents[1]
APP_SETTINGS = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
# Folders other processes (editors, caches, git) may touch while the wheel test runs.
NOT_WATCHED = {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
               ".hypothesis"}


def _run(command: Sequence[str | Path], **kwargs: Any) -> str:
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True,
                          timeout=300, check=False, **kwargs)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _streamlit_settings(python: str | Path, flags: list[str], cwd: Path) -> dict[str, Any]:
    """The options Streamlit itself ends up with (`streamlit config show`), run from `cwd`."""
    shown: dict[str, Any] = {}
    section = ""
    for line in _run([python, "-m", "streamlit", "config", "show", *flags], cwd=cwd).splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif " = " in line and not line.startswith("#"):
            key, value = line.split(" = ", 1)
            shown[f"{section}.{key}"] = tomllib.loads(f"v = {value}")["v"]
    return shown


def _expected_settings() -> dict[str, Any]:
    return {f"{section}.{key}": value
            for section, table in APP_SETTINGS.items() for key, value in table.items()}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under `folder`, caches and environments left out."""
    files = {}
    for top, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in NOT_WATCHED]
        for name in names:
            stat = (Path(top) / name).stat()
            files[os.path.relpath(Path(top) / name, folder)] = (stat.st_size, stat.st_mtime_ns)
    return files


def test_a_checkout_reads_its_own_migrations_and_database_folder(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert package_files.source_checkout() == ROOT
    assert [f"{version:03d}_{name}.sql" for version, name, _ in migrations()] == sorted(
        path.name for path in (ROOT / "db").glob("*.sql"))
    monkeypatch.delenv("WORKBENCH_DB", raising=False)
    assert default_db_path() == ROOT / "data" / "workbench.duckdb"
    monkeypatch.setenv("WORKBENCH_DB", "/elsewhere/w.duckdb")
    assert default_db_path() == Path("/elsewhere/w.duckdb")


def test_workbench_app_passes_the_apps_streamlit_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Started from a folder without .streamlit/, Streamlit still gets the app's settings."""
    db = tmp_path / "w.duckdb"
    with Store(db).session(create=True):
        pass
    started: list[list[str]] = []

    class Server:   # stands in for the Streamlit process: records its command, exits at once
        returncode = 0

        def __init__(self, command: list[str], env: dict[str, str]) -> None:
            started.append(command)

        def poll(self) -> int:
            return 0

    with monkeypatch.context() as patch:
        patch.setattr(subprocess, "Popen", Server)
        patch.chdir(tmp_path)
        assert cli.main(["app", "--db", str(db), "--port", "8642"]) == 0
    [command] = started
    flags = command[command.index("run") + 2:]
    shown = _streamlit_settings(sys.executable, flags, cwd=tmp_path)
    assert {key: shown.get(key) for key in _expected_settings()} == _expected_settings()
    assert shown["server.port"] == 8642


@pytest.mark.parametrize("text,problem", [("[theme\nbase = 1", "cannot read"),
                                          ('[server]\nfolderWatchList = ["a"]', "single")])
def test_unusable_streamlit_settings_are_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, problem: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    monkeypatch.setattr(package_files, "streamlit_config", lambda: config)
    with pytest.raises(WorkbenchError, match=problem):
        package_files.streamlit_flags()


@pytest.mark.wheel
def test_the_wheel_installs_and_runs_away_from_the_checkout(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items()
           if key not in ("WORKBENCH_DB", "PYTHONPATH", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    # Built from a copy of its inputs: building writes build/ and *.egg-info beside the sources.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for folder in ("workbench", "pipelines", "db", ".streamlit"):
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "secrets.toml"))
    (source / ".streamlit" / "secrets.toml").write_text('[llm]\napi_key = "sk-never-shipped"\n')
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", tmp_path / "dist", source], env=env)
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n for n in names if n.startswith("workbench/migrations/")) == sorted(
        f"workbench/migrations/{path.name}" for path in (ROOT / "db").glob("*.sql"))
    assert "workbench/app/streamlit_config/config.toml" in names
    assert not [n for n in names if "secrets" in n]

    # A fresh venv holding only the wheel; the dependencies come from this environment through a
    # .pth file, after the venv's own site-packages, so nothing is downloaded.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], env=env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          wheel], env=env)
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     env=env).strip())
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "zz_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([python, "-c", "import workbench; print(workbench.__file__)"], cwd=work, env=env)
    assert Path(where.strip()).is_relative_to(venv), where
    before = _snapshot(ROOT)
    workbench = venv / "bin" / "workbench"
    _run([workbench, "demo", "--requests", "3000"], cwd=work, env=env)
    status = json.loads(_run([workbench, "status", "--json"], cwd=work, env=env))
    assert Path(status["database"]) == work / "data" / "workbench.duckdb"
    assert (status["requests"], status["intents"], status["quarantined"]) == (3000, 1000, 0)
    assert sorted(p.name for p in (work / "data").iterdir() if not p.name.startswith(".")) == [
        "synthetic-demo-logs-3000.jsonl", "workbench.duckdb"]
    code = ("import json; from workbench.package_files import streamlit_flags; "
            "print(json.dumps(streamlit_flags()))")
    flags = json.loads(_run([python, "-c", code], cwd=work, env=env))
    shown = _streamlit_settings(python, flags, cwd=work)
    assert {key: shown.get(key) for key in _expected_settings()} == _expected_settings()
    assert _snapshot(ROOT) == before, "the installed workbench wrote into the checkout"
