"""bf16 against fp32 for the multiblock networks on this CPU: the training step, the machine's convolution
rate beside it, and what a short training reaches.

    python benchmarks/precision.py [--quick] [--threads N] [--json FILE] [--iters N]

1. The full-size block training step (R=16, C=64, batch 16 of 48x48, Adam, L1) as the trainer runs it
   (``engine.trainer.train_step``, ``engine.speed.Speed``): fp32 and bf16 autocast, each NCHW and
   channels_last; bf16 channels_last with torch.compile (``COMPILE=true``); bf16 channels_last and fp32
   with autograd's own gradient of the attention's mean (the block before ``models.rcan.ChannelMean``).
   Phase 4's combined N (three clamped blocks) in fp32, bf16 channels_last, and that compiled. In the same
   alternating rounds: the block's own 3x3 64->64 convolution at the step's size, forward, in bf16
   channels_last (the machine's bf16 convolution rate) and in fp32 channels_last, 10 calls per round. Each
   step's FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (forward and backward), so every
   step gets its GFLOP/s and the fraction of the convolution rate it reaches.
2. The same short training three times, fp32, bf16 + channels_last eager, and bf16 + channels_last compiled:
   a block (C=32, R=4) trained for ITERS iterations on same-size pairs synthesised in memory from T91
   (SR_DATA) or the bundled photos, then scored on held-out pairs (RGB PSNR, no shave, fp32 inference):
   the precision setting's cost in dB, and whether compiling changes it.
Decides what PRECISION=auto picks on CPUs like this one, and whether COMPILE should (docs/benchmarks.md).
Variants that cannot pay for themselves on this machine are skipped, the reason in the result (``skipped``):
torch.compile on a CPU (the whole run printed nothing for 15 minutes on a 2-core AVX2 EPYC, more than any
training on such a CPU could win back) and bf16 where the CPU does not compute it in hardware (emulated,
about 100x slower: 20 iterations of the short training took 2.5 minutes there); ``--all`` times them
anyway. Progress lines go to stderr.
"""
from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from common import finish, interleaved, parser, progress, rounded, say, start  # repo on sys.path
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from core.hardware import cpu_bf16, cpu_description
from core.settings import resolve_data_root
from data.datasets import bundled_photos, load_named_set
from data.paired import Pair, PairedImages, PatchSampler
from data.synth import degrade, prepare_hr
from engine.optimizers import adam
from engine.schedules import Constant
from engine.speed import Speed
from engine.trainer import Stage, TrainConfig, Trainer, train_step
from models.blocks import ChannelAttention
from models.rcan import Block, MultiBlockNet, orthogonal_init_
from pipelines.multiblock.train import mean_psnr

CPU = torch.device("cpu")
BF16_CL = Speed(precision="bf16", channels_last=True)
BF16_CL_COMPILE = Speed(precision="bf16", channels_last=True, compile=True)
BLOCK_VARIANTS = {"fp32": Speed(), "fp32 channels_last": Speed(channels_last=True), "bf16": Speed(precision="bf16"),
                  "bf16 channels_last": BF16_CL, "bf16 channels_last compile": BF16_CL_COMPILE,
                  "bf16 channels_last, autograd mean backward (before)": BF16_CL,
                  "fp32, autograd mean backward (before)": Speed()}
COMBINED_VARIANTS = {"N fp32": Speed(), "N bf16 channels_last": BF16_CL,
                     "N bf16 channels_last compile": BF16_CL_COMPILE}


def autograd_mean_pool(net: nn.Module) -> nn.Module:
    """``net`` with the attention's pool as it was before ``models.rcan.ChannelMean`` (same numbers)."""
    for module in net.modules():
        if isinstance(module, ChannelAttention):
            module.pool = nn.AdaptiveAvgPool2d(1)
    return net


def make_net(blocks: int, features: int, resblocks: int, before: bool) -> nn.Module:
    torch.manual_seed(0)
    parts = [orthogonal_init_(Block(features, resblocks, clamp=blocks > 1)) for _ in range(blocks)]
    net = parts[0] if blocks == 1 else MultiBlockNet(parts)
    return autograd_mean_pool(net) if before else net


def step_fn(speed: Speed, net: nn.Module, batch: int, patch: int) -> Callable[[], torch.Tensor]:
    """One training step as the trainer takes it (the scripts' Adam, L1), on a fixed random batch."""
    net = speed.prepare_module(net).train()
    module = speed.compiled(net)
    optimizer = adam(net.parameters(), CPU, lr=1e-4)
    x, y = torch.rand(batch, 3, patch, patch), torch.rand(batch, 3, patch, patch)
    return lambda: train_step(module, x, y, nn.functional.l1_loss, optimizer, None, speed)


def step_flops(make: Callable[[], nn.Module], speed: Speed, batch: int, patch: int) -> float:
    """FLOPs of one eager training step (forward and backward; the optimizer's are not counted)."""
    step = step_fn(Speed(precision=speed.precision, channels_last=speed.channels_last), make(), batch, patch)
    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def conv_rate_fns(features: int, batch: int, patch: int) -> tuple[float, dict[str, Callable[[], None]]]:
    """(FLOPs of one call, {name: ten forward calls}) of the block's 3x3 C->C convolution at the step's size."""
    conv = nn.Conv2d(features, features, 3, padding=1)
    x = torch.rand(batch, features, patch, patch).contiguous(memory_format=torch.channels_last)
    fns = {}
    for name, dtype in (("conv bf16 channels_last", torch.bfloat16), ("conv fp32 channels_last", torch.float32)):
        weight = conv.weight.detach().to(dtype).contiguous(memory_format=torch.channels_last)
        bias, data = conv.bias.detach().to(dtype), x.to(dtype)

        def ten(weight=weight, bias=bias, data=data) -> None:
            with torch.no_grad():
                for _ in range(10):
                    nn.functional.conv2d(data, weight, bias, padding=1)
        fns[name] = ten
    return 2.0 * features * features * 9 * batch * patch * patch, fns


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
    stage = Stage("train", iters, lambda m: adam(m.parameters(), CPU, lr=2e-4), Constant(2e-4))
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(run_dir=Path(tmp), eval_every=iters, progress=False, speed=speed)
        trainer = Trainer(net, [stage], sampler.batch, torch.nn.functional.l1_loss,
                          lambda model: {"val_psnr": mean_psnr(model, val, CPU)}, config, CPU)
        began = time.perf_counter()
        result = trainer.fit()
    return {"val_psnr_rgb": result.best, "seconds": time.perf_counter() - began}


def skipped_variants(use_all: bool) -> dict[str, str]:
    """{kind of variant: why it is not timed here} ({} with ``--all``)."""
    if use_all:
        return {}
    skipped = {}
    if not torch.cuda.is_available():
        skipped["compile"] = ("torch.compile on a CPU: the run printed nothing for 15 minutes on a 2-core AVX2 "
                              "CPU, more than a CPU training could win back (--all times it anyway)")
    if not cpu_bf16().fast:
        skipped["bf16"] = (f"bf16 is emulated on this CPU ({cpu_bf16().lacks or 'no AVX512-BF16 or AMX'}), "
                           "about 100x slower than fp32 (--all times it anyway)")
    return skipped


def paying(variants: dict[str, Speed], skipped: dict[str, str]) -> dict[str, Speed]:
    return {name: speed for name, speed in variants.items()
            if not (speed.compile and "compile" in skipped) and not (speed.precision == "bf16" and "bf16" in skipped)}


def timed_steps(quick: bool, skipped: dict[str, str]) -> dict:
    features, resblocks, batch, patch = (16, 2, 4, 24) if quick else (64, 16, 16, 48)
    candidates, flops, first_step = {}, {}, {}
    groups = (("block", 1, paying(BLOCK_VARIANTS, skipped)), ("combined N", 3, paying(COMBINED_VARIANTS, skipped)))
    total, started = sum(len(variants) for _group, _blocks, variants in groups), time.perf_counter()
    for _group, blocks, variants in groups:
        for name, speed in variants.items():
            before = "before" in name

            def make(blocks=blocks, before=before) -> nn.Module:
                return make_net(blocks, features, resblocks, before)
            flops[name] = step_flops(make, speed, batch, patch)
            candidates[name] = step_fn(speed, make(), batch, patch)
            began = time.perf_counter()
            candidates[name]()  # compiles where asked
            first_step[name] = time.perf_counter() - began
            progress(f"first step of {name}: {first_step[name]:.1f} s; variants", len(candidates), total, started)
    conv_flops, conv_fns = conv_rate_fns(features, batch, patch)
    if "bf16" in skipped:
        conv_fns.pop("conv bf16 channels_last")
    timing = interleaved({**candidates, **conv_fns}, repeats=2 if quick else 4, label="training steps")
    rate = {name: 10 * conv_flops / timing[name]["median_s"] / 1e9 for name in conv_fns}
    bf16_rate, fp32_rate = rate.get("conv bf16 channels_last", float("nan")), rate["conv fp32 channels_last"]
    result: dict = {"size": f"C={features}, R={resblocks}, batch {batch} of {patch}x{patch}",
                    "conv_gflops_per_s": {"bf16 channels_last forward": bf16_rate,
                                          "fp32 channels_last forward": fp32_rate}}
    for group, _blocks, variants in groups:
        base = timing[next(iter(variants))]["median_s"]
        rows = {}
        for name in variants:
            seconds = timing[name]["median_s"]
            gflops = flops[name] / seconds / 1e9
            rows[name] = {"s_per_step": seconds, "min_s": timing[name]["min_s"], "speedup_vs_fp32": base / seconds,
                          "step_gflop": flops[name] / 1e9, "gflops_per_s": gflops,
                          "fraction_of_bf16_conv_rate": gflops / bf16_rate,
                          "fraction_of_fp32_conv_rate": gflops / fp32_rate,
                          "first_step_s": first_step[name]}
        result[group] = rows
    return result


def short_trainings(quick: bool, iters: int, skipped: dict[str, str]) -> dict:
    """The same short training at each precision that can pay here (part 2 of the module docstring)."""
    root = resolve_data_root(None)
    source = load_named_set(root, "T91") if (root / "T91").is_dir() else bundled_photos("train")
    pairs = synthetic_pairs(source, 96 if quick else 160)
    val_count = max(2, len(pairs) // 10)
    train, val = pairs.subset(list(range(val_count, len(pairs)))), pairs.subset(list(range(val_count)))
    iters = 20 if quick else iters
    trainings = paying({"fp32": Speed(), "bf16 channels_last": BF16_CL, "bf16 channels_last compile": BF16_CL_COMPILE},
                       skipped)
    runs, began = {}, time.perf_counter()
    for index, (name, speed) in enumerate(trainings.items()):
        runs[name] = short_training(speed, train, val, iters)
        progress(f"short training {name} ({iters} iterations) done; trainings", index + 1, len(trainings), began)
    psnr = {name: run["val_psnr_rgb"] for name, run in runs.items()}
    return {"data": f"{'T91' if (root / 'T91').is_dir() else 'bundled photos'}: "
                    f"{len(train)} train / {len(val)} val synthetic same-size pairs",
            "block": "C=32, R=4, batch 16 of 48x48, Adam 2e-4", "iterations": iters, **runs,
            "psnr_diff_bf16_minus_fp32_db": psnr["bf16 channels_last"] - psnr["fp32"],
            "psnr_diff_compiled_minus_eager_bf16_db":
                psnr["bf16 channels_last compile"] - psnr["bf16 channels_last"]
                if "bf16 channels_last compile" in psnr else None}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=300, help="iterations of the short training (default 300)")
    p.add_argument("--all", action="store_true", help="also time variants that cannot pay here (see above)")
    args = p.parse_args()
    result = start(args)
    result["cpu"] = cpu_description()
    skipped = result["skipped"] = skipped_variants(args.all)
    for reason in skipped.values():
        say(f"skipped: {reason}")
    result["steps"] = timed_steps(args.quick, skipped)
    if "bf16" in skipped:  # the short training measures bf16's cost in dB: nothing to compare without bf16
        result["short_training"] = {"skipped": skipped["bf16"]}
    else:
        result["short_training"] = short_trainings(args.quick, args.iters, skipped)
    result["threads_env"] = os.environ.get("OMP_NUM_THREADS")
    finish(rounded(result), args)


if __name__ == "__main__":
    main()
