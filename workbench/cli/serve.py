"""`workbench serve`: the students and the teacher behind the OpenAI Chat Completions API.

Everything that can be wrong is checked before the server starts, so a mistake is one line and
exit 2, not a worker that dies: the models named (`--model`, the `--ab` arms) resolve to runs
of the database or to a configured teacher, the spool folder can be written, the port is bound
(here, see `_listen`). Then uvicorn runs in this process (with `--workers N`, as the supervisor
of N worker processes that share the socket, each started from the app factory with the checked
config in its environment); SIGTERM or Ctrl+C stops it, its workers with it, and each worker
closes its spool segment.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.cli.parsing import Commands, parse_positive_int, parse_positive_number
from workbench.errors import WorkbenchError
from workbench.serving.batching import DEFAULT_MAX_BATCH
from workbench.store import Store
from workbench.terminal import printable

if TYPE_CHECKING:   # the server imports FastAPI: only `workbench serve` pays for that
    import uvicorn

    from workbench.serving.server import ServeConfig

DEFAULT_HOST = "127.0.0.1"              # this machine only
DEFAULT_PORT = 8000
DEFAULT_MODEL = "student:latest"
DEFAULT_TEACHER_TIMEOUT_S = 20.0
SHUTDOWN_GRACE_S = 5                    # beyond the teacher timeout, for requests in flight


def _teacher_configured(timeout_s: float) -> str | None:
    """The teacher's model name when an endpoint is configured, else None."""
    from workbench.serving.server import teacher_settings

    config = teacher_settings(timeout_s)
    return None if config is None else config.model


def _resolve(name: str, store: Store, teacher: str | None) -> str:
    """A model name as the server routes it: `teacher`, or `student:<full run id>` (a run id
    prefix and `student:latest` resolved now)."""
    from workbench.serving.server import STUDENT_PREFIX, TEACHER
    from workbench.store.runs import find_run

    if name == TEACHER:
        if teacher is None:
            raise WorkbenchError("the model 'teacher' needs a teacher endpoint: set "
                                 "WORKBENCH_LLM_BASE_URL and WORKBENCH_LLM_MODEL (or the [llm] "
                                 "table of .streamlit/secrets.toml)")
        return TEACHER
    if not name.startswith(STUDENT_PREFIX) or name == STUDENT_PREFIX:
        raise WorkbenchError(f"unknown model {name!r}: give 'student:<run id>', "
                             "'student:latest' or 'teacher'")
    run_id = name.removeprefix(STUDENT_PREFIX)
    row = find_run(store, None if run_id == "latest" else run_id)
    return STUDENT_PREFIX + row["run_id"]


def _latest_run(store: Store) -> str | None:
    from workbench.store.runs import list_runs

    if not store.exists:
        return None
    rows = list_runs(store)
    return rows[-1]["run_id"] if rows else None


def _check_spool(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise WorkbenchError(f"the spool folder {folder} exists but is not a folder; give "
                             "another with --spool")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WorkbenchError(f"cannot create the spool folder {folder}: "
                             f"{error.strerror or error}; give another with --spool") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WorkbenchError(f"the spool folder {folder} is not writable; give another with "
                             "--spool")


def _listen(host: str, port: int) -> socket.socket:
    """The bound listening socket every worker accepts on, or one line saying why not.

    Bound here rather than by uvicorn so that a busy port fails before anything starts, and so
    that the socket carries its protocol (IPPROTO_TCP): asyncio turns Nagle's algorithm off
    only on connections of such a socket. uvicorn 0.54 binds its multi-worker socket without
    it (its issue #3149), and every request after the first on a keep-alive connection then
    waits ~40 ms for the client's delayed ACK."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise WorkbenchError(f"cannot listen on {host}: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as uvicorn binds
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        hint = ("another server is using it; choose another --port"
                if error.errno == errno.EADDRINUSE else "choose another --host or --port")
        raise WorkbenchError(f"cannot listen on {host}:{port}: "
                             f"{error.strerror or error}; {hint}") from None
    sock.set_inheritable(True)
    return sock


def serve_config(args: argparse.Namespace, store: Store) -> ServeConfig:
    """The checked ServeConfig of these flags (see the module docstring)."""
    from workbench.serving.ab import parse_arms
    from workbench.serving.server import ServeConfig

    teacher = _teacher_configured(args.teacher_timeout)
    arms: dict[str, float] = {}
    if args.ab is not None:
        for name, weight in parse_arms(args.ab).items():
            model = _resolve(name, store, teacher)
            if model in arms:
                raise WorkbenchError(f"--ab names the model {model} twice ({args.ab!r})")
            arms[model] = weight
    default_model = None if arms else _resolve(args.model or DEFAULT_MODEL, store, teacher)
    spool = Path(args.spool) if args.spool is not None else store.path.parent / "spool"
    _check_spool(spool)
    return ServeConfig(
        db=str(store.path.resolve()), spool=str(spool.resolve()), default_model=default_model,
        latest_run=_latest_run(store), arms=arms, teacher_timeout_s=args.teacher_timeout,
        spool_max_bytes=int(args.spool_max_mb * 2**20), spool_max_age_s=args.spool_max_age,
        supervisor_pid=os.getpid() if args.workers > 1 else None,
        threads=args.threads if args.threads is not None else (
            1 if args.workers > 1 else None),
        max_batch=args.max_batch, preload=args.preload)


def cmd_serve(args: argparse.Namespace, store: Store) -> int:
    from workbench.serving.server import CONFIG_ENV

    config = serve_config(args, store)
    sock = _listen(args.host, args.port)
    import uvicorn

    routing = (f"default model {config.default_model}" if config.default_model is not None
               else "A/B split " + ", ".join(f"{arm}={weight:g}"
                                             for arm, weight in config.arms.items()))
    print(f"serving the OpenAI API at http://{args.host}:{args.port}/v1 ({routing}; "
          f"{args.workers} worker(s)); logging to the spool "
          f"{printable(config.spool)}; Ctrl+C stops it", flush=True)
    # Each worker process reads its config from here (uvicorn starts them from an import
    # string, so nothing else can be handed over).
    os.environ[CONFIG_ENV] = config.to_json()
    server_config = uvicorn.Config(
        "workbench.serving.server:app_from_environment", factory=True, workers=args.workers,
        timeout_graceful_shutdown=math.ceil(args.teacher_timeout) + SHUTDOWN_GRACE_S,
        access_log=args.access_log, log_level="info")
    with sock:
        return _run(server_config, sock)


def _run(config: uvicorn.Config, sock: socket.socket) -> int:
    """Serve on the bound socket until SIGTERM or Ctrl+C: this process is the server, or with
    several workers their supervisor."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if config.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
        return 0
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0 if server.started else 1


def add_serve(commands: Commands) -> None:
    p = commands.add(
        "serve", cmd_serve,
        "Serve trained students (and the teacher, proxied) behind the OpenAI Chat Completions "
        "API with tools; every request and export feedback is logged to a spool folder that "
        "`workbench ingest` reads.", json_flag=False, reads=True)
    p.add_argument("--host", default=DEFAULT_HOST,
                   help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s)")
    p.add_argument("--workers", type=parse_positive_int, default=1,
                   help="worker processes; each loads its own students and serves one model "
                        "call at a time (default: %(default)s)")
    p.add_argument("--threads", type=parse_positive_int, default=None,
                   help="torch / ONNX Runtime threads per worker (default: 1 when --workers "
                        "is over 1, so workers do not fight over the cores; else the "
                        "libraries' default, one per core)")
    p.add_argument("--preload", action=argparse.BooleanOptionalAction, default=True,
                   help="load the students the server routes to (--model, the --ab arms) and "
                        "warm them up before accepting requests, so the first caller does not "
                        "wait for the load (default: on)")
    p.add_argument("--max-batch", type=parse_positive_int, default=DEFAULT_MAX_BATCH,
                   help="under load, the requests waiting for a busy student are answered "
                        "together, up to this many per call (default: %(default)s; 1 answers "
                        "one at a time)")
    routing = p.add_mutually_exclusive_group()
    routing.add_argument("--model", default=None,
                         help="the model for requests that name none (model 'default' or "
                              "absent): student:<run id>, student:latest or teacher (default: "
                              f"{DEFAULT_MODEL}, the newest run when the server starts)")
    routing.add_argument("--ab", default=None, metavar="ARMS",
                   help="A/B split for requests that name no model, e.g. "
                        "teacher=50,student:<run>=50: each session (the `user` field or the "
                        "x-session-id header) sticks to one arm by a hash")
    p.add_argument("--spool", type=Path, default=None,
                   help="folder of the request log (default: spool/ beside the database)")
    p.add_argument("--teacher-timeout", type=parse_positive_number,
                   default=DEFAULT_TEACHER_TIMEOUT_S,
                   help="seconds a teacher call may take before the request gets 504 "
                        "(default: %(default)s)")
    p.add_argument("--spool-max-mb", type=parse_positive_number, default=64.0,
                   help="close a spool segment past this size in MiB (default: %(default)s)")
    p.add_argument("--spool-max-age", type=parse_positive_number, default=300.0,
                   help="close a spool segment after this many seconds, so ingest can read "
                        "it (default: %(default)s)")
    p.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=False,
                   help="log every HTTP request to stdout (default: off; the spool has them)")
