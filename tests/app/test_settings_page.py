"""Settings page: no endpoint, an endpoint whose key is never shown, and the connection test."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

SECRET = "sk-test-very-secret-4242"


@pytest.fixture(autouse=True)
def _no_llm_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("WORKBENCH_LLM_BASE_URL", "WORKBENCH_LLM_MODEL", "WORKBENCH_LLM_API_KEY",
                 "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def everything_shown(at) -> str:
    parts = [e.value if hasattr(e, "value") else "" for e in at.code]
    parts += [e.body for kind in (at.info, at.error, at.success, at.caption) for e in kind]
    parts += [str(frame.value.to_dict()) for frame in at.dataframe]
    return "\n".join(str(p) for p in parts)


def test_without_an_endpoint_it_explains_the_offline_default(page, tmp_path: Path) -> None:
    at = page("settings", tmp_path / "none.duckdb").run()
    assert not at.exception
    assert "offline paraphraser" in at.info[0].body
    assert not at.button  # nothing to test


def test_the_key_is_shown_as_set_and_a_failed_test_says_why(page, tmp_path: Path,
                                                            monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_LLM_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    monkeypatch.setenv("WORKBENCH_LLM_MODEL", "tiny-model")
    monkeypatch.setenv("WORKBENCH_LLM_API_KEY", SECRET)
    at = page("settings", tmp_path / "none.duckdb").run()
    assert not at.exception
    settings = dict(zip(at.dataframe[0].value["setting"], at.dataframe[0].value["value"],
                        strict=True))
    assert (settings["model"], settings["api_key"]) == ("tiny-model", "set")
    at.button(key="test_connection").click().run()
    assert at.error and "connect" in at.error[0].body.lower()
    assert SECRET not in everything_shown(at)
