"""ESPCN 640x360 -> 1080p (x3, shipped Y weights): every inference backend that can serve on this machine, in
one run, network alone and whole frame, against ONNX Runtime and plain eager PyTorch.

    python benchmarks/espcn_speed.py [--quick] [--threads N] [--video] [--preset P[,P...]] [--data DIR]

Candidates (the same weights, the same frames, interleaved A B C ..., medians):
- ``eager``: the ESPCN written out below as anyone would (NCHW fp32 under ``torch.no_grad``);
- ``ort``: ONNX Runtime's CPU provider on this project's ONNX graph of the weights (``FastESPCN`` backend
  ``ort``, the graph of ``espcn.py export --format onnx``), what a user could pick instead of this project;
- ``strips``: the strip-wise oneDNN path in fp32; ``strips_bf16`` where the CPU computes bf16 in hardware.
"Network": the Y network on a float frame. "Whole frame": what ``pipelines.espcn.api.upscale`` and
``espcn.py upscale`` do to an 8-bit RGB photo (``upscale_image``: Y, the network, chroma by bicubic, RGB,
8 bits; on ``ort`` the one frame graph), and what video does to a 4:2:0 frame (``upscale_yuv420``).
Printed: the backend and precision ``auto`` picks here (for photos; for video), each candidate's median and
its ratio to ``ort`` and to ``eager`` from the same rounds, the largest difference from eager, and the share
of the whole frame spent outside the network. Where the sets are found (``--data``, ``$SR_DATA``,
``../shared/datasets``) and bf16 runs here, the shipped weights' Set5/Set14 PSNR in bf16 against fp32;
``--video``: a synthetic clip decoded, upscaled and encoded by ``espcn.py upscale``'s video path at each
libx264 preset of ``--preset``, on the path ``auto`` picks for video and, where that is not ONNX Runtime, on
ONNX Runtime fp32 too.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import REPO, finish, interleaved, matmul_gflops, parser, progress, rounded, say, start  # repo on sys.path
from torch import nn

from core.hardware import cpu_bf16, cpu_description
from inference.fast_espcn import FastESPCN, has_fused_conv, ort_missing, upscale_image, upscale_yuv420
from models.espcn import ESPCN
from pipelines.espcn.common import DEFAULT_WEIGHTS, load_espcn
from pipelines.espcn.upscale import fast_model

SHIPPED_Y = DEFAULT_WEIGHTS.parent / "espcn_x3_y.pt"
BF16_PSNR_TOLERANCE = 0.05  # dB: the most bf16 may move the shipped weights' Set5/Set14 PSNR (issue 24)
COLOUR_SHARE_TARGET = 0.2  # the whole frame's colour, chroma and rounding: at most a fifth of the network (issue 32)


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


def backends(net: ESPCN) -> dict[str, FastESPCN]:
    """Every backend that can serve here ('eager' is the plain network through FastESPCN's frame code)."""
    models = {"eager": FastESPCN(net, "eager")}
    if not ort_missing():
        models["ort"] = FastESPCN(net, "ort")
    if has_fused_conv():
        models["strips"] = FastESPCN(net, "strips")
        if cpu_bf16().fast:
            models["strips_bf16"] = FastESPCN(net, "strips", precision="bf16")
    return models


def ratios(times: dict[str, dict]) -> dict[str, dict]:
    ort = times.get("ort", {}).get("median_s")
    eager = times["eager"]["median_s"]
    return {name: {"ms": 1e3 * t["median_s"], "ms_best": 1e3 * t["min_s"], "cpu_ms": 1e3 * t["cpu_median_s"],
                   "frames_per_s": 1 / t["median_s"], "speedup_vs_ort": ort / t["median_s"] if ort else None,
                   "speedup_vs_eager": eager / t["median_s"]} for name, t in times.items()}


def bench_network(models: dict[str, FastESPCN], reference: nn.Module, frame: torch.Tensor, repeats: int) -> dict:
    candidates: dict[str, Callable[[], object]] = {"eager": lambda: _no_grad(reference, frame)}
    candidates.update({name: (lambda m=m: m(frame)) for name, m in models.items() if name != "eager"})
    result = ratios(interleaved(candidates, repeats, label="network alone"))
    expected = _no_grad(reference, frame)
    for name, model in models.items():
        if name != "eager":
            result[name]["max_abs_diff_vs_eager"] = (model(frame) - expected).abs().max().item()
    return result


def bench_rgb_frame(models: dict[str, FastESPCN], rgb: np.ndarray, repeats: int) -> dict:
    """``upscale_image`` on an 8-bit RGB photo: the API's and ``espcn.py upscale``'s per-image work."""
    times = interleaved({name: (lambda m=m: upscale_image(m, rgb)) for name, m in models.items()}, repeats,
                        label="whole RGB frame")
    result = ratios(times)
    reference = upscale_image(models["eager"], rgb).astype(int)
    for name, model in models.items():
        result[name]["max_8bit_steps_vs_eager"] = int(np.abs(upscale_image(model, rgb).astype(int) - reference).max())
    return result


def yuv420_planes(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random 8-bit 4:2:0 frame (Y, U, V planes) in the studio range, the same on every call."""
    rng = np.random.default_rng(0)
    y = rng.integers(16, 236, (height, width), dtype=np.uint8)
    u, v = (rng.integers(16, 241, (height // 2, width // 2), dtype=np.uint8) for _ in range(2))
    return y, u, v


def bench_yuv_frame(models: dict[str, FastESPCN], height: int, width: int, repeats: int) -> dict:
    """Video's per-frame work for a Y model on 4:2:0 planes (no decode or encode)."""
    y, u, v = yuv420_planes(height, width)
    return ratios(interleaved({name: (lambda m=m: upscale_yuv420(m, y, u, v)) for name, m in models.items()},
                              repeats, label="whole 4:2:0 frame"))


def bench_outside(model: FastESPCN, frame: torch.Tensor, rgb: np.ndarray, repeats: int) -> dict:
    """The share of each whole frame spent outside the network, (frame - network alone) / network alone, from
    the picked backend's three in the same interleaved rounds: medians from different groups of rounds would
    carry the machine's drift between them (23% against 4% in two runs minutes apart on a noisy CPU)."""
    height, width = frame.shape[-2:]
    y, u, v = yuv420_planes(height, width)
    times = interleaved({"network": lambda: model(frame), "whole_rgb_frame": lambda: upscale_image(model, rgb),
                         "whole_yuv420_frame": lambda: upscale_yuv420(model, y, u, v)}, repeats,
                        label="outside the network")
    ms = {name: 1e3 * t["median_s"] for name, t in times.items()}
    return {"ms": ms, "share": {kind: (ms[kind] - ms["network"]) / ms["network"]
                                for kind in ("whole_rgb_frame", "whole_yuv420_frame")}}


def _no_grad(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def photo(height: int, width: int) -> np.ndarray:
    from PIL import Image

    from data.datasets import bundled_photos

    return np.asarray(Image.fromarray(bundled_photos("test")[0][1]).resize((width, height), Image.BICUBIC))


def find_sets(data: Path | None) -> Path | None:
    for root in (data, os.environ.get("SR_DATA"), REPO.parent / "shared" / "datasets"):
        if root and all((Path(root) / name).is_dir() for name in ("Set5", "Set14")):
            return Path(root)
    return None


def bf16_change(net: ESPCN, score: Callable[[FastESPCN], float]) -> dict:
    """``score`` (a PSNR) of ``net`` in fp32 and in bf16, and the difference."""
    fp32, bf16 = (score(FastESPCN(net, "strips", precision=p)) for p in ("fp32", "bf16"))
    return {"fp32": fp32, "bf16": bf16, "bf16_minus_fp32": bf16 - fp32}


def bench_bf16_psnr(root: Path) -> dict:
    """The shipped Y weights' Set5/Set14 PSNR (Y, shave = scale) in fp32 and in bf16, per scale, on both of
    the bf16 paths: float images (``eval``'s protocol) and ``8bit_luma`` (video's ``upscale_uint8``)."""
    from data.datasets import load_named_set
    from inference.scoring import score_8bit_luma, score_scaled_set

    sets = {name: load_named_set(root, name) for name in ("Set5", "Set14")}
    result: dict = {}
    files = sorted(DEFAULT_WEIGHTS.parent.glob("espcn_x*_y*.pt"))
    began = time.perf_counter()
    for index, path in enumerate(files):
        net = load_espcn(path, torch.device("cpu"))
        row = {}
        for name, images in sets.items():
            row[name] = bf16_change(net, lambda m, images=images: score_scaled_set(
                m, images, scale=m.scale, channels=1, device=torch.device("cpu"))["model"]["psnr_y"])
            row[f"{name}_8bit_luma"] = bf16_change(net, lambda m, images=images: score_8bit_luma(
                m, images, scale=m.scale))
        result[path.stem] = row
        progress("bf16 Set5/Set14 PSNR, weights", index + 1, len(files), began)
    worst = max(abs(s["bf16_minus_fp32"]) for row in result.values() for s in row.values())
    return {**result, "worst_abs_change_db": worst, "ok": worst <= BF16_PSNR_TOLERANCE}


def bench_video(model: FastESPCN, height: int, width: int, frames: int, preset: str) -> dict:
    """Decode -> network -> encode of a clip (a bundled photo panning), with the reader and writer threads,
    through ``espcn.py upscale``'s video path on ``model``."""
    import av

    from pipelines.espcn.upscale import upscale_video

    still = photo(height, width)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "clip.mp4"
        with av.open(str(src), "w") as container:
            stream = container.add_stream("libx264", rate=Fraction(25))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for i in range(frames):
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.roll(still, 4 * i, axis=1), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        began = time.perf_counter()
        settings = {"VIDEO_CODEC": "libx264", "VIDEO_CRF": 18, "VIDEO_PRESET": preset}
        with contextlib.redirect_stdout(sys.stderr):  # its summary line: stdout is the JSON result's
            upscale_video(model, src, Path(tmp) / "out", settings)
        seconds = time.perf_counter() - began
    return {"frames": frames, "seconds": seconds, "frames_per_s": frames / seconds,
            "backend": f"{model.backend} {model.precision}", "encoder": f"libx264 CRF 18 preset {preset}"}


AUTO = {"INFERENCE": "auto", "UPSCALE_PRECISION": "auto"}  # espcn.py upscale's defaults


def video_models(net: ESPCN) -> list[FastESPCN]:
    """What ``espcn.py upscale`` runs videos on here (``auto``), then ONNX Runtime fp32 when that differs and
    runs here: the clip is timed on each, one after the other, for their ratio."""
    models = [fast_model(net, AUTO, torch.device("cpu"), video=True)]
    if models[0].backend != "ort" and not ort_missing():
        models.append(FastESPCN(net, "ort"))
    return models


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--video", action="store_true", help="also time a clip end to end")
    p.add_argument("--preset", default="veryfast",
                   help="libx264 preset(s) of --video, comma-separated (default: veryfast)")
    p.add_argument("--data", type=Path, default=None, help="folder holding Set5/ and Set14/ (bf16 PSNR check)")
    args = p.parse_args()
    result = start(args)
    result["cpu"] = cpu_description()
    height, width, scale = (180, 320, 3) if args.quick else (360, 640, 3)
    repeats = 3 if args.quick else 9
    result["input"] = f"{width}x{height} -> {width * scale}x{height * scale} (x{scale}), {SHIPPED_Y.name}"
    result["matmul_gflops_before"] = matmul_gflops(1024 if args.quick else 2048)
    net = load_espcn(SHIPPED_Y, torch.device("cpu"))
    auto = fast_model(net, AUTO, torch.device("cpu"))  # what espcn.py upscale runs photos on here
    fallback = f" (not ort: {auto.fallback})" if auto.fallback else ""
    result["auto_picks"] = f"{auto.backend} {auto.precision}{fallback}"
    clip_models = video_models(net)
    video = clip_models[0]
    result["auto_picks_for_video"] = f"{video.backend} {video.precision}"
    video_picked = "strips_bf16" if video.precision == "bf16" else video.backend
    say(f"{result['cpu']}, {torch.get_num_threads()} threads: auto picks {result['auto_picks']} "
        f"({result['auto_picks_for_video']} for video)")
    models = backends(net)
    result["backends"] = list(models)
    reference = PlainESPCN(scale, 1).eval()
    reference.load_state_dict(net.state_dict())
    torch.manual_seed(3)
    frame, rgb = torch.rand(1, 1, height, width), photo(height, width)
    result["network"] = bench_network(models, reference, frame, repeats)
    result["whole_rgb_frame"] = bench_rgb_frame(models, rgb, repeats)
    result["whole_yuv420_frame"] = bench_yuv_frame(models, height, width, repeats)
    picked = "strips_bf16" if auto.precision == "bf16" else auto.backend
    result["outside_network"] = bench_outside(models[picked], frame, rgb, 2 * repeats)
    outside = result["outside_network"]["share"]
    sets = find_sets(args.data)
    if "strips_bf16" in models and sets is not None:
        result["bf16_set5_set14_psnr_y"] = bench_bf16_psnr(sets)
    if args.video:
        frames = 8 if args.quick else 48
        presets = [p.strip() for p in args.preset.split(",") if p.strip()]
        began = time.perf_counter()
        result["video_end_to_end"] = []
        for index, preset in enumerate(presets):
            result["video_end_to_end"] += [bench_video(model, height, width, frames, preset) for model in clip_models]
            progress("video clips", index + 1, len(presets), began)
    result["matmul_gflops_after"] = matmul_gflops(1024 if args.quick else 2048)
    targets = {
        "auto": picked,
        "auto_network_vs_ort": result["network"][picked]["speedup_vs_ort"],
        "auto_rgb_frame_vs_ort": result["whole_rgb_frame"][picked]["speedup_vs_ort"],
        "auto_video_frame_vs_ort": result["whole_yuv420_frame"][video_picked]["speedup_vs_ort"],
        "auto_at_least_ort_ok": None if "ort" not in models else min(
            result["network"][picked]["speedup_vs_ort"], result["whole_rgb_frame"][picked]["speedup_vs_ort"],
            result["whole_yuv420_frame"][video_picked]["speedup_vs_ort"]) >= 1.0,
        "auto_network_vs_eager": result["network"][picked]["speedup_vs_eager"],
        "outside_network_share": outside, "outside_network_share_target": COLOUR_SHARE_TARGET,
        "outside_network_share_ok": max(outside.values()) <= COLOUR_SHARE_TARGET,
    }
    if "bf16_set5_set14_psnr_y" in result:
        targets["bf16_psnr_ok"] = result["bf16_set5_set14_psnr_y"]["ok"]
    result["targets"] = targets
    finish(rounded(result), args)


if __name__ == "__main__":
    main()
