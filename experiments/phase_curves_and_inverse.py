"""What each phase achieves (the report's Fig. 8, sec. 5.2) and the inverse analysis (Fig. 9, sec. 5.3).

Fig. 8: the six phase scripts in order; test PSNR after each phase (report, RealSR Canon x2, RGB: 31.8557
after phase 1, 31.9270 after 2, 31.9479 after 3; 32.22 after phase 4) and the test curves along the way.
Fig. 9: "pass the parameters of pretrained N back to N_1, N_2, N_3": the blocks of the phase-4 network are
taken out of N and applied one after another, N_1(x), N_2(N_1(x)), N_3(N_2(N_1(x))), beside HR; the report
saw the image improve with every block. The blocks as they were before phase 4 (N1.pt..N3.pt) are scored
the same way for comparison: phase 4 may change what each block does on its own.

PHASED_RUN reuses a finished run folder (e.g. the phased path of phases_vs_end_to_end.py) instead of
training one. Writes <out>/table.md, <out>/results.json, <out>/phase_curves_and_inverse.png (Fig. 8) and
<out>/inverse_strip.png (Fig. 9); the phase run goes to <out>/run unless PHASED_RUN is given.
"""
from __future__ import annotations

# ----------------------------------------------------------------------------------- settings
PRESET = "small"  # small (CPU, minutes) | full (GPU, the report's sizes); values in PRESETS below, --set wins
PHASED_RUN = ""  # a finished phase run folder (N1.pt .. N.pt) to analyse instead of training one (ours)
SOURCE = "auto"  # auto = --data's RealSR pairs, else pairs synthesised from T91/Set14, else from bundled photos
SYNTH_MAX_SIZE = 0  # synthesised pairs: HR centre crop of at most N x N pixels (0 = whole images; ours)
DATASET = "realsr"  # realsr (report; synthesised in its layout when absent) | city100 | paired (real pairs only)
CAMERA = "Canon"  # RealSR camera folder (report: Canon); City100's version: iPhoneX | NikonD5500
SCALE = 2  # RealSR scale folder (report: x2)
N_FEATS = 64  # feature channels C (report: 64)
N_RESBLOCKS = 16  # RCABs per block (report: 16)
REDUCTION = 4  # channel-attention squeeze C -> C/REDUCTION (report: 64 -> 16)
PATCH_SIZE = 48  # training patch side, every phase (report: 48)
BATCH_SIZE = 16  # patches per iteration (report: 16)
WARMUP_OPTIMIZER = "adadelta"  # blocks, stage A: adadelta (report) | adam (the report's code)
LR_WARMUP = 1.0  # blocks, stage A learning rate (report: Adadelta lr=1)
ITERS_WARMUP = 2000  # blocks, stage A: unclamped iterations (report: 2000)
ITERS_CLAMP_HIGH = 3000  # blocks, stage B: clamped N_i^+, Adam (report: 3000)
LR_CLAMP_HIGH = 1e-4  # (report: 1e-4)
ITERS_CLAMP_LOW = 10000  # blocks, stage C: clamped, Adam (report: 10000)
LR_CLAMP_LOW = 1e-5  # (report: 1e-5)
BLOCK_INIT = "inherit"  # N_2, N_3 start from the previous block (report 4.2) | fresh
ITERS_HIGH = 5000  # phase 4: Adam iterations at LR_HIGH (report: 5000)
LR_HIGH = 1e-4  # (report: 1e-4)
ITERS_LOW = 5000  # phase 4: Adam iterations at LR_LOW (report: 5000)
LR_LOW = 1e-5  # (report: 1e-5)
EVAL_EVERY = 500  # iterations between evaluations (test curve) and checkpoints (ours)
VAL_FRACTION = 0.1  # whole training pairs held out to select each N*.pt (ours)
VALIDATE_ON_TEST = False  # select on the test pairs, as the report did (optimistic; off by default)
STRIP_IMAGE = 1  # which test pair (1 = the first by name) the Fig. 9 strip shows (ours)
STRIP_CROP = 160  # side of the centre crop shown in the strip, pixels (0 = whole image; ours)
# --------------------------------------------------------------------------------------------

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python experiments/<name>.py` from anywhere
from experiments.phases_vs_end_to_end import PRESETS as END_TO_END_PRESETS

PRESETS = {
    "full": {},  # the block above: the report's sizes
    # Minutes on a laptop CPU: the small preset of phases_vs_end_to_end.py (same phased path, same seed).
    "small": {**END_TO_END_PRESETS["small"], "STRIP_CROP": 128,
              "STRIP_IMAGE": 11},  # 11: monarch when the test pairs are made from Set14
    # City100's iPhone X pairs: the phased path of phases_vs_end_to_end.py's city100 preset (pass its run
    # folder as PHASED_RUN, e.g. runs/experiments/phases_vs_end_to_end/seed0/phased, to analyse it without
    # training again).
    "city100": {**END_TO_END_PRESETS["city100"], "STRIP_IMAGE": 1, "STRIP_CROP": 200},
}
REPORT_DB = {"phase1": 31.8557, "phase2": 31.9270, "phase3": 31.9479, "phase4": 32.22}

import numpy as np
import torch

from core.checkpoint import check_meta, load_checkpoint, load_weights
from core.entry import cli_entry
from core.errors import UserError
from core.runs import read_json
from core.settings import RunContext
from data.io import to_float
from data.pair_layouts import PairSource, find_pairs
from data.paired import load_pairs
from engine.csv_log import read_log
from engine.plots import plt
from experiments.common import (
    command_line,
    data_sentence,
    markdown_table,
    parse,
    phase_metrics,
    prepare_data,
    run_phased,
    save_figure,
    write_outputs,
)
from inference.scoring import mean_metrics, pair_metrics
from inference.whole_image import run_model
from models.rcan import Block, MultiBlockNet
from pipelines.multiblock import chain
from pipelines.multiblock.run_folder import block_architecture, load_block

_NAME = "phase_curves_and_inverse"
_PHASES = chain.RESULTS


def blocks_of_n(path: Path) -> list[Block]:
    """The report's inverse analysis: N.pt's weights handed back to three single blocks N_1, N_2, N_3."""
    state = load_checkpoint(path)
    check_meta(state, path, arch="multiblock-net")
    meta = state["meta"]
    architecture = block_architecture(meta, path)
    net = MultiBlockNet([Block(**architecture, clamp=True) for _ in range(meta["blocks"])])
    load_weights(net, state, path)
    blocks = []
    for weights in net.to_block_state_dicts():
        block = Block(**architecture, clamp=True)
        block.load_state_dict(weights)
        blocks.append(block.eval())
    return blocks


def chain_outputs(blocks: list[Block], lr: np.ndarray, device: torch.device) -> list[np.ndarray]:
    """[N_1(x), N_2(N_1(x)), ...] as float images in [0, 1] (each block's clamp is on)."""
    outputs, x = [], to_float(lr)
    for block in blocks:
        x = np.clip(run_model(block, x, device), 0.0, 1.0)
        outputs.append(x)
    return outputs


def centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    if side <= 0:
        return image
    top, left = max(0, (image.shape[0] - side) // 2), max(0, (image.shape[1] - side) // 2)
    return image[top: top + side, left: left + side]


_LABELS = {"phase1": "after phase 1: N_1", "phase2": "after phase 2: N_2(N_1)",
           "phase3": "after phase 3: N_3(N_2(N_1))", "phase4": "after phase 4: N trained end to end"}
_CHAIN_OUTPUTS = ("N_1(x)", "N_2(N_1(x))", "N_3(N_2(N_1(x)))")


def phase_run(ctx: RunContext) -> tuple[Path, Path, dict]:
    """(the phase run folder, its data root, the data description): PHASED_RUN, or the six phases trained."""
    s = ctx.settings
    if not s["PHASED_RUN"]:
        if s["BLOCK_INIT"] not in ("inherit", "fresh"):
            raise UserError(f"BLOCK_INIT={s['BLOCK_INIT']!r}: expected inherit or fresh")
        data, data_record = prepare_data(ctx)
        run = ctx.out / "run"
        run_phased(ctx, data, run, ctx.seed)
        return run, data, data_record
    run = Path(s["PHASED_RUN"])
    recorded = read_json(run / "settings.json").get(chain.LAST.section)
    if not (run / f"{chain.LAST.network}.pt").exists() or not recorded:
        raise UserError(f"PHASED_RUN={run} holds no finished phase run ({chain.LAST.network}.pt and settings.json "
                        f"from {chain.LAST.script}); "
                        "run the phase scripts into it first, or leave PHASED_RUN empty")
    s.update({key: recorded[key] for key in ("DATASET", "CAMERA", "SCALE", "DATASET_DIR") if key in recorded})
    data = Path(recorded["data"])
    return run, data, {"source": f"the pairs under {data} that {run} was trained on"}


def fig8_table(phases: dict[str, dict]) -> str:
    """Test PSNR after each phase and its gain over the previous one (report Fig. 8)."""
    identity = phases[chain.FIRST.result]["identity"]
    rows = [["identity (the LR input)", f"{identity['psnr_rgb_report']:.3f}", "", f"{identity['psnr_y']:.3f}",
             f"{identity['ssim_y']:.4f}", ""]]
    previous = identity["psnr_rgb_report"]
    for phase in _PHASES:
        model = phases[phase]["model"]
        rows.append([_LABELS[phase], f"{model['psnr_rgb_report']:.3f}", f"{model['psnr_rgb_report'] - previous:+.3f}",
                     f"{model['psnr_y']:.3f}", f"{model['ssim_y']:.4f}", REPORT_DB[phase]])
        previous = model["psnr_rgb_report"]
    return markdown_table(["network", "PSNR RGB (dB)", "gain (dB)", "PSNR Y (dB)", "SSIM Y", "report RGB (dB)"], rows)


def inverse_analysis(run: Path, test, strip_index: int, device: torch.device) -> tuple[dict, dict]:
    """(mean metrics after each block of each chain, the images of the Fig. 9 strip): N's blocks, and the
    blocks as phases 1-3 left them, applied one after another to every test pair (report Fig. 9)."""
    chains = {"from N (after phase 4)": blocks_of_n(run / f"{chain.LAST.network}.pt"),
              "N1.pt..N3.pt (before phase 4)": [load_block(run / f"{name}.pt", clamp=True).eval()
                                                for name in chain.BLOCKS]}
    per_block: dict[str, list[list[dict]]] = {name: [[], [], []] for name in chains}
    strip = {}
    with torch.no_grad():
        for index, (lr, hr) in enumerate(test.arrays):
            hr_f = to_float(hr)
            for name, blocks in chains.items():
                outputs = chain_outputs(blocks, lr, device)
                for k, output in enumerate(outputs):
                    per_block[name][k].append(pair_metrics(output, hr_f))
                if index == strip_index and name.startswith("from N"):
                    strip = {"x (LR)": to_float(lr), **dict(zip(_CHAIN_OUTPUTS, outputs, strict=True)), "HR": hr_f}
    return {name: [mean_metrics(rows) for rows in blocks] for name, blocks in per_block.items()}, strip


def fig9_table(inverse: dict[str, list[dict]]) -> str:
    rows = [[applied, *(f"{inverse[name][k]['psnr_rgb_report']:.3f} / {inverse[name][k]['psnr_y']:.3f}"
                      for name in inverse)] for k, applied in enumerate(_CHAIN_OUTPUTS)]
    return markdown_table(["blocks applied", *(f"{name}: RGB / Y (dB)" for name in inverse)], rows)


def plot_phases_and_inverse(run: Path, identity: dict[str, float], inverse: dict[str, list[dict]], path: Path) -> None:
    """Left: the test curves of N1, N2, N3, N one after another (Fig. 8); right: the inverse analysis (Fig. 9)."""
    fig, (ax_curve, ax_bar) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    offset = 0.0
    for name, color in (("N1", "tab:orange"), ("N2", "tab:green"), ("N3", "tab:red"), ("N", "tab:blue")):
        log = read_log(run / f"log_{name}.csv")
        ax_curve.plot([offset + r["step"] for r in log], [r["test_psnr"] for r in log], color=color, marker=".",
                      label=f"{name} (phase {'4' if name == 'N' else name[1]})")
        offset += log[-1]["step"] if log else 0
    ax_curve.axhline(identity["psnr_rgb"], color="k", linestyle=":", label="identity (LR)")
    ax_curve.set(xlabel="iteration (phases one after another)", ylabel="test PSNR RGB (dB)",
                 title="Fig. 8: test PSNR along the phases")
    ax_curve.legend(fontsize=8)
    xs = np.arange(1, 4)
    for name, marker in zip(inverse, ("o", "s"), strict=True):
        ax_bar.plot(xs, [inverse[name][k]["psnr_rgb_report"] for k in range(3)], marker=marker, label=name)
    ax_bar.axhline(identity["psnr_rgb_report"], color="k", linestyle=":", label="identity (LR)")
    ax_bar.set_xticks(xs, _CHAIN_OUTPUTS, fontsize=8)
    ax_bar.set(ylabel="test PSNR RGB (dB)", title="Fig. 9: blocks applied one after another")
    ax_bar.legend(fontsize=8)
    save_figure(fig, path)


def plot_strip(strip: dict[str, np.ndarray], crop: int, pair_number: int, path: Path) -> None:
    """Fig. 9's image strip: x, each block's output and HR (centre crops), with |image - HR| below."""
    fig, axes = plt.subplots(2, len(strip), figsize=(2 * len(strip), 5.4))
    hr_crop = centre_crop(strip["HR"], crop)
    for column, (title, image) in enumerate(strip.items()):
        image_crop = centre_crop(image, crop)
        score = "" if title == "HR" else f"\n{pair_metrics(image, strip['HR'])['psnr_rgb_report']:.2f} dB (whole)"
        axes[0, column].imshow(np.clip(image_crop, 0, 1))
        axes[0, column].set_title(title + score, fontsize=9)
        if title != "HR":
            axes[1, column].imshow(np.clip(4 * np.abs(image_crop - hr_crop).mean(axis=2), 0, 1), cmap="magma",
                                   vmin=0, vmax=1)
            axes[1, column].set_title("|image - HR|, x4", fontsize=8)
        for row in (0, 1):
            axes[row, column].axis("off")
    fig.suptitle(f"Fig. 9: N's blocks applied one after another (test pair {pair_number}, centre crop)")
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    ctx = parse(globals(), argv, _NAME)
    s = ctx.settings
    run, data, data_record = phase_run(ctx)
    test = load_pairs(find_pairs(data, PairSource(str(s["DATASET"]).lower(), s["CAMERA"], s["SCALE"],
                                                  s.get("DATASET_DIR", "")), "test"))
    phases = {phase: phase_metrics(run, phase) for phase in _PHASES}
    strip_index = min(max(1, s["STRIP_IMAGE"]), len(test)) - 1
    inverse, strip = inverse_analysis(run, test, strip_index, ctx.device)
    sections = [
        data_sentence(data_record) + f". Phase run: `{run}`. Each phase's weights are chosen on held-out training "
        f"pairs and scored once on the {len(test)} test pairs (PSNR RGB: the report's protocol; Y: BT.601, no "
        "shave).",
        "Fig. 8, test PSNR after each phase:", fig8_table(phases),
        "Fig. 9, inverse analysis: N's blocks applied one after another (mean over the test pairs), beside the "
        "blocks as phases 1-3 left them:", fig9_table(inverse),
    ]
    write_outputs(ctx, "PSNR after each phase (report Fig. 8) and inverse analysis (Fig. 9)", sections,
                  {"phases": phases, "inverse": inverse, "run": str(run), "data": data_record,
                   "report_db": REPORT_DB}, command_line(f"{_NAME}.py", argv))
    identity = phases[chain.FIRST.result]["identity"]
    plot_phases_and_inverse(run, identity, inverse, ctx.out / f"{_NAME}.png")
    plot_strip(strip, s["STRIP_CROP"], strip_index + 1, ctx.out / "inverse_strip.png")


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
