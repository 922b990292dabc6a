"""Video upscaling end to end on short clips the tests write with PyAV, and the streaming pipeline."""
from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from core.checkpoint import save_checkpoint
from core.errors import UserError
from inference.fast_espcn import FastESPCN
from inference.video import Frame, VideoWriter, output_suffix, probe, read_video, run_pipeline
from models.espcn import ESPCN
from pipelines.espcn.upscale import upscale_video
from tests.scripts.helpers import load_script

RATE = Fraction(30000, 1001)
SETTINGS = {"VIDEO_CODEC": "auto", "VIDEO_CRF": 12, "VIDEO_PRESET": "veryfast"}


def pattern_frame(i: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Smooth colour gradients with a bright square moving one pixel per frame (easy on the codec)."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([60 + 2 * xx, 50 + 2 * yy, np.full_like(xx, 120 + 5 * i)], axis=2)
    rgb[12:24, 8 + i : 20 + i] = 230
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_clip(path: Path, frames: int = 6, codec: str = "mpeg4", height: int = 48, width: int = 64) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=RATE)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.qscale = True
        stream.codec_context.global_quality = 118  # quantiser 1: near lossless
        for i in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pattern_frame(i, height, width), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def nearest_espcn(scale: int, channels: int) -> ESPCN:
    """An ESPCN that computes nearest-neighbour upscaling (to ~1e-4): tanh(a x) ~ a x for small a."""
    net = ESPCN(scale, channels)
    a = 0.01
    with torch.no_grad():
        for conv in (net.conv1, net.conv2, net.conv3):
            conv.weight.zero_()
            conv.bias.zero_()
        k1, k2 = net.conv1.kernel_size[0] // 2, net.conv2.kernel_size[0] // 2
        for c in range(channels):
            net.conv1.weight[c, c, k1, k1] = a
            net.conv2.weight[c, c, k2, k2] = a
            net.conv3.weight[c * scale * scale : (c + 1) * scale * scale, c, 1, 1] = 1 / (a * a)
    return net.eval()


def decoded_rgb(path: Path) -> list[np.ndarray]:
    return [frame.planes[0] for frame in read_video(path, "rgb24")]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    write_clip(path)
    return path


@pytest.mark.parametrize("channels", [1, 3])
def test_upscaled_video_keeps_frames_rate_and_picture(clip: Path, tmp_path: Path, capsys, channels: int):
    model = FastESPCN(nearest_espcn(3, channels))
    upscale_video(model, clip, tmp_path, SETTINGS)
    out = tmp_path / "clip_x3.avi"
    info = probe(out)
    assert (info.width, info.height, info.rate) == (192, 144, RATE)
    frames = decoded_rgb(out)
    assert len(frames) == 6
    for source, upscaled in zip(decoded_rgb(clip), frames, strict=True):
        nearest = source.repeat(3, axis=0).repeat(3, axis=1).astype(int)
        assert np.abs(upscaled.astype(int) - nearest).mean() < 2  # same picture, colours kept
    printed = capsys.readouterr().out
    assert "6 frames at 29.970 fps" in printed and "frames/s" in printed


def test_h264_mp4_round_trip_if_available(tmp_path: Path):
    try:
        av.Codec("libx264", "w")
    except Exception:
        pytest.skip("PyAV has no libx264 encoder")
    src = tmp_path / "in.mkv"
    write_clip(src, frames=4, codec="mpeg4")
    upscale_video(FastESPCN(nearest_espcn(2, 1)), src, tmp_path, SETTINGS)
    info = probe(tmp_path / "in_x2.mkv")
    assert (info.width, info.height, info.rate, info.codec) == (128, 96, RATE, "h264")
    assert sum(1 for _ in read_video(tmp_path / "in_x2.mkv")) == 4


def test_odd_sizes_lose_one_row_or_column_for_420(tmp_path: Path):
    src = tmp_path / "odd.avi"
    write_clip(src, frames=2, height=10, width=14)
    writer_path = tmp_path / "odd_out.avi"
    writer = VideoWriter(writer_path, 21, 15, RATE, codec="mpeg4")
    for frame in read_video(src):
        y, u, v = frame.planes
        writer.write(Frame((np.resize(y, (15, 21)), np.resize(u, (8, 11)), np.resize(v, (8, 11))), frame.pts,
                           frame.time_base, frame.index))
    writer.close()
    assert (probe(writer_path).width, probe(writer_path).height) == (20, 14)


def test_failed_run_leaves_no_output_file(clip: Path, tmp_path: Path, monkeypatch):
    def failing(*_args):
        raise RuntimeError("network failed")

    monkeypatch.setattr("pipelines.espcn.upscale.upscale_yuv420", failing)
    with pytest.raises(RuntimeError, match="network failed"):
        upscale_video(FastESPCN(nearest_espcn(3, 1)), clip, tmp_path, SETTINGS)
    assert list(tmp_path.iterdir()) == []


def test_unknown_codec_is_refused_before_anything_is_written(tmp_path: Path):
    with pytest.raises(UserError, match="no encoder"):
        VideoWriter(tmp_path / "out.mp4", 64, 48, RATE, codec="no-such-codec")
    assert list(tmp_path.iterdir()) == []


def test_not_a_video_is_one_clear_error(tmp_path: Path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(UserError, match="cannot open video"):
        probe(bad)
    with pytest.raises(UserError, match="not found"):
        probe(tmp_path / "missing.mp4")
    assert output_suffix("a.MKV") == ".mkv" and output_suffix("a.gif") == ".mp4"


def test_espcn_script_upscales_a_folder_with_an_image_and_a_video(clip: Path, tmp_path: Path, capsys):
    weights = tmp_path / "nearest.pt"
    save_checkpoint(weights, {"model": nearest_espcn(3, 1).state_dict(), "step": 0,
                              "meta": {"arch": "espcn", "scale": 3, "channels": 1, "features": [64, 32]}})
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "clip.avi").write_bytes(clip.read_bytes())
    av.VideoFrame.from_ndarray(pattern_frame(0), format="rgb24").to_image().save(folder / "still.png")
    load_script("espcn.py").main(["upscale", "--weights", str(weights), str(folder), "--out", str(tmp_path / "out"),
                                  "--device", "cpu"])
    assert probe(tmp_path / "out" / "clip_x3.avi").width == 192
    assert (tmp_path / "out" / "still_x3.png").is_file()
    printed = capsys.readouterr().out
    assert "images/s" in printed and "frames/s" in printed


# ---------------------------------------------------------------------------------- pipeline
def test_pipeline_keeps_order_and_bounds_items_in_flight():
    live = 0
    peak = 0
    lock = threading.Lock()
    seen: list[int] = []

    def items():
        nonlocal live, peak
        for i in range(200):
            with lock:
                live += 1
                peak = max(peak, live)
            yield i

    def sink(value: int) -> None:
        nonlocal live
        seen.append(value)
        with lock:
            live -= 1

    stats = run_pipeline(items(), lambda i: i * 2, sink, depth=2)
    assert seen == [2 * i for i in range(200)] and stats.items == 200
    assert peak <= 2 * 2 + 3


@pytest.mark.parametrize("stage", ["read", "process", "write"])
def test_pipeline_errors_reach_the_caller_and_stop_every_thread(stage: str):
    closed = threading.Event()

    def items():
        try:
            for i in range(10_000):
                if stage == "read" and i == 5:
                    raise KeyError("bad frame")
                yield i
        finally:
            closed.set()

    def process(i: int) -> int:
        if stage == "process" and i == 5:
            raise KeyError("bad frame")
        return i

    def sink(i: int) -> None:
        if stage == "write" and i == 5:
            raise KeyError("bad frame")

    before = threading.active_count()
    with pytest.raises(KeyError, match="bad frame"):
        run_pipeline(items(), process, sink, depth=2)
    assert closed.wait(5)
    assert threading.active_count() == before
