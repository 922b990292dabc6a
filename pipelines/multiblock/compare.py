"""Compare multiblock runs: a table of each run's per-phase test PSNR, and the same in one plot.

    python -m pipelines.multiblock.compare runs/A runs/B runs/A/archive/20261203-195544-phase2_1 \\
        [--metric psnr_rgb] [--plot compare.png]

Each argument is a run folder (or an archived part of one, ``<run>/archive/<time>-<script>/``) holding the
``results.json`` the phase scripts write. A row per run: the model's test score after each phase, the
identity baseline (the LR images as they are), and the phase-4 gain over identity. Runs' other columns are
in the ``results.csv`` beside the run folders.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.entry import cli_entry
from core.errors import UserError
from core.runs import read_json
from pipelines.multiblock import chain

PHASES = chain.RESULTS
METRICS = ("psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y", "psnr_rgb_report")


def phase_scores(run: Path, metric: str) -> tuple[dict[str, float], float | None, str | None]:
    """(phase -> the model's test ``metric``, the identity baseline's, the test set's name) of one run."""
    results = read_json(run / "results.json")
    if not results:
        raise UserError(f"{run}: no results.json; name a run folder the phase scripts wrote into")
    scores, identity, test_set = {}, None, None
    for phase in PHASES:
        entry = results.get(phase)
        if not entry:
            continue
        test_set, methods = next(iter(entry["metrics"].items()))
        scores[phase] = methods["model"][metric]
        identity = methods["identity"][metric]
    return scores, identity, test_set


def table(runs: list[Path], metric: str) -> tuple[str, list[dict[str, Any]]]:
    rows = []
    for run in runs:
        scores, identity, test_set = phase_scores(run, metric)
        rows.append({"run": str(run), "test_set": test_set, "identity": identity, **scores})
    header = ["run", "test set", *PHASES, "identity", f"{chain.LAST.result} - identity"]
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for row in rows:
        cells = [row["run"], row["test_set"] or "", *(_cell(row.get(p)) for p in PHASES), _cell(row["identity"])]
        last = row.get(chain.LAST.result)
        gain = last - row["identity"] if last is not None else None
        lines.append(" | ".join([*cells, _cell(gain, signed=True)]))
    return "\n".join(f"| {line} |" for line in lines), rows


def _cell(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def plot(rows: list[dict[str, Any]], metric: str, path: Path) -> None:
    from engine.plots import plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for row in rows:
        done = [p for p in PHASES if p in row]
        line = ax.plot([PHASES.index(p) + 1 for p in done], [row[p] for p in done], marker="o", label=row["run"])
        if row["identity"] is not None:
            ax.axhline(row["identity"], color=line[0].get_color(), linestyle=":", linewidth=1)
    ax.set(xticks=range(1, len(PHASES) + 1), xlabel="after phase", ylabel=f"test {metric}",
           title=f"test {metric} per phase (dotted: identity, the LR images as they are)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (or their archive/<...> folders)")
    parser.add_argument("--metric", default="psnr_rgb", choices=METRICS, help="the test metric (default psnr_rgb)")
    parser.add_argument("--plot", type=Path, default=Path("compare.png"), help="the plot (default compare.png)")
    args = parser.parse_args(argv)
    text, rows = table(args.runs, args.metric)
    print(f"test {args.metric} of the model after each phase (results.json of each run):\n{text}")
    plot(rows, args.metric, args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
