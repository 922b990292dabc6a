"""``espcn.py eval``: score a checkpoint on benchmark HR folders beside bicubic, and write what a paper needs.

Into ``--out`` (``runs/eval-<date>-<time>`` when none is given): ``eval.json`` (mean metrics per set and
method, the protocol's wording), ``per_image.csv`` (set, name, size, every metric of the model and of
bicubic), ``compare_<set>.png`` (HR, bicubic and model crops; ``FIGURE``), the SR images under
``images/<set>/`` (``SAVE_IMAGES`` or ``--save-images``). ``EVAL_8BIT`` adds the 8-bit protocol columns.
``SELF_ENSEMBLE`` adds a second pass under the x8 self-ensemble (``inference.self_ensemble``): the method
``model+`` beside ``model`` in every file (its images ``<name>_x<scale>+.png``), and each pass's seconds.
The network runs through the fast ESPCN path (equal to the plain one within 1e-6); the bicubic rows come
from ``BASELINE_CACHE`` when an earlier eval scored the same images at the same scale.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import UserError
from core.runs import prepare_run_dir, write_json
from core.settings import RunContext
from data.io import write_image
from data.resize import imresize
from engine.csv_log import write_rows
from engine.report import metrics_table
from inference.fast_espcn import FastESPCN
from inference.scoring import BaselineCache, ImageScores, prepare_hr, score_scaled_images, set_means
from inference.self_ensemble import DESCRIPTION, plus
from inference.whole_image import super_resolve_tensor
from pipelines.espcn.common import EVAL_OUT_DEFAULT, load_espcn, load_set, protocol_text, weights_path

EIGHT_BIT_TEXT = ("*_8bit: LR, model and bicubic outputs rounded to 8 bits, Y from them in float (not rounded), "
                  "as BasicSR/EDSR score")


def evaluate(ctx: RunContext) -> None:
    settings = ctx.settings
    path = weights_path(ctx)
    net = load_espcn(path, ctx.device, settings)
    model = FastESPCN(net, device=ctx.device)
    dated = ctx.args.out in ("", EVAL_OUT_DEFAULT)
    out = Path("runs") / time.strftime("eval-%Y%m%d-%H%M%S") if dated else ctx.out
    if (out / "eval.json").exists():
        raise UserError(f"{out} already holds an evaluation (eval.json); choose another --out, or leave --out "
                        "out for a new dated folder under runs/")
    out = prepare_run_dir(out)
    cache = BaselineCache(Path(settings["BASELINE_CACHE"]) if settings["BASELINE_CACHE"] else None)
    save_images = settings["SAVE_IMAGES"] or getattr(ctx.args, "save_images", False)
    passes = (False, True) if settings["SELF_ENSEMBLE"] else (False,)
    pass_seconds = dict.fromkeys((plus("model") if ensemble else "model" for ensemble in passes), 0.0)
    per_set: dict[str, list[ImageScores]] = {}
    started = time.perf_counter()
    for name in settings["EVAL_SETS"]:
        images = load_set(ctx, name)
        for ensemble in passes:
            method = plus("model") if ensemble else "model"
            saver = (image_saver(out / "images" / Path(name).name, net.scale, method.removeprefix("model"))
                     if save_images else None)
            began = time.perf_counter()
            rows = score_scaled_images(model, images, scale=net.scale, channels=net.channels, device=ctx.device,
                                       tile=settings["EVAL_TILE"], eight_bit=settings["EVAL_8BIT"], cache=cache,
                                       on_output=saver, ensemble=ensemble)
            pass_seconds[method] += time.perf_counter() - began
            per_set[name] = merge_methods(per_set[name], rows) if ensemble else rows
        if settings["FIGURE"]:
            comparison_figure(model, images, per_set[name], name, out, settings["FIGURE_CROP"], ctx.device)
    seconds = time.perf_counter() - started
    metrics = {name: set_means(rows) for name, rows in per_set.items()}
    protocol = (protocol_text(net.scale) + ("; " + EIGHT_BIT_TEXT if settings["EVAL_8BIT"] else "")
                + ("; " + DESCRIPTION if settings["SELF_ENSEMBLE"] else ""))
    print(f"{path} (x{net.scale}, {'Y' if net.channels == 1 else 'RGB'}); {protocol}")
    print(metrics_table(metrics))
    timing = "".join(f"; {method} pass {t:.1f} s" for method, t in pass_seconds.items()) if len(passes) > 1 else ""
    write_json(out / "eval.json", {"weights": str(path), "metrics": metrics, "protocol": protocol,
                                   "self_ensemble": settings["SELF_ENSEMBLE"], "seconds": round(seconds, 2),
                                   "pass_seconds": {method: round(t, 2) for method, t in pass_seconds.items()}})
    write_rows(out / "per_image.csv", per_image_rows(per_set))
    print(f"wrote {out}/eval.json, per_image.csv{', compare_*.png' if settings['FIGURE'] else ''}"
          f"{', images/' if save_images else ''} ({seconds:.1f} s{timing})")


def merge_methods(rows: list[ImageScores], more: list[ImageScores]) -> list[ImageScores]:
    """Each image's scores with the methods of the same image in ``more`` added after ``model``, before the
    baseline (``model``, ``model+``, ``bicubic``)."""
    for row, extra in zip(rows, more, strict=True):
        row.metrics = {**{method: v for method, v in row.metrics.items() if method != "bicubic"}, **extra.metrics}
    return rows


def per_image_rows(per_set: dict[str, list[ImageScores]]) -> list[dict[str, str | int]]:
    """One row per image: set, name, height, width, then METHOD_METRIC for every method and metric."""
    return [{"set": set_name, "name": row.name, "height": row.height, "width": row.width,
             **{f"{method}_{metric}": f"{value:.6f}" for method, values in row.metrics.items()
                for metric, value in values.items()}}
            for set_name, rows in per_set.items() for row in rows]


def image_saver(folder: Path, scale: int, suffix: str = ""):
    def save(name: str, sr: torch.Tensor) -> None:
        write_image(folder / f"{Path(name).stem}_x{scale}{suffix}.png", sr[0].permute(1, 2, 0).cpu().numpy())

    return save


def parse_crop(text: str) -> tuple[str, tuple[int, int, int] | None]:
    """``FIGURE_CROP``: '' (automatic), 'NAME' (that image, window automatic) or 'NAME:X,Y,SIZE' (HR pixels)."""
    if not text:
        return "", None
    name, _, box = text.partition(":")
    if not box:
        return name, None
    try:
        x, y, size = (int(v) for v in box.split(","))
    except ValueError:
        raise UserError(f"FIGURE_CROP={text!r}: expected NAME or NAME:X,Y,SIZE (HR pixels), e.g. "
                        "baboon.png:120,80,96") from None
    return name, (x, y, size)


def most_different_window(a: torch.Tensor, b: torch.Tensor, size: int) -> tuple[int, int]:
    """Top-left (x, y) of the ``size`` x ``size`` window where the mean |a - b| is largest."""
    diff = (a - b).abs().mean(dim=1, keepdim=True)
    stride = max(1, size // 4)
    pooled = F.avg_pool2d(diff, size, stride=stride)[0, 0]
    index = int(pooled.argmax())
    return (index % pooled.shape[1]) * stride, (index // pooled.shape[1]) * stride


def comparison_figure(model: Any, images, rows: list[ImageScores], set_name: str, out: Path, crop: str,
                      device: torch.device) -> None:
    """HR with the chosen window, and the window zoomed in HR, bicubic and model; one image per set: the
    one named by ``FIGURE_CROP`` (name or stem), else the one where the model gains most over bicubic (Y PSNR)."""
    from engine.plots import plot_comparison  # matplotlib only when a figure is drawn

    wanted, box = parse_crop(crop)
    by_stem = {Path(name).stem: name for name, _ in images}
    wanted = by_stem.get(Path(wanted).stem, "") if wanted else ""
    if not wanted:  # automatic, or the named image is not in this set
        box = None
        gains = [r.metrics["model"]["psnr_y"] - r.metrics["bicubic"]["psnr_y"] for r in rows]
        wanted = rows[int(np.argmax(gains))].name
    image = dict(images)[wanted]
    scale = model.scale
    hr, lr = prepare_hr(image, scale, device)
    sr = super_resolve_tensor(model, lr, scale=scale, channels=model.channels, chroma="matlab")
    bicubic = imresize(lr, scale=scale).clamp_(0.0, 1.0)
    height, width = hr.shape[-2:]
    if box is None:
        size = min(max(16, min(height, width) // 4), height, width)
        x, y = most_different_window(sr, bicubic, size)
    else:
        x, y, size = box
        if x < 0 or y < 0 or size < 4 or x + size > width or y + size > height:
            raise UserError(f"FIGURE_CROP window {x},{y},{size} does not fit {wanted} ({width}x{height} after "
                            "modcrop); choose X,Y,SIZE inside the image")
    row = next(r for r in rows if r.name == wanted)
    panels = {"HR": hr, f"bicubic {row.metrics['bicubic']['psnr_y']:.2f} dB": bicubic,
              f"model {row.metrics['model']['psnr_y']:.2f} dB": sr}
    as_images = {label: t[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy() for label, t in panels.items()}
    plot_comparison(as_images, (x, y, size), out / f"compare_{Path(set_name).name}.png",
                    title=f"{Path(set_name).name} / {wanted}, x{scale} (PSNR Y, shave {scale})")
