"""What every ESPCN subcommand shares: checkpoints, data sets, the LR degradation, the protocol's wording."""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.checkpoint import check_meta, load_weights
from core.errors import UserError
from core.settings import (
    RunContext,
)
from data.color import rgb_to_y
from data.datasets import load_named_set
from data.degrade import bicubic_downscale, gaussian_downscale
from data.io import to_float
from inference.weight_files import read_weights
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


def load_espcn(path: Path, device: torch.device, settings: dict[str, Any] | None = None) -> ESPCN:
    """An ESPCN from a checkpoint of this project or its safetensors export (architecture as recorded), or
    from a plain third-party state dict, whose architecture comes from ``settings`` (SCALE, CHANNELS,
    FEATURES)."""
    tensors, recorded = read_weights(path)
    if recorded:
        check_meta({"meta": recorded}, path, arch=ARCH)
        if "scale" not in recorded:
            raise UserError(f"{path} records no scale; it was not written by espcn.py train")
        net = ESPCN(recorded["scale"], recorded["channels"], tuple(recorded["features"]))
    elif settings is None:
        raise UserError(f"{path} records no architecture; it was not written by espcn.py train")
    else:
        net = ESPCN(settings["SCALE"], settings["CHANNELS"], tuple(settings["FEATURES"]))
        tensors = foreign_espcn_weights(tensors, path, settings)
    load_weights(net, {"model": tensors}, path)
    return net.to(device).eval()


def foreign_espcn_weights(tensors: dict[str, torch.Tensor], path: Path,
                          settings: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A third-party ESPCN state dict renamed to this model's names: its three convolutions, in the file's
    order (the order of the layers), become conv1..conv3, whatever they were called (``first_part.0``,
    ``first_part.2``, ``last_part.0`` in yjn870/ESPCN-pytorch; ``conv1..3`` elsewhere). Checked against the
    settings so a wrong SCALE says which one the file holds. The activations (tanh, as the paper) and the
    input convention (Y or RGB in [0, 1]) cannot be read from a state dict: they must match this model's."""
    convs = [key.removesuffix(".weight") for key, value in tensors.items()
             if key.endswith(".weight") and value.ndim == 4]
    if len(convs) != 3 or len(tensors) != 6 or any(f"{conv}.bias" not in tensors for conv in convs):
        raise UserError(f"{path} is not an ESPCN state dict (expected three convolutions with weights and "
                        f"biases; found {', '.join(list(tensors)[:8])})")
    w1, w2, w3 = (tensors[f"{conv}.weight"] for conv in convs)
    channels = w1.shape[1]
    found = {"SCALE": math.isqrt(w3.shape[0] // channels), "CHANNELS": channels,
             "FEATURES": f"{w1.shape[0]},{w2.shape[0]}"}
    wanted = {"SCALE": settings["SCALE"], "CHANNELS": settings["CHANNELS"],
              "FEATURES": ",".join(map(str, settings["FEATURES"]))}
    if found != wanted:
        def as_sets(values: dict[str, Any]) -> str:
            return " ".join(f"--set {key}={value}" for key, value in values.items())
        raise UserError(f"{path} holds an ESPCN that needs {as_sets(found)} (the settings have "
                        f"{as_sets(wanted)}); pass those --set options")
    return {f"conv{index}.{part}": tensors[f"{conv}.{part}"] for index, conv in enumerate(convs, 1)
            for part in ("weight", "bias")}


def espcn_architecture(net: ESPCN) -> dict[str, Any]:
    """What ``load_espcn`` needs to rebuild ``net``: the checkpoint meta, and the exports' metadata."""
    return {"arch": ARCH, "scale": net.scale, "channels": net.channels,
            "features": [net.conv1.out_channels, net.conv2.out_channels]}


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
