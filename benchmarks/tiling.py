"""Banded and tiled vs whole-image inference through three chained full-size blocks (N = N_3(N_2(N_1(x)))).

    python benchmarks/tiling.py [--quick] [--threads N] [--size WxH] [--tile T] [--paths banded,tiled,whole]
                                [--float64]

Runs ``inference.tiling.tiled_forward`` (overlap = the network's receptive-field radius, linear blending)
and a plain whole-image ``net(x)`` on the same image, in one process, and reports the time of each, the
peak resident memory each adds to the process, and how far apart their outputs are. The blocks are
N_i^+ (output clamped) with C = 64, R = 16 and the report's orthogonal initialisation (random weights:
there is no download); the image is a bundled scikit-image photo resized to the requested size.

``inference.banded.banded_forward`` (what validation uses for these blocks on a CPU, and apply, LR
regeneration and final scoring where the whole image does not fit: ``benchmarks/multiblock_speed.py``)
computes the attention's global means exactly, band by band, and is compared the same way.

Tiled output is not the whole-image output: the channel attention's global average pool sees a tile,
not the image, so the attention weights (and everything after them) differ slightly. The difference is
reported as it is measured (max and mean absolute, and PSNR between the two outputs).

``--float64`` also runs the whole image in float64 (untimed) and reports how far each fp32 path lies from
it: which of two fp32 outputs that differ by rounding alone is nearer the exact result.
"""
from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from common import PeakRSS, finish, heartbeat, matmul_gflops, parser, release_memory, rounded, start  # repo on sys.path
from torch import nn

from data.io import to_float
from data.resize import imresize
from inference.banded import banded_forward
from inference.tiling import default_overlap, tiled_forward, window_spans
from models.rcan import Block, MultiBlockNet, orthogonal_init_


def photo(width: int, height: int) -> torch.Tensor:
    from skimage import data as skdata

    photo = to_float(skdata.astronaut())
    return torch.from_numpy(imresize(photo, output_shape=(height, width)).clip(0, 1).transpose(2, 0, 1).copy())[None]


def parse_args() -> tuple[argparse.Namespace, list[str]]:
    """The arguments, and the paths to run: banded/tiled as asked, whole always and last (the reference)."""
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--size", default=None, help="image WxH (default 1024x768; --quick: 192x128)")
    p.add_argument("--tile", type=int, default=None, help="tile side in pixels (default 256; --quick: 48)")
    p.add_argument("--paths", default="banded,tiled,whole",
                   help="comma-separated subset of banded,tiled,whole to run (whole is always run: the reference)")
    p.add_argument("--float64", action="store_true", help="also compare every path with a float64 whole-image run")
    args = p.parse_args()
    requested = set(args.paths.split(",")) | {"whole"}
    unknown = requested - {"banded", "tiled", "whole"}
    if unknown:
        p.error(f"--paths: unknown {', '.join(sorted(unknown))} (choose from banded, tiled, whole)")
    return args, [name for name in ("banded", "tiled", "whole") if name in requested]


BANDED_TIME_RATIO = 1.2  # the banded pass's time over the whole image's, for the ETA only (measured 1.0-1.4x)


def expected_seconds(net: nn.Module, x: torch.Tensor, tile: int, window: int) -> dict[str, float]:
    """An estimate of each path's seconds, from one timed pass over a crop of at most 256x256 (the blocks' work
    grows with the pixels computed, the tiles' windows included; smaller crops run faster per pixel): the ETA
    of the progress lines."""
    crop = x[..., :256, :256]
    with torch.inference_mode():
        net(crop[..., :32, :32])
        began = time.perf_counter()
        net(crop)
    per_pixel = (time.perf_counter() - began) / crop[0, 0].numel()
    height, width = x.shape[-2:]
    tiled = sum(y1 - y0 for y0, y1 in window_spans(height, window, tile)) * sum(
        x1 - x0 for x0, x1 in window_spans(width, window, tile))
    whole = per_pixel * height * width
    return {"whole": whole, "banded": BANDED_TIME_RATIO * whole, "tiled": per_pixel * tiled}


def time_paths(run: dict[str, Callable[[], torch.Tensor]], paths: list[str], result: dict,
               expected: dict[str, float]) -> dict[str, torch.Tensor]:
    """Each path's output; its seconds and peak memory go into ``result``. Lower peaks first: not hidden by
    the whole-image one. A progress line every few seconds, with an ETA from ``expected``."""
    outputs = {}
    for index, name in enumerate(paths):
        release_memory()
        with PeakRSS() as memory, heartbeat(f"{name} ({index + 1}/{len(paths)})", expected[name]):
            began = time.perf_counter()
            with torch.inference_mode():
                outputs[name] = run[name]()
            seconds = time.perf_counter() - began
        result[name] = {"seconds": seconds, "peak_rss_mb": memory.peak_mb, "extra_rss_mb": memory.extra_mb}
    return outputs


def compare_with_whole(outputs: dict[str, torch.Tensor], paths: list[str], result: dict) -> None:
    for name in paths[:-1]:
        np.testing.assert_equal(outputs[name].shape, outputs["whole"].shape)
        diff = (outputs[name] - outputs["whole"]).abs()
        mse = float((diff**2).mean())
        result[f"{name}_vs_whole"] = {
            "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "psnr_db": 10 * math.log10(1 / mse) if mse > 0 else float("inf"),
            "pixels_above_1_level": float((diff > 1 / 255).float().mean()),
            "time_ratio": result[name]["seconds"] / result["whole"]["seconds"],
            "extra_memory_ratio": result[name]["extra_rss_mb"] / max(result["whole"]["extra_rss_mb"], 1e-9),
        }


def compare_with_float64(net: nn.Module, x: torch.Tensor, outputs: dict[str, torch.Tensor], result: dict) -> None:
    release_memory()
    with torch.inference_mode():
        exact = net.double()(x.double())
    for name, output in outputs.items():
        diff = (output.double() - exact).abs()
        result[f"{name}_vs_float64"] = {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}


def main() -> None:
    args, paths = parse_args()
    result = start(args)
    width, height = (int(v) for v in (args.size or ("192x128" if args.quick else "1024x768")).split("x"))
    tile = args.tile or (48 if args.quick else 256)
    resblocks = 2 if args.quick else 16  # --quick: R = 2, so that the receptive field allows small tiles
    torch.manual_seed(0)
    net = MultiBlockNet([orthogonal_init_(Block(64, resblocks, clamp=True)) for _ in range(3)]).eval()
    x = photo(width, height)
    overlap = default_overlap(net)
    result["setup"] = {"image": f"{width}x{height}", "blocks": 3, "channels": 64, "resblocks": resblocks,
                       "tile": tile, "overlap": overlap, "window": tile + 3 * overlap, "blend": "linear"}
    result["matmul_gflops"] = matmul_gflops(1024 if args.quick else 2048)
    outputs = time_paths({"banded": lambda: banded_forward(net, x), "tiled": lambda: tiled_forward(net, x, tile=tile),
                          "whole": lambda: net(x)}, paths, result,
                         expected_seconds(net, x, tile, result["setup"]["window"]))
    compare_with_whole(outputs, paths, result)
    if args.float64:
        compare_with_float64(net, x, outputs, result)
    result["note"] = ("random orthogonal weights; the tiled/whole difference comes from the channel "
                      "attention's global pool seeing a tile, and depends on the trained weights")
    finish(rounded(result), args)


if __name__ == "__main__":
    main()
