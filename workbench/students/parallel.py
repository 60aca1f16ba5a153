"""Data-parallel training over several processes with accelerate (issue 17).

`accelerate launch --num_processes N ... -m workbench.cli train ...` (or `torchrun`) starts N
copies of the command, each with WORLD_SIZE and RANK set. The students that learn by gradient
descent (heads, seq2seq) then train one model together: every process reads its shard of every
batch, DDP averages the shards' gradients (each shard's loss is scaled so that the average is
the whole batch's gradient, see `DataParallel`), and every copy holds the same weights after each
step. Only the main
process saves the model and writes the database (the train pipeline sees to that).

Without such a launch (WORLD_SIZE unset or 1) nothing here touches accelerate or
torch.distributed: the loops run exactly as they did before this module existed, through
`index_loader`, which yields the same batches in the same order as their old
`torch.randperm(n).split(batch_size)`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from workbench.errors import WorkbenchError


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise WorkbenchError(f"the environment variable {name}={value!r} is not a whole number "
                             "(it is set by `accelerate launch` or `torchrun`)") from None


def process_count() -> int:
    """How many processes train together: WORLD_SIZE, as `accelerate launch` and `torchrun`
    set it; 1 when the command was started on its own."""
    return max(1, _env_int("WORLD_SIZE", 1))


def process_index() -> int:
    """This process's rank among them (0: the main process)."""
    return _env_int("RANK", 0)


def is_main_process() -> bool:
    """True alone, and in the process of rank 0 of a launch: the one that prints and writes."""
    return process_index() == 0


class ProcessGroup:
    """The processes of one launch as the train pipeline sees them: which one is the main one,
    and a way to hand the main process's values to the others. With one process it is trivial
    and imports nothing.

    `cpu` must match the student's device: it picks gloo (CPU tensors) rather than NCCL."""

    def __init__(self, cpu: bool) -> None:
        self.processes = process_count()
        self.index = process_index() if self.processes > 1 else 0
        if self.processes > 1:
            from accelerate import PartialState

            PartialState(cpu=cpu)   # joins the launch's process group (shared by Accelerator)

    @property
    def main(self) -> bool:
        return self.index == 0

    def share(self, value: Any) -> Any:
        """The main process's `value`, on every process (the others pass anything, e.g. None).
        Every process must call it, in the same order: it waits for all of them."""
        if self.processes == 1:
            return value
        from accelerate.utils import broadcast_object_list

        box = [value if self.main else None]
        broadcast_object_list(box, from_process=0)
        return box[0]


class EpochBatches:
    """One epoch's batches each time it is iterated: a fresh permutation of `n` rows drawn from
    `generator`, cut into runs of `batch_size` (the last one shorter), as lists of row numbers.

    A DataLoader's batch sampler, so that accelerate can shard each batch over the processes."""

    drop_last = False

    def __init__(self, n: int, batch_size: int, generator: Any) -> None:
        self.n, self.batch_size, self.generator = n, batch_size, generator

    def __iter__(self) -> Iterator[list[int]]:
        import torch

        for batch in torch.randperm(self.n, generator=self.generator).split(self.batch_size):
            yield batch.tolist()

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size


def index_loader(n: int, batch_size: int, generator: Any) -> Any:
    """A DataLoader of row-number batches (LongTensor (B,)) in `EpochBatches` order."""
    import torch
    from torch.utils.data import DataLoader

    # Its own generator for the seed a DataLoader draws when iterated (for workers it has none
    # of): left to itself it draws from torch's global generator, and changes the dropout masks.
    rows: Any = range(n)   # a map-style dataset of row numbers: rows[i] == i
    return DataLoader(rows, batch_sampler=EpochBatches(n, batch_size, generator),
                      collate_fn=torch.tensor, generator=torch.Generator().manual_seed(0))


class DataParallel:
    """accelerate's Accelerator as the students' training loops use it, under a launch of
    several processes (`process_count() > 1`; never built for one process).

    Batches are split, not dealt out (`split_batches`): each step every process takes its shard
    of the same global batch, so a run with N processes takes the steps a one-process run with
    the same `batch_size` takes, and `batch_size` must be a multiple of N. The last, shorter
    batch of an epoch is completed with the epoch's first rows (accelerate's `even_batches`), so
    that every process takes every step. DDP averages gradients; the students divide each shard's
    loss by the whole batch's counts (`total`) and multiply it by N, so the average is the
    gradient of the whole batch's loss. `find_unused_parameters`: a head that no row of a shard
    uses, or an encoder's pooler, gets no gradient there.

    The heads student's n-gram bag has sparse gradients, which the gloo backend (CPU) all-reduces
    and NCCL (GPUs) cannot: see `check_sparse`."""

    def __init__(self, device: str) -> None:
        from accelerate import Accelerator, DataLoaderConfiguration
        from accelerate.utils import DistributedDataParallelKwargs

        self.accelerator = Accelerator(
            cpu=device == "cpu",
            dataloader_config=DataLoaderConfiguration(split_batches=True, even_batches=True),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        self.processes = int(self.accelerator.num_processes)
        self.index = int(self.accelerator.process_index)

    def check_batch_size(self, batch_size: int) -> None:
        if batch_size % self.processes:
            raise WorkbenchError(
                f"batch_size {batch_size} cannot be split over {self.processes} processes: every "
                f"process takes an equal shard of each batch. Set batch_size to a multiple of "
                f"{self.processes} (--set batch_size=...)")

    def check_sparse(self, module: Any) -> None:
        """NCCL cannot all-reduce sparse gradients: say so before training, not mid-step."""
        import torch

        sparse = [name for name, sub in module.named_modules()
                  if isinstance(sub, torch.nn.Embedding | torch.nn.EmbeddingBag) and sub.sparse]
        backend = torch.distributed.get_backend() if torch.distributed.is_initialized() else ""
        if sparse and backend != "gloo":
            raise WorkbenchError(
                f"the {backend} backend cannot average the sparse gradients of {sparse[0]}: "
                "train the heads student on several GPUs with --set lexical_buckets=0 (no "
                "n-gram bag), or on CPU processes (gloo)")

    def prepare(self, *objects: Any) -> Any:
        """Models wrapped in DDP, optimisers in accelerate's, the loader sharded."""
        return self.accelerator.prepare(*objects)

    def backward(self, loss: Any) -> None:
        self.accelerator.backward(loss)

    def total(self, tensor: Any) -> Any:
        """`tensor` summed over the processes (every process gets the sum)."""
        return self.accelerator.reduce(tensor, reduction="sum")

    def clip_grad_norm_(self, parameters: Any, max_norm: float) -> Any:
        return self.accelerator.clip_grad_norm_(parameters, max_norm)


def data_parallel(device: str) -> DataParallel | None:
    """A `DataParallel` under a launch of several processes; None alone."""
    return DataParallel(device) if process_count() > 1 else None
