"""Training past one device: the heads student under `accelerate launch` with two CPU processes
(gloo), against the same training in one process, plus the pieces that make the two agree.

The launch test starts `accelerate launch --multi_gpu --num_processes 2` (without a GPU,
accelerate runs its processes on the CPU over gloo; `--cpu` alone would start one process) in a
process group of its own, killed whole on a timeout, and checks that nothing of it is left.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines import curate, ingest, train
from tests.conftest import make_record
from workbench.store import Store, runs

# Four looks in five phrasings: 20 intents, 4 held out, 16 to train on: two batches of 8, split
# 4 + 4 over the two processes, so no batch is completed with repeated rows (see
# workbench.students.parallel.DataParallel) and both runs take exactly the same steps.
LOOKS = {
    "warm golden sunset": ({"temperature": 40}, {"name": "warm_Golden", "intensity": 50}),
    "cold blue winter": ({"temperature": -40}, {"name": "cool_Arctic", "intensity": 60}),
    "black and white noir": ({"contrast": 40}, {"name": "mono_Noir", "intensity": 80}),
    "lush green forest": ({"vibrance": 30, "tint": -20}, None),
}
PHRASINGS = ("", "very ", "soft ", "make it ", "give me ")
# Dropout off (both kinds): its masks are random, and two processes draw them for their own
# shards, so only without it are the two runs the same computation.
SETTINGS = {"epochs": 3, "batch_size": 8, "hidden": 32, "lexical_buckets": 512,
            "dropout": 0.0, "bag_dropout": 0.0, "device": "cpu", "runtime": "torch",
            "spelling": False}
LAUNCH_TIMEOUT_S = 240


def tiny_store(folder: Path) -> Store:
    records = [make_record(request_id=f"{i}-{j}", intent=prefix + look,
                           teacher={"adjust": adjust, "filter": filter_},
                           exports={"adjust": 1, "filter": int(filter_ is not None)})
               for i, (look, (adjust, filter_)) in enumerate(LOOKS.items())
               for j, prefix in enumerate(PHRASINGS)]
    logs = folder / "logs.jsonl"
    logs.write_text("".join(json.dumps(r) + "\n" for r in records))
    store = Store(folder / "w.duckdb")
    ingest.ingest_file(logs, store)
    curate.run(curate.CurateConfig(test_size=4, seed=1), store)
    return store


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def launch_two(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """`accelerate launch` two CPU processes of `workbench ARGS` in a process group of their
    own; the whole group is killed if it runs past LAUNCH_TIMEOUT_S, and must be gone after."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "CUDA_VISIBLE_DEVICES": "",          # gloo on the CPU, on a GPU machine too
           "HF_HOME": str(home),                # no `accelerate config` of the user's
           "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
               "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "--main_process_port", str(free_port()),
               "-m", "workbench.cli", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env, start_new_session=True)
    try:
        out, err = process.communicate(timeout=LAUNCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"the launch ran past {LAUNCH_TIMEOUT_S} s and was killed:\n{err[-3000:]}")
    finally:
        _expect_group_gone(process.pid)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _expect_group_gone(group: int) -> None:
    """Every process of the launch has exited (the launcher waits for its workers)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(group, signal.SIGKILL)
            pytest.fail("processes of the launch were still running after it returned")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def one_thread() -> Any:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_two_processes_train_the_heads_one_process_would(tmp_path: Path, one_thread: Any,
                                                          cli: Any) -> None:
    import torch

    store = tiny_store(tmp_path)
    settings = [f"--set={key}={json.dumps(value)}" for key, value in SETTINGS.items()]
    launched = launch_two(["train", "--db", str(store.path), "--student", "heads", *settings,
                           "--no-progress", "--json"], tmp_path / "hf")
    assert launched.returncode == 0, launched.stderr[-3000:]
    # Only the main process printed the run (one JSON object) and recorded it, once.
    two = json.loads(launched.stdout)
    rows = runs.list_runs(store)
    assert [row["run_id"] for row in rows] == [two["run_id"]]
    assert (two["processes"], train.run_processes(rows[0]), rows[0]["n_train"]) == (2, 2, 16)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [two["run_id"]]

    one = train.run(train.TrainConfig(student="heads", student_config=SETTINGS), store)
    assert one.processes == 1 and train.run_processes(runs.find_run(store, one.run_id)) == 1
    code, out, _ = cli("runs", "--db", store.path)
    assert code == 0 and "cpu x2" in out and "cpu x1" in out
    from workbench.store.evaluations import runs_with_latest_evaluation
    with store.session() as session:                       # what the Runs page lists
        counted = {row["run_id"]: row["processes"]
                   for row in runs_with_latest_evaluation(session)}
    assert counted == {two["run_id"]: 2, one.run_id: 1}

    # Same steps on the same batches: each process's shard loss is its share of the whole
    # batch's loss, so the averaged gradient is the one-process gradient. What remains is
    # float32 rounding: the batch's sums are taken in another order (two shards, then the
    # all-reduce), which moved weights of size up to ~4 by at most 2.4e-7 over these 6 Adam
    # steps (measured). 1e-5 leaves room for other CPUs' kernels and still fails on a real
    # difference: each shard's loss taken as a mean of its own moved them by 2.4e-2.
    alone = torch.load(one.artifact_path / "heads.pt", weights_only=True)
    together = torch.load(Path(two["artifact_path"]) / "heads.pt", weights_only=True)
    assert alone.keys() == together.keys()
    for name, weights in alone.items():
        torch.testing.assert_close(together[name], weights, rtol=0, atol=1e-5,
                                   msg=lambda problem, name=name: f"{name}: {problem}")


def test_the_loader_keeps_the_old_batches_and_leaves_the_global_generator_alone() -> None:
    """One process trains as before: the loader's batches are torch.randperm(n).split(size)
    of the same generator, epoch after epoch, and iterating it draws nothing from torch's
    global generator (dropout and initialisation draw from there)."""
    import torch

    from workbench.students.parallel import index_loader

    loader = index_loader(11, 4, torch.Generator().manual_seed(5))
    reference = torch.Generator().manual_seed(5)
    state = torch.get_rng_state()
    for _ in range(3):
        expected = [batch.tolist() for batch in torch.randperm(11, generator=reference).split(4)]
        assert [batch.tolist() for batch in loader] == expected
    assert torch.equal(torch.get_rng_state(), state)
    assert len(loader) == 3


def test_shard_losses_add_up_to_the_whole_batch_loss() -> None:
    """Split a batch unevenly (one shard without any filter), give each shard's loss with the
    whole batch's counts: their mean is the whole batch's loss, gradients included."""
    import torch

    from workbench.students.heads import _batch_counts, _loss, _shard_loss

    generator = torch.Generator().manual_seed(0)
    rows = 6
    used = torch.tensor([[1., 1., 1.], [1., 0., 1.], [0., 1., 1.], [1., 1., 0.], [0., 0., 0.],
                         [1., 0., 0.]])
    target = {"used": used,
              "adjust": torch.rand(rows, 14, generator=generator) * 2 - 1,
              "selective": torch.rand(rows, 12, generator=generator) * 2 - 1,
              "filter_name": torch.tensor([3, 1, 4, 0, 0, 0]),
              "intensity": torch.rand(rows, generator=generator)}
    logits = {"used": torch.randn(rows, 3, generator=generator),
              "adjust": torch.randn(rows, 14, generator=generator),
              "selective": torch.randn(rows, 12, generator=generator),
              "filter_name": torch.randn(rows, 8, generator=generator),
              "intensity": torch.randn(rows, generator=generator)}
    leaves = {k: v.clone().requires_grad_(True) for k, v in logits.items()}
    whole = _loss(leaves, target, 0.7)
    whole.backward()
    expected = {k: v.grad.clone() for k, v in leaves.items()}

    counts = _batch_counts(target)
    assert counts.tolist() == [6.0, 4.0, 3.0, 3.0]
    shard_leaves = {k: v.clone().requires_grad_(True) for k, v in logits.items()}
    shards = [slice(0, 3), slice(3, 6)]            # rows 3..5 use no filter
    losses = [_shard_loss({k: v[s] for k, v in shard_leaves.items()},
                          {k: v[s] for k, v in target.items()}, 0.7, counts, 2)
              for s in shards]
    mean = sum(losses) / 2                         # what DDP's gradient average amounts to
    mean.backward()
    torch.testing.assert_close(mean, whole)
    for name, grad in expected.items():
        torch.testing.assert_close(shard_leaves[name].grad, grad, msg=name)


def test_a_batch_size_that_does_not_split_is_refused() -> None:
    from workbench.errors import WorkbenchError
    from workbench.students.parallel import DataParallel

    group = DataParallel.__new__(DataParallel)    # the check alone, with no process group
    group.processes = 4
    group.check_batch_size(32)
    with pytest.raises(WorkbenchError, match="batch_size 30 cannot be split over 4 processes"):
        group.check_batch_size(30)


def test_alone_there_is_no_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a launch (or a launch of one) the pipeline neither builds an Accelerator nor
    joins a process group, and `share` hands back what it is given."""
    from workbench.students import parallel

    for world in (None, "1"):
        if world is None:
            monkeypatch.delenv("WORLD_SIZE", raising=False)
        else:
            monkeypatch.setenv("WORLD_SIZE", world)
        group = parallel.ProcessGroup(cpu=True)
        value = object()
        assert (group.processes, group.main, group.share(value)) == (1, True, value)
        assert parallel.data_parallel("cpu") is None
    monkeypatch.setenv("WORLD_SIZE", "two")
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="WORLD_SIZE='two' is not a whole number"):
        parallel.process_count()


def test_runs_recorded_before_the_count_were_one_process() -> None:
    assert train.run_processes({"config": json.dumps({"epochs": 3})}) == 1
    assert train.run_processes({"config": train.run_config({"epochs": 3}, 4)}) == 4
    assert json.loads(train.run_config({"epochs": 3}, 4)) == {"epochs": 3, "processes": 4}

