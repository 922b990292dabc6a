"""Streaming video and image-sequence I/O (PyAV), and a three-stage pipeline that overlaps it with compute.

``read_video`` decodes one frame at a time (as 8-bit YUV 4:2:0 planes or as RGB), ``VideoWriter`` encodes
one frame at a time, and ``run_pipeline`` runs ``decode -> compute -> encode`` with the decoding in a
reader thread and the encoding in a writer thread, joined by bounded queues: memory stays flat whatever
the length of the video, and decoding/encoding (which release the GIL inside FFmpeg) overlap with the
network. Any container and codec FFmpeg (as bundled with PyAV) can read works as input.

Output: 8-bit YUV 4:2:0 (what nearly every player expects) at the input's average frame rate, each frame
at its input timestamp (snapped to that rate for variable-rate input), written to a temporary file that
is renamed into place when complete (a failed or interrupted run leaves no half-written video). Audio
and subtitle streams are not copied. H.264 (``libx264``, CRF 18 and preset ``veryfast`` by default) is
used when PyAV has it, else MPEG-4 part 2 at a fixed high quality; ``.webm`` gets VP9. 4:2:0 needs even
sizes: an odd output width or height loses its last column or row.
"""
from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".m2ts", ".flv",
                  ".wmv", ".ogv", ".3gp", ".y4m", ".gif")
_KEEP_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")  # containers written as they came
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
_MPEG4_QSCALE = 2  # MPEG-4 part 2 fallback: fixed quantiser 2 (1 = best, 31 = worst); ours
_QUEUE_POLL = 0.1  # seconds between checks for a failed partner thread while a queue is full or empty


def _av() -> Any:
    """PyAV, imported on first use: training, scoring and image upscaling work without it."""
    try:
        import av
    except ImportError:
        raise UserError("reading or writing video needs PyAV: pip install av (see requirements.txt)") from None
    return av


def is_video_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def output_suffix(path: str | os.PathLike) -> str:
    """The input's container when it is a common one that takes H.264/VP9, else ``.mp4``."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in _KEEP_SUFFIXES else ".mp4"


@dataclass
class VideoInfo:
    width: int
    height: int
    rate: Fraction  # average frame rate, frames per second
    frames: int | None  # as recorded by the container, or estimated from the duration; None if unknown
    codec: str
    pix_fmt: str


@dataclass
class Frame:
    """One decoded frame: 8-bit ``planes`` (Y, U, V of 4:2:0, each HxW ``uint8``) or one HxWx3 RGB array,
    with its presentation timestamp ``pts`` in units of ``time_base`` (None when the input has none)."""

    planes: tuple[np.ndarray, ...]
    pts: int | None
    time_base: Fraction | None
    index: int


def _open_input(path: Path) -> Any:
    av = _av()
    try:
        container = av.open(str(path))
    except FileNotFoundError:
        raise UserError(f"video not found: {path}; check the path") from None
    except (av.FFmpegError, OSError, ValueError) as err:
        raise UserError(f"cannot open video {path} ({err}); is it a video file?") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{path} holds no video stream")
    return container


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate, frame count (exact or estimated) and codec of the first video stream."""
    av = _av()
    path = Path(path)
    container = _open_input(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise UserError(f"{path}: the video stream has no frame rate")
        frames = stream.frames or None
        if frames is None and stream.duration and stream.time_base:
            frames = round(float(stream.duration * stream.time_base * rate))
        elif frames is None and container.duration:
            frames = round(container.duration / av.time_base * float(rate))
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, Fraction(rate), frames,
                         stream.codec_context.name, stream.format.name if stream.format else "?")
    finally:
        container.close()


def read_video(path: str | os.PathLike, kind: str = "yuv420p") -> Iterator[Frame]:
    """Decode the first video stream one frame at a time, in presentation order.

    ``kind='yuv420p'``: 8-bit Y, U, V planes (other pixel formats, e.g. 10-bit or 4:4:4, are converted by
    FFmpeg's swscale); ``kind='rgb24'``: one HxWx3 ``uint8`` RGB array (converted with the stream's colour
    matrix as FFmpeg reads it). The container is closed when the generator ends or is closed.
    """
    av = _av()
    if kind not in ("yuv420p", "rgb24"):
        raise ValueError(f"kind must be 'yuv420p' or 'rgb24', got {kind!r}")
    path = Path(path)
    container = _open_input(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # FFmpeg's frame/slice threads
        index = 0
        try:
            for frame in container.decode(stream):
                time_base = Fraction(frame.time_base) if frame.time_base is not None else None
                yield Frame(_planes(frame, kind), frame.pts, time_base, index)
                index += 1
        except av.FFmpegError as err:
            raise UserError(f"cannot decode {path} at frame {index} ({err}); the file may be damaged") from None
    finally:
        container.close()


def _planes(frame: Any, kind: str) -> tuple[np.ndarray, ...]:
    if kind == "rgb24":
        return (frame.to_ndarray(format="rgb24"),)
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    return tuple(_plane_array(plane) for plane in frame.planes)


def _plane_array(plane: Any) -> np.ndarray:
    """A copy of one 8-bit plane without its row padding (``line_size`` may exceed ``width``)."""
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width].copy()


def _codec_for(suffix: str, codec: str) -> str:
    av = _av()
    if codec != "auto":
        names = [codec]
    elif suffix == ".webm":
        names = ["libvpx-vp9", "libvpx"]
    else:
        names = ["libx264", "mpeg4"]
    for name in names:
        try:
            av.Codec(name, "w")
            return name
        except (av.FFmpegError, ValueError, KeyError):
            continue
    raise UserError(f"video codec {codec!r} has no encoder in this PyAV build; try VIDEO_CODEC=auto")


class VideoWriter:
    """Encode frames into ``path`` (atomically: a temporary file in the same folder, renamed on ``close``).

    ``write`` takes a ``Frame`` of 4:2:0 planes or of one RGB array; RGB is converted to YUV 4:2:0 here
    (in the calling thread, i.e. the pipeline's writer thread). Frames keep their ``pts``/``time_base``
    when they have them, else they are numbered at ``rate``.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, rate: Fraction, codec: str = "auto",
                 crf: int = 18, preset: str = "veryfast") -> None:
        av = _av()
        self.path = Path(path)
        self.width, self.height = width - width % 2, height - height % 2
        if self.width < 2 or self.height < 2:
            raise UserError(f"cannot encode a {width}x{height} video: 4:2:0 needs at least 2x2 pixels")
        self.rate = Fraction(rate)
        self.codec = _codec_for(self.path.suffix.lower(), codec)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=self.path.suffix)
        os.close(fd)
        self._tmp = Path(tmp)
        try:
            self._container = av.open(str(self._tmp), mode="w")
            stream = self._container.add_stream(self.codec, rate=self.rate)
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
            if self.codec == "libx264":
                stream.options = {"crf": str(crf), "preset": preset}
            elif self.codec.startswith("libvpx"):
                stream.options = {"crf": str(crf + 13), "b": "0"}  # VP9's CRF scale is about H.264's + 13
            else:
                stream.codec_context.qscale = True
                stream.codec_context.global_quality = _MPEG4_QSCALE * 118  # FF_QP2LAMBDA
            self._stream = stream
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        self.frames = 0
        self._origin: int | None = None
        self._last_slot: int | None = None

    def write(self, frame: Frame) -> None:
        out = self._to_av(frame)
        out.pts, out.time_base = self._slot(frame), 1 / self.rate
        for packet in self._stream.encode(out):
            self._container.mux(packet)
        self.frames += 1

    def _slot(self, frame: Frame) -> int:
        """The frame's timestamp in units of 1 / rate, counted from the first frame and strictly increasing
        (a variable-rate input is snapped to the nearest slot); numbered in order without timestamps."""
        if frame.pts is not None and frame.time_base is not None:
            if self._origin is None:
                self._origin = frame.pts
            slot = round((frame.pts - self._origin) * frame.time_base * self.rate)
        else:
            slot = self.frames
        if self._last_slot is not None and slot <= self._last_slot:
            slot = self._last_slot + 1
        self._last_slot = slot
        return slot

    def _to_av(self, frame: Frame) -> Any:
        av = _av()
        h, w = self.height, self.width
        if len(frame.planes) == 1:
            rgb = np.ascontiguousarray(frame.planes[0][:h, :w])
            return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        y, u, v = (np.ascontiguousarray(p) for p in (frame.planes[0][:h, :w], frame.planes[1][: h // 2, : w // 2],
                                                      frame.planes[2][: h // 2, : w // 2]))
        if y.shape != (h, w) or u.shape != (h // 2, w // 2) or v.shape != u.shape:
            raise ValueError(f"planes {y.shape}, {u.shape}, {v.shape} do not make a {w}x{h} 4:2:0 frame")
        i420 = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(h * 3 // 2, w)
        return av.VideoFrame.from_ndarray(i420, format="yuv420p")

    def close(self) -> None:
        """Flush the encoder, finish the file and move it into place."""
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        """Drop the partial output."""
        with contextlib.suppress(Exception):  # closing a half-written file may fail; it is deleted anyway
            self._container.close()
        self._tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------ pipeline
@dataclass
class PipelineStats:
    items: int = 0
    seconds: float = 0.0  # wall clock, first item read to last item written
    compute_seconds: float = 0.0  # time spent in ``process`` (the main thread)
    waits: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    @property
    def compute_fps(self) -> float:
        return self.items / self.compute_seconds if self.compute_seconds > 0 else 0.0


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def run_pipeline(items: Iterable[Any], process: Callable[[Any], Any], sink: Callable[[Any], None],
                 depth: int = 3, on_item: Callable[[], None] | None = None) -> PipelineStats:
    """``sink(process(item))`` for every item in order; iterating ``items`` (e.g. decoding) happens in a
    reader thread and ``sink`` (e.g. encoding) in a writer thread, each joined to the caller's thread by a
    queue of at most ``depth`` items, so at most about ``2 * depth + 3`` items are in memory at once.

    An exception in any stage stops the others and is re-raised here; ``on_item`` is called (in the
    caller's thread) after each item is processed, e.g. to advance a progress bar.
    """
    return _Pipeline(items, process, sink, depth, on_item).run()


class _Pipeline:
    """The state ``run_pipeline``'s three threads share: two bounded queues, a stop flag, the writer's error."""

    def __init__(self, items: Iterable[Any], process: Callable[[Any], Any], sink: Callable[[Any], None],
                 depth: int, on_item: Callable[[], None] | None) -> None:
        self.items, self.process, self.sink, self.on_item = items, process, sink, on_item
        self.stop = threading.Event()
        self.inbox: queue.Queue = queue.Queue(maxsize=depth)
        self.outbox: queue.Queue = queue.Queue(maxsize=depth)
        self.stats = PipelineStats(waits={"read": 0.0, "write": 0.0})
        self.failures: list[BaseException] = []

    def run(self) -> PipelineStats:
        threads = [threading.Thread(target=self._read, name="pipeline-reader", daemon=True),
                   threading.Thread(target=self._write, name="pipeline-writer", daemon=True)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        try:
            self._compute()
            if not self.stop.is_set():
                self._put(self.outbox, _DONE)
                threads[1].join()
        except BaseException:
            self.stop.set()
            raise
        finally:
            self.stop.set()
            for thread in threads:
                thread.join()
            if self.failures:
                raise self.failures[0]
        self.stats.seconds = time.perf_counter() - started
        return self.stats

    def _compute(self) -> None:
        """The caller's thread: process items until the reader is done or a thread stops the pipeline."""
        stats = self.stats
        while True:
            waited = time.perf_counter()
            item = _get(self.inbox, self.stop)
            stats.waits["read"] += time.perf_counter() - waited
            if item is _DONE or self.stop.is_set():
                return
            if isinstance(item, _Failure):
                raise item.error
            began = time.perf_counter()
            result = self.process(item)
            stats.compute_seconds += time.perf_counter() - began
            waited = time.perf_counter()
            if not self._put(self.outbox, result):
                return
            stats.waits["write"] += time.perf_counter() - waited
            stats.items += 1
            if self.on_item is not None:
                self.on_item()

    def _put(self, box: queue.Queue, value: Any) -> bool:
        while not self.stop.is_set():
            try:
                box.put(value, timeout=_QUEUE_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        iterator = iter(self.items)
        try:
            for item in iterator:
                if not self._put(self.inbox, item):
                    break
            self._put(self.inbox, _DONE)
        except BaseException as err:  # handed to the caller's thread
            self._put(self.inbox, _Failure(err))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def _write(self) -> None:
        try:
            while True:
                try:
                    result = self.outbox.get(timeout=_QUEUE_POLL)
                except queue.Empty:
                    if self.stop.is_set():
                        return
                    continue
                if result is _DONE:
                    return
                self.sink(result)
        except BaseException as err:  # handed to the caller's thread
            self.failures.append(err)
            self.stop.set()


def _get(box: queue.Queue, stop: threading.Event) -> Any:
    while not stop.is_set():
        try:
            return box.get(timeout=_QUEUE_POLL)
        except queue.Empty:
            continue
    return _DONE
