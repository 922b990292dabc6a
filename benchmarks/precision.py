"""bf16 against fp32 for the multiblock block on this CPU: the training step, and what a short training reaches.

    python benchmarks/precision.py [--quick] [--threads N] [--json FILE]

1. The full-size block training step (R=16, C=64, batch 16 of 48x48, Adam, L1) in fp32 and with bf16
   autocast, each NCHW and channels_last, timed in alternation (engine.speed.Speed, as the trainer runs it).
2. The same short training twice, fp32 and bf16 + channels_last: a block (C=32, R=4) trained for ITERS
   iterations on same-size pairs synthesised in memory from T91 (SR_DATA) or the bundled photos, then
   scored on held-out pairs (RGB PSNR, no shave, fp32 inference): the precision setting's cost in dB.
Decides whether PRECISION=auto may pick bf16 on CPUs like this one (docs/benchmarks.md).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import finish, interleaved, parser, rounded, start  # repo on sys.path

from core.settings import resolve_data_root
from data.datasets import bundled_photos, load_named_set
from data.paired import Pair, PairedImages, PatchSampler
from data.synth import degrade, prepare_hr
from engine.schedules import Constant
from engine.speed import Speed
from engine.trainer import Stage, TrainConfig, Trainer, train_step
from models.rcan import Block, orthogonal_init_
from pipelines.multiblock.train import mean_psnr

VARIANTS = {"fp32": Speed(), "fp32 channels_last": Speed(channels_last=True), "bf16": Speed(precision="bf16"),
            "bf16 channels_last": Speed(precision="bf16", channels_last=True)}


def step_fn(speed: Speed, features: int, resblocks: int, batch: int, patch: int):
    torch.manual_seed(0)
    net = speed.prepare_module(orthogonal_init_(Block(features, resblocks))).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    x, y = torch.rand(batch, 3, patch, patch), torch.rand(batch, 3, patch, patch)
    return lambda: train_step(net, x, y, torch.nn.functional.l1_loss, optimizer, None, speed)


def synthetic_pairs(images: list[tuple[str, np.ndarray]], size: int) -> PairedImages:
    lr, hr = [], []
    for index, (_name, image) in enumerate(images):
        high = prepare_hr(image, 2, max_size=size)
        lr.append(degrade(high, 2, np.random.default_rng(index))[0])
        hr.append(high)
    pairs = [Pair(f"img{i}", Path("lr"), Path("hr")) for i in range(len(images))]
    return PairedImages(pairs, lr, hr)


def short_training(speed: Speed, train: PairedImages, val: PairedImages, iters: int) -> dict[str, float]:
    torch.manual_seed(0)
    net = orthogonal_init_(Block(32, 4))
    torch.nn.init.orthogonal_(net.tail.weight, gain=0.1)
    sampler = PatchSampler(train, 48, 16, seed=0)
    stage = Stage("train", iters, lambda m: torch.optim.Adam(m.parameters(), lr=2e-4), Constant(2e-4))
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(run_dir=Path(tmp), eval_every=iters, progress=False, speed=speed)
        trainer = Trainer(net, [stage], sampler.batch, torch.nn.functional.l1_loss,
                          lambda model: {"val_psnr": mean_psnr(model, val, cpu)}, config, cpu)
        began = time.perf_counter()
        result = trainer.fit()
    return {"val_psnr_rgb": result.best, "seconds": time.perf_counter() - began}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=300, help="iterations of the short training (default 300)")
    args = p.parse_args()
    result = start(args)
    full = (16, 2, 4, 24) if args.quick else (64, 16, 16, 48)
    steps = {name: step_fn(speed, *full) for name, speed in VARIANTS.items()}
    timing = interleaved(steps, repeats=2 if args.quick else 4)
    base = timing["fp32"]["median_s"]
    result["block_step"] = {"size": "C={}, R={}, batch {} of {}x{}".format(*full, full[-1]),
                            **{name: {"s_per_step": t["median_s"], "speedup_vs_fp32": base / t["median_s"]}
                               for name, t in timing.items()}}
    root = resolve_data_root(None)
    source = load_named_set(root, "T91") if (root / "T91").is_dir() else bundled_photos("train")
    pairs = synthetic_pairs(source, 96 if args.quick else 160)
    val_count = max(2, len(pairs) // 10)
    train, val = pairs.subset(list(range(val_count, len(pairs)))), pairs.subset(list(range(val_count)))
    iters = 20 if args.quick else args.iters
    fp32 = short_training(VARIANTS["fp32"], train, val, iters)
    bf16 = short_training(VARIANTS["bf16 channels_last"], train, val, iters)
    result["short_training"] = {"data": f"{'T91' if (root / 'T91').is_dir() else 'bundled photos'}: "
                                        f"{len(train)} train / {len(val)} val synthetic same-size pairs",
                                "block": "C=32, R=4, batch 16 of 48x48, Adam 2e-4", "iterations": iters,
                                "fp32": fp32, "bf16 channels_last": bf16,
                                "psnr_diff_bf16_minus_fp32_db": bf16["val_psnr_rgb"] - fp32["val_psnr_rgb"]}
    result["threads_env"] = os.environ.get("OMP_NUM_THREADS")
    finish(rounded(result), args)


if __name__ == "__main__":
    main()
