"""`workbench app` as a real process: stopping it stops the Streamlit server it started
(issue 11, item 14)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from workbench.store import Store

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _status(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as reply:
            return int(reply.status)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited: only its parent's wait is missing.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_app_stops_its_server(tmp_path: Path, signum: int) -> None:
    db = tmp_path / "app.duckdb"
    with Store(db).session(create=True):
        pass
    port = _free_port()
    app = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "app", "--db", str(db), "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1"})
    server: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while _status(port) != 200:
            assert app.poll() is None, "workbench app exited before serving"
            assert time.monotonic() < deadline, "the app did not answer within 90 s"
            time.sleep(0.3)
        server = _children(app.pid)
        assert server, "the Streamlit server runs as a child of `workbench app`"
        app.send_signal(signum)
        code = app.wait(timeout=15)
        assert code in (0, 128 + signum, -signum)
        deadline = time.monotonic() + 5
        while (_port_open(port) or any(_alive(pid) for pid in server)) and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _port_open(port), "the port still answers after the app was stopped"
        assert not [pid for pid in server if _alive(pid)], "the server outlived the app"
    finally:
        for pid in [app.pid, *server]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        app.wait()
