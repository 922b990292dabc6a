"""The scaling study's summary: phased minus end-to-end test PSNR against compute, one point per budget.

    python experiments/scaling_summary.py [--set ROOT=runs/scaling] [--set BUDGETS=small-shaped,medium,large]

Reads ``ROOT/<budget>/results.json`` written by ``experiments/phases_vs_end_to_end.py --set PRESET=<budget>
--out ROOT/<budget>`` (the budgets not run yet are skipped) and writes ``<out>/table.md``,
``<out>/results.json`` and ``<out>/scaling.png``. Compute is the path's N-step equivalents (a block step is
a third of an N step) times (N_FEATS / 16)^2, a convolution's cost relative to the 16-feature small preset.
"""
from __future__ import annotations

# ----------------------------------------------------------------------------------- settings
ROOT = "runs/scaling"  # the folder holding one phases_vs_end_to_end run folder per budget (ours)
BUDGETS = ["small-shaped", "medium", "large"]  # budget folders, smallest first (issue 14's three budgets)
METRIC = "psnr_rgb_report"  # the report's protocol: RGB, no shave, top-left crop of at most 1500x1500
# --------------------------------------------------------------------------------------------

PRESETS: dict = {}

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python experiments/<name>.py` from anywhere
from core.entry import cli_entry
from core.errors import UserError
from core.runs import read_json
from engine.plots import plt
from experiments.common import command_line, markdown_table, mean_sd, parse, save_figure, write_outputs

_NAME = "scaling_summary"


def budget_row(name: str, results: dict) -> dict:
    settings, iterations = results["settings"], results["iterations"]
    gaps = [run["phased"][METRIC] - run["end_to_end"][METRIC] for run in results["per_seed"].values()]
    return {"budget": name, "features": settings["N_FEATS"], "block_iterations": iterations["block"],
            "phase4_iterations": iterations["combined"], "e2e_iterations": iterations["e2e"],
            "compute": iterations["phased_compute"] * (settings["N_FEATS"] / 16) ** 2,
            "phased": [run["phased"][METRIC] for run in results["per_seed"].values()],
            "end_to_end": [run["end_to_end"][METRIC] for run in results["per_seed"].values()], "gaps": gaps}


def plot(rows: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        ax.scatter([row["compute"]] * len(row["gaps"]), row["gaps"], color="tab:blue", alpha=0.5, s=18)
    ax.errorbar([r["compute"] for r in rows], [np.mean(r["gaps"]) for r in rows],
                yerr=[np.std(r["gaps"], ddof=1) if len(r["gaps"]) > 1 else 0 for r in rows], fmt="o-",
                color="tab:blue", capsize=4, label="mean ± sd over seeds (dots: seeds)")
    for row in rows:
        ax.annotate(row["budget"], (row["compute"], np.mean(row["gaps"])), textcoords="offset points",
                    xytext=(6, 6), fontsize=8)
    ax.axhline(0.18, color="tab:red", linestyle="--", label="report (64 features, RealSR): +0.18 dB")
    ax.axhline(0.0, color="k", linestyle=":")
    ax.set(xscale="log", xlabel="compute (N-steps x (features / 16)^2)", ylabel="phased - end to end (dB, RGB)",
           title="The phased advantage as the budget grows")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    ctx = parse(globals(), argv, _NAME)
    root = Path(ctx.settings["ROOT"])
    rows = [budget_row(name, read_json(root / name / "results.json")) for name in ctx.settings["BUDGETS"]
            if (root / name / "results.json").exists()]
    if not rows:
        raise UserError(f"no budget has results under {root}; run experiments/phases_vs_end_to_end.py with "
                        f"--set PRESET=<budget> --out {root}/<budget> first")
    table = markdown_table(
        ["budget", "features", "iterations per block / phase 4 / end to end", "compute", "seeds",
         "phased (dB)", "end to end (dB)", "phased - end to end (dB)"],
        [[r["budget"], r["features"], f"{r['block_iterations']} / {r['phase4_iterations']} / {r['e2e_iterations']}",
          f"{r['compute']:g}", len(r["gaps"]), mean_sd(r["phased"]), mean_sd(r["end_to_end"]),
          mean_sd(r["gaps"], digits=3)] for r in rows])
    ctx.out.mkdir(parents=True, exist_ok=True)
    write_outputs(ctx, "Phased minus end-to-end training as the budget grows", [table],
                  {"budgets": rows, "metric": METRIC}, command_line(f"{_NAME}.py", argv))
    plot(rows, ctx.out / "scaling.png")


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
