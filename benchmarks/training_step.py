"""What engine/trainer.Trainer costs per iteration over a bare eager training step, at a small size.

    python benchmarks/training_step.py [--quick] [--threads N]

A small block N_i (C = 32, R = 2) on batches of 8 aligned 32x32 patches from data/paired.PatchSampler,
L1 loss, Adam. ``bare``: the loop anyone would write (sample, forward, loss, zero_grad, backward, step).
``trainer``: the same iterations through ``Trainer.fit`` with everything it does: learning-rate schedule,
the finite-loss check (one device sync per step), loss accumulation, progress bar, and every
``EVAL_EVERY`` iterations a validation pass (``pipelines.multiblock.mean_psnr`` on two held-out
128x128 pairs, tiled as in the phases), a log.csv row and an atomic full-state checkpoint (``latest``,
plus ``best`` when it improves). Small sizes make the fixed per-iteration costs visible; at full size
(a step of seconds) they vanish. The two loops alternate, twice each (once with --quick).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import finish, matmul_gflops, parser, progress, rounded, start  # repo on sys.path

from data.paired import Pair, PairedImages, PatchSampler
from engine.losses import make_loss
from engine.schedules import Constant
from engine.trainer import Stage, TrainConfig, Trainer
from models.rcan import Block, orthogonal_init_
from pipelines.multiblock.train import mean_psnr

CHANNELS, RESBLOCKS, BATCH, PATCH, LR = 32, 2, 8, 32, 1e-4


def synthetic_pairs(count: int, size: int, seed: int) -> PairedImages:
    rng = np.random.default_rng(seed)
    hr = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]
    lr = [np.clip(h.astype(np.int16) + rng.integers(-8, 9, h.shape), 0, 255).astype(np.uint8) for h in hr]
    pairs = [Pair(f"img{i}", Path(f"img{i}_LR.png"), Path(f"img{i}_HR.png")) for i in range(count)]
    return PairedImages(pairs, lr, hr)


def fresh_net() -> Block:
    torch.manual_seed(0)
    return orthogonal_init_(Block(CHANNELS, RESBLOCKS))


def bare(sampler: PatchSampler, steps: int) -> float:
    net = fresh_net().train()
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = make_loss("l1")
    began = time.perf_counter()
    for step in range(steps):
        lr, hr = sampler.batch(step)
        loss = loss_fn(net(lr), hr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - began) / steps


def with_trainer(sampler: PatchSampler, val: PairedImages, steps: int, eval_every: int) -> tuple[float, int]:
    net = fresh_net()
    evaluations = 0

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        nonlocal evaluations
        evaluations += 1
        return {"val_psnr": mean_psnr(model, val, torch.device("cpu"))}

    stage = Stage("train", steps, lambda m: torch.optim.Adam(m.parameters(), lr=LR), Constant(LR))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(net, [stage], sampler.batch,
                          make_loss("l1"), evaluate, TrainConfig(run_dir=Path(tmp), eval_every=eval_every),
                          torch.device("cpu"))
        began = time.perf_counter()
        trainer.fit()
        return (time.perf_counter() - began) / steps, evaluations


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args()
    result = start(args)
    steps, eval_every, rounds = (60, 30, 1) if args.quick else (300, 100, 2)
    sampler = PatchSampler(synthetic_pairs(8, 256, 0), PATCH, BATCH, seed=0)
    val = synthetic_pairs(2, 128, 1)
    result["setup"] = {"block": f"C={CHANNELS}, R={RESBLOCKS}", "batch": f"{BATCH} x {PATCH}x{PATCH}",
                       "steps": steps, "eval_every": eval_every, "rounds": rounds}
    result["matmul_gflops"] = matmul_gflops(1024 if args.quick else 2048)
    bare(sampler, 5)  # warm-up
    bare_times, trainer_times = [], []
    began = time.perf_counter()
    for index in range(rounds):
        bare_times.append(bare(sampler, steps))
        progress(f"bare loop of round {index + 1}: {1e3 * bare_times[-1]:.1f} ms/iteration; runs", 2 * index + 1,
                 2 * rounds, began)
        seconds, evaluations = with_trainer(sampler, val, steps, eval_every)
        trainer_times.append(seconds)
        progress(f"Trainer.fit of round {index + 1}: {1e3 * seconds:.1f} ms/iteration; runs", 2 * index + 2,
                 2 * rounds, began)
    b, t = statistics.median(bare_times), statistics.median(trainer_times)
    result["bare_ms_per_iteration"] = 1e3 * b
    result["trainer_ms_per_iteration"] = 1e3 * t
    result["evaluations_per_run"] = evaluations
    result["trainer_overhead_percent"] = 100 * (t - b) / b
    result["trainer_overhead_ms_per_iteration"] = 1e3 * (t - b)
    finish(rounded(result), args)


if __name__ == "__main__":
    main()
