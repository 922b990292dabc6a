"""The report's toy model (sec. 3.1, Fig. 5): two residual blocks of 6 convolutions trained block-wise, then
combined, against the same 12-layer network trained end to end with as many updates per parameter.

Report: N_1 trained 1000 iterations (Adam 1e-3) on (LR, HR); N_2 1000 iterations on (N_1(LR), HR) with N_1
fixed ("the input for N_i is the patch after N_1..N_(i-1)": the toy runs the trained blocks on the fly,
where the phased training of sec. 3.2 stores LR_i instead); then N = N_2(N_1(x)) 500 iterations at 1e-4,
every parameter trainable. The deep N (same structure) gets 1000 iterations at 1e-3 and 500 at 1e-4, so
every parameter sees 1500 updates either way. All weights and biases N(0, 0.1^2); L1 loss; 61x61 patches,
batch 64, 50 iterations per epoch; PSNR on the test pairs after each epoch. Report at 30 epochs:
deep N 30.505 dB, block-wise 30.987 dB.

Writes <out>/table.md, <out>/results.json, <out>/toy_blockwise.png (test PSNR per epoch, as Fig. 5) and,
per seed, <out>/seed<S>/ with each network's log_<name>.csv and checkpoints.
"""
from __future__ import annotations

# ----------------------------------------------------------------------------------- settings
PRESET = "small"  # small (CPU, minutes) | full (GPU, the report's sizes); values in PRESETS below, --set wins
SOURCE = "auto"  # auto = --data's RealSR pairs, else pairs synthesised from T91/Set14, else from bundled photos
SYNTH_MAX_SIZE = 0  # synthesised pairs: HR centre crop of at most N x N pixels (0 = whole images; ours)
CAMERA = "Canon"  # RealSR camera folder (report: Canon)
SCALE = 2  # RealSR scale folder (report: x2)
REPEATS = 1  # seeds --seed, --seed+1, ...: both methods trained once per seed (ours)
N_LAYERS = 6  # convolutions per block, ReLU between, plus the block's input (report: 6)
N_FEATS = 64  # channels of the inner convolutions (report: not stated; ours)
INIT_STD = 0.1  # every weight and bias drawn from N(0, INIT_STD^2) (report: 0.1)
PATCH_SIZE = 61  # training patch side (report: 61)
BATCH_SIZE = 64  # patches per iteration (report: 64)
ITERS_BLOCK = 1000  # iterations for each of N_1, N_2 (report: 1000)
LR_BLOCK = 1e-3  # Adam learning rate of the block trainings (report: 1e-3)
ITERS_COMBINED = 500  # iterations of N_2(N_1), every parameter trainable (report: 500)
LR_COMBINED = 1e-4  # (report: 1e-4)
ITERS_PER_EPOCH = 50  # iterations between test evaluations, one "epoch" of Fig. 5 (report: 50)
N2_INPUT = "chained"  # chained = N_2 trains on N_1(x), N_1 fixed (report) | raw = on x, like N_1
DEEP_NET = "chained"  # chained = N_2(N_1(x)) from the blocks' initial weights (report's N) | single = 1 block
# The deep net gets ITERS_BLOCK iterations at LR_BLOCK, then ITERS_COMBINED at LR_COMBINED (report).
# --------------------------------------------------------------------------------------------

PRESETS = {
    "full": {},  # the block above: the report's sizes
    # Minutes on a laptop CPU: 16 channels, 32x32 patches, batch 16, the report's iteration counts scaled by
    # 1/2 (15 iterations per epoch keep Fig. 5's 30 epochs).
    "small": {"SYNTH_MAX_SIZE": 128, "N_FEATS": 16, "PATCH_SIZE": 32, "BATCH_SIZE": 16, "ITERS_BLOCK": 500,
              "ITERS_COMBINED": 250, "ITERS_PER_EPOCH": 25},
}
REPORT_DB = {"blockwise": 30.987, "deep": 30.505}

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python experiments/<name>.py` from anywhere
import numpy as np
import torch
from torch import nn

from core.entry import cli_entry
from core.errors import UserError
from core.runs import read_json, write_json
from core.settings import RunContext
from data.io import to_float
from data.paired import PairedImages, PatchSampler, find_realsr_pairs, load_pairs
from engine.csv_log import read_log
from engine.losses import make_loss
from engine.plots import plt
from engine.trainer import Stage, TrainConfig, Trainer, constant_stage
from experiments.common import (
    command_line,
    data_sentence,
    finish_psnr_plot,
    markdown_table,
    mean_sd,
    parse,
    prepare_data,
    seeds,
    write_outputs,
)
from inference.metrics import psnr
from inference.scoring import score_pairs
from inference.whole_image import run_model
from models.rcan import normal_init_
from models.toy import ToyBlock

_NAME = "toy_blockwise"


def new_block(s: dict, n_layers: int, seed: int) -> ToyBlock:
    torch.manual_seed(seed)
    return normal_init_(ToyBlock(n_layers, s["N_FEATS"]), std=s["INIT_STD"])


def test_psnr(net: nn.Module, pairs, device: torch.device) -> float:
    """Mean RGB PSNR over the test pairs, no shave (output clipped to [0, 1])."""
    net.eval()
    return float(np.mean([psnr(np.clip(run_model(net, to_float(lr), device), 0, 1), to_float(hr), space="rgb")
                          for lr, hr in pairs.arrays]))


def initial_networks(s: dict, seed: int) -> tuple[ToyBlock, ToyBlock, nn.Module]:
    """N_1, N_2 and the deep net before training; with DEEP_NET=chained the deep net starts from the very
    weights the two blocks start from."""
    n1 = new_block(s, s["N_LAYERS"], seed * 1000 + 1)
    n2 = new_block(s, s["N_LAYERS"], seed * 1000 + 2)
    if s["DEEP_NET"] != "chained":
        return n1, n2, new_block(s, 2 * s["N_LAYERS"], seed * 1000 + 3)
    deep = nn.Sequential(ToyBlock(s["N_LAYERS"], s["N_FEATS"]), ToyBlock(s["N_LAYERS"], s["N_FEATS"]))
    deep[0].load_state_dict(n1.state_dict())
    deep[1].load_state_dict(n2.state_dict())
    return n1, n2, deep


class SeedRun:
    """One seed's trainings: its run folder, its patch sampler and the test pairs every network is scored on.
    (A plain class: a dataclass needs its module in sys.modules, which a script loaded by path is not.)"""

    def __init__(self, ctx: RunContext, run_dir: Path, sampler: PatchSampler, test_pairs: PairedImages) -> None:
        self.ctx, self.run_dir, self.sampler, self.test_pairs = ctx, run_dir, sampler, test_pairs

    def batches(self, step: int, _dist) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sampler.batch(step)

    def test_psnr(self, net: nn.Module) -> float:
        return test_psnr(net, self.test_pairs, self.ctx.device)

    def evaluate(self, net: nn.Module) -> dict[str, float]:
        return {"test_psnr": self.test_psnr(net)}

    def score(self, net: nn.Module) -> dict[str, dict[str, float]]:
        return score_pairs(net.eval(), self.test_pairs.named, device=self.ctx.device)

    def train(self, net: nn.Module, name: str, stages: list[Stage], batches=None, evaluate=None) -> float:
        """One network through the shared training loop; returns the wall seconds (kept across --resume)."""
        s, device = self.ctx.settings, self.ctx.device
        config = TrainConfig(run_dir=self.run_dir, latest_name=f"{name}_latest.pt", best_name=None,
                             log_name=f"log_{name}.csv", eval_every=s["ITERS_PER_EPOCH"], monitor="test_psnr",
                             steps_per_epoch=s["ITERS_PER_EPOCH"], meta={"arch": f"toy-{name}"})
        started = time.perf_counter()
        Trainer(net.to(device), stages, batches or self.batches, make_loss("l1"), evaluate or self.evaluate, config,
                device).fit(resume=self.ctx.resume)
        walls = read_json(self.run_dir / "wall_seconds.json")
        walls[name] = max(walls.get(name, 0.0), round(time.perf_counter() - started, 1))
        write_json(self.run_dir / "wall_seconds.json", walls)
        return walls[name]


def run_seed(ctx: RunContext, seed: int, train_pairs: PairedImages, test_pairs: PairedImages) -> dict:
    """N_1 on (LR, HR); N_2 on (N_1(LR), HR) with N_1 fixed; N_2(N_1) trained whole; the deep net end to
    end with as many updates per parameter. Returns each one's start, final and best test scores and walls."""
    s = ctx.settings
    run = SeedRun(ctx, ctx.out / f"seed{seed}", PatchSampler(train_pairs, s["PATCH_SIZE"], s["BATCH_SIZE"], seed),
                  test_pairs)
    run.run_dir.mkdir(parents=True, exist_ok=True)
    n1, n2, deep = initial_networks(s, seed)
    chained = s["N2_INPUT"] == "chained"
    chain = (lambda net: nn.Sequential(n1, net)) if chained else (lambda net: net)

    def after_n1(step: int, _dist) -> tuple[torch.Tensor, torch.Tensor]:
        lr, hr = run.sampler.batch(step)
        with torch.no_grad():
            return n1(lr.to(ctx.device)), hr

    block_stage = constant_stage("block", s["ITERS_BLOCK"], "adam", s["LR_BLOCK"])
    combined_stage = constant_stage("combined", s["ITERS_COMBINED"], "adam", s["LR_COMBINED"])
    start = {"N1": run.test_psnr(n1), "deep": run.test_psnr(deep)}
    walls = {"N1": run.train(n1, "N1", [block_stage])}
    final = {"N1": run.score(n1)}  # now: the combined training changes N_1
    n1.requires_grad_(False).eval()
    start["N2"] = run.test_psnr(chain(n2))
    walls["N2"] = run.train(n2, "N2", [block_stage], after_n1 if chained else None,
                            lambda net: run.evaluate(chain(net)))
    final["N2"] = run.score(chain(n2))
    combined = nn.Sequential(n1, n2).requires_grad_(True)
    walls["combined"] = run.train(combined, "combined", [combined_stage])
    walls["deep"] = run.train(deep, "deep", [block_stage, combined_stage])
    final.update({"combined": run.score(combined), "deep": run.score(deep)})
    logs = {name: read_log(run.run_dir / f"log_{name}.csv") for name in ("N1", "N2", "combined", "deep")}
    return {"start": start, "walls": walls, "identity": final["N1"]["identity"],
            **{name: metrics["model"] for name, metrics in final.items()},
            "best": {name: max(r["test_psnr"] for r in rows) for name, rows in logs.items()}}


def comparison_table(runs: list[dict], s: dict) -> str:
    """One row per network: last and best-epoch PSNR, epochs, updates, compute and wall time; then the gap."""
    ib, ic, epoch = s["ITERS_BLOCK"], s["ITERS_COMBINED"], s["ITERS_PER_EPOCH"]
    n2_cost = 0.5 + (1 / 6 if s["N2_INPUT"] == "chained" else 0.0)  # + N_1's forward (~1/3 of its step)

    def cells(key: str) -> list[str]:
        return [mean_sd([r[key]["psnr_rgb_report"] for r in runs]), mean_sd([r["best"][key] for r in runs])
                if key in runs[0]["best"] else "", mean_sd([r[key]["psnr_y"] for r in runs]),
                mean_sd([r[key]["ssim_y"] for r in runs], 4)]

    def wall(*names: str) -> str:
        return mean_sd([sum(r["walls"][name] for name in names) for r in runs], 0)

    rows = [["identity (the LR input)", *cells("identity"), "", "", "", "", ""],
            ["N_1 alone (block 1)", *cells("N1"), f"{ib / epoch:g}", ib, f"{0.5 * ib:.0f}", wall("N1"), ""],
            ["N_2(N_1), only N_2 trained", *cells("N2"), f"{ib / epoch:g}", ib, f"{n2_cost * ib:.0f}", wall("N2"), ""],
            ["**block-wise, then combined**", *cells("combined"), f"{(ib + ic) / epoch:g}", ib + ic,
             f"{0.5 * ib + n2_cost * ib + ic:.0f}", wall("N1", "N2", "combined"), REPORT_DB["blockwise"]],
            ["**deep N, end to end**", *cells("deep"), f"{(ib + ic) / epoch:g}", ib + ic, f"{ib + ic:.0f}",
             wall("deep"), REPORT_DB["deep"]]]
    rows.append(["block-wise − deep", mean_sd(blockwise_gains(runs)),
                 mean_sd([r["best"]["combined"] - r["best"]["deep"] for r in runs]),
                 mean_sd([r["combined"]["psnr_y"] - r["deep"]["psnr_y"] for r in runs]), "", "", "", "", "",
                 f"{REPORT_DB['blockwise'] - REPORT_DB['deep']:+.3f}"])
    header = ["network", "PSNR RGB, last (dB)", "PSNR RGB, best epoch (dB)", "PSNR Y (dB)", "SSIM Y", "epochs",
              "updates / parameter", "compute (deep steps)", "wall s", "report (dB)"]
    return markdown_table(header, rows)


def blockwise_gains(runs: list[dict]) -> list[float]:
    return [r["combined"]["psnr_rgb_report"] - r["deep"]["psnr_rgb_report"] for r in runs]


def plot_epochs(out: Path, per_seed: dict[int, dict], s: dict, path: Path) -> None:
    """Fig. 5: test PSNR per epoch of every network, the combined training drawn after the block trainings."""
    epoch = s["ITERS_PER_EPOCH"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    styles = {"deep": ("tab:blue", 0, "deep N (12 layers), end to end"), "N1": ("tab:orange", 0, "N_1"),
              "N2": ("tab:green", 0, "N_2(N_1), N_2 trained"),
              "combined": ("tab:red", s["ITERS_BLOCK"] / epoch, "N_2(N_1) combined (block-wise)")}
    for number, (seed, r) in enumerate(per_seed.items()):
        for name, (color, offset, label) in styles.items():
            rows_log = read_log(out / f"seed{seed}" / f"log_{name}.csv")
            xs = [offset + row["epoch"] for row in rows_log]
            ys = [row["test_psnr"] for row in rows_log]
            if name in r["start"]:
                xs, ys = [0.0, *xs], [r["start"][name], *ys]
            ax.plot(xs, ys, color=color, alpha=1.0 if number == 0 else 0.4,
                    label=label if number == 0 else None)
    runs = list(per_seed.values())
    identity = runs[0]["identity"]["psnr_rgb"]
    finals = [r[k]["psnr_rgb"] for r in runs for k in ("N1", "N2", "combined", "deep")] + [identity]
    ax.set_ylim(min(finals) - 3, max(finals) + 1)
    finish_psnr_plot(fig, ax, identity, path, xlabel=f"epoch ({epoch} iterations)",
                     title="Toy model: block-wise vs deep", seeds_run=len(runs), loc="lower right")


def main(argv: list[str] | None = None) -> None:
    ctx = parse(globals(), argv, _NAME)
    s = ctx.settings
    for name, allowed in (("N2_INPUT", ("chained", "raw")), ("DEEP_NET", ("chained", "single"))):
        if s[name] not in allowed:
            raise UserError(f"{name}={s[name]!r}: expected one of {', '.join(allowed)}")
    data, data_record = prepare_data(ctx, min_side=s["PATCH_SIZE"])
    train_pairs = load_pairs(find_realsr_pairs(data, s["CAMERA"], s["SCALE"], "Train"))
    test_pairs = load_pairs(find_realsr_pairs(data, s["CAMERA"], s["SCALE"], "Test"))
    per_seed = {seed: run_seed(ctx, seed, train_pairs, test_pairs) for seed in seeds(ctx)}
    runs, n = list(per_seed.values()), len(per_seed)
    per_seed_rows = [[seed, f"{r['start']['deep']:.2f}", f"{r['combined']['psnr_rgb_report']:.3f}",
                      f"{r['deep']['psnr_rgb_report']:.3f}",
                      f"{r['combined']['psnr_rgb_report'] - r['deep']['psnr_rgb_report']:+.3f}"]
                     for seed, r in per_seed.items()]
    sections = [
        data_sentence(data_record)
        + f". Blocks of {s['N_LAYERS']} convolutions, {s['N_FEATS']} channels, N(0, {s['INIT_STD']}^2) init; "
        f"{s['PATCH_SIZE']}x{s['PATCH_SIZE']} patches, batch {s['BATCH_SIZE']}; an epoch is {s['ITERS_PER_EPOCH']} "
        f"iterations. N_2 input: {s['N2_INPUT']}; deep net: {s['DEEP_NET']}. The test pairs are scored after every "
        "epoch for the curves (never used for selection); 'last' is the final weights, 'best epoch' the curve's "
        f"maximum (as a reader of Fig. 5 would take it). Means over {n} seed(s)" + (" ± sd" if n > 1 else "") + ". "
        "Compute in deep-net steps: a block step 1/2, an N_2 step with N_1's forward 2/3.",
        comparison_table(runs, s),
        markdown_table(["seed", "initial PSNR (dB)", "block-wise", "deep", "difference"], per_seed_rows),
        f"Block-wise beats deep in {sum(d > 0 for d in blockwise_gains(runs))} of {n} seed(s) (last weights, RGB).",
    ]
    title = "Toy model: block-wise vs end-to-end training of a 12-layer net (report Fig. 5)"
    write_outputs(ctx, title, sections, {"per_seed": {str(k): v for k, v in per_seed.items()}, "data": data_record,
                                         "report_db": REPORT_DB}, command_line(f"{_NAME}.py", argv))
    plot_epochs(ctx.out, per_seed, s, ctx.out / f"{_NAME}.png")


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
