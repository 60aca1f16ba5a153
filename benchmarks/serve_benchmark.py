"""Benchmark: `workbench serve` under load from 1, 8 and 32 concurrent openai clients (issue 16).

    workbench demo && workbench experiment rq1          # trains the students
    python benchmarks/serve_benchmark.py [--db PATH] [--runs RUN ...] [--workers 1]
        [--threads N] [--seconds 20] [--clients 1,8,32] [--clients-process]
        [--out benchmarks/results/serve.json]

For each run (default: the latest heads and the latest retrieval run of the database) a server
is started as a user starts it, `workbench serve --model student:<run> --workers W`, on a free
loopback port with a spool in a temporary folder; the benchmark waits for /readyz, warms it
up (rounds of concurrent requests on fresh connections until a whole round is fast: the first
request each worker gets loads its student), then drives it with each number of concurrent
clients for `--seconds`: each client is a thread with its own official `openai` client (no retries),
sending the test-split intents of the run's dataset version round robin with `model="default"`
and its own session id. Per level: requests answered, errors, throughput (answered requests
per second of wall clock) and the end-to-end latency the client sees (p50 / p95 / p99, from
just before `create` to the parsed answer). Afterwards the spool must hold one record per
request the server answered (checked and reported), the server is stopped by its pid (SIGTERM,
then SIGKILL after a bound) and its resident memory (all its processes, after the run) noted.

The issue's goals, for the heads student: p50 under 15 ms end to end at 1 client, and at least
200 requests/s at 32 clients, on 2 cores. Read the figures with what shares those cores:
- The client threads run on the same 2 cores as the server and cost about as much CPU per
  request as the whole server (the openai client builds and parses pydantic models over
  httpx): each level reports both, as CPU milliseconds per answered request (the server's from
  /proc for all its processes, the clients' as this process's CPU time), so the throughput
  here is a lower bound of what the server alone does, and 2000 / (server + client CPU per
  request) is the most 2 busy cores can give. `--clients-process`
  runs the client threads in a separate process (not in this one): it no longer shares this
  process's GIL with the bookkeeping, but still shares the cores.
- Workers: each `--workers` process imports torch and ONNX Runtime and loads its own copy of
  the student (the MiniLM encoder and the heads or the retrieval index), about the resident
  memory `rss_mib` reports divided by the processes, and runs one prediction (one batch of
  the requests waiting: `workbench.serving.batching`) at a time. On 2
  cores a second worker lets two predictions run at once, but every worker's prediction then
  wants both cores if torch / ONNX Runtime keep their default thread counts (one thread per
  core each), so `--threads 1` (one thread per worker; the default of `workbench serve` when
  workers > 1) is what makes 2 workers pay off; and the clients want the same cores.
- With `--workers` over 1, uvicorn (0.54 here) would bind the listening socket itself and leave
  Nagle's algorithm on for the connections (uvicorn issue #3149): each request after the first
  on a keep-alive connection, which is what an openai client holds, waited ~40 ms for the
  client's delayed ACK (56 ms p50 at 1 client with 2 workers). `workbench serve` binds the
  socket itself so that this does not happen (`workbench.cli.serve._listen`).
- The machine's load average at the start of each run is recorded: figures taken while other
  work runs are not the server's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LEVELS = (1, 8, 32)
START_TIMEOUT_S = 180.0          # a busy 2-core machine imports torch slowly
STOP_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 30.0
WARM_ROUND = 8                   # concurrent warm-up requests per worker and round
WARM_S = 2.0                     # a round this fast means no worker was loading its student
GOAL_P50_MS = 15.0               # heads, 1 client
GOAL_RPS = 200.0                 # heads, 32 clients


class BenchmarkError(Exception):
    """A problem the benchmark reports in one line (no traceback)."""


# ------------------------------------------------------------------------------ the clients

@dataclass
class Level:
    """What `clients` concurrent clients got in one timed stretch."""

    clients: int
    seconds: float = 0.0
    answered: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    requests_per_s: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    client_cpu_ms_per_request: float | None = None   # CPU the client threads used, per answer
    server_cpu_ms_per_request: float | None = None   # CPU of the server's processes, per answer


def percentile(sorted_ms: list[float], q: float) -> float | None:
    """The nearest-rank q-quantile (0 < q <= 1) of already sorted values; None when empty."""
    if not sorted_ms:
        return None
    rank = max(1, math.ceil(q * len(sorted_ms) - 1e-9))    # the 1-based rank, ceil(q * n)
    return round(sorted_ms[rank - 1], 2)


def drive(base_url: str, intents: list[str], clients: int, seconds: float) -> Level:
    """`clients` threads, each with its own openai client, send requests until `seconds`
    have passed since they all started; the level's counts and latencies."""
    import openai

    clock: list[float] = []          # [start, deadline], set once every client is built

    def go() -> None:
        now = time.perf_counter()
        clock.extend((now, now + seconds))

    start = threading.Barrier(clients + 1, action=go)
    cpu_before = time.process_time()   # this process's CPU: in a level, the clients'
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[dict[str, int]] = [{} for _ in range(clients)]

    def client(number: int) -> None:
        api = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0,
                            timeout=REQUEST_TIMEOUT_S)
        mine, failed = latencies[number], failures[number]
        index = number
        try:
            start.wait(timeout=REQUEST_TIMEOUT_S)
            while time.perf_counter() < clock[1]:
                intent = intents[index % len(intents)]
                index += clients
                began = time.perf_counter()
                try:
                    api.chat.completions.create(
                        model="default", messages=[{"role": "user", "content": intent}],
                        user=f"bench-{number}")
                except openai.APIError as error:
                    kind = type(error).__name__
                    failed[kind] = failed.get(kind, 0) + 1
                    continue
                mine.append((time.perf_counter() - began) * 1000)
        finally:
            api.close()

    threads = [threading.Thread(target=client, args=(n,), name=f"bench-client-{n}",
                                daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    try:
        start.wait(timeout=REQUEST_TIMEOUT_S)
    except threading.BrokenBarrierError:
        raise BenchmarkError(f"the {clients} clients could not all be started") from None
    for thread in threads:
        thread.join(timeout=seconds + 2 * REQUEST_TIMEOUT_S)
    if any(thread.is_alive() for thread in threads):
        raise BenchmarkError(f"a client did not finish within {REQUEST_TIMEOUT_S:g} s of the "
                             "end of its level")
    elapsed = time.perf_counter() - clock[0]
    client_cpu_s = time.process_time() - cpu_before
    every = sorted(ms for mine in latencies for ms in mine)
    kinds: dict[str, int] = {}
    for failed in failures:
        for kind, count in failed.items():
            kinds[kind] = kinds.get(kind, 0) + count
    return Level(clients=clients, seconds=round(elapsed, 2), answered=len(every),
                 errors=sum(kinds.values()), error_kinds=kinds,
                 requests_per_s=round(len(every) / elapsed, 1),
                 p50_ms=percentile(every, 0.50), p95_ms=percentile(every, 0.95),
                 p99_ms=percentile(every, 0.99), max_ms=round(every[-1], 2) if every else None,
                 client_cpu_ms_per_request=round(client_cpu_s * 1000 / len(every), 2)
                 if every else None)


def drive_elsewhere(base_url: str, intents: list[str], clients: int, seconds: float) -> Level:
    """`drive` in a fresh child process (spawned, so it holds no copy of this one's state)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        future = pool.submit(drive, base_url, intents, clients, seconds)
        return future.result(timeout=seconds + START_TIMEOUT_S)


# ------------------------------------------------------------------------------ the server

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None


def post_chat(url: str, intent: str, session: str) -> None:
    """One chat request on a connection of its own (urllib closes it after the answer)."""
    body = json.dumps({"model": "default", "user": session,
                       "messages": [{"role": "user", "content": intent}]}).encode()
    request = urllib.request.Request(url + "/v1/chat/completions", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=START_TIMEOUT_S) as response:
            response.read()
    except urllib.error.HTTPError as error:
        raise BenchmarkError(f"the server failed its warm-up: HTTP {error.code} "
                             f"{error.read()[:300]!r}") from None
    except OSError as error:
        raise BenchmarkError(f"the server failed its warm-up: {error}") from None


def warm_up(url: str, intents: list[str], workers: int) -> int:
    """Rounds of concurrent requests, each on a fresh connection so that the kernel hands them
    to every worker, until a whole round answers within WARM_S: every worker has then loaded
    the student (the first request a worker gets loads it). The requests sent."""
    from concurrent.futures import ThreadPoolExecutor

    size = WARM_ROUND * workers
    deadline = time.monotonic() + START_TIMEOUT_S
    sent = 0

    def timed(n: int) -> float:
        began = time.perf_counter()
        post_chat(url, intents[n % len(intents)], f"warm-{n}")
        return time.perf_counter() - began

    with ThreadPoolExecutor(max_workers=size, thread_name_prefix="bench-warm") as pool:
        while True:
            slowest = max(pool.map(timed, range(sent, sent + size)))
            sent += size
            if slowest < WARM_S and sent > size:     # the first round loads: never enough
                return sent
            if time.monotonic() > deadline:
                raise BenchmarkError(f"the server's answers were still slower than "
                                     f"{WARM_S:g} s after {START_TIMEOUT_S:g} s of warm-up")


def process_tree(pid: int) -> list[int]:
    """`pid` and its children (the workers of a multi-worker server)."""
    from workbench.processes import child_pids

    return [pid, *child_pids(pid)]


def cpu_seconds(pids: list[int]) -> float | None:
    """The user + system CPU these processes have used (Linux), or None where /proc is absent."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += int(fields[11]) + int(fields[12])     # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


def resident_mib(pids: list[int]) -> float | None:
    """The summed resident memory of these processes (Linux), or None where /proc is absent."""
    total_kib = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return round(total_kib / 1024, 1)


class Server:
    """`workbench serve` for one run on a free loopback port; stopped by its pid."""

    def __init__(self, db: Path, run_id: str, workers: int, threads: int | None,
                 folder: Path):
        self.port = free_port()
        self.spool = folder / f"spool-{self.port}"
        self.log = folder / f"serve-{self.port}.log"
        args = [sys.executable, "-m", "workbench.cli", "serve", "--db", str(db),
                "--model", f"student:{run_id}", "--port", str(self.port),
                "--workers", str(workers), "--spool", str(self.spool)]
        if threads is not None:
            args += ["--threads", str(threads)]
        environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                       "PYTHONPATH": str(ROOT)}
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(args, cwd=folder, env=environment, stdout=output,
                                            stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(no output)"

    def wait_ready(self) -> None:
        """Until /readyz says ready; BenchmarkError when the server exits or takes too long."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchmarkError(f"the server exited with {self.process.returncode}: "
                                     f"{self.tail()}")
            try:
                if get_json(self.url + "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchmarkError(f"the server was not ready within {START_TIMEOUT_S:g} s: "
                             f"{self.tail()}")

    def spooled_requests(self) -> int:
        """Request records in the spool, open segments included (every line is whole)."""
        return sum(1 for path in self.spool.glob("spool-*")
                   for line in path.read_text(encoding="utf-8").splitlines()
                   if json.loads(line).get("kind") == "request")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL when it has not gone within STOP_TIMEOUT_S; its exit code."""
        from workbench import processes

        return processes.stop(self.process, STOP_TIMEOUT_S)


# ------------------------------------------------------------------------------ the runs

def chosen_runs(db: Path, names: list[str] | None) -> list[tuple[dict, list[str]]]:
    """[(run row, its test-split intents)]: the runs named, else the latest heads and the
    latest retrieval run."""
    from workbench.errors import WorkbenchError
    from workbench.store import Store
    from workbench.store.runs import find_run, list_runs
    from workbench.store.versions import Split, version_rows

    store = Store.at(db, read_only=True)
    if not store.exists:
        raise BenchmarkError(f"no database at {store.path}; give one with --db")
    try:
        if names:
            rows = [find_run(store, name) for name in names]
        else:
            latest = {row["student"]: row for row in list_runs(store)}
            rows = [latest[kind] for kind in ("heads", "retrieval") if kind in latest]
        if not rows:
            raise BenchmarkError(f"{store.path} has no heads or retrieval run; train one or "
                                 "name runs with --runs")
        chosen = []
        for row in rows:
            with store.session(read_only=True) as session:
                intents = [r["intent_text"] for r in
                           version_rows(session, row["version_id"], Split.TEST)]
            if not intents:
                raise BenchmarkError(f"run {row['run_id']}'s dataset version "
                                     f"{row['version_id']} has no test intents")
            chosen.append((row, intents))
    except WorkbenchError as error:
        raise BenchmarkError(str(error)) from None
    return chosen


def bench_run(args: argparse.Namespace, row: dict, intents: list[str],
              folder: Path) -> dict[str, Any]:
    """One server for one run, driven at every level."""
    load = os.getloadavg()[0]
    server = Server(args.db_path, row["run_id"], args.workers, args.threads, folder)
    try:
        server.wait_ready()
        warmup = warm_up(server.url, intents, args.workers)
        drive_level = drive_elsewhere if args.clients_process else drive
        levels = []
        for clients in args.levels:
            pids = process_tree(server.process.pid)
            server_before = cpu_seconds(pids)
            level = drive_level(server.url + "/v1", intents, clients, args.seconds)
            server_after = cpu_seconds(pids)
            if server_before is not None and server_after is not None and level.answered:
                level.server_cpu_ms_per_request = round(
                    (server_after - server_before) * 1000 / level.answered, 2)
            print(f"  {row['student']} {clients:>3} clients: {level.requests_per_s} req/s, "
                  f"p50 {level.p50_ms} ms, p99 {level.p99_ms} ms, {level.errors} errors, "
                  f"CPU per request: server {level.server_cpu_ms_per_request} ms, clients "
                  f"{level.client_cpu_ms_per_request} ms", flush=True)
            levels.append(level)
        rss = resident_mib(process_tree(server.process.pid))
        spooled = server.spooled_requests()
    finally:
        code = server.stop()
    return {"student": row["student"], "run_id": row["run_id"], "workers": args.workers,
            "threads": args.threads, "test_intents": len(intents),
            "load_average_1min_at_start": round(load, 2), "rss_mib": rss,
            "server_processes": args.workers + (1 if args.workers > 1 else 0),
            "levels": [asdict(level) for level in levels],
            # Every answered request must be in the spool (failed ones that reached a model
            # are there too, with their error status).
            "requests_answered": warmup + sum(level.answered for level in levels),
            "requests_spooled": spooled,
            "exit_code": code}


def markdown(results: list[dict[str, Any]]) -> str:
    header = ("student", "workers", "clients", "requests", "req/s", "p50 ms", "p95 ms",
              "p99 ms", "errors", "server CPU ms/req", "client CPU ms/req")
    rows = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for result in results:
        for level in result["levels"]:
            rows.append(f"| {result['student']} | {result['workers']} | {level['clients']} | "
                        f"{level['answered']} | {level['requests_per_s']} | {level['p50_ms']} | "
                        f"{level['p95_ms']} | {level['p99_ms']} | {level['errors']} | "
                        f"{level['server_cpu_ms_per_request']} | "
                        f"{level['client_cpu_ms_per_request']} |")
    return "\n".join(rows)


def goals(results: list[dict[str, Any]]) -> list[str]:
    """The issue's goals for the heads student, each met or not, in words."""
    said = []
    for result in results:
        if result["student"] != "heads":
            continue
        by_clients = {level["clients"]: level for level in result["levels"]}
        if 1 in by_clients and by_clients[1]["p50_ms"] is not None:
            p50 = by_clients[1]["p50_ms"]
            said.append(f"heads p50 at 1 client: {p50} ms "
                        f"({'meets' if p50 < GOAL_P50_MS else 'misses'} the goal of "
                        f"{GOAL_P50_MS:g} ms)")
        if 32 in by_clients:
            rps = by_clients[32]["requests_per_s"]
            said.append(f"heads at 32 clients: {rps} requests/s "
                        f"({'meets' if rps >= GOAL_RPS else 'misses'} the goal of "
                        f"{GOAL_RPS:g})")
    return said


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,8,32, got {text!r}") \
            from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"every level must be at least 1 client, got {text!r}")
    return levels


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", type=Path, default=None,
                        help="the database with trained runs (default: the workbench's)")
    parser.add_argument("--runs", nargs="+", default=None, metavar="RUN",
                        help="run ids (or prefixes) to serve (default: the latest heads and "
                             "the latest retrieval run)")
    parser.add_argument("--workers", type=int, default=1, help="`workbench serve --workers`")
    parser.add_argument("--threads", type=int, default=None,
                        help="`workbench serve --threads` (default: the server's default)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="seconds of load per level (default: %(default)s)")
    parser.add_argument("--clients", dest="levels", type=_levels, default=LEVELS,
                        help="concurrent clients per level (default: 1,8,32)")
    parser.add_argument("--clients-process", action="store_true",
                        help="run the client threads in a separate process")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "serve.json")
    args = parser.parse_args()
    if args.workers < 1 or (args.threads is not None and args.threads < 1) \
            or not args.seconds > 0:
        parser.error("--workers and --threads must be at least 1, --seconds positive")

    from workbench.store.connection import default_db_path

    args.db_path = (args.db or default_db_path()).resolve()
    # SIGTERM unwinds like Ctrl+C, so the server of the run in progress is stopped by its pid
    # (bench_run's finally) and nothing is left running.
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        chosen = chosen_runs(args.db_path, args.runs)
        results = []
        with tempfile.TemporaryDirectory(prefix="serve-benchmark-") as folder:
            for row, intents in chosen:
                print(f"{row['student']} {row['run_id']}: {len(intents)} test intents",
                      flush=True)
                results.append(bench_run(args, row, intents, Path(folder)))
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped; the server was stopped too, nothing was written", file=sys.stderr)
        return 130
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "seconds_per_level": args.seconds, "clients_process": args.clients_process,
        "goals": goals(results), "servers": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(results))
    for line in report["goals"]:
        print(line)
    for result in results:
        if result["requests_spooled"] < result["requests_answered"]:
            print(f"error: {result['student']}: {result['requests_answered']} requests "
                  f"answered but only {result['requests_spooled']} in the spool",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
