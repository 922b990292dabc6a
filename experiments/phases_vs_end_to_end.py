"""Phased training against one end-to-end training of N with equal compute (the report's Fig. 7).

Phased: the six phase scripts in order (N_1, LR_1, N_2 from N_1, LR_2, N_3 from N_2, then N trained end to
end from the three blocks). End to end: phase4.py with INIT=fresh, N = three new orthogonally initialised
blocks, trained with as many updates per parameter as the phased path gives each block (its own block
training plus phase 4; report: 15000 + 10000 = 25000, of which 5000 at 1e-4 and 20000 at 1e-5).
Since a block step costs about a third of an N step, the three block trainings together cost as many
FLOPs as one block's iterations of N steps: the two accountings agree (LR regeneration, three inference
passes, is extra for the phased path). Report, RealSR Canon x2 test, RGB: phased 32.22 dB, end to end 32.04.

Writes <out>/table.md, <out>/results.json, <out>/phases_vs_end_to_end.png (test PSNR against compute),
and one run folder per method and seed: <out>/seed<S>/phased, <out>/seed<S>/end_to_end.
"""
from __future__ import annotations

# ----------------------------------------------------------------------------------- settings
PRESET = "small"  # small (CPU, minutes) | small-shaped, medium, large (scaling study) | full (GPU); --set wins
SOURCE = "auto"  # auto = --data's RealSR pairs, else pairs synthesised from T91/Set14, else from bundled photos
SYNTH_MAX_SIZE = 0  # synthesised pairs: HR centre crop of at most N x N pixels (0 = whole images; ours)
DATASET = "realsr"  # realsr (report; synthesised in its layout when absent) | city100 | paired (real pairs only)
CAMERA = "Canon"  # RealSR camera folder (report: Canon); City100's version: iPhoneX | NikonD5500
SCALE = 2  # RealSR scale folder (report: x2)
REPEATS = 1  # seeds --seed, --seed+1, ...: both methods trained once per seed (ours)
N_FEATS = 64  # feature channels C (report: 64)
N_RESBLOCKS = 16  # RCABs per block (report: 16)
REDUCTION = 4  # channel-attention squeeze C -> C/REDUCTION (report: 64 -> 16)
PATCH_SIZE = 48  # training patch side, every phase and the baseline (report: 48)
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
E2E_BUDGET = "updates"  # updates = one block's + phase 4's iterations (report; equal FLOPs too) | steps = 3x
E2E_ITERS_HIGH = 5000  # end to end: Adam iterations at E2E_LR_HIGH, the rest of the budget at E2E_LR_LOW (report)
E2E_LR_HIGH = 1e-4  # (report: 1e-4)
E2E_LR_LOW = 1e-5  # (report: 1e-5)
EVAL_EVERY = 500  # iterations between evaluations (test curve) and checkpoints (ours)
VAL_FRACTION = 0.1  # whole training pairs held out to select each N*.pt (ours)
VALIDATE_ON_TEST = False  # select on the test pairs, as the report did (optimistic; off by default)
# --------------------------------------------------------------------------------------------

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python experiments/<name>.py` from anywhere
from pipelines.multiblock.phase_settings import PRESETS as PHASE_PRESETS

PRESETS = {
    "full": {},  # the block above: the report's sizes (RealSR Canon x2 via --data, or synthesised pairs)
    # Minutes on a laptop CPU: the phase scripts' small preset (16 features, 4 RCABs per block, 600 iterations
    # per block, 400 in phase 4, Adam warm-up), the end-to-end baseline on the same budget.
    "small": {**PHASE_PRESETS["small"], "SYNTH_MAX_SIZE": 128, "E2E_ITERS_HIGH": 400, "E2E_LR_HIGH": 5e-4,
              "E2E_LR_LOW": 1e-4, "VAL_FRACTION": 0.1},
}
# The scaling study: the report's schedule shape scaled to the budget, so that budget is the only change.
# Blocks: warm-up : clamp high : clamp low = 2000 : 3000 : 10000; phase 4: high : low = 5000 : 5000; the
# baseline: one block's plus phase 4's iterations, a fifth of them at the high rate (report: 5000 of 25000).
SHAPED = {**PRESETS["small"], "ITERS_WARMUP": 80, "ITERS_CLAMP_HIGH": 120, "ITERS_CLAMP_LOW": 400,
          "ITERS_HIGH": 200, "ITERS_LOW": 200, "E2E_ITERS_HIGH": 200}
PRESETS["small-shaped"] = SHAPED  # 600 iterations per block, 400 in phase 4, 16 features
PRESETS["medium"] = {**SHAPED, "ITERS_WARMUP": 320, "ITERS_CLAMP_HIGH": 480, "ITERS_CLAMP_LOW": 1600,
                     "ITERS_HIGH": 800, "ITERS_LOW": 800, "E2E_ITERS_HIGH": 800, "EVAL_EVERY": 400}  # 4x
PRESETS["large"] = {**PRESETS["medium"], "N_FEATS": 32}  # 4x the iterations and twice the width
# Real camera pairs (docs/results.md, "City100"): City100's iPhone X pairs under --data, blocks as deep as the
# report's (16 RCABs) at 16 features, full-size patches and batch, the medium budget's iterations (the
# report's schedule shape): about 75 min per seed on one thread of a 2-core AVX512-BF16 CPU (bf16).
PRESETS["city100"] = {**PRESETS["medium"], "DATASET": "city100", "CAMERA": "iPhoneX", "N_RESBLOCKS": 16,
                      "PATCH_SIZE": 48, "BATCH_SIZE": 16, "EVAL_EVERY": 800}
REPORT_DB = {"phased": 32.22, "end_to_end": 32.04, "phase1": 31.86, "phase2": 31.93, "phase3": 31.95}

from core.entry import cli_entry
from core.errors import UserError
from core.runs import read_json
from core.settings import RunContext
from engine.csv_log import read_log
from engine.plots import plt
from experiments import common
from experiments.common import (
    block_iterations,
    command_line,
    data_sentence,
    finish_psnr_plot,
    markdown_table,
    mean_sd,
    parse,
    phase_metrics,
    pick,
    prepare_data,
    run_phased,
    seeds,
    timed_phase,
    write_outputs,
)
from pipelines.multiblock import chain

_NAME = "phases_vs_end_to_end"  # (not upper case: not a setting)


def budget(s: dict) -> dict[str, int]:
    """Iterations of each path and their two accountings (see the module docstring)."""
    block, combined = block_iterations(s), s["ITERS_HIGH"] + s["ITERS_LOW"]
    if s["E2E_BUDGET"] not in ("updates", "steps"):
        raise UserError(f"E2E_BUDGET={s['E2E_BUDGET']!r}: expected updates or steps")
    e2e = block + combined if s["E2E_BUDGET"] == "updates" else 3 * block + combined
    if s["E2E_ITERS_HIGH"] > e2e:
        raise UserError(f"E2E_ITERS_HIGH={s['E2E_ITERS_HIGH']} exceeds the end-to-end budget of {e2e} iterations")
    return {"block": block, "combined": combined, "e2e": e2e,
            "phased_steps": 3 * block + combined, "phased_updates": block + combined,
            "phased_compute": block + combined, "e2e_compute": e2e}


def end_to_end_settings(s: dict, its: dict[str, int]) -> dict:
    """phase4.py's settings for N trained from fresh blocks over the whole end-to-end budget."""
    return {**pick(s, common.COMBINED_KEYS), "INIT": "fresh", **common.network_of(s),
            "ITERS_HIGH": s["E2E_ITERS_HIGH"], "LR_HIGH": s["E2E_LR_HIGH"],
            "ITERS_LOW": its["e2e"] - s["E2E_ITERS_HIGH"], "LR_LOW": s["E2E_LR_LOW"]}


def run_seed(ctx: RunContext, data: Path, seed: int, e2e_settings: dict) -> dict:
    """Both paths for one seed: each network's test metrics and the wall seconds up to it."""
    base = ctx.out / f"seed{seed}"
    phased_wall = run_phased(ctx, data, base / "phased", seed)
    last = chain.LAST
    timed_phase(ctx, last.script, data, base / "end_to_end", e2e_settings, seed, last.script)
    e2e_wall = sum(read_json(base / "end_to_end" / "wall_seconds.json").values())
    blocks = [phase for phase in chain.PHASES if phase.result and phase is not last]  # phases 1-3
    return {
        **{phase.result: phase_metrics(base / "phased", phase.result)["model"] for phase in blocks},
        "phased": phase_metrics(base / "phased", last.result)["model"],
        "end_to_end": phase_metrics(base / "end_to_end", last.result)["model"],
        "identity": phase_metrics(base / "phased", chain.FIRST.result)["identity"],
        "wall_end_to_end": e2e_wall,
        **{f"wall_{phase.result}": sum(phased_wall.get(row.script, 0.0) for row in chain.before(phase.script))
           + phased_wall.get(phase.script, 0.0) for phase in blocks},
        "wall_phased": sum(phased_wall.get(script, 0.0) for script in chain.SCRIPTS),
    }


def comparison_table(runs: list[dict], its: dict[str, int]) -> str:
    """One row per network along the phased path and for end to end, then their difference."""
    def col(key: str, metric: str, digits: int = 2) -> str:
        return mean_sd([r[key][metric] for r in runs], digits)

    b = its["block"]
    rows_spec = [  # key, label, optimizer steps, updates per parameter, compute in N-step equivalents
        ("identity", "identity (the LR input)", 0, 0, 0),
        ("phase1", "phased, after phase 1 (N_1)", b, b, b / 3),
        ("phase2", "phased, after phase 2 (N_2(N_1))", 2 * b, b, 2 * b / 3),
        ("phase3", "phased, after phase 3 (N_3(N_2(N_1)))", 3 * b, b, b),
        ("phased", "**phased (after phase 4)**", its["phased_steps"], its["phased_updates"], its["phased_compute"]),
        ("end_to_end", "**end to end (fresh N)**", its["e2e"], its["e2e"], its["e2e_compute"]),
    ]
    rows = []
    for key, label, steps, updates, compute in rows_spec:
        wall = mean_sd([r[f"wall_{key}"] for r in runs], 0) if key != "identity" else ""
        rows.append([label, col(key, "psnr_rgb_report"), col(key, "psnr_y"), col(key, "ssim_y", 4), steps,
                     updates, f"{compute:.0f}", wall, REPORT_DB.get(key, "")])
    rows.append(["phased − end to end", mean_sd(phased_gains(runs, "psnr_rgb_report")),
                 mean_sd(phased_gains(runs, "psnr_y")), "", "", "", "", "",
                 f"{REPORT_DB['phased'] - REPORT_DB['end_to_end']:+.2f}"])
    header = ["method", "PSNR RGB (dB)", "PSNR Y (dB)", "SSIM Y", "optimizer steps", "updates / parameter",
              "compute (N-steps)", "wall s", "report RGB (dB)"]
    return markdown_table(header, rows)


def phased_gains(runs: list[dict], metric: str) -> list[float]:
    return [r["phased"][metric] - r["end_to_end"][metric] for r in runs]


def plot_against_compute(out: Path, per_seed: dict[int, dict], block_iters: int, path: Path) -> None:
    """Fig. 7 on a compute axis: every network's test curve, a block iteration counted as 1/3 of an N one."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = {"N1": "tab:orange", "N2": "tab:green", "N3": "tab:red", "N": "tab:blue", "e2e": "tab:gray"}
    offsets = {"N1": 0.0, "N2": block_iters / 3, "N3": 2 * block_iters / 3, "N": float(block_iters)}
    for number, seed in enumerate(per_seed):
        base = out / f"seed{seed}"
        alpha = 1.0 if number == 0 else 0.4
        for name, offset in offsets.items():
            rows_log = read_log(base / "phased" / f"log_{name}.csv")
            scale = 1 / 3 if name != "N" else 1.0
            label = (f"phased: {name}" if name != "N" else "phased: phase 4 (N)") if number == 0 else None
            ax.plot([offset + r["step"] * scale for r in rows_log], [r["test_psnr"] for r in rows_log],
                    color=colors[name], alpha=alpha, marker=".", label=label)
        rows_log = read_log(base / "end_to_end" / "log_N.csv")
        ax.plot([r["step"] for r in rows_log], [r["test_psnr"] for r in rows_log], color=colors["e2e"],
                alpha=alpha, marker=".", label="end to end (fresh N)" if number == 0 else None)
    identity = next(iter(per_seed.values()))["identity"]["psnr_rgb"]
    finish_psnr_plot(fig, ax, identity, path, xlabel="compute (N-iteration equivalents; a block iteration = 1/3)",
                     title="Phased vs end to end, equal compute", seeds_run=len(per_seed))


def main(argv: list[str] | None = None) -> None:
    ctx = parse(globals(), argv, _NAME)
    s = ctx.settings
    if s["BLOCK_INIT"] not in ("inherit", "fresh"):
        raise UserError(f"BLOCK_INIT={s['BLOCK_INIT']!r}: expected inherit or fresh")
    its = budget(s)
    data, data_record = prepare_data(ctx)
    e2e_settings = end_to_end_settings(s, its)
    per_seed = {seed: run_seed(ctx, data, seed, e2e_settings) for seed in seeds(ctx)}
    runs, n = list(per_seed.values()), len(per_seed)
    per_seed_rows = [[seed, f"{r['phased']['psnr_rgb_report']:.3f}", f"{r['end_to_end']['psnr_rgb_report']:.3f}",
                      f"{r['phased']['psnr_rgb_report'] - r['end_to_end']['psnr_rgb_report']:+.3f}"]
                     for seed, r in per_seed.items()]
    sections = [
        data_sentence(data_record)
        + f". Test pairs scored once at the end; means over {n} seed(s)" + (" ± sd" if n > 1 else "") + ". "
        "PSNR RGB: the report's protocol (RGB, no shave, top-left 1500x1500); Y: BT.601, no shave (RealSR). "
        f"Blocks: {s['N_FEATS']} features, {s['N_RESBLOCKS']} RCABs; {its['block']} iterations per block, "
        f"{its['combined']} in phase 4; end to end {its['e2e']} (E2E_BUDGET={s['E2E_BUDGET']}). "
        "Compute counts a block step as 1/3 of an N step (LR regeneration not counted).",
        comparison_table(runs, its),
        markdown_table(["seed", "phased RGB", "end to end RGB", "difference"], per_seed_rows),
        f"Phased beats end to end in {sum(d > 0 for d in phased_gains(runs, 'psnr_rgb_report'))} of {n} seed(s) "
        "(RGB); report: +0.18 dB.",
    ]
    write_outputs(ctx, "Phased training vs one end-to-end training of N (report Fig. 7)", sections,
                  {"per_seed": {str(k): v for k, v in per_seed.items()}, "iterations": its, "data": data_record,
                   "report_db": REPORT_DB}, command_line(f"{_NAME}.py", argv))
    plot_against_compute(ctx.out, per_seed, its["block"], ctx.out / f"{_NAME}.png")


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
