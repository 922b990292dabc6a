"""ESPCN's ONNX graphs for ONNX Runtime, written out directly: the network (NCHW float in and out), and the
whole 8-bit RGB frame of a luminance model (``uint8`` RGB in, ``uint8`` colour phases out).

Why not the exporter of ``espcn.py export --format onnx`` (``inference.weight_files.onnx_program``): for
these few fixed operators it takes about 5 s on a 2-core CPU (torch.export and onnxscript's import), a
quarter of ``espcn.py upscale``'s whole run on a few photos; this takes ``import onnx`` (about 1 s), and
the result is cached on disk by weights hash (``inference.onnx_runtime.cached_model``) like an export.
The network graph is the exporter's (Conv, Tanh, Conv, Tanh, Conv, DepthToSpace in CRD order, which is
PyTorch's pixel shuffle), so ONNX Runtime computes the same numbers (tests/inference/test_espcn_onnx.py).

The frame graph moves the colour work that PyTorch did in separate passes over the 1080p image (the
chroma's bicubic, YCbCr -> RGB, clamp, round, the 8-bit interleaved copy: about half the network's time
on a 2-core CPU) to the LR size, where the network already works:
- RGB -> YCbCr (MATLAB's rgb2ycbcr on ``rgb / 255``) is a 1x1 convolution;
- the chroma's bicubic upscale (Keys a = -0.75, edges clamped: ``inference.whole_image.bicubic_upscale``)
  is a 5x5 convolution from the edge-padded Cb, Cr to the ``r^2`` phases of each output colour, with the
  Cb, Cr -> RGB matrix and offset folded into its weights (each phase's taps sum to 1, so the offset passes
  through), scaled to 0 .. 255;
- Y's part of R, G and B (one factor for all three) is folded into the last layer;
- ``QuantizeLinear`` (scale 1, zero point 0) is clamp to 0 .. 255, round half to even and the cast, in one
  pass. The graph ends there, with the channels phase-major (``(p s + q) 3 + colour``): the pixel shuffle and
  the HWC interleave are one PyTorch permute of the 8-bit result (``frame_from_phases``: 2.5 ms at 1080p on the
  2-core AVX2 EPYC, where ONNX Runtime's ``DepthToSpace`` and ``Transpose`` on 8-bit data took 8.8 ms).
Equal to the float path (``inference.fast_espcn.upscale_image`` on another backend) within one 8-bit step.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from data.color import rgb_to_ycbcr_affine, ycbcr_to_rgb_affine
from inference.whole_image import bicubic_phases
from models.espcn import ESPCN

OPSET = 18
LAYOUT = 2  # part of the disk cache's key (inference.onnx_runtime): raise it when a graph's input or output changes


def network_graph(net: ESPCN) -> bytes:
    """``net`` (NCHW float32 ``input`` in [0, 1] -> NCHW float32 ``output``, batch, height and width dynamic)."""
    h = _Graph(net)
    x = h.input("input", 1, net.channels)  # TensorProto.FLOAT
    y = h.conv(h.network(x, net.conv3.weight, net.conv3.bias), None, None, depth_to_space=net.scale)
    return h.model(y, "output", 1, net.channels, net.scale)


def rgb_frame_graph(net: ESPCN) -> bytes:
    """A luminance ``net`` on 8-bit RGB frames: ``uint8`` (N, 3, h, w) ``input`` -> ``uint8`` (N, 3 r^2, h, w)
    ``output``, channel ``(p r + q) 3 + c`` the colour ``c`` of output pixel ``(r i + p, r j + q)`` (see
    ``frame_from_phases``); colour conversion, chroma and rounding inside (see the module docstring)."""
    if net.channels != 1:
        raise ValueError("the RGB frame graph needs a luminance (channels=1) ESPCN")
    s = net.scale
    to_ycbcr, ycbcr_offset = rgb_to_ycbcr_affine()
    to_rgb, rgb_offset = ycbcr_to_rgb_affine()
    if not np.allclose(to_rgb[:, 0], to_rgb[0, 0]):
        raise ValueError("Y's factor in YCbCr -> RGB differs between colours")
    y_factor = 255.0 * to_rgb[0, 0]
    h = _Graph(net)
    rgb = h.node("Cast", [h.input("input", 2, 3)], to=1)  # uint8 -> float
    ycbcr = h.conv(rgb, to_ycbcr[:, :, None, None] / 255.0, ycbcr_offset)
    y_in, chroma_in = h.node("Split", [ycbcr, h.const(np.array([1, 2], np.int64))], axis=1, outputs=2)
    y = h.network(y_in, net.conv3.weight.double() * y_factor, net.conv3.bias.double() * y_factor)  # (N, s*s, h, w)
    phases = bicubic_phases(s).numpy()  # (s, 5): phase p's taps over input rows j-2 .. j+2
    kernels = (phases[:, None, :, None] * phases[None, :, None, :]).reshape(s * s, 5, 5)  # phase p*s + q
    chroma_weight = 255.0 * to_rgb[:, 1:, None, None, None] * kernels[None, None]  # (colour, Cb/Cr, phase, 5, 5)
    padded = h.node("Pad", [chroma_in, h.const(np.array([0, 0, 2, 2, 0, 0, 2, 2], np.int64))], mode="edge")
    chroma = h.conv(padded, chroma_weight.transpose(2, 0, 1, 3, 4).reshape(s * s * 3, 2, 5, 5),
                    np.tile(255.0 * rgb_offset, s * s), same=False)  # channel k*3 + c: phase k, colour c
    flat = [h.node("Reshape", [t, h.const(np.array([0, s * s, c, -1], np.int64))]) for t, c in ((chroma, 3), (y, 1))]
    total = h.node("Reshape", [h.node("Add", flat), h.node("Shape", [chroma])])  # Y + colour c, per phase
    levels = h.node("QuantizeLinear", [total, h.const(np.array(1.0, np.float32)), h.const(np.array(0, np.uint8))])
    return h.model(levels, "output", 2, 3 * s * s, s, out_size=False)


def frame_from_phases(phases: torch.Tensor, scale: int) -> torch.Tensor:
    """The (N, 3 r^2, h, w) output of ``rgb_frame_graph`` as (N, r h, r w, 3) 8-bit RGB frames: the pixel
    shuffle and the HWC interleave in one copy."""
    n, _, height, width = phases.shape
    return (phases.view(n, scale, scale, 3, height, width).permute(0, 4, 1, 5, 2, 3)
            .reshape(n, height * scale, width * scale, 3))


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

    def network(self, x: str, conv3_weight: Any, conv3_bias: Any) -> str:
        """conv1, tanh, conv2, tanh, conv3 (its weights given: the frame graph scales them), before the shuffle."""
        net = self.net
        x = self.conv(x, net.conv1.weight, net.conv1.bias, "Tanh")
        x = self.conv(x, net.conv2.weight, net.conv2.bias, "Tanh")
        return self.conv(x, conv3_weight, conv3_bias)

    def model(self, out: str, name: str, elem_type: int, channels: int, scale: int, out_size: bool = True) -> bytes:
        """The graph with ``out`` as its NCHW output ``name``, ``channels`` deep, ``scale`` times larger than the
        input (``out_size``) or as large."""
        helper = self.onnx.helper
        self.nodes.append(helper.make_node("Identity", [out], [name]))
        dims = ["batch", channels, *(("out_height", "out_width") if out_size else ("height", "width"))]
        graph = helper.make_graph(self.nodes, f"espcn_x{scale}", self.inputs,
                                  [helper.make_tensor_value_info(name, elem_type, dims)], self.constants)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        return model.SerializeToString()
