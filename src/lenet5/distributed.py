"""Data-parallel training across processes and machines: PyTorch DDP, launched by torchrun.

``torchrun --nproc-per-node N -m lenet5 train ...`` (or ``lenet5 train --nproc N``) starts N
copies of the training script; each reads its rank from the environment torchrun sets, joins
one process group (gloo on CPU, nccl on CUDA) and trains on its shard of every batch.

The sharding keeps one process's arithmetic: every rank draws the same per-epoch permutation,
cuts it into the same global batches of ``batch_size`` images (distorting each whole batch
with the same draws when augmentation is on) and takes its own contiguous slice of each
(``batch_size / world_size`` images). DistributedDataParallel averages the gradients over
ranks, so scaling each rank's mean loss by ``local images x world_size / global batch`` makes the averaged gradient the mean over the whole global batch, as one process would get,
even for a short last batch that does not split evenly. Validation and test metrics are
summed over ranks the same way. Only rank 0 writes files and logs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .errors import Lenet5Error
from .inference import predict_logits
from .preprocess import Normalization

# torchrun's environment: set for every process it starts.
ENV_RANK, ENV_WORLD, ENV_LOCAL_RANK = "RANK", "WORLD_SIZE", "LOCAL_RANK"
MAIN_RANK = 0


class DistributedError(Lenet5Error):
    """A data-parallel run cannot start as asked (world size, batch size, GPUs)."""


class MainRankError(Lenet5Error):
    """Rank 0's error, re-raised on the other ranks; rank 0 already printed it."""


@dataclass(frozen=True)
class Shard:
    """This process's place in the job: which rank of how many, and whether it writes files."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == MAIN_RANK

    @property
    def active(self) -> bool:
        """Whether there are other processes to talk to."""
        return self.world_size > 1

    def check_batch_size(self, batch_size: int) -> None:
        """Refuse a global batch that the ranks cannot split evenly."""
        if batch_size % self.world_size:
            raise DistributedError(
                f"--batch-size {batch_size} does not divide by the world size {self.world_size}: "
                f"each process takes batch-size / world-size images; choose a multiple of {self.world_size}")

    def local(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global batch (all of it in a single process)."""
        return batch.tensor_split(self.world_size)[self.rank] if self.active else batch

    def scale_loss(self, local_mean: torch.Tensor, local_count: int, global_count: int) -> torch.Tensor:
        """The loss to back-propagate: after DDP's average over ranks, the global batch's mean."""
        if not self.active:
            return local_mean
        return local_mean * (local_count * self.world_size / global_count)

    def all_finite(self, loss: torch.Tensor) -> bool:
        """Whether the loss is finite on every rank, so a NaN on one stops all at the same batch."""
        finite = bool(torch.isfinite(loss))
        return finite if not self.active else self.sum(float(not finite))[0] == 0

    def sum(self, *values: float) -> list[float]:
        """Each value summed over all ranks (float64, so image counts stay exact)."""
        if not self.active:
            return list(values)
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        dist.all_reduce(tensor)
        return tensor.tolist()

    def evaluate(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                 normalize: Normalization, loss_fn: nn.Module) -> tuple[float, float]:
        """Mean loss and accuracy over all ranks' shards of ``images``; (nan, nan) for none.

        ``model`` must be the plain module, not the DDP wrapper: shards can differ in size,
        and DDP's per-forward collectives need every rank to call forward equally often.
        """
        if not self.active:
            from .inference import evaluate

            return evaluate(model, images, labels, normalize, loss_fn)
        part = torch.arange(len(images)).tensor_split(self.world_size)[self.rank]
        loss_sum, correct = 0.0, 0
        if len(part):
            logits = predict_logits(model, images[part], normalize)
            targets = labels[part].to(logits.device)
            loss_sum = loss_fn(logits, targets).item() * len(part)  # the criteria average over images
            correct = int((logits.argmax(1) == targets).sum())
        loss_sum, correct = self.sum(loss_sum, correct)
        if not len(images):
            return float("nan"), float("nan")
        return loss_sum / len(images), correct / len(images)

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The model DDP-wrapped (the gradient all-reduce), or itself in a single process."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        if device.type == "cuda":  # CPU batchnorm stays per rank: SyncBatchNorm needs an accelerator
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            return DistributedDataParallel(model, device_ids=[device.index or 0])
        return DistributedDataParallel(model)

    def share(self, make: Callable[[], Any]) -> Any:
        """Rank 0 calls ``make``; every rank gets its result (or rank 0's one-line error).

        Used for what only rank 0 can read (a resumed run's files may be on its machine only),
        and so a user error on rank 0 stops every rank instead of leaving them waiting.
        """
        if not self.active:
            return make()
        import torch.distributed as dist

        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = ("ok", make())
            except Lenet5Error as exc:
                box[0] = ("error", exc)
        dist.broadcast_object_list(box, src=MAIN_RANK, device=_collective_device())
        kind, value = box[0]
        if kind == "error":
            raise value if self.is_main else MainRankError(str(value))
        return value

    def barrier(self) -> None:
        """Wait until every rank gets here (a no-op in a single process)."""
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def broadcast_model(self, model: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank (after rank 0 loaded a file)."""
        if not self.active:
            return
        import torch.distributed as dist

        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=MAIN_RANK)


SINGLE = Shard()


def _collective_device() -> torch.device:
    """Small tensors for collectives stay on the CPU: the process group sends those through gloo."""
    return torch.device("cpu")


def launched_by_torchrun() -> bool:
    return ENV_RANK in os.environ and ENV_WORLD in os.environ


def setup() -> Shard:
    """Join torchrun's process group, if this process was started by torchrun.

    Idempotent: the CLI calls it before choosing a run folder, ``fit`` again. The group
    sends CPU tensors through gloo and, where CUDA exists, CUDA tensors through nccl, so
    the choice of ``--device`` needs no second group.

    Returns:
        This process's :class:`Shard`; :data:`SINGLE` when not launched by torchrun.
    """
    if not launched_by_torchrun():
        return SINGLE
    import torch.distributed as dist

    shard = Shard(int(os.environ[ENV_RANK]), int(os.environ[ENV_WORLD]), int(os.environ.get(ENV_LOCAL_RANK, 0)))
    if not dist.is_initialized():
        cuda = torch.cuda.is_available() and shard.local_rank < torch.cuda.device_count()
        if cuda:
            torch.cuda.set_device(shard.local_rank)  # "cuda" now means this rank's own GPU
        dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo")
    return shard


def shutdown() -> None:
    """Leave the process group (a no-op outside torchrun)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: torch.device, shard: Shard) -> torch.device:
    """The device this rank computes on: under CUDA, the GPU of its local rank."""
    if device.type != "cuda" or not shard.active:
        return device
    if shard.local_rank >= torch.cuda.device_count():
        raise DistributedError(f"local rank {shard.local_rank} has no GPU: this machine has "
                               f"{torch.cuda.device_count()}; use --nproc-per-node {torch.cuda.device_count()}")
    return torch.device("cuda", shard.local_rank)


def launch(train_args: list[str], nproc: int, nnodes: int = 1, rdzv_endpoint: str | None = None,
           threads: int | None = None) -> int:
    """Run ``lenet5 train TRAIN_ARGS`` as ``nproc`` processes per node through torchrun's launcher.

    Args:
        train_args: the flags after ``lenet5 train`` (without the launch flags).
        nproc: processes on this machine.
        nnodes: machines in the job; each runs the same command with the same ``rdzv_endpoint``.
        rdzv_endpoint: ``HOST:PORT`` of the rendezvous (any one of the machines); required when
            ``nnodes > 1``. A single machine picks a free local port itself.
        threads: torch threads per process (default: this machine's cores / ``nproc``).

    Returns:
        0, or the exit status of the first process that failed (which printed its own error).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if nproc < 1 or nnodes < 1:
        raise DistributedError("--nproc and --nnodes must be at least 1")
    if nnodes > 1 and not rdzv_endpoint:
        raise DistributedError("--nnodes above 1 needs --rdzv-endpoint HOST:PORT, the same on every machine")
    where = ["--standalone"] if nnodes == 1 else ["--nnodes", str(nnodes), "--rdzv-backend", "c10d",
                                                  "--rdzv-endpoint", str(rdzv_endpoint)]
    # torchrun would set 1 thread per process and print a banner about it; divide the cores instead.
    os.environ.setdefault("OMP_NUM_THREADS", str(threads or max(1, (os.cpu_count() or 1) // nproc)))
    try:
        run(parse_args([*where, "--nproc-per-node", str(nproc), "-m", "lenet5", "train", *train_args]))
    except ChildFailedError as exc:
        _, first = exc.get_first_failure()
        return first.exitcode if first.exitcode and first.exitcode > 0 else 1
    return 0
