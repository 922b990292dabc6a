"""The multi-GPU path in one process: run under torchrun, it joins the process group the way every training
script does (NCCL on a GPU, gloo on the CPU), trains a tiny block through DistributedDataParallel with the
trainer, runs each of this project's collectives, and writes what it saw as JSON.

    python -m torch.distributed.run --standalone --nproc_per_node=1 benchmarks/ddp_probe.py --device cuda \\
        --out DIR

``benchmarks/gpu_check.py`` (step ``ddp``) runs it with one rank, which needs one GPU only.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402

from core.dist import barrier, from_every_rank, from_main, gathered, init_distributed  # noqa: E402
from core.entry import cli_entry  # noqa: E402
from engine.schedules import Constant  # noqa: E402
from engine.trainer import Stage, TrainConfig, Trainer  # noqa: E402
from models.rcan import Block, orthogonal_init_  # noqa: E402

STEPS = 6


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    info, device = init_distributed(torch.device(args.device))
    again, _ = init_distributed(torch.device(args.device))  # a later call joins no second group
    torch.manual_seed(0)
    net = orthogonal_init_(Block(8, 1))

    def batches(step: int, _dist):
        x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(step))
        return x, 0.9 * x + 0.05

    stage = Stage("a", STEPS, lambda m: torch.optim.Adam(m.parameters(), lr=1e-3), Constant(1e-3))
    trainer = Trainer(net, [stage], batches, nn.functional.l1_loss, lambda _m: {"val_psnr": 0.0},
                      TrainConfig(run_dir=args.out, eval_every=3, progress=False), device, info)
    result = trainer.fit()
    rows = gathered(torch.tensor([3.0], device=device), info)
    report = {
        "backend": dist.get_backend() if dist.is_initialized() else None,
        "world_size": info.world_size, "rank": info.rank, "device": str(device), "joined": info.enabled,
        "same_group_on_second_call": again is info,
        "ddp": type(trainer.module).__name__, "steps": result.step,
        "parameters_on": sorted({p.device.type for p in net.parameters()}),
        "gathered": rows.tolist(), "gathered_on": rows.device.type,
        "from_main": from_main({"checked": True}, info), "from_every_rank": from_every_rank(info.rank, info),
    }
    barrier(info)
    if info.is_main:
        (args.out / "probe.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
