"""Data loading (data/paired.PatchSampler) against the multiblock training step it feeds.

    python benchmarks/data_loading.py [--quick] [--threads N]

The sampler draws the report's batches (16 aligned LR/HR patches of 48x48, random rot90/flip, uint8 ->
float32 NCHW) from same-size pairs held in memory: the six bundled scikit-image training photos, each
paired with a blurred copy of itself (content does not change the cost). The training step is one
full-size block N_i (C = 64, R = 16) on such a batch: forward, L1 loss, backward, Adam, in plain eager
fp32, both in the default NCHW memory format and in channels-last. Everything in one process.
Target: loading a batch at least 20x faster than the fastest training step.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from common import finish, interleaved, matmul_gflops, parser, rounded, start  # repo on sys.path
from scipy.ndimage import gaussian_filter

from data.datasets import bundled_photos
from data.paired import Pair, PairedImages, PatchSampler
from models.rcan import Block, orthogonal_init_


def paired_photos() -> PairedImages:
    photos = bundled_photos("train")
    pairs = [Pair(name, Path(f"{name}_LR.png"), Path(f"{name}_HR.png")) for name, _ in photos]
    lr = [np.clip(gaussian_filter(hr.astype(np.float32), (1.2, 1.2, 0)), 0, 255).astype(np.uint8)
          for _, hr in photos]
    return PairedImages(pairs, lr, [hr for _, hr in photos])


def training_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer, batch, channels_last: bool) -> None:
    lr, hr = batch
    if channels_last:
        lr, hr = (t.contiguous(memory_format=torch.channels_last) for t in (lr, hr))
    loss = torch.nn.functional.l1_loss(net(lr), hr)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args()
    result = start(args)
    batch_size, patch = 16, 48
    sampler = PatchSampler(paired_photos(), patch, batch_size, seed=0)
    resblocks = 4 if args.quick else 16  # --quick: a quarter of the block, to finish in seconds
    result["setup"] = {"batch": f"{batch_size} x {patch}x{patch}", "images": len(sampler.images),
                       "block": f"C=64, R={resblocks}, L1, Adam(1e-4)"}
    result["matmul_gflops"] = matmul_gflops(1024 if args.quick else 2048)
    step = iter(range(10**9))
    loading = interleaved({"batch": lambda: sampler.batch(next(step))}, 20 if args.quick else 200, warmup=3)["batch"]
    result["loading"] = {"ms_per_batch": 1e3 * loading["median_s"],
                         "patches_per_s": batch_size / loading["median_s"]}

    torch.manual_seed(0)
    nets = {"nchw": orthogonal_init_(Block(64, resblocks)), "channels_last": orthogonal_init_(Block(64, resblocks))}
    nets["channels_last"].load_state_dict(nets["nchw"].state_dict())
    nets["channels_last"] = nets["channels_last"].to(memory_format=torch.channels_last)
    optimizers = {name: torch.optim.Adam(net.parameters(), lr=1e-4) for name, net in nets.items()}
    batches = [sampler.batch(i) for i in range(4)]
    counter = iter(range(10**9))
    steps = interleaved({name: (lambda name=name: training_step(nets[name], optimizers[name],
                                                                 batches[next(counter) % 4], name != "nchw"))
                         for name in nets}, 2 if args.quick else 5)
    for name, t in steps.items():
        result[f"training_step_{name}"] = {"ms_per_step": 1e3 * t["median_s"], "ms_best": 1e3 * t["min_s"],
                                           "patches_per_s": batch_size / t["median_s"]}
    fastest = min(t["median_s"] for t in steps.values())
    result["targets"] = {"step_over_batch_loading": fastest / loading["median_s"], "target": 20.0,
                         "channels_last_speedup": steps["nchw"]["median_s"] / steps["channels_last"]["median_s"]}
    finish(rounded(result), args)


if __name__ == "__main__":
    main()
