"""SSIM and squared error of float32 or float64 images on the CPU, computed in float64 by the small C kernel
``ssim_kernel.c``.

The eager PyTorch SSIM in ``inference.metrics`` is exact but memory-bound (22 passes over each of four
maps); the C kernel reads every row once and is about 5x faster on one core, equal within 1e-15. It is
compiled on first use (``inference.c_kernels``). Where there is no compiler, or ``SR_SSIM_KERNEL=torch``, or
the build fails, ``load()`` returns None and ``backend()`` says why; the metrics then use
the eager PyTorch SSIM (same numbers, slower).

Large images (``MIN_PARALLEL_PIXELS``) run in bands of rows on PyTorch's thread count (ctypes releases the
GIL); inside the per-image workers of ``inference.scoring`` that count is 1 and the kernel runs in the caller.
"""
from __future__ import annotations

import ctypes
import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from core.threads import map_single_threaded
from inference import c_kernels

SOURCE = Path(__file__).with_name("ssim_kernel.c")
RADIUS = 5
MIN_BAND_ROWS = 64  # a band re-reads 10 rows of its neighbour: keep that small next to its own rows
MIN_PARALLEL_PIXELS = 1 << 18  # smaller calls run in the calling thread: a hand-off to a thread costs more


def load() -> ctypes.CDLL | None:
    """The compiled kernel, built on first use; None when it cannot be had here (``backend()`` says why)."""
    return _loaded()[0]


def backend() -> str:
    """'c' when the kernel is in use, else 'torch (<why>)'."""
    library, reason = _loaded()
    return "c" if library is not None else f"torch ({reason})"


Luma = tuple[Sequence[float], float]  # (weight per channel, offset): the channels combined into one plane


def ssim_and_sse(a: torch.Tensor, b: torch.Tensor, taps: torch.Tensor, c1: float, c2: float,
                 luma: Luma | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per scored plane of CPU tensors (N, C, H, W), float32 or float64: the mean of the 'valid' SSIM map and
    the sum of squared differences, each (N, P) float64. The planes are the C channels, or with ``luma`` one
    plane ``offset + sum_c weight_c * channel_c`` (formed in float64). ``c1``, ``c2`` doubled as in
    ``inference.metrics``."""
    height, width = a.shape[-2:]
    out_rows, out_cols = height - 2 * RADIUS, width - 2 * RADIUS
    taps = taps.to(torch.float64).contiguous()

    def band(library: ctypes.CDLL, image: tuple, rows: int, last: bool, out: torch.Tensor) -> int:
        sse_rows = rows + (2 * RADIUS if last else 0)  # the last band also owns the bottom 10 rows
        return library.ssim_band(*image, rows, width, taps.data_ptr(), c1, c2, sse_rows, out[0].data_ptr(),
                                 out[1].data_ptr())

    sums = _over_bands(a, b, luma, out_rows, band, outputs=2)
    return sums[..., 0] / (out_rows * out_cols), sums[..., 1]


def sse(a: torch.Tensor, b: torch.Tensor, luma: Luma | None = None) -> torch.Tensor:
    """The sum of squared differences per scored plane, (N, P) float64, as in ``ssim_and_sse``."""
    width = a.shape[-1]

    def band(library: ctypes.CDLL, image: tuple, rows: int, last: bool, out: torch.Tensor) -> int:
        return library.sse_band(*image, rows, width, out[0].data_ptr())

    return _over_bands(a, b, luma, a.shape[-2], band, outputs=1)[..., 0]


Band = Callable[[ctypes.CDLL, tuple, int, bool, torch.Tensor], int]


def _over_bands(a: torch.Tensor, b: torch.Tensor, luma: Luma | None, rows: int, band: Band,
                outputs: int) -> torch.Tensor:
    """Runs ``band(library, image, rows, last, out)`` over bands of ``rows`` rows of every scored plane (in
    threads for large images) and returns the sums of its ``outputs`` numbers per plane, (N, P, outputs).
    ``image`` is the kernel's leading arguments (a, b, float32, channels, strides, weights, offset) moved to
    the band's first row."""
    library, reason = _loaded()
    if library is None:
        raise RuntimeError(f"the SSIM kernel is not available: {reason}")
    if a.dtype != b.dtype or a.dtype not in (torch.float32, torch.float64):
        a, b = a.double(), b.double()
    if a.stride(-1) != 1 or a.stride() != b.stride():
        a, b = a.contiguous(), b.contiguous()
    n, c = a.shape[:2]
    if luma is None:  # every channel is a plane of its own
        weights = torch.ones(1, dtype=torch.float64)
        planes = [(i * a.stride(0) + j * a.stride(1), 1, 0.0) for i in range(n) for j in range(c)]
    else:
        weights = torch.tensor(luma[0], dtype=torch.float64)
        if weights.numel() != c:
            raise ValueError(f"{weights.numel()} luma weights for {c} channels")
        planes = [(i * a.stride(0), c, float(luma[1])) for i in range(n)]
    threads = torch.get_num_threads() if len(planes) * a[0, 0].numel() >= MIN_PARALLEL_PIXELS else 1
    count = max(1, min(threads // math.gcd(len(planes), threads), rows // MIN_BAND_ROWS))
    edges = [rows * k // count for k in range(count + 1)]  # bands that divide evenly over the threads
    sums = torch.zeros(len(planes), count, outputs, dtype=torch.float64)
    item = a.element_size()

    def job(index: int) -> int:
        p, k = divmod(index, count)
        start, channels, offset = planes[p]
        start = (start + edges[k] * a.stride(2)) * item
        image = (a.data_ptr() + start, b.data_ptr() + start, int(a.dtype == torch.float32), channels, a.stride(1),
                 a.stride(2), weights.data_ptr(), offset)
        return band(library, image, edges[k + 1] - edges[k], k == count - 1, sums[p, k])

    if any(map_single_threaded(job, range(len(planes) * count), a.device, threads)):
        raise MemoryError("the SSIM kernel ran out of memory")
    return sums.sum(dim=1).view(n, -1, outputs)


@functools.cache
def _loaded() -> tuple[ctypes.CDLL | None, str]:
    library, reason = c_kernels.compiled(SOURCE, "SR_SSIM_KERNEL")
    if library is not None:
        pointer, long, real = ctypes.c_void_p, ctypes.c_long, ctypes.c_double
        image = [pointer, pointer, ctypes.c_int, long, long, long, pointer, real]  # a, b, float32, strides, luma
        library.ssim_band.argtypes = [*image, long, long, pointer, real, real, long, pointer, pointer]
        library.sse_band.argtypes = [*image, long, long, pointer]
        library.ssim_band.restype = library.sse_band.restype = ctypes.c_int
    return library, reason
