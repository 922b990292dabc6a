"""What every ESPCN subcommand shares: checkpoints, data sets, the LR degradation, the protocol's wording."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.checkpoint import check_meta, load_checkpoint, load_weights
from core.errors import UserError
from core.settings import (
    RunContext,
)
from data.color import rgb_to_y
from data.datasets import load_named_set
from data.degrade import bicubic_downscale, gaussian_downscale
from data.io import to_float
from models.espcn import ESPCN

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "espcn_x3_y.pt"
ARCH = "espcn"
EVAL_OUT_DEFAULT = "runs/eval-<date>-<time>"  # what `eval --help` shows; evaluate.py fills in the time


def load_set(ctx: RunContext, name: str) -> list[tuple[str, np.ndarray]]:
    """A folder under the data root, a path to a folder, or a bundled set (skimage-train/-test)."""
    path = Path(name).expanduser()
    if path.is_dir() and (path.is_absolute() or name.startswith(".")):
        return load_named_set(path.parent, path.name)
    return load_named_set(ctx.data_root, name)


def degrade_fn(settings: dict[str, Any]):
    kind = settings["DEGRADATION"]
    if kind == "gaussian":
        return functools.partial(gaussian_downscale, sigma=settings["BLUR_SIGMA"] * settings["SCALE"])
    if kind == "bicubic":
        return bicubic_downscale
    raise UserError(f"DEGRADATION={kind!r}: expected 'gaussian' or 'bicubic'")


def model_space(image: np.ndarray, channels: int) -> np.ndarray:
    """uint image -> float HxWxC in the model's colour space (Y or RGB)."""
    rgb = to_float(image)
    return rgb_to_y(rgb)[..., None] if channels == 1 else rgb


def load_espcn(path: Path, device: torch.device) -> ESPCN:
    state = load_checkpoint(path)
    meta = state.get("meta", {})
    check_meta(state, path, arch=ARCH)
    if "scale" not in meta:
        raise UserError(f"{path} records no scale; it was not written by espcn.py train")
    net = ESPCN(meta["scale"], meta["channels"], tuple(meta["features"]))
    load_weights(net, state, path)
    return net.to(device).eval()


def weights_path(ctx: RunContext) -> Path:
    path = Path(ctx.args.weights) if ctx.args.weights else DEFAULT_WEIGHTS
    if not path.is_file():
        raise UserError(f"weights not found: {path}; pass --weights PATH to a checkpoint written by "
                        "'espcn.py train'")
    return path


def protocol_text(scale: int) -> str:
    return (f"HR modcropped to a multiple of {scale}; LR by MATLAB-compatible bicubic imresize; "
            f"*_y: BT.601 Y (MATLAB rgb2ycbcr), {scale}-pixel border shaved, data range 255; "
            f"*_rgb: RGB, same shave; mean over images; model weights from best.pt (validation split)")
