"""CI must run exactly the test command the README gives new users."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_ci_runs_the_readme_test_command():
    setup, tests = readme_commands()
    assert "pytest" in tests and "workbench demo" in setup
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines


def test_torch_is_pinned_to_the_cpu_build():
    assert '"torch==2.13.0"' in (ROOT / "pyproject.toml").read_text()
