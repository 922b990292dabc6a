"""Scoring a model on whole images beside its baseline, in every protocol the results file reports.

Scaled sets (ESPCN): HR is modcropped, LR made by MATLAB-compatible bicubic downscaling, the baseline is
bicubic upscaling; Y metrics with shave = scale (the BasicSR/EDSR convention), RGB alongside, and
``psnr_y_noshave`` (Y, no border removed).
Same-size pairs (multiblock): the baseline is the LR input itself (``identity``); metrics with no shave,
plus the report's own protocol (RGB, top-left crop of at most 1500x1500) as ``psnr_rgb_report``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from data.degrade import bicubic_downscale, bicubic_upscale, modcrop
from data.io import to_float
from inference.metrics import evaluate_pair, psnr, ssim
from inference.whole_image import DEFAULT_TILE, super_resolve

Named = Sequence[tuple[str, np.ndarray]]


def mean_metrics(per_image: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in per_image])) for key in per_image[0]}


def score_scaled_set(model: nn.Module, images: Named, *, scale: int, channels: int, device: torch.device,
                     tile: int = DEFAULT_TILE) -> dict[str, dict[str, float]]:
    """Mean metrics of ``model`` and of bicubic over HR ``images`` (LR by bicubic downscaling)."""
    rows: dict[str, list[dict[str, float]]] = {"model": [], "bicubic": []}
    for _name, image in images:
        hr = modcrop(to_float(image), scale)
        lr = bicubic_downscale(hr, scale)
        outputs = {
            "model": super_resolve(model, lr, scale=scale, channels=channels, device=device, tile=tile),
            "bicubic": np.clip(bicubic_upscale(lr, scale), 0.0, 1.0),
        }
        for method, output in outputs.items():
            metrics = evaluate_pair(output, hr, scale)
            metrics["psnr_y_noshave"] = psnr(output, hr, space="y", shave=0)
            rows[method].append(metrics)
    return {method: mean_metrics(values) for method, values in rows.items()}


def pair_metrics(output: np.ndarray, hr: np.ndarray) -> dict[str, float]:
    """Same-size metrics: Y and RGB without shave, plus the report's protocol (RGB, 1500x1500 crop)."""
    metrics = evaluate_pair(output, hr, 1)
    metrics["psnr_rgb_report"] = psnr(output, hr, space="rgb", shave=0, crop=1500)
    metrics["ssim_rgb_report"] = ssim(output, hr, space="rgb", shave=0, crop=1500)
    return metrics


def score_pairs(model: nn.Module | None, pairs: Sequence[tuple[str, np.ndarray, np.ndarray]], *,
                device: torch.device, tile: int = DEFAULT_TILE) -> dict[str, dict[str, float]]:
    """Mean metrics of ``model`` (if given) and of the identity baseline over same-size (LR, HR) pairs."""
    rows: dict[str, list[dict[str, float]]] = {"model": []} if model is not None else {}
    rows["identity"] = []
    for _name, lr_raw, hr_raw in pairs:
        lr, hr = to_float(lr_raw), to_float(hr_raw)
        rows["identity"].append(pair_metrics(lr, hr))
        if model is not None:
            output = super_resolve(model, lr, scale=1, channels=3, device=device, tile=tile)
            rows["model"].append(pair_metrics(output, hr))
    return {method: mean_metrics(values) for method, values in rows.items()}
