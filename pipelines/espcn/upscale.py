"""``espcn.py upscale``: images and videos through the fast ESPCN path, I/O overlapped with the network.

Imports only what upscaling needs (no matplotlib, no trainer; PyAV only when a video is given), so the
first image is out well within a second of PyTorch's import. Images go through the network whole
(``inference.fast_espcn.upscale_image``, chroma by PyTorch's bicubic) and are written as PNG with zlib
level ``PNG_LEVEL`` (1: about 5x faster to write than Pillow's default 6, files 15-20% larger).
``SELF_ENSEMBLE`` runs images under the x8 self-ensemble (``inference.self_ensemble``, 8x the network's time);
videos are refused with it.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.atomic import atomic_write
from core.errors import UserError
from core.runs import check_outputs, prepare_run_dir
from core.settings import RunContext
from data.io import each_once, is_image_file, read_image
from engine.speed import auto_precision, check_bf16_runs
from inference.fast_espcn import (
    BACKENDS,
    FastESPCN,
    pick_backend,
    upscale_image,
    upscale_rgb_uint8,
    upscale_yuv420,
)
from inference.video import Frame, is_video_file, output_suffix, run_pipeline
from models.espcn import ESPCN
from pipelines.espcn.common import load_espcn, weights_path


def input_media(inputs: list[str]) -> tuple[list[Path], list[Path]]:
    """(image files, video files) named on the command line or found in the named folders."""
    images: list[Path] = []
    videos: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and (is_image_file(p) or is_video_file(p)))
            if not found:
                raise UserError(f"no image or video files in folder {path}")
            images += [p for p in found if is_image_file(p)]
            videos += [p for p in found if is_video_file(p)]
        elif path.is_file():
            (videos if is_video_file(path) else images).append(path)
        else:
            raise UserError(f"input not found: {path}")
    return each_once(images), each_once(videos)


def fast_model(net: ESPCN, settings: dict[str, Any], device: torch.device, video: bool = False) -> FastESPCN:
    """The inference path named by INFERENCE and UPSCALE_PRECISION (inference/fast_espcn.py) for this device;
    ``video``: for video frames, where ``auto`` differs on CPUs with bf16 hardware (``upscale_precision``)."""
    backend = settings["INFERENCE"]
    if backend not in BACKENDS:
        raise UserError(f"INFERENCE={backend!r}: expected one of {', '.join(BACKENDS)}")
    precision = upscale_precision(settings["UPSCALE_PRECISION"], device, backend, video)
    try:
        return FastESPCN(net, backend=backend, precision=precision, device=device)
    except ValueError as err:
        raise UserError(f"INFERENCE={backend}, UPSCALE_PRECISION={settings['UPSCALE_PRECISION']}: {err}") from None


def upscale_precision(name: str, device: torch.device, backend: str, video: bool = False) -> str:
    """UPSCALE_PRECISION -> FastESPCN's precision. ``auto``: bf16 where the CPU computes it in hardware
    (``engine.speed.auto_precision``, as for training) and the strips run: with INFERENCE=strips, and with
    INFERENCE=auto for ``video`` frames (the bf16 strips ran a 4:2:0 frame 1.27-1.31x as fast as ONNX Runtime fp32
    on an AVX512-BF16 EPYC, docs/benchmarks.md) or where onnxruntime is missing; photos stay on ONNX Runtime
    fp32 (the bf16 strips ran an RGB photo 0.79-1.01x as fast: its colour work is in ONNX Runtime's frame
    graph). Else fp32 (fp16 on CUDA only when asked); bf16 asked for where it cannot run is refused in one
    line. Either reduced precision is checked against fp32 on the first input and dropped when the two
    disagree (``inference.fast_espcn.reduced_agrees``)."""
    name = str(name).lower()
    if name == "bf16":
        check_bf16_runs("UPSCALE_PRECISION", device)
    if name != "auto":
        return name
    wanted = "bf16" if video else "fp32"  # video asks the strips for bf16; photos go where fp32 runs fastest
    strips = backend == "strips" or (backend == "auto" and pick_backend(device, wanted) == "strips")
    return "bf16" if strips and auto_precision(device) == "bf16" else "fp32"


def describe(model: FastESPCN, settings: dict[str, Any], what: str) -> str:
    """The line ``upscale`` prints for the path it runs ``what`` (images, videos) on."""
    fallback = f"; not ort: {model.fallback}" if model.fallback else ""
    return (f"ESPCN x{model.scale} ({'Y' if model.channels == 1 else 'RGB'}) on {model.device}, {what}: "
            f"{model.backend}, {model.precision} (UPSCALE_PRECISION={settings['UPSCALE_PRECISION']}{fallback})"
            f"{', x8 self-ensemble (SELF_ENSEMBLE=true)' if settings['SELF_ENSEMBLE'] else ''}")


def upscale(ctx: RunContext) -> None:
    """Upscale images (each whole, chroma by PyTorch's bicubic) and videos (frame by frame, streamed),
    overlapping reading and writing with the network; prints frames per second."""
    net = load_espcn(weights_path(ctx), ctx.device, ctx.settings)
    images, videos = input_media(ctx.args.inputs)
    ensemble = ctx.settings["SELF_ENSEMBLE"]
    if ensemble and videos:
        raise UserError(f"SELF_ENSEMBLE=true is for images, not videos ({videos[0]}): it would take 8x the time "
                        "per frame; upscale the videos without it")
    check_outputs(ctx.out, [(path, output_file(ctx.out, path, net.scale)) for path in images + videos],
                  ctx.args.overwrite)
    out = prepare_run_dir(ctx.out)
    for_images = fast_model(net, ctx.settings, ctx.device) if images else None
    for_videos = fast_model(net, ctx.settings, ctx.device, video=True) if videos else None
    for what, model in (("images", for_images), ("videos", for_videos)):
        if model is not None:
            print(describe(model, ctx.settings, what), flush=True)
    if images:
        upscale_images(for_images, images, out, ctx.settings["PNG_LEVEL"], ensemble)
    for path in videos:
        upscale_video(for_videos, path, out, ctx.settings)


def output_file(out: Path, source: Path, scale: int) -> Path:
    """Where ``upscale`` writes an input: ``<out>/<stem>_x<scale>.png``, or the video's container suffix."""
    return out / f"{source.stem}_x{scale}{output_suffix(source) if is_video_file(source) else '.png'}"


def png_bytes(rgb: np.ndarray, level: int) -> bytes:
    """An 8-bit RGB PNG with every row Sub-filtered and zlib ``level``: about 1.7x faster to write than
    Pillow at the same level (which tries five filters per row), files about 5% larger (measured at 1080p)."""
    height, width, _ = rgb.shape
    raw = np.ascontiguousarray(rgb).reshape(height, width * 3)
    rows = np.empty((height, 1 + width * 3), np.uint8)
    rows[:, 0] = 1  # filter type Sub: each byte minus the byte of the pixel to its left, modulo 256
    rows[:, 1:4] = raw[:, :3]
    np.subtract(raw[:, 3:], raw[:, :-3], out=rows[:, 4:])
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = [b"\x89PNG\r\n\x1a\n"]
    for kind, body in ((b"IHDR", header), (b"IDAT", zlib.compress(rows, level)), (b"IEND", b"")):
        chunks.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))
    return b"".join(chunks)


def write_png(path: Path, rgb: np.ndarray, level: int) -> None:
    data = png_bytes(rgb, level)
    atomic_write(path, lambda f: f.write(data))


def upscale_images(model: FastESPCN, files: list[Path], out: Path, png_level: int, ensemble: bool = False) -> None:
    scale = model.scale

    def load(path: Path) -> tuple[Path, np.ndarray]:
        return path, read_image(path)

    def process(item: tuple[Path, np.ndarray]) -> tuple[Path, np.ndarray, np.ndarray]:
        path, image = item
        return path, image, upscale_image(model, image, ensemble)

    def save(item: tuple[Path, np.ndarray, np.ndarray]) -> None:
        path, image, sr = item
        target = output_file(out, path, scale)
        write_png(target, sr, png_level)
        print(f"{path} {image.shape[1]}x{image.shape[0]} -> {target} {sr.shape[1]}x{sr.shape[0]}", flush=True)

    stats = run_pipeline(map(load, files), process, save)
    print(f"{stats.items} image(s) in {stats.seconds:.2f} s: {stats.fps:.2f} images/s "
          f"({stats.compute_fps:.2f} images/s in the network and colour steps)", flush=True)


def upscale_video(model: FastESPCN, path: Path, out: Path, settings: dict[str, Any]) -> None:
    """One video, streamed: Y through the network and chroma by bicubic (Y model), or RGB through it."""
    from tqdm import tqdm

    from inference.video import VideoWriter, probe, read_video

    info = probe(path)
    scale = model.scale
    target = output_file(out, path, scale)
    writer = VideoWriter(target, info.width * scale, info.height * scale, info.rate,
                         codec=settings["VIDEO_CODEC"], crf=settings["VIDEO_CRF"], preset=settings["VIDEO_PRESET"])

    def process(frame: Frame) -> Frame:
        planes = (upscale_yuv420(model, *frame.planes) if model.channels == 1
                  else (upscale_rgb_uint8(model, frame.planes[0]),))
        return Frame(planes, frame.pts, frame.time_base, frame.index)

    kind = "yuv420p" if model.channels == 1 else "rgb24"
    try:
        with tqdm(total=info.frames, unit="frame", desc=path.name, disable=None, dynamic_ncols=True,
                  leave=False) as bar:
            stats = run_pipeline(read_video(path, kind), process, writer.write, on_item=bar.update)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    print(f"{path} {info.width}x{info.height} -> {target} {writer.width}x{writer.height} ({writer.codec}), "
          f"{stats.items} frames at {float(info.rate):.3f} fps in {stats.seconds:.2f} s: {stats.fps:.2f} frames/s "
          f"({stats.compute_fps:.2f} frames/s in the network and colour steps)", flush=True)
