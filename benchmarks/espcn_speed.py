"""ESPCN 1080p x3 frames/s: this project's path (inference/fast_espcn.py) against plain eager PyTorch.

    python benchmarks/espcn_speed.py [--quick] [--threads N] [--compile] [--video] [--preset P[,P...]] [--data DIR]

Both run the same weights (the shipped x3 Y weights; random ones for the RGB model) on the same 640x360
frames (-> 1920x1080) in one process, interleaved:
- ``reference``: the ESPCN written out below as anyone would (NCHW, fp32, ``torch.no_grad``);
- ``fast``: ``FastESPCN(net)`` with backend ``auto`` (on CPU the strip-wise oneDNN path), fp32;
- ``fast_bf16``: the same in bf16 (``precision='bf16'``), where the CPU computes bf16 in hardware;
- with ``--compile`` also ``torch.compile`` of the channels-last network (compile time reported).
For a luminance (Y) model and an RGB model. Also: the fp32 and bf16 matmul GFLOP/s (2048^3, timed in the
same interleaved rounds, plus fp32 once before and once after everything), the convolution GFLOP/s each
path achieves (multiply-adds x 2 of the three convolutions, pixel shuffle and bias not counted) and its
share of the matmul rate of its precision, the largest difference from the reference and the agreement
in dB; the whole 4:2:0 frame step of ``espcn.py upscale`` (uint8 Y, U, V in; Y through the network,
chroma bicubic; uint8 out) in both precisions; the shipped weights' Set5/Set14 PSNR in both precisions
where the sets are found (``--data``, ``$SR_DATA``, ``../shared/datasets``), on float images and on video's
8-bit luma path; with ``--video`` a synthetic clip end to end (decode, compute, encode with the pipeline
threads) at each libx264 preset of ``--preset``.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import REPO, finish, interleaved, matmul_gflops, parser, rounded, start  # puts the repo on sys.path
from torch import nn

from engine.speed import bf16_is_fast
from inference.fast_espcn import FastESPCN, upscale_yuv420
from models.espcn import ESPCN
from pipelines.espcn.common import DEFAULT_WEIGHTS, load_espcn

SHIPPED_Y = DEFAULT_WEIGHTS.parent / "espcn_x3_y.pt"
BF16_PSNR_TOLERANCE = 0.05  # dB: the most bf16 may move the shipped weights' Set5/Set14 PSNR (issue 24)
FRAME_FPS_TARGET = 30.0  # the whole 4:2:0 1080p frame, real time


class PlainESPCN(nn.Module):
    """The reference: ESPCN as written in the paper, eager PyTorch, NCHW."""

    def __init__(self, scale: int, channels: int) -> None:
        super().__init__()
        self.scale = scale
        self.conv1 = nn.Conv2d(channels, 64, 5, padding=2)
        self.conv2 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, channels * scale * scale, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.conv1(x))
        x = torch.tanh(self.conv2(x))
        return F.pixel_shuffle(self.conv3(x), self.scale)


def conv_flops(height: int, width: int, scale: int, channels: int) -> float:
    macs = 25 * channels * 64 + 9 * 64 * 32 + 9 * 32 * channels * scale * scale
    return 2.0 * macs * height * width


def bench_model(net: ESPCN, height: int, width: int, repeats: int, use_compile: bool, bf16: bool) -> dict:
    scale, channels = net.scale, net.channels
    reference = PlainESPCN(scale, channels).eval()
    reference.load_state_dict(net.state_dict())
    frame = torch.rand(1, channels, height, width)
    paths = {"fast": FastESPCN(net)}
    if bf16:
        paths["fast_bf16"] = FastESPCN(net, precision="bf16")
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    a16, b16 = a.bfloat16(), b.bfloat16()
    # the matmul peaks are timed in the same rounds, so a change in the machine's load hits them alike
    candidates = {"reference": lambda: _no_grad(reference, frame), "matmul": lambda: torch.mm(a, b),
                  **{name: (lambda m=m: m(frame)) for name, m in paths.items()}}
    if bf16:
        candidates["matmul_bf16"] = lambda: torch.mm(a16, b16)
    result: dict = {"backend": paths["fast"].backend, "weights": getattr(net, "source", "random")}
    if use_compile:
        paths["compile"] = FastESPCN(net, backend="compile")
        began = time.perf_counter()
        paths["compile"](frame)
        result["compile_seconds"] = time.perf_counter() - began
        candidates["compile"] = lambda: paths["compile"](frame)
    times = interleaved(candidates, repeats)
    peak = {"fp32": 2.0 * n**3 / times.pop("matmul")["median_s"] / 1e9}
    if bf16:
        peak["bf16"] = 2.0 * n**3 / times.pop("matmul_bf16")["median_s"] / 1e9
    result["matmul_gflops_same_rounds"] = peak
    ref_out = _no_grad(reference, frame)
    flops = conv_flops(height, width, scale, channels)
    for name, t in times.items():
        rate = flops / t["median_s"] / 1e9
        precision = "bf16" if name == "fast_bf16" else "fp32"
        result[name] = {"frames_per_s": 1 / t["median_s"], "ms_per_frame": 1e3 * t["median_s"],
                        "ms_best": 1e3 * t["min_s"], "cpu_ms_per_frame": 1e3 * t["cpu_median_s"],
                        "conv_gflops": rate, f"share_of_{precision}_matmul": rate / peak[precision]}
        if name != "reference":
            out = paths[name](frame)
            mse = torch.mean((out - ref_out) ** 2).item()
            result[name]["max_abs_diff_vs_reference"] = (out - ref_out).abs().max().item()
            result[name]["agreement_db"] = 10 * math.log10(1 / mse) if mse > 0 else float("inf")
            result[name]["speedup_vs_reference"] = times["reference"]["median_s"] / t["median_s"]
    if bf16:
        result["fast_bf16"]["speedup_vs_fast_fp32"] = times["fast"]["median_s"] / times["fast_bf16"]["median_s"]
    result["gflop_per_frame"] = flops / 1e9
    return result


def _no_grad(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def bench_yuv_frame(net: ESPCN, height: int, width: int, repeats: int, bf16: bool) -> dict:
    """``espcn.py upscale``'s per-frame work for a Y model on 4:2:0 planes (no decode/encode), per precision."""
    rng = np.random.default_rng(0)
    y = rng.integers(16, 236, (height, width), dtype=np.uint8)
    u = rng.integers(16, 241, (height // 2, width // 2), dtype=np.uint8)
    v = rng.integers(16, 241, (height // 2, width // 2), dtype=np.uint8)
    models = {"fp32": FastESPCN(net), **({"bf16": FastESPCN(net, precision="bf16")} if bf16 else {})}
    times = interleaved({name: (lambda m=m: upscale_yuv420(m, y, u, v)) for name, m in models.items()}, repeats)
    return {name: {"frames_per_s": 1 / t["median_s"], "ms_per_frame": 1e3 * t["median_s"]}
            for name, t in times.items()}


def find_sets(data: Path | None) -> Path | None:
    for root in (data, os.environ.get("SR_DATA"), REPO.parent / "shared" / "datasets"):
        if root and all((Path(root) / name).is_dir() for name in ("Set5", "Set14")):
            return Path(root)
    return None


def bf16_change(net: ESPCN, score: Callable[[FastESPCN], float]) -> dict:
    """``score`` (a PSNR) of ``net`` in fp32 and in bf16, and the difference."""
    fp32, bf16 = (score(FastESPCN(net, precision=p)) for p in ("fp32", "bf16"))
    return {"fp32": fp32, "bf16": bf16, "bf16_minus_fp32": bf16 - fp32}


def bench_bf16_psnr(root: Path) -> dict:
    """The shipped Y weights' Set5/Set14 PSNR (Y, shave = scale) in fp32 and in bf16, per scale, on both of
    the bf16 paths: float images (``eval``'s protocol; the input split hi + lo) and ``8bit_luma``, video's
    (``upscale_uint8``: each LR image's Y rounded to 8 bits in, the output rounded to 8 bits)."""
    from data.datasets import load_named_set
    from inference.scoring import score_8bit_luma, score_scaled_set

    sets = {name: load_named_set(root, name) for name in ("Set5", "Set14")}
    result: dict = {}
    for path in sorted(DEFAULT_WEIGHTS.parent.glob("espcn_x*_y*.pt")):
        net = load_espcn(path, torch.device("cpu"))
        row = {}
        for name, images in sets.items():
            row[name] = bf16_change(net, lambda m, images=images: score_scaled_set(
                m, images, scale=m.scale, channels=1, device=torch.device("cpu"))["model"]["psnr_y"])
            row[f"{name}_8bit_luma"] = bf16_change(net, lambda m, images=images: score_8bit_luma(
                m, images, scale=m.scale))
        result[path.stem] = row
    worst = max(abs(s["bf16_minus_fp32"]) for row in result.values() for s in row.values())
    result["worst_abs_change_db"] = worst
    result["ok"] = worst <= BF16_PSNR_TOLERANCE
    return result


def bench_video(net: ESPCN, height: int, width: int, frames: int, precision: str, preset: str) -> dict:
    """Decode -> network -> encode of a clip (a bundled photo panning), with the reader and writer threads."""
    import av
    from PIL import Image

    from data.datasets import bundled_photos
    from pipelines.espcn.upscale import upscale_video

    photo = np.asarray(Image.fromarray(bundled_photos("test")[0][1]).resize((width, height), Image.BICUBIC))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "clip.mp4"
        with av.open(str(src), "w") as container:
            stream = container.add_stream("libx264", rate=Fraction(25))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for i in range(frames):
                frame = av.VideoFrame.from_ndarray(np.roll(photo, 4 * i, axis=1), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        fast = FastESPCN(net, precision=precision)
        began = time.perf_counter()
        upscale_video(fast, src, Path(tmp) / "out", {"VIDEO_CODEC": "libx264", "VIDEO_CRF": 18, "VIDEO_PRESET": preset})
        seconds = time.perf_counter() - began
    return {"frames": frames, "seconds": seconds, "frames_per_s": frames / seconds, "precision": precision,
            "encoder": f"libx264 CRF 18 preset {preset}"}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    p.add_argument("--video", action="store_true", help="also time a clip end to end")
    p.add_argument("--preset", default="veryfast",
                   help="libx264 preset(s) of --video, comma-separated (default: veryfast)")
    p.add_argument("--data", type=Path, default=None, help="folder holding Set5/ and Set14/ (bf16 PSNR check)")
    args = p.parse_args()
    result = start(args)
    height, width, scale = (360, 640, 3)
    repeats = 3 if args.quick else 9
    if args.quick:
        height, width = 180, 320
    bf16 = bf16_is_fast(torch.device("cpu")) and FastESPCN(ESPCN(scale, 1)).backend == "strips"
    result["bf16_hardware"] = bf16
    result["input"] = f"{width}x{height} -> {width * scale}x{height * scale} (x{scale})"
    result["matmul_gflops_before"] = matmul_gflops(1024 if args.quick else 2048)
    shipped = load_espcn(SHIPPED_Y, torch.device("cpu"))
    shipped.source = SHIPPED_Y.name
    torch.manual_seed(3)
    result["y"] = bench_model(shipped, height, width, repeats, args.compile, bf16)
    result["rgb"] = bench_model(ESPCN(scale, 3).eval(), height, width, max(3, repeats // 3), args.compile, bf16)
    result["yuv420_frame_y_model"] = bench_yuv_frame(shipped, height, width, repeats, bf16)
    sets = find_sets(args.data)
    if bf16 and sets is not None:
        result["bf16_set5_set14_psnr_y"] = bench_bf16_psnr(sets)
    if args.video:
        frames, precision = 8 if args.quick else 48, "bf16" if bf16 else "fp32"
        result["video_end_to_end"] = [bench_video(shipped, height, width, frames, precision, preset)
                                      for preset in (p.strip() for p in args.preset.split(",")) if preset]
    result["matmul_gflops_after"] = matmul_gflops(1024 if args.quick else 2048)
    y, frame = result["y"], result["yuv420_frame_y_model"]
    best = frame["bf16" if bf16 else "fp32"]["frames_per_s"]
    targets = {
        "y_speedup_vs_plain_eager": y["fast"]["speedup_vs_reference"], "y_speedup_target": 2.0,
        "y_max_abs_diff": y["fast"]["max_abs_diff_vs_reference"], "max_abs_diff_target": 1e-4,
        "whole_frame_fps": best, "whole_frame_fps_target": FRAME_FPS_TARGET,
        "whole_frame_fps_ok": None if args.quick else best >= FRAME_FPS_TARGET,  # the target is 1080p's
    }
    if "bf16_set5_set14_psnr_y" in result:
        targets["bf16_psnr_ok"] = result["bf16_set5_set14_psnr_y"]["ok"]
    result["targets"] = targets
    finish(rounded(result), args)


if __name__ == "__main__":
    main()
