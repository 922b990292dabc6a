"""``espcn.py export``: weights that load without this project (safetensors, ONNX or a plain state dict)."""
from __future__ import annotations

from pathlib import Path

import torch

from core.errors import UserError
from core.settings import RunContext
from inference.weight_files import FORMATS, save_weights
from pipelines.espcn.common import espcn_architecture, load_espcn, weights_path


def export_target(weights: Path, fmt: str, out: str) -> Path:
    """``--out`` when given, else beside the weights with the format's suffix."""
    target = Path(out) if out else weights.with_suffix(FORMATS[fmt])
    if target.resolve() == weights.resolve():
        raise UserError(f"--out {target} is the weights file itself; choose another name")
    return target


def export(ctx: RunContext) -> None:
    path = weights_path(ctx)
    net = load_espcn(path, torch.device("cpu"), ctx.settings)
    target = export_target(path, ctx.args.format, ctx.args.out)
    space = "Y (BT.601 as MATLAB rgb2ycbcr)" if net.channels == 1 else "RGB"
    f1, f2 = net.conv1.out_channels, net.conv2.out_channels
    notes = {"source": path.name,
             "layers": f"conv5x5({net.channels}->{f1}) tanh, conv3x3({f1}->{f2}) tanh, "
                       f"conv3x3({f2}->{net.channels * net.scale ** 2}), pixel shuffle {net.scale}",
             "input": f"LR image, NCHW float32, {space} in [0, 1]",
             "output": f"{net.scale}x the input's height and width, same space and range, not clamped"}
    save_weights(net, target, ctx.args.format, espcn_architecture(net), notes,
                 example=lambda: torch.rand(2, net.channels, 17, 23))
    print(f"wrote {target} ({ctx.args.format}; ESPCN x{net.scale}, {space}, features {f1},{f2})")
