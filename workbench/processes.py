"""Other processes of this machine: whether one is still alive (for notes and folders that
name the process that left them)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (it may belong to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid`, from Linux's /proc (empty elsewhere): the workers
    of a multi-worker server, for tests and benchmarks that stop or measure them."""
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # After the command name in parentheses: state, then the parent's pid.
        if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def stop(process: subprocess.Popen, timeout_s: float) -> int:
    """SIGTERM, then SIGKILL when it has not gone within `timeout_s`; its exit code (a server a
    test or benchmark started, stopped by its id)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(timeout=timeout_s)
