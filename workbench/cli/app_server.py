"""`workbench app`: the Streamlit app on the database, as a child process that stops with us."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from workbench.cli.parsing import Commands
from workbench.package_files import streamlit_flags
from workbench.store import Store
from workbench.terminal import printable

APP_STOP_GRACE_S = 10.0                  # how long `workbench app` waits for the server to stop
DEFAULT_PORT = 8501
DEFAULT_ADDRESS = "127.0.0.1"            # this machine only


def cmd_app(args: argparse.Namespace, store: Store) -> int:
    # The app's path, not an import of it: importing the pages here (outside Streamlit's
    # runtime) would only print cache warnings before the server starts.
    main_script = Path(__file__).resolve().parent.parent / "app" / "main.py"
    environment = {**os.environ, "WORKBENCH_DB": str(store.path.resolve())}
    # The app's .streamlit settings as flags: Streamlit reads .streamlit/ only in the current
    # folder, and `workbench app` runs from anywhere.
    command = [sys.executable, "-m", "streamlit", "run", str(main_script), *streamlit_flags(),
               "--server.port", str(args.port), "--server.address", args.address]
    print(f"the workbench app on {printable(store.path)} at http://{args.address}:{args.port} "
          "(Ctrl+C stops it)", flush=True)
    child = subprocess.Popen(command, env=environment)
    stop_requested: list[float] = []

    def forward(signum: int, frame: object) -> None:
        # Stopping us stops the server: it is our child, and nothing else would stop it.
        stop_requested.append(time.monotonic())
        if child.poll() is None:
            child.send_signal(signum)

    forwarded = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in forwarded}
    try:
        while child.poll() is None:
            if stop_requested and time.monotonic() - stop_requested[0] > APP_STOP_GRACE_S:
                child.kill()   # it did not stop when asked
            try:
                child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if child.poll() is None:   # we are leaving on an exception: never leave it serving
            child.kill()
            child.wait()
    code = child.returncode
    return 128 - code if code < 0 else code   # killed by signal N: exit 128 + N, as a shell does


def add_app(commands: Commands) -> None:
    p = commands.add("app", cmd_app, "Start the Streamlit workbench app on the database.",
                     json_flag=False, reads=True)
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s)")
    p.add_argument("--address", default=DEFAULT_ADDRESS,
                   help="address to listen on (default: %(default)s, this machine only)")
