"""Apply a trained multiblock network to one's own photos (same-size restoration: sharper, not larger).

    python -m pipelines.multiblock.apply --weights runs/mb/N.pt photo.jpg my_folder/ --out sharpened/
    python -m pipelines.multiblock.apply --weights runs/mb/N1.pt,runs/mb/N2.pt photo.jpg --out sharpened/
    python -m pipelines.multiblock.apply --weights runs/mb/N.pt small.jpg --upscale-first 2 --out sharpened/
    python -m pipelines.multiblock.apply --weights runs/mb/N.pt photo.jpg --self-ensemble --out sharpened/

``--weights``: N.pt (the combined net), one block N<i>.pt, or several blocks chained in the order given
(N1.pt,N2.pt,N3.pt computes N_3^+(N_2^+(N_1^+(x))), what N.pt starts from before phase 4); the
``.safetensors`` that ``pipelines.multiblock.export`` writes load too. Inference is exact
(``inference.multiblock_forward``): the whole image in one pass where it fits (on a CPU by ONNX Runtime on the
network's ONNX export, made once per set of weights and cached; the choice is printed), else band by band,
whose memory is one feature map (a 12-megapixel photo with 64 features: 3 GiB), so large photos run on a CPU
machine.
``--self-ensemble`` averages the network's outputs over the 8 flips and rotations of each image
(``inference.self_ensemble``): each of the 8 passes as exact as one, one float image more of memory, 8x the time.

The networks keep the size: they were trained on LR images that RealSR and City100 make by upscaling
(bicubic) to the HR size. For an input smaller than the wanted output, ``--upscale-first FACTOR`` upscales
it by that factor with MATLAB-compatible bicubic (``data.resize.imresize``, as RealSR's LR files are made)
before the network. Images are read in the orientation their EXIF tag gives and written upright as
``<out>/<name>.png`` (8-bit, or 16-bit with ``--bits 16``). Before any work, every input is checked to be
an image and every output name to be free (``--overwrite`` replaces earlier outputs, never an input); a
problem is one ``error:`` line, exit 2. Outputs are written atomically: an error or a kill midway keeps the
finished ones whole.
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import nn

from core.entry import cli_entry
from core.errors import UserError
from core.runs import check_outputs, prepare_run_dir
from core.settings import CliParser, resolve_device
from data.io import IMAGE_SUFFIXES, each_once, is_image_file, read_image, to_float, write_image
from data.resize import imresize
from inference.multiblock_forward import multiblock_forward
from inference.self_ensemble import self_ensemble
from inference.whole_image import image_to_tensor, tensor_to_image
from models.rcan import Block, MultiBlockNet
from pipelines.multiblock.export import load_network

WeightsSpec = str | Path | Sequence[str | Path]


def weight_paths(weights: WeightsSpec) -> list[Path]:
    """``N.pt``, ``"N1.pt,N2.pt"`` or a sequence of paths, as a list of paths in order."""
    items = weights.split(",") if isinstance(weights, str) else [weights] if isinstance(weights, Path) else weights
    paths = [Path(str(item).strip()).expanduser() for item in items if str(item).strip()]
    if not paths:
        raise UserError("no weights given: pass --weights N.pt, or N1.pt,N2.pt,N3.pt")
    return paths


def load_chain(weights: WeightsSpec) -> tuple[nn.Module, str]:
    """(the network, a one-line description): the blocks of every file, chained in order, each clamped."""
    paths = weight_paths(weights)
    blocks: list[Block] = []
    for path in paths:
        if path.suffix.lower() == ".onnx":
            raise UserError(f"{path} is an ONNX graph (run it with onnxruntime); pass the N.pt or N<i>.pt, or the "
                            ".safetensors, it was exported from")
        net, _architecture = load_network(path)
        blocks += list(net.blocks) if isinstance(net, MultiBlockNet) else [net]
    first = blocks[0]
    names = " -> ".join(path.name for path in paths)
    units = len(first.body)
    summary = (f"{names}: {len(blocks)} block{'s' if len(blocks) > 1 else ''} of {first.head.out_channels} "
               f"features, {units} {first.resblock} residual block{'s' if units != 1 else ''}")
    return (blocks[0] if len(blocks) == 1 else MultiBlockNet(blocks)).eval(), summary


def check_factor(factor: float | None) -> None:
    if factor is not None and not factor > 1:
        raise UserError(f"--upscale-first {factor}: the factor must be more than 1 (the networks keep the size; "
                        "drop the flag to sharpen at the input's size)")


@torch.inference_mode()
def sharpen_array(net: nn.Module, image: np.ndarray, device: torch.device,
                  upscale_first: float | None = None, ensemble: bool = False) -> np.ndarray:
    """``net`` (exact: ``inference.multiblock_forward``, whole where it fits, else banded) on an HxWx3 image
    (uint8, uint16 or float in [0, 1]), first upscaled ``upscale_first`` times by MATLAB bicubic when given;
    float32 in [0, 1]. ``ensemble``: the x8 self-ensemble of that exact pass, averaged before clamping."""
    check_factor(upscale_first)
    x = image_to_tensor(to_float(image)).to(device)
    if upscale_first is not None:
        x = imresize(x, scale=upscale_first).clamp_(0.0, 1.0)
    net.to(device)
    out = self_ensemble(functools.partial(multiblock_forward, net), x) if ensemble else multiblock_forward(net, x)
    return tensor_to_image(out.clamp_(0.0, 1.0))


def input_images(items: Sequence[str | Path]) -> list[Path]:
    """The image files named, and those directly inside the folders named, in order."""
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p))
            if not inside:
                raise UserError(f"no image files in folder {path} (looked for {', '.join(IMAGE_SUFFIXES)})")
            found += inside
        elif path.is_file():
            if not is_image_file(path):
                raise UserError(f"{path} is not an image file (expected {', '.join(IMAGE_SUFFIXES)})")
            found.append(path)
        else:
            raise UserError(f"input not found: {path}")
    return each_once(found)


def check_readable(path: Path) -> None:
    """Refuse a file that is not an image before any work (a damaged body still fails when decoded)."""
    try:
        with Image.open(path):
            pass
    except (UnidentifiedImageError, OSError) as err:
        raise UserError(f"cannot read image {path} ({err}); replace or remove it") from None


def output_paths(inputs: list[Path], out: Path, overwrite: bool) -> list[Path]:
    """``<out>/<stem>.png`` for each input, checked by ``core.runs.check_outputs``."""
    targets = [out / f"{path.stem}.png" for path in inputs]
    check_outputs(out, list(zip(inputs, targets, strict=True)), overwrite)
    return targets


def apply(weights: WeightsSpec, inputs: Sequence[str | Path], out: Path, *, bits: int = 8,
          upscale_first: float | None = None, device: torch.device | None = None, overwrite: bool = False,
          self_ensemble: bool = False) -> None:
    """Every check first (weights, inputs, output names), then each image in turn, one progress line each."""
    if bits not in (8, 16):
        raise UserError(f"--bits {bits}: expected 8 or 16")
    check_factor(upscale_first)
    device = device or resolve_device("auto")
    net, summary = load_chain(weights)
    files = input_images(inputs)
    for path in files:
        check_readable(path)
    targets = output_paths(files, Path(out), overwrite)
    prepare_run_dir(Path(out))
    how = ", whole where it fits, else in bands" if device.type == "cuda" else ""  # a CPU prints its own choice
    how += ", x8 self-ensemble (8 passes each)" if self_ensemble else ""
    print(f"{summary}; on {device}{how}; {len(files)} image(s) -> {out} ({bits}-bit PNG)", flush=True)
    started = time.perf_counter()
    for number, (path, target) in enumerate(zip(files, targets, strict=True), 1):
        began = time.perf_counter()
        image = read_image(path)
        result = sharpen_array(net, image, device, upscale_first, self_ensemble)
        write_image(target, result, bits=bits)
        print(f"[{number}/{len(files)}] {path} {image.shape[1]}x{image.shape[0]} -> {target} "
              f"{result.shape[1]}x{result.shape[0]} in {time.perf_counter() - began:.1f} s", flush=True)
    print(f"{len(files)} image(s) in {time.perf_counter() - started:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = CliParser(prog="python -m pipelines.multiblock.apply", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="image files and folders of images")
    parser.add_argument("--weights", required=True, help="N.pt, one N<i>.pt, or N1.pt,N2.pt,... (chained in order)")
    parser.add_argument("--out", type=Path, default=Path("sharpened"), help="output folder (default: sharpened)")
    parser.add_argument("--bits", type=int, default=8, choices=(8, 16), help="PNG bits per sample (default 8)")
    parser.add_argument("--upscale-first", type=float, default=None, metavar="FACTOR",
                        help="upscale by FACTOR (MATLAB bicubic) before the network, for inputs smaller than the "
                             "wanted output")
    parser.add_argument("--device", default="auto", metavar="auto|cpu|cuda|cuda:N")
    parser.add_argument("--overwrite", action="store_true", help="replace outputs already in --out")
    parser.add_argument("--self-ensemble", action="store_true",
                        help="average the outputs over the 8 flips/rotations of each image (exact; 8x the time)")
    args = parser.parse_args(argv)
    apply(args.weights, args.inputs, args.out, bits=args.bits, upscale_first=args.upscale_first,
          device=resolve_device(args.device), overwrite=args.overwrite, self_ensemble=args.self_ensemble)


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
