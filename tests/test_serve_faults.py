"""`workbench serve` under faults: killed with SIGKILL while 8 openai clients load it, and a
teacher slower than `--teacher-timeout` while students keep answering.

The kill -9 count: every answer a client received must be in the spool (the record is written
before the answer is sent); at most one request per client was in flight when the server died;
a restarted server appends to a new segment; `workbench ingest` of the dead segment, its last
line torn, quarantines exactly that line and brings in every other record. Servers are started
on free loopback ports with tests.test_serve's helpers and stopped by their pids. Last, how
`--threads` and `--workers` set the threads each worker pins torch / ONNX Runtime to.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import curated_store
from tests.fake_teacher import fake_teacher
from tests.test_serve import CLEAN_STOP, STOP_TIMEOUT_S, Server, free_port, start_server

CLIENTS = 8
LOAD_S = 3.0
INTENTS = ("warm golden sunset", "black and white noir", "cool morning blue")


@dataclass(frozen=True)
class Trained:
    folder: Path
    db: Path
    run_id: str


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    from pipelines import train

    folder = tmp_path_factory.mktemp("faults")
    store = curated_store(folder)
    run = train.run(train.TrainConfig(student="retrieval",
                                      student_config={"runtime": "torch", "device": "cpu"}),
                    store)
    return Trained(folder, store.path, run.run_id)


@dataclass
class Load:
    """CLIENTS threads, each with its own openai client, asking the student until stopped."""

    url: str
    received: list[list[str]] = field(default_factory=list)   # per client: ids of answers
    failed: list[int] = field(default_factory=list)           # per client: requests with none
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.received = [[] for _ in range(CLIENTS)]
        self.failed = [0] * CLIENTS
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True)
                        for n in range(CLIENTS)]
        for thread in self.threads:
            thread.start()

    def _client(self, number: int) -> None:
        import openai

        client = openai.OpenAI(base_url=self.url + "/v1", api_key="unused", max_retries=0,
                               timeout=30)
        try:
            sent = 0
            while not self.stop.is_set():
                try:
                    completion = client.chat.completions.create(
                        model="default", user=f"load-{number}", messages=[
                            {"role": "user", "content": INTENTS[(number + sent) % 3]}])
                except openai.APIError:      # the server is gone: this request got no answer
                    self.failed[number] += 1
                    return
                finally:
                    sent += 1
                self.received[number].append(completion.id)
        finally:
            client.close()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=STOP_TIMEOUT_S)
        assert not any(thread.is_alive() for thread in self.threads)


def segment_lines(path: Path) -> list[bytes]:
    """The segment's lines as bytes, each with its newline (the last one may lack it)."""
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture
def server_after_kill(trained: Trained, tmp_path: Path) -> Iterator[tuple[Server, Load]]:
    """A server killed with SIGKILL after LOAD_S seconds of load, and that load."""
    server = start_server(tmp_path, ["--db", str(trained.db), "--model",
                                     f"student:{trained.run_id}"], None)
    load = Load(server.url)
    try:
        warm = json.loads(urllib_post(server.url + "/v1/chat/completions", {
            "model": "default", "messages": [{"role": "user", "content": INTENTS[0]}]}))
        load.start()
        time.sleep(LOAD_S)
        server.process.kill()                     # SIGKILL: no shutdown, no segment closed
        server.process.wait(timeout=STOP_TIMEOUT_S)
        load.join()
        load.received.append([warm["id"]])
        yield server, load
    finally:
        load.stop.set()
        server.stop()


def urllib_post(url: str, body: dict[str, Any]) -> bytes:
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:   # loads the student
        return bytes(response.read())


@pytest.mark.slow
def test_kill_9_under_load_loses_only_requests_in_flight(
        server_after_kill: tuple[Server, Load], trained: Trained, tmp_path: Path,
        cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.store import Store

    server, load = server_after_kill
    received = [rid for ids in load.received for rid in ids]
    failed = sum(load.failed)
    (dead,) = list(server.spool.iterdir())
    assert dead.name.endswith(".jsonl.open")       # killed: its segment was never closed
    lines = segment_lines(dead)
    whole = [json.loads(line) for line in lines if line.endswith(b"\n")]
    spooled = {record["request_id"] for record in whole if record["kind"] == "request"}
    missing = set(received) - spooled
    answered_not_received = spooled - set(received)
    lost = failed - len(answered_not_received)
    counts = (f"{len(received)} responses received, {len(spooled)} request records in the "
              f"spool, {failed} requests in flight at the kill ({len(answered_not_received)} "
              f"of them spooled, {lost} lost), {len(missing)} received but missing")
    assert len(received) > CLIENTS and len(set(received)) == len(received), counts
    assert not missing, counts
    # A client has at most one request in flight; each had one when the server died.
    assert failed == CLIENTS and 0 <= lost <= failed, counts
    assert all(record["status"] == "ok" for record in whole), counts

    # A restart appends to a new segment; the dead one is left as it was.
    size_before = dead.stat().st_size
    # The same spool folder (the last --spool wins over the one start_server gives).
    restarted = start_server(tmp_path, ["--db", str(trained.db), "--model",
                                        f"student:{trained.run_id}", "--spool",
                                        str(server.spool)], None)
    try:
        after = json.loads(urllib_post(restarted.url + "/v1/chat/completions", {
            "messages": [{"role": "user", "content": INTENTS[1]}]}))
    finally:
        stopped = restarted.stop()
    assert stopped in CLEAN_STOP
    new = [path for path in server.spool.iterdir() if path != dead]
    assert len(new) == 1 and new[0].name.endswith(".jsonl"), new       # closed on SIGTERM
    assert dead.exists() and dead.stat().st_size == size_before
    assert [json.loads(line)["request_id"] for line in segment_lines(new[0])] == [after["id"]]

    # The kill may have torn the last line; if it did not, tear one as it would have.
    if lines and lines[-1].endswith(b"\n"):
        half = lines[-1][: len(lines[-1]) // 2]
        with dead.open("ab") as handle:
            handle.write(half)
        lines.append(half)
    torn_at = len(lines)

    fresh = tmp_path / "fresh.duckdb"
    code, out, err = cli("ingest", server.spool, "--db", fresh, "--json")
    assert code == 0, err
    totals = json.loads(out)["totals"]
    feedback = sum(record["kind"] == "feedback" for record in whole)
    assert (totals["requests"], totals["feedback"], totals["quarantined"]) == \
        (len(spooled) + 1, feedback, 1), (totals, counts)
    with Store(fresh).session(read_only=True) as session:
        stored = {row["request_id"] for row in session.query(
            "SELECT request_id FROM served_requests")}
        quarantined = session.query("SELECT source_file, location, reason FROM quarantine")
    assert stored == spooled | {after["id"]} and set(received) <= stored
    assert [(Path(row["source_file"]).name, row["location"]) for row in quarantined] == \
        [(dead.name, f"line {torn_at}")]
    assert "the last line is incomplete" in quarantined[0]["reason"]
    with capsys.disabled():        # the count, for the README
        print(f"\nkill -9 under load: {counts}; ingest: {totals['requests']} requests "
              f"(the restart's included), {totals['quarantined']} quarantined (the torn line)")


@pytest.mark.slow
def test_a_slow_teacher_gets_504_in_bounded_time_while_the_student_keeps_answering(
        trained: Trained, tmp_path: Path) -> None:
    import openai

    slow_intent = "the teacher takes its time"
    timeout_s = 3.0
    with fake_teacher() as teacher:
        teacher.modes[slow_intent] = "slow"
        teacher.slow_s = 30.0                 # far past --teacher-timeout
        server = start_server(tmp_path, ["--db", str(trained.db), "--model",
                                         f"student:{trained.run_id}", "--teacher-timeout",
                                         str(timeout_s)], teacher.base_url)
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0,
                               timeout=120)
        try:
            client.chat.completions.create(            # loads the student before the clock
                messages=[{"role": "user", "content": INTENTS[0]}], model="default")
            outcome: dict[str, Any] = {}

            def ask_teacher() -> None:
                started = time.monotonic()
                try:
                    client.chat.completions.create(
                        model="teacher", messages=[{"role": "user", "content": slow_intent}])
                except openai.APIStatusError as error:
                    outcome["error"] = error
                outcome["seconds"] = time.monotonic() - started

            waiting = threading.Thread(target=ask_teacher, daemon=True)
            waiting.start()
            student_s = []
            while waiting.is_alive() and len(student_s) < 1000:
                started = time.monotonic()
                reply = client.chat.completions.create(
                    model="default", messages=[{"role": "user", "content": INTENTS[1]}])
                student_s.append(time.monotonic() - started)
                assert reply.model == f"student:{trained.run_id}"
            waiting.join(timeout=STOP_TIMEOUT_S)
        finally:
            client.close()
            teacher.release.set()
            server.stop()
    error = outcome["error"]
    assert (error.status_code, error.body["code"]) == (504, "teacher_timeout")
    assert timeout_s - 0.1 <= outcome["seconds"] < timeout_s + 5
    # The student answered all along, each well within the teacher's wait.
    assert len(student_s) >= 3 and max(student_s) < timeout_s, student_s


@pytest.mark.parametrize(("args", "threads"), [
    ([], None),                                  # one worker: the libraries' default
    (["--workers", "2"], 1),                     # several: one thread each
    (["--workers", "2", "--threads", "2"], 2),
    (["--threads", "1"], 1),
])
def test_serve_pins_threads_per_worker_when_asked_or_when_there_are_several(
        cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str],
        threads: int | None) -> None:
    from workbench.cli import serve
    from workbench.serving.server import CONFIG_ENV, ServeConfig

    monkeypatch.setenv("WORKBENCH_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("WORKBENCH_LLM_MODEL", "m")
    monkeypatch.setenv(CONFIG_ENV, "")            # restored after the test
    started: list[Any] = []
    monkeypatch.setattr(serve, "_run", lambda config, sock: started.append(config) or 0)
    code, _, err = cli("serve", "--db", tmp_path / "none.duckdb", "--model", "teacher",
                       "--port", free_port(), "--spool", tmp_path / "spool", *args)
    assert code == 0, err
    assert ServeConfig.from_json(os.environ[CONFIG_ENV]).threads == threads
    assert started[0].workers == (2 if "--workers" in args else 1)


def test_serve_passes_max_batch_and_preload_to_its_workers(cli: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.cli import serve
    from workbench.serving.batching import DEFAULT_MAX_BATCH
    from workbench.serving.server import CONFIG_ENV, ServeConfig

    monkeypatch.setenv("WORKBENCH_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("WORKBENCH_LLM_MODEL", "m")
    monkeypatch.setenv(CONFIG_ENV, "")
    monkeypatch.setattr(serve, "_run", lambda config, sock: 0)
    base = ["serve", "--db", tmp_path / "none.duckdb", "--model", "teacher",
            "--spool", tmp_path / "spool"]
    for extra, batch, preload in (([], DEFAULT_MAX_BATCH, True),
                                  (["--max-batch", "1", "--no-preload"], 1, False)):
        code, _, err = cli(*base, "--port", free_port(), *extra)
        assert code == 0, err
        config = ServeConfig.from_json(os.environ[CONFIG_ENV])
        assert (config.max_batch, config.preload) == (batch, preload)
    with pytest.raises(SystemExit) as refused:      # argparse: usage and one line
        cli(*base, "--port", free_port(), "--max-batch", "0")
    assert refused.value.code == 2
