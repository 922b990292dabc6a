"""Plots (matplotlib, no display): loss and PSNR of one run, PSNR per multiblock phase, and the SR comparison
figure with zoomed crops."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

from core.atomic import atomic_write
from engine.csv_log import read_log

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle


def plot_curves(log_path: Path, out_path: Path, x: str = "step", title: str = "") -> None:
    """Training loss and every ``val_*psnr*`` column against ``x`` (step or epoch), side by side."""
    rows = read_log(log_path)
    if not rows:
        return
    psnr_keys = [key for key in rows[-1] if "psnr" in key]
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(10, 4))
    xs = [row.get(x, float("nan")) for row in rows]
    ax_loss.plot(xs, [row.get("loss", float("nan")) for row in rows])
    ax_loss.set(xlabel=x, ylabel="training loss", yscale="log", title="loss")
    for key in psnr_keys:
        ax_psnr.plot(xs, [row.get(key, float("nan")) for row in rows], label=key)
    ax_psnr.set(xlabel=x, ylabel="PSNR (dB)", title="validation")
    if psnr_keys:
        ax_psnr.legend()
    fig.suptitle(title)
    save_figure(fig, out_path, dpi=100)


def plot_phases(run_dir: Path, networks: tuple[str, ...]) -> None:
    """The report's Fig. 8: test (or validation) PSNR against iteration, one line per phase: the logs
    ``log_<network>.csv`` of ``networks`` in training order."""
    from engine.csv_log import read_log
    from engine.plots import plt

    logs = [(name, run_dir / f"log_{name}.csv") for name in networks]
    logs = [(name, path) for name, path in logs if path.exists()]
    if not logs:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    offset = 0.0
    for name, path in logs:
        rows = read_log(path)
        key = "test_psnr" if rows and "test_psnr" in rows[0] else "val_psnr"
        ax.plot([offset + r["step"] for r in rows], [r.get(key, float("nan")) for r in rows],
                label=f"{name} {key}")
        offset += rows[-1]["step"] if rows else 0
    ax.set(xlabel="iteration (phases one after another)", ylabel="PSNR RGB (dB)", title="PSNR per phase")
    ax.legend()
    save_figure(fig, run_dir / "phases.png", dpi=100)


def plot_comparison(panels: dict[str, np.ndarray], box: tuple[int, int, int], out_path: Path,
                    title: str = "") -> None:
    """The figure SR papers show: the first panel (HR) whole with the window ``box`` = (x, y, size) drawn
    on it, then that window of every panel enlarged side by side (nearest neighbour, so pixels stay
    visible). ``panels``: label -> HxWx3 float image in [0, 1], all the same size."""
    x, y, size = box
    labels = list(panels)
    fig, axes = plt.subplots(1, len(labels) + 1, figsize=(3.2 * (len(labels) + 1), 3.6),
                             gridspec_kw={"width_ratios": [1.4] + [1] * len(labels)})
    axes[0].imshow(panels[labels[0]])
    axes[0].add_patch(Rectangle((x - 0.5, y - 0.5), size, size, fill=False, edgecolor="red", linewidth=1.5))
    axes[0].set_title(labels[0])
    for ax, label in zip(axes[1:], labels, strict=True):
        ax.imshow(panels[label][y : y + size, x : x + size], interpolation="nearest")
        ax.set_title(label)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(title)
    save_figure(fig, out_path, dpi=120)


def save_figure(fig: plt.Figure, path: Path, dpi: int) -> None:
    """Lay out, write atomically as PNG, and close ``fig`` (closed even when the write fails)."""
    try:
        fig.tight_layout()
        atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=dpi))
    finally:
        plt.close(fig)
