"""Patch size against receptive field (the report's sec. 5.1): one block N_i trained on 24, 48 and 96 pixel
patches, everything else equal.

Report: a block of 16 RCABs (receptive field 71x71), Adam 1e-4 (betas 0.9, 0.999, eps 1e-8), 6000
iterations per patch size; "by using a larger patch size, we can get better results" (its first Fig. 8,
curves only, no table). Each run is phase1_1.py with one unclamped Adam stage (the report names no clamp
here), scored on the test pairs at the end and along the way (the curves). With the report's framing
(EQUAL=iterations) a 96-pixel batch holds 16x the pixels of a 24-pixel one; EQUAL=pixels scales the batch
instead, so that every run sees as many pixels.

Writes <out>/table.md, <out>/results.json, <out>/patch_size.png and <out>/seed<S>/patch<P>/ run folders.
"""
from __future__ import annotations

# ----------------------------------------------------------------------------------- settings
PRESET = "small"  # small (CPU, minutes) | full (GPU, the report's sizes); values in PRESETS below, --set wins
SOURCE = "auto"  # auto = --data's RealSR pairs, else pairs synthesised from T91/Set14, else from bundled photos
SYNTH_MAX_SIZE = 0  # synthesised pairs: HR centre crop of at most N x N pixels (0 = whole images; ours)
CAMERA = "Canon"  # RealSR camera folder (report: Canon)
SCALE = 2  # RealSR scale folder (report: x2)
REPEATS = 1  # seeds --seed, --seed+1, ...: every patch size trained once per seed (ours)
PATCH_SIZES = [24, 48, 96]  # training patch sides compared (report: 24, 48, 96)
EQUAL = "iterations"  # iterations = same iterations and batch for every size (report) | pixels = batch scaled
BATCH_SIZE = 16  # patches per iteration (report: 16); with EQUAL=pixels, the batch of the largest patch
ITERS = 6000  # Adam iterations per patch size (report: 6000)
LR = 1e-4  # Adam learning rate (report: 1e-4)
N_FEATS = 64  # feature channels C (report: 64)
N_RESBLOCKS = 16  # RCABs in the block (report: 16, receptive field 71x71)
REDUCTION = 4  # channel-attention squeeze C -> C/REDUCTION (report: 64 -> 16)
EVAL_EVERY = 500  # iterations between evaluations (test curve) and checkpoints (ours)
VAL_FRACTION = 0.1  # whole training pairs held out to select the weights scored on the test pairs (ours)
# --------------------------------------------------------------------------------------------

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python experiments/<name>.py` from anywhere
from pipelines.multiblock.phase_settings import PRESETS as PHASE_PRESETS

PRESETS = {
    "full": {},  # the block above: the report's sizes
    # Minutes on a laptop CPU: the phase scripts' small block, 16 features and 4 RCABs (receptive field 23x23,
    # against the report's 71x71), batch 4, 400 iterations at Adam 1e-3.
    "small": {**PHASE_PRESETS["small"], "SYNTH_MAX_SIZE": 128, "BATCH_SIZE": 4, "ITERS": 400, "LR": 1e-3,
              "EVAL_EVERY": 50},
}

from core.entry import cli_entry
from core.errors import UserError
from core.runs import read_json
from core.settings import RunContext
from engine.csv_log import read_log
from engine.plots import plt
from experiments.common import (
    command_line,
    data_sentence,
    finish_psnr_plot,
    markdown_table,
    mean_sd,
    network_defaults,
    network_of,
    parse,
    phase_metrics,
    pick,
    prepare_data,
    seeds,
    timed_phase,
    write_outputs,
)
from models.blocks import block_kwargs
from models.rcan import Block, receptive_field_radius
from pipelines.multiblock.chain import FIRST

_NAME = "patch_size"


def batch_for(s: dict, patch: int) -> int:
    if s["EQUAL"] == "iterations":
        return s["BATCH_SIZE"]
    return s["BATCH_SIZE"] * round((max(s["PATCH_SIZES"]) / patch) ** 2)


def train_patch(ctx: RunContext, data: Path, run: Path, patch: int, seed: int, common: dict) -> dict:
    """Block N_1 trained by phase1_1.py on ``patch``-pixel patches: its test metrics, best curve point, wall."""
    s = ctx.settings
    timed_phase(ctx, FIRST.script, data, run, {**common, "PATCH_SIZE": patch, "BATCH_SIZE": batch_for(s, patch)},
                seed, FIRST.script)
    metrics = phase_metrics(run, FIRST.result)
    log = read_log(run / f"log_{FIRST.network}.csv")
    return {**metrics["model"], "identity": metrics["identity"], "best_curve": max(r["test_psnr"] for r in log),
            "wall": read_json(run / "wall_seconds.json")[FIRST.script]}


def comparison_table(runs: list[dict[int, dict]], s: dict, sizes: list[int]) -> str:
    rows = [["identity (the LR input)", "", "", mean_sd([r[sizes[0]]["identity"]["psnr_rgb_report"] for r in runs]),
             "", mean_sd([r[sizes[0]]["identity"]["psnr_y"] for r in runs]),
             mean_sd([r[sizes[0]]["identity"]["ssim_y"] for r in runs], 4), ""]]
    for patch in sizes:
        batch = batch_for(s, patch)
        rows.append([f"{patch}x{patch}", batch, f"{batch * patch * patch:,}",
                     mean_sd([r[patch]["psnr_rgb_report"] for r in runs]),
                     mean_sd([r[patch]["best_curve"] for r in runs]), mean_sd([r[patch]["psnr_y"] for r in runs]),
                     mean_sd([r[patch]["ssim_y"] for r in runs], 4), mean_sd([r[patch]["wall"] for r in runs], 0)])
    header = ["patch", "batch", "pixels / iteration", "PSNR RGB (dB)", "best test curve RGB (dB)", "PSNR Y (dB)",
              "SSIM Y", "wall s"]
    return markdown_table(header, rows)


def plot_curves(out: Path, per_seed: dict[int, dict], s: dict, sizes: list[int], field: int, path: Path) -> None:
    """Test PSNR along the iterations, one colour per patch size."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = dict(zip(sizes, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"), strict=False))
    for number, seed in enumerate(per_seed):
        for patch in sizes:
            log = read_log(out / f"seed{seed}" / f"patch{patch}" / f"log_{FIRST.network}.csv")
            ax.plot([r["step"] for r in log], [r["test_psnr"] for r in log], color=colors.get(patch),
                    alpha=1.0 if number == 0 else 0.4, marker=".",
                    label=f"{patch}x{patch}, batch {batch_for(s, patch)}" if number == 0 else None)
    identity = next(iter(per_seed.values()))[sizes[0]]["identity"]["psnr_rgb"]
    finish_psnr_plot(fig, ax, identity, path, xlabel="iteration",
                     title=f"Patch size, receptive field {field}x{field}", seeds_run=len(per_seed))


def main(argv: list[str] | None = None) -> None:
    ctx = parse(globals(), argv, _NAME)
    s = ctx.settings
    if s["EQUAL"] not in ("iterations", "pixels"):
        raise UserError(f"EQUAL={s['EQUAL']!r}: expected iterations or pixels")
    sizes = sorted(s["PATCH_SIZES"])
    data, data_record = prepare_data(ctx, min_side=max(sizes))
    common = {**pick(s, ("CAMERA", "SCALE", "EVAL_EVERY", "VAL_FRACTION")), **network_of(s),
              "WARMUP_OPTIMIZER": "adam", "LR_WARMUP": s["LR"], "ITERS_WARMUP": s["ITERS"], "ITERS_CLAMP_HIGH": 0,
              "ITERS_CLAMP_LOW": 0}
    per_seed = {seed: {patch: train_patch(ctx, data, ctx.out / f"seed{seed}" / f"patch{patch}", patch, seed, common)
                       for patch in sizes} for seed in seeds(ctx)}
    field = 2 * receptive_field_radius(Block(**block_kwargs({**network_defaults(), **network_of(s)}))) + 1
    runs, n = list(per_seed.values()), len(per_seed)
    best = [max(sizes, key=lambda p, r=r: r[p]["psnr_rgb_report"]) for r in runs]
    sections = [
        data_sentence(data_record, f"; training images smaller than {max(sizes)} px left out")
        + f". One block of {s['N_FEATS']} features and {s['N_RESBLOCKS']} RCABs: receptive field {field}x{field} "
        f"(report: 71x71). {s['ITERS']} Adam iterations at {s['LR']:g}, EQUAL={s['EQUAL']}. PSNR RGB is the "
        "weights chosen on held-out training pairs, scored once on the test pairs (report protocol); 'best test "
        f"curve' is the maximum of the test curve (optimistic, as the report's curves). Means over {n} seed(s)"
        + (" ± sd" if n > 1 else "") + ".",
        comparison_table(runs, s, sizes),
        "Largest PSNR RGB per seed: " + ", ".join(f"seed {seed}: {p}" for seed, p in zip(per_seed, best, strict=True))
        + "; report: 96 best, then 48, then 24.",
    ]
    write_outputs(ctx, "Patch size and receptive field (report sec. 5.1)", sections,
                  {"per_seed": {str(k): {str(p): v for p, v in r.items()} for k, r in per_seed.items()},
                   "receptive_field": field, "data": data_record}, command_line(f"{_NAME}.py", argv))
    plot_curves(ctx.out, per_seed, s, sizes, field, ctx.out / f"{_NAME}.png")


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
