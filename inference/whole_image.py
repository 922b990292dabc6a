"""Running a trained network on whole images: tensors in and out, tiling, and colour handling.

A luminance model (``channels == 1``) sees the Y channel of the input (BT.601, as MATLAB's rgb2ycbcr);
its chroma is upscaled with MATLAB-compatible bicubic and recombined, which is how every Y-channel SR
paper produces colour output.

Two chroma upscalers, chosen by the caller: ``chroma="matlab"`` (MATLAB-exact ``imresize``, what benchmark
scoring and ``espcn.py eval`` use, because the protocol's colour images are made that way) and
``chroma="fast"`` (PyTorch's bicubic, Keys a = -0.75 with clamped borders, what ``espcn.py upscale``, the
Python API and video use, computed as a polyphase filter: ``bicubic_upscale``; chroma carries little
detail). ``super_resolve`` (numpy in and out) and ``super_resolve_tensor`` (NCHW on the model's device)
compute the same thing. ``ensemble=True`` runs the network under the x8 self-ensemble
(``inference.self_ensemble``: its 8 flips/rotations averaged before clamping; 8x the time).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from data.color import rgb_to_ycbcr, ycbcr_to_rgb
from data.resize import imresize, keys_cubic
from inference.exact_forward import exact_forward
from inference.self_ensemble import self_ensemble
from inference.tiling import tiled_forward
from models.exactness import declared_radius

DEFAULT_TILE = 512


def to_uint8(t: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats -> rounded ``uint8`` (in place on ``t``)."""
    return t.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWxC float array -> 1xCxHxW float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))[None]


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """1xCxHxW tensor -> HxWxC float32 array."""
    return tensor[0].detach().float().cpu().numpy().transpose(1, 2, 0)


def run_model(model: nn.Module, image: np.ndarray, device: torch.device, scale: int = 1,
              tile: int = DEFAULT_TILE, ensemble: bool = False,
              exact: Callable[[nn.Module, torch.Tensor], torch.Tensor] = exact_forward) -> np.ndarray:
    """Apply ``model`` to an HxWxC float image with bounded memory; the output is not clipped.

    Networks that declare a receptive radius (ESPCN; ``models.exactness``) run on overlapping tiles; the
    others (multiblock networks, whose channel attention makes tiles inexact, and any network that declares
    nothing) go to ``exact``: by default ``inference.exact_forward`` (whole on a GPU where they fit, else band
    by band with exact global statistics, or whole); ``inference.multiblock_forward`` where an ONNX export
    pays for itself (on a CPU: ONNX Runtime on the whole image where it fits).
    """
    if isinstance(model, nn.Module):
        model.to(device)  # model and input on one device (a no-op when the model is there already)
    x = image_to_tensor(image).to(device)

    def forward(t: torch.Tensor) -> torch.Tensor:
        if declared_radius(model) is None:
            return exact(model, t)
        return tiled_forward(model, t, tile=tile, scale=scale, out_device=torch.device("cpu"))

    with torch.inference_mode():
        return tensor_to_image(self_ensemble(forward, x) if ensemble else forward(x))


def super_resolve(model: nn.Module, rgb: np.ndarray, *, scale: int, channels: int, device: torch.device,
                  tile: int = DEFAULT_TILE, chroma: str = "matlab", ensemble: bool = False) -> np.ndarray:
    """Upscale an HxWx3 float RGB image in [0, 1] by ``scale`` (1 for same-size restoration)."""
    if channels == 3:
        return np.clip(run_model(model, rgb, device, scale, tile, ensemble), 0.0, 1.0)
    model.to(device)
    x = image_to_tensor(rgb).to(device)
    return tensor_to_image(super_resolve_tensor(model, x, scale=scale, channels=channels, tile=tile, chroma=chroma,
                                                ensemble=ensemble))


def super_resolve_tensor(model: nn.Module, rgb: torch.Tensor, *, scale: int, channels: int,
                         tile: int = DEFAULT_TILE, chroma: str = "matlab", ensemble: bool = False) -> torch.Tensor:
    """``super_resolve`` for a (1, 3, H, W) float32 tensor in [0, 1], on its device; output clipped. A
    luminance model's ensemble runs on Y alone (chroma does not go through the network)."""
    def network(x: torch.Tensor) -> torch.Tensor:
        return _forward(model, x, scale, tile)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return self_ensemble(network, x) if ensemble else network(x)

    with torch.inference_mode():
        if channels == 3:
            return forward(rgb).clamp_(0.0, 1.0)
        ycbcr = rgb_to_ycbcr(rgb)
        y = forward(ycbcr[:, :1])
        return ycbcr_to_rgb(torch.cat([y, upscale_chroma(ycbcr[:, 1:], scale, chroma)], dim=1)).clamp_(0.0, 1.0)


def upscale_chroma(chroma: torch.Tensor, scale: int, method: str) -> torch.Tensor:
    """Cb, Cr (N, 2, H, W) ``scale`` times larger: ``matlab`` (exact imresize) or ``fast`` (PyTorch bicubic)."""
    if scale == 1:
        return chroma
    if method == "matlab":
        return imresize(chroma, scale=scale)
    if method == "fast":
        return bicubic_upscale(chroma, scale)
    raise ValueError(f"chroma must be 'matlab' or 'fast', got {method!r}")


def bicubic_phases(scale: int) -> torch.Tensor:
    """(scale, 5): output pixel ``scale * j + p`` of an integer upscale is the 5-tap filter row ``p`` over
    input pixels ``j - 2 .. j + 2`` (source position ``(p + 0.5) / scale - 0.5``, align_corners=False)."""
    position = (np.arange(scale) + 0.5) / scale - 0.5  # in (-0.5, 0.5): taps at -2 .. 2 cover every phase
    return torch.from_numpy(keys_cubic(position[:, None] - np.arange(-2, 3), a=-0.75))


def bicubic_upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """``F.interpolate(x, scale_factor=scale, mode='bicubic', align_corners=False)`` for an integer
    ``scale``, as a horizontal and a vertical 5-tap filter with ``scale`` phases each (edges clamped by
    replicate padding), each phase a sum of five shifted slices written straight into its interleaved
    place: on 4:2:0 chroma of a 640x360 frame, one CPU thread, 3.5x faster than ``F.interpolate`` and 2x the
    same filter as two convolutions (oneDNN is slow with one channel). Inference only (it writes into
    preallocated outputs, which autograd refuses). Equal to ``F.interpolate`` within 3e-7 at x2 and x4 and
    within 1e-4 at x3 up to 1080p: ``F.interpolate`` places its samples with a float32 ``1 / scale``, this
    with the exact position, and the gap grows with the image size."""
    n, c, h, w = x.shape
    taps = bicubic_phases(scale).tolist()
    padded = F.pad(x.reshape(1, n * c, h, w), (2, 2, 2, 2), mode="replicate")[0]  # (nc, h + 4, w + 4)
    across = torch.empty(n * c, h + 4, w, scale, dtype=x.dtype, device=x.device)  # column scale*x + q
    down = torch.empty(n * c, h, scale, w * scale, dtype=x.dtype, device=x.device)  # row scale*y + p
    for phase in range(scale):
        _five_taps(padded, taps[phase], across[..., phase], axis=2)
    for phase in range(scale):
        _five_taps(across.view(n * c, h + 4, w * scale), taps[phase], down[:, :, phase], axis=1)
    return down.view(n, c, h * scale, w * scale)


def _five_taps(x: torch.Tensor, taps: list[float], out: torch.Tensor, axis: int) -> None:
    """``out = sum_k taps[k] * x[k : k + size]`` along ``axis`` (``size`` = ``out``'s length there)."""
    size = out.shape[axis]
    torch.mul(x.narrow(axis, 0, size), taps[0], out=out)
    for k in range(1, len(taps)):
        out.add_(x.narrow(axis, k, size), alpha=taps[k])


def _forward(model: nn.Module, x: torch.Tensor, scale: int, tile: int) -> torch.Tensor:
    """The model on a tensor already on its device: a declared-local one whole when it fits ``tile``, else on
    tiles; any other exactly (``exact_forward``: whole, or in bands)."""
    if declared_radius(model) is None:
        return exact_forward(model, x)
    return tiled_forward(model, x, tile=tile, scale=scale)
