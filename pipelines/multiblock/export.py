"""Export a multiblock block N<i>.pt or the combined N.pt in a format other tools load.

    python -m pipelines.multiblock.export --weights runs/mb/N.pt --format safetensors|onnx|state_dict [--out FILE]

The exported network is the one the phases use downstream: N_i^+ (output clamped to [0, 1]) for a block,
N = N_3^+(N_2^+(N_1^+(x))) for the combined net. Input and output: NCHW float32 RGB in [0, 1], same size
(RealSR same-size restoration). safetensors and ONNX record the architecture in their metadata.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from core.checkpoint import load_weights
from core.entry import cli_entry
from core.errors import UserError
from core.settings import CliParser
from inference.weight_files import FORMATS, read_weights, save_weights
from models.rcan import Block, MultiBlockNet
from pipelines.multiblock.run_folder import ARCH as BLOCK_ARCH
from pipelines.multiblock.run_folder import block_architecture

NET_ARCH = "multiblock-net"


def load_network(path: Path) -> tuple[nn.Module, dict]:
    """The clamped block or combined net a phase checkpoint holds, and its architecture record."""
    tensors, recorded = read_weights(path)
    arch = recorded.get("arch")
    if arch not in (BLOCK_ARCH, NET_ARCH):
        raise UserError(f"{path} is not a multiblock checkpoint (arch={arch!r}); pass an N<i>.pt or N.pt "
                        "written by the phase scripts")
    kwargs = block_architecture(recorded, path)
    count = recorded.get("blocks", 3) if arch == NET_ARCH else 1
    net = MultiBlockNet([Block(**kwargs, clamp=True) for _ in range(count)]) if arch == NET_ARCH \
        else Block(**kwargs, clamp=True)
    load_weights(net, {"model": tensors}, path)
    architecture = {"arch": arch, **kwargs, "clamp": True, **({"blocks": count} if arch == NET_ARCH else {})}
    return net.eval(), architecture


def resblock_words(net: nn.Module) -> str:
    """The residual block's class and the first line of its docstring, e.g. ``RCAB (Residual channel-attention
    block: x + CA(conv3x3(ReLU(conv3x3(x)))))``."""
    block = net if isinstance(net, Block) else net.blocks[0]
    if not len(block.body):
        return "residual block"
    kind = type(block.body[0])
    doc = (kind.__doc__ or "").strip().split("\n")[0].rstrip(".")
    return f"{kind.__name__} ({doc})" if doc else kind.__name__


def export(weights: Path, fmt: str, out: Path | None = None) -> Path:
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    net, architecture = load_network(weights)
    target = out or weights.with_suffix(FORMATS[fmt])
    if target.resolve() == weights.resolve():
        raise UserError(f"--out {target} is the weights file itself; choose another name")
    head = (f"conv3x3(3->{architecture['n_feats']}), {architecture['n_resblocks']} x {resblock_words(net)}, "
            f"{'end conv3x3, ' if architecture['end_conv'] else ''}conv3x3({architecture['n_feats']}->3), + input, "
            "clamp [0, 1]")
    notes = {"source": weights.name, "layers": head if architecture["arch"] == BLOCK_ARCH
             else f"{architecture['blocks']} blocks in sequence, each: {head}",
             "input": "NCHW float32 RGB in [0, 1]", "output": "same size and range (same-size restoration)"}
    save_weights(net, target, fmt, architecture, notes, example=lambda: torch.rand(2, 3, 19, 23))
    return target


def main(argv: list[str] | None = None) -> None:
    parser = CliParser(description=__doc__)
    parser.add_argument("--weights", type=Path, required=True, help="N1.pt, N2.pt, N3.pt or N.pt of a run folder")
    parser.add_argument("--format", required=True, choices=list(FORMATS))
    parser.add_argument("--out", type=Path, default=None, help="output file (default: beside the weights)")
    args = parser.parse_args(argv)
    print(f"wrote {export(args.weights, args.format, args.out)}")


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
