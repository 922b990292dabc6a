"""torchrun / DistributedDataParallel helpers. A plain ``python script.py`` is a world of size one.

Under ``torchrun --nproc_per_node=N`` every rank draws the same global batch (sampling is a pure function of
seed and step) and trains on its contiguous slice of it, so N ranks with a per-rank batch of B/N follow the
same maths as one process with batch B. Only rank 0 writes files; an evaluation during training shards its
images across the ranks (``mean_over_shards``), and what rank 0 decides is sent to every rank, so all ranks
stop, lower the rate or keep a checkpoint at the same iteration.

Every tensor handed to a collective lives on ``DistInfo.device``, the backend's device: the GPU for NCCL
(which has no CPU transport), the CPU for gloo.

A process joins one process group, once: ``init_distributed`` creates it on its first call and hands the
same ``DistInfo`` to every later call (phase3.py trains, then regenerates, in one process), and
``finish_distributed`` destroys it once, when the script ends (``core.entry.cli_entry``). Re-creating a
default group in one process makes NCCL reuse the store's keys, where a rank can read the earlier group's
stale id. Under torchrun a world of one process joins a group too (``torchrun --nproc_per_node=1``), so the
DDP and collective paths of a multi-GPU run can be exercised on one GPU (``benchmarks/gpu_check.py``).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from core.errors import UserError

# Rank 0 scores the test sets and writes while the others wait in a collective; the default 10-minute
# watchdog of NCCL would abort a long final scoring of a large test set, so the group waits this long instead.
TIMEOUT_ENV = "SR_DIST_TIMEOUT_MINUTES"
DEFAULT_TIMEOUT_MINUTES = 240


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where collectives' tensors go
    joined: bool = False  # in a process group (under torchrun), even one of a single process

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Whether collectives run: several processes, or a process group of one (torchrun, one rank)."""
        return self.world_size > 1 or self.joined


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def rank_device(device: torch.device, local_rank: int, visible: int) -> torch.device:
    """This rank's device: GPU ``local_rank``, or the only visible GPU when a scheduler shows each process
    one GPU (CUDA_VISIBLE_DEVICES per rank); CPU stays CPU."""
    if device.type != "cuda":
        return device
    if visible == 0:
        raise UserError("--device cuda: no CUDA GPU is visible to this process; use --device cpu")
    if visible == 1:
        return torch.device("cuda", 0)
    if local_rank >= visible:
        raise UserError(f"LOCAL_RANK={local_rank} but this process sees only {visible} GPUs; start at most "
                        f"{visible} processes per node (torchrun --nproc_per_node={visible})")
    return torch.device("cuda", local_rank)


def timeout() -> timedelta:
    text = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_MINUTES))
    try:
        return timedelta(minutes=float(text))
    except ValueError:
        raise UserError(f"{TIMEOUT_ENV}={text!r}: expected a number of minutes") from None


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another launcher of its env:// protocol) started this process."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


_joined: tuple[DistInfo, torch.device] | None = None  # this process's group, once joined


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun set up (env RANK/WORLD_SIZE) and pick this rank's device; a later
    call returns the same group (one per process). A plain ``python script.py`` joins none."""
    global _joined
    if _joined is not None:
        return _joined
    if not launched_by_torchrun():
        return DistInfo(device=device if device.type == "cuda" else torch.device("cpu")), device
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    visible = torch.cuda.device_count() if device.type == "cuda" else 0
    device = rank_device(device, local_rank, visible)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        kwargs = {"device_id": device} if device.type == "cuda" else {}  # NCCL binds its communicator now
        dist.init_process_group(backend=backend_for(device), timeout=timeout(), **kwargs)
    _joined = DistInfo(rank, world_size, local_rank, device, joined=True), device
    return _joined


def finish_distributed() -> None:
    """Leave this process's group together (a barrier, then destroy), once, at the end of the script.
    The process itself then ends through ``core.entry.end_torchrun_process``."""
    global _joined
    if _joined is not None and dist.is_initialized():
        barrier(_joined[0])
        dist.destroy_process_group()
    _joined = None


def barrier(info: DistInfo) -> None:
    if info.enabled:
        if info.device.type == "cuda":
            dist.barrier(device_ids=[info.device.index])
        else:
            dist.barrier()


def shard_range(total: int, info: DistInfo) -> range:
    """The indices of ``range(total)`` this rank handles (contiguous, sizes differ by at most one)."""
    base, extra = divmod(total, info.world_size)
    start = info.rank * base + min(info.rank, extra)
    return range(start, start + base + (1 if info.rank < extra else 0))


def gathered(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Every rank's 1-D ``values``, in rank order, as rows of a (world size, n) tensor on every rank: one
    collective for numbers that each need a reduction of their own (a mean, a maximum, the first rank's)."""
    values = values.detach().reshape(1, -1).to(info.device)
    if not info.enabled:
        return values
    rows = [torch.empty_like(values) for _ in range(info.world_size)]
    dist.all_gather(rows, values)
    return torch.cat(rows)


def over_ranks(values: torch.Tensor, info: DistInfo, op: str = "sum") -> torch.Tensor:
    """``values`` added (``op="sum"``) or their maximum taken (``"max"``) elementwise over all ranks: a new
    tensor on the backend's device, the same on every rank."""
    values = values.detach().to(info.device, copy=True)
    if info.enabled:
        dist.all_reduce(values, op={"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op])
    return values


def mean_over_shards(score: Callable[[Any], torch.Tensor | float], items: Sequence[Any], info: DistInfo) -> float:
    """The mean of ``score(item)`` (a number, or a tensor of numbers, e.g. one per image of a batch) over
    ``items``, each rank scoring its shard (``shard_range``): the float64 sums and counts are added over the
    ranks, so every rank returns the same mean, one process's within float rounding. Scores stay where
    ``score`` makes them (a GPU) until one number per rank is read."""
    mine = [torch.as_tensor(score(items[i]), dtype=torch.float64).reshape(-1)
            for i in shard_range(len(items), info)]
    scores = torch.cat(mine) if mine else torch.zeros(0, dtype=torch.float64)
    total, count = over_ranks(torch.stack([scores.sum(), scores.new_tensor(scores.numel())]), info).tolist()
    return total / count


def from_main(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank (an evaluation's metrics, a decision taken once)."""
    if not info.enabled:
        return obj
    box = [obj if info.is_main else None]
    dist.broadcast_object_list(box, src=0, device=info.device)
    return box[0]


def from_every_rank(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (what each rank sees of a shared folder)."""
    if not info.enabled:
        return [obj]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered
