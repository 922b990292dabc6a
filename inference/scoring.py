"""Scoring a model on whole images beside its baseline, in every protocol the results file reports.

Scaled sets (ESPCN): HR is modcropped, LR made by MATLAB-compatible bicubic downscaling, the baseline is
bicubic upscaling (MATLAB-exact ``imresize``, also for a Y model's chroma); Y metrics with shave = scale
(the BasicSR/EDSR convention), RGB alongside, and ``psnr_y_noshave`` (Y, no border removed). Everything after
decoding runs in torch on the model's device. ``eight_bit=True`` adds the 8-bit protocol beside the float
one (``psnr_y_8bit``, ``ssim_y_8bit``): LR, model output and bicubic output rounded to 8 bits, Y computed
from them in float and not rounded, as BasicSR and EDSR score.
Same-size pairs (multiblock): the baseline is the LR input itself (``identity``); metrics with no shave,
plus the report's own protocol (RGB, top-left crop of at most 1500x1500) as ``psnr_rgb_report``.
``ensemble=True`` scores the model under the x8 self-ensemble (``inference.self_ensemble``) as the method
``model+`` instead of ``model``.

The baseline rows depend only on the images, the scale and the protocol, so ``BaselineCache`` keeps them
per (content hash of the set, scale, protocol, ``BASELINE_VERSION``): a second model scored on the same
sets pays only for its own pass.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.atomic import atomic_write
from core.threads import map_single_threaded
from data.color import rgb_to_y
from data.degrade import modcrop
from data.io import to_float
from data.resize import imresize
from inference.metrics import evaluate_pair, protocol, psnr, psnr_per_image, psnr_ssim_per_image, ssim, to_floats
from inference.multiblock_forward import multiblock_forward
from inference.self_ensemble import plus
from inference.whole_image import DEFAULT_TILE, run_model, super_resolve_tensor, to_uint8

Named = Sequence[tuple[str, np.ndarray]]
BASELINE_VERSION = 1  # bump when the baseline's computation changes: old cache entries are then ignored


@dataclass
class ImageScores:
    """One image's scores: ``metrics[method][metric]``, methods ``model`` (or ``model+``) and ``bicubic``."""

    name: str
    height: int  # HR size after modcrop
    width: int
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)


class BaselineCache:
    """Bicubic rows of a set, stored as JSON under ``folder`` (None: kept in memory for this process only)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self._memory: dict[str, list[dict[str, float]]] = {}

    @staticmethod
    def key(images: Named, scale: int, eight_bit: bool) -> str:
        digest = hashlib.blake2b(digest_size=16)
        digest.update(json.dumps([BASELINE_VERSION, scale, eight_bit]).encode())
        for name, image in images:
            digest.update(f"{name}|{image.shape}|{image.dtype}".encode())
            digest.update(np.ascontiguousarray(image).data)
        return f"bicubic-x{scale}-{'8bit' if eight_bit else 'float'}-{digest.hexdigest()}"

    def get(self, key: str) -> list[dict[str, float]] | None:
        if key not in self._memory and self.folder is not None and (self.folder / f"{key}.json").is_file():
            self._memory[key] = json.loads((self.folder / f"{key}.json").read_text())
        return self._memory.get(key)

    def put(self, key: str, rows: list[dict[str, float]]) -> None:
        self._memory[key] = rows
        if self.folder is not None:
            atomic_write(self.folder / f"{key}.json", lambda f: f.write(json.dumps(rows).encode()))


def mean_metrics(per_image: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in per_image])) for key in per_image[0]}


def scaled_metrics(output: torch.Tensor, hr: torch.Tensor, scale: int, suffix: str = "",
                   full: bool = True) -> dict[str, torch.Tensor]:
    """Y (shave = scale) and, with ``full``, RGB and unshaved Y metrics, as device tensors (no sync)."""
    values = dict(zip((f"psnr_y{suffix}", f"ssim_y{suffix}"),
                      psnr_ssim_per_image(output, hr, space="y", shave=scale), strict=True))
    if full:
        values["psnr_rgb"], values["ssim_rgb"] = psnr_ssim_per_image(output, hr, space="rgb", shave=scale)
        values["psnr_y_noshave"] = psnr_per_image(output, hr, space="y", shave=0)
    return values


def round_8bit(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0.0, 1.0).mul(255.0).round_().div_(255.0)


def prepare_hr(image: np.ndarray, scale: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(HR modcropped, LR by MATLAB bicubic), both (1, 3, H, W) float32 on ``device``."""
    hr = torch.from_numpy(np.ascontiguousarray(modcrop(to_float(image), scale))).permute(2, 0, 1)[None]
    hr = hr.to(device).contiguous()
    lr = imresize(hr, scale=1 / scale, output_shape=(hr.shape[-2] // scale, hr.shape[-1] // scale))
    return hr, lr


def score_scaled_images(model: nn.Module, images: Named, *, scale: int, channels: int, device: torch.device,
                        tile: int = DEFAULT_TILE, eight_bit: bool = False, cache: BaselineCache | None = None,
                        on_output: Callable[[str, torch.Tensor], None] | None = None,
                        ensemble: bool = False) -> list[ImageScores]:
    """Per-image scores of ``model`` (``model+`` with ``ensemble``) and bicubic over HR ``images``;
    ``on_output(name, sr)`` sees every SR image (1, 3, H, W) in [0, 1] (e.g. to save it). The bicubic rows come
    from ``cache`` when it has them. On a CPU with several PyTorch threads the images are scored one per
    thread (``core.threads``)."""
    model.to(device)
    key = BaselineCache.key(images, scale, eight_bit) if cache is not None else ""
    cached = cache.get(key) if cache is not None else None

    def score(index: int) -> ImageScores:
        name, image = images[index]
        hr, lr = prepare_hr(image, scale, device)
        sr = super_resolve_tensor(model, lr, scale=scale, channels=channels, tile=tile, chroma="matlab",
                                  ensemble=ensemble)
        values = scaled_metrics(sr, hr, scale)
        if eight_bit:
            sr8 = round_8bit(super_resolve_tensor(model, round_8bit(lr), scale=scale, channels=channels, tile=tile,
                                                  ensemble=ensemble))
            values |= scaled_metrics(sr8, hr, scale, "_8bit", full=False)
        if on_output is not None:
            on_output(name, sr)
        baseline = cached[index] if cached is not None else bicubic_metrics(hr, lr, scale, eight_bit)
        method = plus("model") if ensemble else "model"
        return ImageScores(name, hr.shape[-2], hr.shape[-1], {method: to_floats(values), "bicubic": baseline})

    rows = map_single_threaded(score, range(len(images)), device)
    if cache is not None and cached is None:
        cache.put(key, [row.metrics["bicubic"] for row in rows])
    return rows


def bicubic_metrics(hr: torch.Tensor, lr: torch.Tensor, scale: int, eight_bit: bool) -> dict[str, float]:
    values = scaled_metrics(imresize(lr, scale=scale).clamp_(0.0, 1.0), hr, scale)
    if eight_bit:
        values |= scaled_metrics(round_8bit(imresize(round_8bit(lr), scale=scale)), hr, scale, "_8bit", full=False)
    return to_floats(values)


def set_means(rows: list[ImageScores]) -> dict[str, dict[str, float]]:
    """Mean over images, per method: the shape ``results.json`` stores per set."""
    return {method: mean_metrics([row.metrics[method] for row in rows]) for method in rows[0].metrics}


def score_scaled_set(model: nn.Module, images: Named, *, scale: int, channels: int, device: torch.device,
                     tile: int = DEFAULT_TILE, eight_bit: bool = False,
                     cache: BaselineCache | None = None) -> dict[str, dict[str, float]]:
    """Mean metrics of ``model`` and of bicubic over HR ``images`` (LR by bicubic downscaling)."""
    return set_means(score_scaled_images(model, images, scale=scale, channels=channels, device=device, tile=tile,
                                         eight_bit=eight_bit, cache=cache))


def score_8bit_luma(model: nn.Module, images: Named, *, scale: int) -> float:
    """Mean PSNR (Y, shave = scale) of a luminance model's 8-bit path, video's: each LR image's Y rounded to
    8 bits in (LR by bicubic downscaling), the output rounded to 8 bits (``model.upscale_uint8``: a FastESPCN)."""
    device = getattr(model, "device", torch.device("cpu"))
    scores = []
    for _, image in images:
        hr, lr = prepare_hr(image, scale, device)
        sr = model.upscale_uint8(to_uint8(rgb_to_y(lr))).float().div_(255.0)
        scores.append(psnr(sr, rgb_to_y(hr), space="y", shave=scale))
    return float(np.mean(scores))


def pair_metrics(output: np.ndarray, hr: np.ndarray) -> dict[str, float]:
    """Same-size metrics: Y and RGB without shave, plus the report's protocol (RGB, 1500x1500 crop)."""
    metrics = evaluate_pair(output, hr, 1)
    metrics["psnr_rgb_report"] = psnr(output, hr, **protocol("report", 1))
    metrics["ssim_rgb_report"] = ssim(output, hr, **protocol("report", 1))
    return metrics


def score_pairs(model: nn.Module | None, pairs: Sequence[tuple[str, np.ndarray, np.ndarray]], *,
                device: torch.device, tile: int = DEFAULT_TILE, ensemble: bool = False) -> dict[str, dict[str, float]]:
    """Mean metrics of ``model`` (if given; ``model+`` with ``ensemble``) and of the identity baseline over
    same-size (LR, HR) pairs; a multiblock network by ``inference.multiblock_forward`` (on a CPU ONNX Runtime
    where it fits, else bands)."""
    method = plus("model") if ensemble else "model"
    rows: dict[str, list[dict[str, float]]] = {method: []} if model is not None else {}
    rows["identity"] = []
    for _name, lr_raw, hr_raw in pairs:
        lr, hr = to_float(lr_raw), to_float(hr_raw)
        rows["identity"].append(pair_metrics(lr, hr))
        if model is not None:
            output = np.clip(run_model(model, lr, device, tile=tile, ensemble=ensemble, exact=multiblock_forward),
                             0.0, 1.0)
            rows[method].append(pair_metrics(output, hr))
    return {method: mean_metrics(values) for method, values in rows.items()}
