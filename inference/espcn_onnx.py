"""ESPCN's ONNX graphs for ONNX Runtime, written out directly: the network (NCHW float in and out), the network
on 8-bit frames (``uint8`` in and out), and the whole 8-bit RGB frame of a luminance model (``uint8`` RGB in,
float phases out, finished by ``frame_from_outputs``).

Why not the exporter of ``espcn.py export --format onnx`` (``inference.weight_files.onnx_program``): for
these few fixed operators it takes about 5 s on a 2-core CPU (torch.export and onnxscript's import), a
quarter of ``espcn.py upscale``'s whole run on a few photos; this takes ``import onnx`` (about 1 s), and
the result is cached on disk by weights hash (``inference.onnx_runtime.cached_model``) like an export.
The network graph is the exporter's (Conv, Tanh, Conv, Tanh, Conv, DepthToSpace in CRD order, which is
PyTorch's pixel shuffle), so ONNX Runtime computes the same numbers (tests/inference/test_espcn_onnx.py).

The 8-bit graph folds the input's 1/255 into the first layer and the output's 255 into the last, and ends
with ``QuantizeLinear`` (round half to even, clamp, 8 bits) before the pixel shuffle, which PyTorch does on the
8-bit phases: video's Y frames no longer round a float 1080p image in PyTorch.

The frame graph moves the colour work that PyTorch did in separate passes over the 1080p image (the
chroma's bicubic, YCbCr -> RGB, clamp, round, the 8-bit interleaved copy: about half the network's time
on a 2-core CPU) to the LR size, where the network already works:
- RGB -> YCbCr (MATLAB's rgb2ycbcr on ``rgb / 255``) is a 1x1 convolution;
- the chroma's bicubic upscale (Keys a = -0.75, edges clamped: ``inference.whole_image.bicubic_upscale``)
  is a 5x5 convolution from the edge-padded Cb, Cr to the ``r^2`` phases of each;
- Y's part of R, G and B (one factor for all three) is folded into the last layer.
The graph ends there, with two float outputs at the LR size: Y's ``r^2`` phases and the chroma's ``2 r^2``.
The colour mix (Cb, Cr -> RGB at 0 .. 255), the rounding to 8 bits, the pixel shuffle and the HWC interleave are
one pass of the small C kernel ``rgb_frame.c`` (``frame_from_outputs``; PyTorch where it cannot be compiled,
same bytes, 17 ms): 2.8 ms at 1080p on the 2-core AVX2 EPYC, where the graph that ended in 8 bits spent 4.0 ms
in its Add, Reshape and QuantizeLinear (ONNX Runtime's profile) and 2.5 ms in PyTorch's permute, and its
chroma convolution, the colour mix folded in, had 27 output channels instead of 18 (4.8 against 3.2 ms).
Equal to the float path (``inference.fast_espcn.upscale_image`` on another backend) within one 8-bit step.
"""
from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.threads import map_single_threaded
from data.color import rgb_to_ycbcr_affine, ycbcr_to_rgb_affine
from inference import c_kernels
from inference.whole_image import bicubic_phases
from models.espcn import ESPCN

OPSET = 18
LAYOUT = 5  # part of the disk cache's key (inference.onnx_runtime): raise it when a graph's input or output changes


def network_graph(net: ESPCN) -> bytes:
    """``net`` (NCHW float32 ``input`` in [0, 1] -> NCHW float32 ``output``, batch, height and width dynamic)."""
    h = _Graph(net)
    x = h.input("input", 1, net.channels)  # TensorProto.FLOAT
    y = h.conv(h.network(x), None, None, depth_to_space=net.scale)
    return h.model([(y, "output", net.channels)], net.scale, upscaled=True)


def uint8_graph(net: ESPCN) -> bytes:
    """``net`` on 8-bit frames: ``uint8`` (N, C, h, w) ``input`` -> ``uint8`` (N, C r^2, h, w) ``output``, the
    network's output before the pixel shuffle (channel ``c r^2 + p r + q``), times 255, rounded half to even and
    clamped by ``QuantizeLinear``; the 1/255 of the input folded into the first layer, the 255 into the last."""
    h = _Graph(net)
    x = h.network(h.node("Cast", [h.input("input", 2, net.channels)], to=1), in_scale=255.0, out_scale=255.0)
    levels = h.node("QuantizeLinear", [x, h.const(np.array(1.0, np.float32)), h.const(np.array(0, np.uint8))])
    return h.model([(levels, "output", net.channels * net.scale**2)], net.scale, elem_type=2)


def rgb_frame_graph(net: ESPCN) -> bytes:
    """A luminance ``net`` on 8-bit RGB frames: ``uint8`` (N, 3, h, w) ``input`` -> float (N, r^2, h, w) ``y``
    (Y's part of every colour, 0 .. 255) and (N, 2 r^2, h, w) ``chroma`` (Cb's phases, then Cr's, 0 .. 1), phase
    ``p r + q`` the output pixel ``(r i + p, r j + q)`` at ``(i, j)`` (``frame_from_outputs`` makes the frame)."""
    if net.channels != 1:
        raise ValueError("the RGB frame graph needs a luminance (channels=1) ESPCN")
    s = net.scale
    to_ycbcr, ycbcr_offset = rgb_to_ycbcr_affine()
    to_rgb, _ = ycbcr_to_rgb_affine()
    if not np.allclose(to_rgb[:, 0], to_rgb[0, 0]):
        raise ValueError("Y's factor in YCbCr -> RGB differs between colours")
    y_factor = 255.0 * to_rgb[0, 0]
    h = _Graph(net)
    rgb = h.node("Cast", [h.input("input", 2, 3)], to=1)  # uint8 -> float
    ycbcr = h.conv(rgb, to_ycbcr[:, :, None, None] / 255.0, ycbcr_offset)
    y_in, chroma_in = h.node("Split", [ycbcr, h.const(np.array([1, 2], np.int64))], axis=1, outputs=2)
    y = h.network(y_in, out_scale=y_factor)  # (N, s*s, h, w)
    phases = bicubic_phases(s).numpy()  # (s, 5): phase p's taps over input rows j-2 .. j+2
    kernels = (phases[:, None, :, None] * phases[None, :, None, :]).reshape(s * s, 5, 5)  # phase p*s + q
    weight = np.zeros((2, s * s, 2, 5, 5))
    weight[0, :, 0], weight[1, :, 1] = kernels, kernels  # Cb's phases from Cb, Cr's from Cr
    padded = h.node("Pad", [chroma_in, h.const(np.array([0, 0, 2, 2, 0, 0, 2, 2], np.int64))], mode="edge")
    chroma = h.conv(padded, weight.reshape(2 * s * s, 2, 5, 5), np.zeros(2 * s * s), same=False)
    return h.model([(y, "y", s * s), (chroma, "chroma", 2 * s * s)], s)


def frame_from_outputs(y: np.ndarray, chroma: np.ndarray, scale: int) -> np.ndarray:
    """The ``y`` and ``chroma`` outputs of ``rgb_frame_graph`` as (N, r h, r w, 3) 8-bit RGB frames: each colour
    ``y + m_cb cb + m_cr cr + offset`` (YCbCr -> RGB at 0 .. 255, float32), rounded half to even, clamped and
    interleaved in one pass of ``rgb_frame.c`` (in bands of rows on PyTorch's thread count), or by PyTorch
    where the kernel cannot be had (the same operations in the same order: the same bytes)."""
    n, _, height, width = y.shape
    y, chroma = np.ascontiguousarray(y, np.float32), np.ascontiguousarray(chroma, np.float32)
    mix = _colour_mix()
    library = _kernel()
    if library is None:
        cb, cr = torch.from_numpy(chroma).view(n, 2, scale * scale, 1, height, width).unbind(1)
        m = torch.from_numpy(mix).view(3, 3, 1, 1)
        levels = torch.from_numpy(y)[:, :, None] + cb * m[:, 0] + cr * m[:, 1] + m[:, 2]
        levels = levels.round_().clamp_(0, 255).to(torch.uint8).view(n, scale, scale, 3, height, width)
        return levels.permute(0, 4, 1, 5, 2, 3).reshape(n, height * scale, width * scale, 3).numpy()
    out = np.empty((n, height * scale, width * scale, 3), np.uint8)
    threads = torch.get_num_threads() if out.size >= MIN_PARALLEL_VALUES else 1
    bands = [(i, height * k // threads, height * (k + 1) // threads) for i in range(n) for k in range(threads)]

    def band(job: tuple[int, int, int]) -> None:
        i, first, last = job
        library.rgb_frame_rows(y[i].ctypes.data, chroma[i].ctypes.data, mix.ctypes.data, height, width, scale,
                               first, last, out[i].ctypes.data)

    map_single_threaded(band, bands, torch.device("cpu"), threads)
    return out


MIN_PARALLEL_VALUES = 1 << 20  # smaller frames are finished in the calling thread: a hand-off costs more


@functools.cache
def _colour_mix() -> np.ndarray:
    """(3, 3) float32: per colour, the factors of Cb and Cr and the offset of YCbCr -> RGB, at 0 .. 255."""
    to_rgb, offset = ycbcr_to_rgb_affine()
    return np.ascontiguousarray(255.0 * np.concatenate([to_rgb[:, 1:], offset[:, None]], axis=1), np.float32)


@functools.cache
def _kernel() -> ctypes.CDLL | None:
    library, _ = c_kernels.compiled(Path(__file__).with_name("rgb_frame.c"), "SR_FRAME_KERNEL")
    if library is not None:
        pointer, long = ctypes.c_void_p, ctypes.c_long
        library.rgb_frame_rows.argtypes = [pointer, pointer, pointer, long, long, long, long, long, pointer]
        library.rgb_frame_rows.restype = None
    return library


class _Graph:
    """Nodes and constants of one ONNX graph, named in order (``onnx`` is imported only here)."""

    def __init__(self, net: ESPCN) -> None:
        import onnx

        self.onnx, self.net = onnx, net
        self.nodes: list[Any] = []
        self.constants: list[Any] = []
        self.inputs: list[Any] = []

    def _name(self, kind: str) -> str:
        return f"{kind}_{len(self.nodes) + len(self.constants)}"

    def input(self, name: str, elem_type: int, channels: int) -> str:
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, elem_type, ["batch", channels, "height",
                                                                                   "width"]))
        return name

    def const(self, value: Any) -> str:
        name = self._name("const")
        array = np.asarray(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        self.constants.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], outputs: int = 1, **attributes: Any) -> Any:
        names = [self._name(op.lower()) + (f"_{i}" if outputs > 1 else "") for i in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op, inputs, names, **attributes))
        return names if outputs > 1 else names[0]

    def conv(self, x: str, weight: Any, bias: Any, activation: str = "", depth_to_space: int = 0,
             same: bool = True) -> str:
        """A stride-1 convolution (weights (out, in, k, k); zero-padded to the input's size when ``same``), then
        ``activation`` or a pixel shuffle."""
        if weight is not None:
            weight = weight.detach().cpu().numpy() if isinstance(weight, torch.Tensor) else np.asarray(weight)
            pad = weight.shape[-1] // 2 if same else 0
            x = self.node("Conv", [x, self.const(weight), self.const(bias)], pads=[pad] * 4)
        if activation:
            x = self.node(activation, [x])
        return self.node("DepthToSpace", [x], blocksize=depth_to_space, mode="CRD") if depth_to_space else x

    def network(self, x: str, in_scale: float = 1.0, out_scale: float = 1.0) -> str:
        """conv1, tanh, conv2, tanh, conv3, before the shuffle: for an input ``in_scale`` times the network's (its
        first weights divided by it), the output ``out_scale`` times the network's (its last weights times it)."""
        net = self.net
        x = self.conv(x, net.conv1.weight.double() / in_scale, net.conv1.bias, "Tanh")
        x = self.conv(x, net.conv2.weight, net.conv2.bias, "Tanh")
        return self.conv(x, net.conv3.weight.double() * out_scale, net.conv3.bias.double() * out_scale)

    def model(self, outputs: list[tuple[str, str, int]], scale: int, upscaled: bool = False,
              elem_type: int = 1) -> bytes:
        """The graph with NCHW ``outputs`` (tensor, name, channels) of ``elem_type`` (1 float, 2 uint8), as
        large as the input or, when ``upscaled``, ``scale`` times larger."""
        helper = self.onnx.helper
        values = []
        for tensor, name, channels in outputs:
            self.nodes.append(helper.make_node("Identity", [tensor], [name]))
            size = ("out_height", "out_width") if upscaled else ("height", "width")
            values.append(helper.make_tensor_value_info(name, elem_type, ["batch", channels, *size]))
        graph = helper.make_graph(self.nodes, f"espcn_x{scale}", self.inputs, values, self.constants)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        return model.SerializeToString()
