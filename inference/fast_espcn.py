"""Fast ESPCN inference: the fastest path that gives the plain fp32 result, chosen per device.

``FastESPCN(net)`` is an inference-only module that computes ``net(x)`` (NCHW float32 in [0, 1] in,
NCHW float32 out, pixel shuffle included). It snapshots the weights when it is built. Backends:

- ``strips`` (CPU default when PyTorch has oneDNN): the frame is cut into horizontal strips of a few
  dozen rows, and each strip runs through all three convolutions before the next one starts, so the
  64-channel intermediate maps stay in the CPU caches instead of streaming 60 MB per 1080p frame through
  memory. Every convolution is oneDNN's fused convolution + tanh on channels-last data (PyTorch's own
  ``tanh`` costs a third of an eager frame). For a luminance model the first convolution (1 -> 64, 5x5),
  which oneDNN runs slowly with one input channel, becomes a 5x1 convolution over the 5 column-shifted
  copies of the input (a partial im2col of a strip, a few MB; the full 25-tap one measured slower). Zero
  padding at the image border is reproduced exactly (rows outside the image are zeroed between layers),
  so the output equals the eager one to float rounding (about 1e-6; the tests require 1e-4). With
  several PyTorch threads, the strips are shared among that many worker threads, each running its
  operators single-threaded (see ``_strip_workers``).
  ``precision='bf16'`` runs the three convolutions on bf16 data and weights (fp32 accumulation and fp32
  biases inside oneDNN, a float input split into two bf16 parts: ``_split_bf16``, the output centred:
  ``_last_layer``), about twice the fp32 rate where the CPU has bf16 instructions. Like fp16 on CUDA it is
  checked once, on the first input, against fp32 and dropped for good (with a warning) when the two
  disagree by more than ``BF16_MIN_PSNR`` dB (see ``reduced_agrees``).
  ``upscale_uint8`` (video frames, and 8-bit images of an RGB model; a Y model's photos have a float Y) takes
  8-bit input as the integers it is (exact in bf16, so no split) and rounds each strip to 8 bits as it is
  written, with no float image in between.
- ``ort`` (CPU default with fp32, where onnxruntime is installed): ONNX Runtime's CPU provider on the
  network's ONNX graph (``inference.espcn_onnx``, built once per set of weights and cached on disk by their
  hash). On the 2-core AVX2 EPYC of docs/benchmarks.md it runs the 1080p Y frame in about half the strips'
  fp32 time. For 8-bit RGB images of a luminance model (``upscale_image``) a second graph does the whole
  frame, colour conversion, chroma and 8-bit rounding included, at the LR size (``rgb_frame``).
- ``channels_last`` (CUDA default, and the CPU fallback without oneDNN and onnxruntime): the network in
  channels-last memory format under ``torch.inference_mode``. On CUDA ``precision='fp16'`` adds autocast
  fp16; it is checked once, on the first input, against fp32 and dropped for good (with a warning) when the
  two disagree by more than ``FP16_MIN_PSNR`` dB PSNR, which keeps any test PSNR within about 0.01 dB (see
  ``reduced_agrees``). The check is the weights', not a size's: later inputs of other sizes (a folder of
  photos) pay no second pass and no host read. fp16 never on CPU (about 100x slower than fp32 there).
- ``eager``: the network as written (the reference).

``backend='auto'`` (``pick_backend``): on a CPU, bf16 ``strips`` where bf16 is asked for; otherwise ``ort``
where onnxruntime and onnx are installed, else ``strips`` (``fallback`` says why); ``channels_last`` on CUDA.
``espcn.py upscale``'s ``auto`` asks for bf16 where the CPU computes bf16 in hardware
(``core.hardware.cpu_bf16().fast``: AVX512-BF16 or AMX) for video frames, and for photos only where the strips
would run anyway (no onnxruntime): on an AVX512-BF16 EPYC the bf16 strips ran a 4:2:0 video frame 1.27-1.31x as
fast as ONNX Runtime fp32, but an RGB photo 0.79-1.01x (ONNX Runtime's frame graph does the colour work;
docs/benchmarks.md). bf16 is refused where oneDNN's bf16 kernels cannot run (AVX2-only CPUs).
"""
from __future__ import annotations

import copy
import functools
import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.hardware import cpu_bf16
from core.threads import single_threaded_pool
from data.color import rgb_to_ycbcr, ycbcr_to_rgb_affine
from inference import onnx_runtime
from inference.self_ensemble import self_ensemble
from inference.whole_image import to_uint8, upscale_chroma
from models.espcn import ESPCN

BACKENDS = ("auto", "ort", "strips", "channels_last", "eager")
PRECISIONS = ("fp32", "fp16", "bf16")  # fp16: CUDA autocast; bf16: the CPU strip backend
FP16_MIN_PSNR = 60.0  # dB between fp16 and fp32 outputs; see reduced_agrees
BF16_MIN_PSNR = 50.0  # dB between bf16 and fp32 outputs; see reduced_agrees
UINT8_QUARTER_STEP = 0.25  # see _last_layer
STRIP_BYTES = 8 << 20  # target size of one strip's first feature map (fits a shared L3 with room)
MIN_ROWS = 8


def has_fused_conv() -> bool:
    """True when PyTorch has oneDNN's fused convolution + activation operator (x86/ARM CPU builds)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def ort_missing() -> str:
    """Why the ``ort`` backend cannot run here, in words ('' when it can): onnxruntime runs the graph, onnx
    builds it (once per set of weights; later runs read it from the cache)."""
    missing = onnx_runtime.missing_packages("onnxruntime", "onnx")
    return f"{missing[0]} is not installed (pip install {missing[0]})" if missing else ""


def pick_backend(device: torch.device | str, precision: str = "fp32") -> str:
    """The fastest backend for ``device`` and ``precision`` (see the module docstring): bf16 is the strips'
    own; on a CPU fp32 goes to ONNX Runtime where it is installed."""
    device = torch.device(device)
    if device.type != "cpu":
        return "channels_last"
    if precision == "bf16" and has_fused_conv():
        return "strips"
    if not ort_missing():
        return "ort"
    return "strips" if has_fused_conv() else "channels_last"


def reduced_agrees(fast: Tensor, reference: Tensor, min_psnr: float = FP16_MIN_PSNR) -> bool:
    """Whether a reduced-precision output is close enough to the fp32 one to leave test PSNR unchanged.

    With a model error of MSE m (32 dB: m = 6.3e-4 on [0, 1]) and an independent precision error of MSE
    e, the MSE becomes m + e; a PSNR change under 0.01 dB needs e < 0.0023 m, i.e. the fp16 output within
    about 58 dB of the fp32 one; 60 dB leaves a margin. bf16 (8 mantissa bits against fp16's 11) is held
    to 0.05 dB, e < 0.0116 m: 51.4 dB at 32 dB. ``BF16_MIN_PSNR`` = 50 guards against weights whose bf16
    output departs grossly (the shipped weights agree by 52.6-55.6 dB on random input, more on photos);
    the 0.05 dB itself is measured on Set5/Set14 (benchmarks/espcn_speed.py, docs/benchmarks.md).
    """
    mse = torch.mean((fast.float() - reference.float()) ** 2).item()
    return mse == 0.0 or 10.0 * math.log10(1.0 / mse) >= min_psnr


def strip_rows(width: int, features: int, height: int, workers: int = 1) -> int:
    """Rows per strip: one strip's first feature map about ``STRIP_BYTES``, and at least two strips per
    worker thread (so a worker that the OS pauses does not hold the whole frame back); never under 8."""
    rows = min(STRIP_BYTES // max(1, width * features * 4), -(-height // (2 * workers)) if workers > 1 else height)
    return max(MIN_ROWS, min(height, rows))


class FastESPCN(nn.Module):
    """``net(x)`` for inference, fast (see the module docstring), built for one device: ``device``, else the
    device of ``net``'s weights. Inputs are moved there; outputs stay there."""

    def __init__(self, net: ESPCN, backend: str = "auto", precision: str = "fp32", rows: int | None = None,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        device = torch.device(device) if device is not None else next(net.parameters()).device
        self.net = copy.deepcopy(net).eval().requires_grad_(False).to(device)
        self.scale, self.channels = net.scale, net.channels
        self.receptive_radius = net.receptive_radius  # the same local network, so exact on tiles
        self.fallback = ""  # why auto did not get the backend it would pick with everything installed
        self.backend = pick_backend(device, precision) if backend == "auto" else backend
        if self.backend == "strips" and not (device.type == "cpu" and has_fused_conv()):
            raise ValueError("backend 'strips' needs a CPU build of PyTorch with oneDNN (mkldnn)")
        if self.backend == "strips" and not _strip_compatible(self.net):
            self.backend = "channels_last"
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision == "fp16" and device.type != "cuda":
            raise ValueError("fp16 is for CUDA only: it is about 100x slower than fp32 on a CPU")
        if precision == "bf16" and self.backend != "strips":
            raise ValueError("bf16 inference is the CPU strip backend's (a CPU with oneDNN and an ESPCN)")
        if precision == "bf16" and not cpu_bf16().runs:
            raise ValueError(f"bf16 inference cannot run here: {cpu_bf16().lacks}")
        if self.backend == "ort" and (device.type != "cpu" or ort_missing()):
            raise ValueError("backend 'ort' runs on the CPU with onnxruntime and onnx installed"
                             + (f": {ort_missing()}" if ort_missing() else ""))
        if backend == "auto" and device.type == "cpu" and precision == "fp32":
            self.fallback = ort_missing()
        self.precision = precision
        self.rows = rows
        self._reduced_ok: bool | None = None  # fp16/bf16 keeps the fp32 result: decided on the first input
        self._ort: dict[str, onnx_runtime.OrtNetwork] = {}  # graph name -> session, made on first use
        if self.backend == "channels_last":
            self.net = self.net.to(memory_format=torch.channels_last)

    @property
    def device(self) -> torch.device:
        return self.net.conv1.weight.device

    @property
    def reduced(self) -> bool:
        """Whether inputs now run in ``precision`` fp16/bf16 (False once the first input's check said no)."""
        return self.precision != "fp32" and self._reduced_ok is not False

    def forward(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            x = x.to(self.device, torch.float32)
            if self.backend == "eager":
                return self.net(x)
            if self.backend == "ort":
                return self._session("network")(x)
            if self.backend != "strips":
                x = x.contiguous(memory_format=torch.channels_last)
            if self.precision != "fp32" and self._use_reduced(x):
                return self._reduced_call(x)
            return self._strips(x) if self.backend == "strips" else self.net(x).contiguous()

    def rgb_frame(self, rgb: np.ndarray) -> np.ndarray:
        """A luminance model on one 8-bit HxWx3 RGB image, whole frame in one ONNX Runtime call (backend
        ``ort``; ``inference.espcn_onnx.rgb_frame_graph``) -> the 8-bit image ``scale`` times larger."""
        if self.backend != "ort" or self.channels != 1 or rgb.dtype != np.uint8:
            raise ValueError("rgb_frame is the ort backend's, for a luminance model and uint8 RGB images")
        from inference.espcn_onnx import frame_from_outputs

        # the NCHW copy by numpy: a PyTorch tensor allocated and freed around the call made ONNX Runtime's run
        # 6 ms slower at 640x360 (81 against 75 ms on the 2-core AVX2 EPYC, 30 interleaved rounds)
        y, chroma = self._session("rgb_frame").outputs(np.ascontiguousarray(rgb.transpose(2, 0, 1)[None]))
        return frame_from_outputs(y, chroma, self.scale)[0]

    def _session(self, graph: str) -> onnx_runtime.OrtNetwork:
        """ONNX Runtime on ``graph`` ('network', 'uint8' or 'rgb_frame') of these weights, built on first use."""
        if graph not in self._ort:
            from inference import espcn_onnx

            build = {"network": espcn_onnx.network_graph, "rgb_frame": espcn_onnx.rgb_frame_graph,
                     "uint8": espcn_onnx.uint8_graph}[graph]
            self._ort[graph] = onnx_runtime.cached_network(self.net, lambda: build(self.net), graph=(
                "espcn_onnx", graph, espcn_onnx.OPSET, espcn_onnx.LAYOUT))
        return self._ort[graph]

    def upscale_uint8(self, x: Tensor) -> Tensor:
        """8-bit frames (N, C, H, W) ``uint8`` -> ``uint8``: in fp32 ``to_uint8(self(x / 255))`` (but for a float
        rounding landing on the other side of a half), in bf16 within bf16's agreement, without the float
        image in between on the strip backend: there the integers go into the network as they are (exact in
        bf16: no hi + lo split, half the first layer's work) and each strip is rounded as it is written."""
        if x.dtype != torch.uint8:
            raise ValueError(f"upscale_uint8 takes uint8 frames, got {x.dtype}")
        with torch.inference_mode():
            x = x.to(self.device)
            if self.backend == "ort":  # the 8-bit graph; its input straight from x's memory (see rgb_frame)
                phases = self._session("uint8").outputs(x.numpy())[0]
                return F.pixel_shuffle(torch.from_numpy(phases), self.scale)
            if self.backend != "strips":
                return to_uint8(self(x.float().div_(255.0)))
            reduced = self.precision == "bf16" and self._use_reduced(x)
            return self._strips(x, torch.bfloat16 if reduced else torch.float32, torch.uint8)

    # ------------------------------------------------------------------------------ backends
    def _reduced_call(self, x: Tensor) -> Tensor:
        if self.backend == "strips":
            return self._strips(x, torch.bfloat16)
        with torch.autocast("cuda", dtype=torch.float16):
            return self.net(x).float().contiguous()

    def _use_reduced(self, x: Tensor) -> bool:
        """Decide once, on the first input, whether fp16/bf16 keeps the fp32 result (``reduced_agrees``)."""
        if self._reduced_ok is None:
            reference = self._strips(x) if self.backend == "strips" else self.net(x)
            bound = BF16_MIN_PSNR if self.precision == "bf16" else FP16_MIN_PSNR
            self._reduced_ok = reduced_agrees(self._reduced_call(x), reference, bound)
            if not self._reduced_ok:
                warnings.warn(f"{self.precision} output differs from fp32 by more than {bound} dB PSNR on the "
                              f"first input ({tuple(x.shape)}); running in fp32", stacklevel=3)
        return self._reduced_ok

    def _strips(self, x: Tensor, dtype: torch.dtype = torch.float32, out_dtype: torch.dtype = torch.float32) -> Tensor:
        """The strip backend: ``x`` is float in [0, 1], or ``uint8`` (value k meaning k / 255: integers are exact
        in bf16, so such an input needs no hi + lo split); the output float32, or ``uint8`` rounded strip by
        strip (``upscale_uint8``)."""
        net, s = self.net, self.scale
        n, c, height, width = x.shape
        c1, c2, c3 = net.conv1, net.conv2, net.conv3
        k1, p2, p3 = c1.kernel_size[0], c2.padding[0], c3.padding[0]
        p1, halo = k1 // 2, k1 // 2 + p2 + p3
        f1 = c1.out_channels
        # NHWC input with zero padding: p1 columns each side, `halo` rows above and below
        xp = F.pad(x.float(), (p1, p1, halo, halo)).permute(0, 2, 3, 1)
        w1 = c1.weight / 255.0 if x.dtype == torch.uint8 else c1.weight
        if dtype == torch.bfloat16 and x.dtype != torch.uint8:  # hi + lo bf16 parts: 16 mantissa bits, not 8
            xp, w1 = _split_bf16(xp), torch.cat([w1, w1], dim=1)
        xp, cin = xp.to(dtype).contiguous(), xp.shape[3]
        im2col = c == 1  # oneDNN's direct 5x5 convolution is slow with one input channel, fine with three
        if im2col:  # conv1 as a k1 x 1 convolution over k1 column-shifted copies, channels in (dx, c) order
            w1 = w1.permute(0, 3, 1, 2).reshape(f1, k1 * cin, k1, 1)
        w3, b3, post_op, bounds, shift = _last_layer(c3, dtype, out_dtype)
        w1, w2, w3 = (w.to(dtype).contiguous(memory_format=torch.channels_last) for w in (w1, c2.weight, w3))
        b1, b2 = c1.bias, c2.bias  # fp32 biases on bf16 data: oneDNN adds them in fp32
        conv = torch.ops.mkldnn._convolution_pointwise
        sn, sh, sw, sc = xp.stride()
        out = torch.empty(n, c, height * s, width * s, dtype=out_dtype, device=x.device)
        shuffled = out.view(n, c, height, s, width, s)
        rows = self.rows or strip_rows(width, f1, height, torch.get_num_threads())

        def run_strip(r0: int) -> None:
            with torch.inference_mode():
                r1 = min(r0 + rows, height)
                # conv1 output rows r0 - (p2 + p3) .. r1 + (p2 + p3): input rows r0 - halo .. r1 + halo
                grown = r1 - r0 + 2 * (p2 + p3)
                if im2col:
                    taps = xp.as_strided((n, grown + 2 * p1, width, k1, cin), (sn, sh, sw, sw, sc),
                                         xp.storage_offset() + r0 * sh)
                    cols = taps.reshape(n, grown + 2 * p1, width, k1 * cin).permute(0, 3, 1, 2)
                else:
                    cols = xp[:, r0 : r1 + 2 * halo].permute(0, 3, 1, 2)  # already padded: a channels-last view
                h = conv(cols, w1, b1, [0, 0], [1, 1], [1, 1], 1, "tanh", [], "")
                h = _zero_outside(h, r0 - (p2 + p3), height)
                h = conv(h, w2, b2, [0, c2.padding[1]], [1, 1], [1, 1], 1, "tanh", [], "")
                h = _zero_outside(h, r0 - p3, height)
                h = conv(h, w3, b3, [0, c3.padding[1]], [1, 1], [1, 1], 1, post_op, bounds, "")
                blocks = h.permute(0, 2, 3, 1)  # (n, R, W, c*s*s) in memory
                blocks = blocks.float().add_(shift) if shift else blocks.float()  # cast, then shuffle
                if out_dtype == torch.uint8:  # 0 .. 255 after the clamp: integers once rounded, cast by the copy
                    blocks = blocks.round_()
                # pixel shuffle, written straight into the output rows
                shuffled[:, :, r0:r1].copy_(blocks.reshape(n, r1 - r0, width, c, s, s).permute(0, 3, 1, 4, 2, 5))

        starts = range(0, height, rows)
        workers = _strip_workers(len(starts))
        if workers is None:
            for r0 in starts:
                run_strip(r0)
        else:
            list(workers.map(run_strip, starts))
        return out


def _strip_workers(strips: int) -> ThreadPoolExecutor | None:
    """A pool of ``torch.get_num_threads()`` single-threaded workers (``core.threads``), or None to run the
    strips in the calling thread (one thread, or one strip)."""
    threads = torch.get_num_threads()
    return single_threaded_pool(threads) if threads > 1 and strips > 1 else None


def _split_bf16(x: Tensor) -> Tensor:
    """``x`` (..., C) fp32 as (..., 2C) bf16: hi = bf16(x), then lo = bf16(x - hi). The first convolution is
    linear, so running it on both with its weights repeated gives conv(hi + lo): the input's rounding to bf16
    (the largest of the bf16 path's errors: 0.024 dB of Set5 x2's PSNR) nearly vanishes for twice a
    small layer's work."""
    hi = x.to(torch.bfloat16)
    return torch.cat([hi, (x - hi.float()).to(torch.bfloat16)], dim=-1)


def _last_layer(conv3: nn.Conv2d, dtype: torch.dtype,
                out_dtype: torch.dtype) -> tuple[Tensor, Tensor, str, list, float]:
    """The last convolution's weights, bias, oneDNN post-op and its scalars, and the shift that the strip adds
    back in fp32 afterwards. Its output is centred: bf16 spaces values near 1 by 2^-8 (about one 8-bit step) but
    values below 0.5 in size by 2^-9 or finer, so ``y - 0.5`` is rounded half as coarsely. An 8-bit output is
    ``255 y - 128.25`` clamped inside oneDNN to 0 .. 255 after the shift of 128.25, then rounded: in fp32 that
    is ``round(255 clamp(y, 0, 1))``, ``to_uint8``'s value, with no pass over a float image. The quarter step
    is for bf16, which holds magnitudes 64 .. 128 in steps of 0.5: centred on integers, a value rounded there
    to k + 0.5 would be a tie that half the time rounds the wrong way; shifted, its bf16 neighbours are
    k + 0.25 and k + 0.75, each on the right side of k + 0.5 (x2 Set5, 8-bit luma: -0.031 dB instead of
    -0.042 against fp32)."""
    if out_dtype == torch.uint8:
        shift = 128.0 + UINT8_QUARTER_STEP
        return conv3.weight * 255.0, conv3.bias * 255.0 - shift, "hardtanh", [-shift, 255.0 - shift], shift
    if dtype == torch.bfloat16:
        return conv3.weight, conv3.bias - 0.5, "none", [], 0.5
    return conv3.weight, conv3.bias, "none", [], 0.0


def _zero_outside(h: Tensor, first_row: int, height: int) -> Tensor:
    """Zero the rows of a strip feature map that lie outside the image (the next layer's zero padding)."""
    top = max(0, -first_row)
    bottom = max(0, first_row + h.shape[2] - height)
    if top:
        h[:, :, :top] = 0
    if bottom:
        h[:, :, h.shape[2] - bottom:] = 0
    return h


def _strip_compatible(net: nn.Module) -> bool:
    """The strip backend handles the ESPCN layout: stride-1 square convolutions with 'same' padding."""
    convs = [getattr(net, name, None) for name in ("conv1", "conv2", "conv3")]
    if not all(isinstance(m, nn.Conv2d) for m in convs) or not isinstance(net, ESPCN):
        return False
    return all(m.stride == (1, 1) and m.dilation == (1, 1) and m.groups == 1 and m.bias is not None
               and m.kernel_size[0] == m.kernel_size[1] and m.kernel_size[0] % 2 == 1
               and m.padding == (m.kernel_size[0] // 2,) * 2 for m in convs)


# ------------------------------------------------------------------------------- whole frames
def upscale_yuv420(model: FastESPCN, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
    """A luminance model on one 8-bit 4:2:0 video frame: planes in, planes ``model.scale`` times larger out.

    Y goes through the network (video Y is studio-range luma, the model's input convention); U and V are
    upscaled with PyTorch's bicubic (Keys a = -0.75, edge-clamped), not MATLAB's imresize: fast, and
    chroma carries little detail. No colour conversion, so colours stay exactly as coded. For scoring,
    ``inference.whole_image.super_resolve`` keeps the MATLAB path.
    """
    if model.channels != 1:
        raise ValueError("upscale_yuv420 needs a luminance (channels=1) model")
    with torch.inference_mode():
        out_y = model.upscale_uint8(torch.from_numpy(y)[None, None])[0, 0]
        chroma = torch.from_numpy(np.stack([u, v])).to(model.device, torch.float32)[None]  # 0 .. 255: linear
        out_uv = upscale_chroma(chroma, model.scale, "fast").clamp_(0.0, 255.0).round_().to(torch.uint8)[0]
        return out_y.cpu().numpy(), out_uv[0].cpu().numpy(), out_uv[1].cpu().numpy()


def upscale_image(model: FastESPCN, rgb: np.ndarray, ensemble: bool = False) -> np.ndarray:
    """Any model on one whole HxWx3 image (``uint8``, ``uint16`` or float in [0, 1]) -> ``uint8`` image
    ``model.scale`` times larger: the fast path of ``espcn.py upscale`` and the Python API.

    A luminance model gets Y of MATLAB's rgb2ycbcr (float32, on the model's device); Cb and Cr are
    upscaled with PyTorch's bicubic (``upscale_chroma(..., 'fast')``), not MATLAB's
    imresize as in scoring. On the ``ort`` backend an 8-bit image goes through ``FastESPCN.rgb_frame``
    instead: the same steps in one ONNX Runtime graph (equal within one 8-bit step). The whole frame goes
    through the network at once (the strip backend bounds its memory on a CPU). ``ensemble``: the network
    under the x8 self-ensemble (``inference.self_ensemble``), its float outputs averaged before rounding to 8
    bits (never through ``rgb_frame``, which rounds inside its graph).
    """
    rgb = rgb if rgb.flags.writeable and rgb.flags.c_contiguous else np.array(rgb)  # torch wants writable memory
    network = functools.partial(self_ensemble, model) if ensemble else model
    with torch.inference_mode():
        if model.channels == 3 and rgb.dtype == np.uint8 and not ensemble:
            return upscale_rgb_uint8(model, rgb)
        if model.backend == "ort" and rgb.dtype == np.uint8 and not ensemble:
            return model.rgb_frame(rgb)
        x = torch.from_numpy(rgb).to(model.device).permute(2, 0, 1)[None]
        x = x.float().div_(255.0 if rgb.dtype == np.uint8 else 65535.0) if rgb.dtype.kind == "u" else x.float()
        if model.channels == 3:
            return to_uint8(network(x))[0].permute(1, 2, 0).cpu().numpy()
        ycbcr = rgb_to_ycbcr(x)
        return _rgb_uint8(network(ycbcr[:, :1]), upscale_chroma(ycbcr[:, 1:], model.scale, "fast"))


def _rgb_uint8(y: Tensor, chroma: Tensor) -> np.ndarray:
    """``ycbcr_to_rgb`` of Y (1, 1, H, W) and Cb, Cr (1, 2, H, W), rounded into an HxWx3 ``uint8`` array with
    as few passes over the big image as possible: no concatenation, 255 folded into the matrix, and the
    rounding, conversion to 8 bits and interleaving to HWC done by one copy."""
    matrix, offset = (torch.as_tensor(255.0 * v, dtype=torch.float32, device=y.device) for v in ycbcr_to_rgb_affine())
    height, width = y.shape[-2:]
    rgb = torch.addmm(offset[:, None], matrix[:, 1:], chroma.reshape(2, -1))  # (3, H*W): the chroma part
    rgb.add_(matrix[:, :1] * y.reshape(1, -1))
    rgb = rgb.clamp_(0.0, 255.0).round_().view(3, height, width)
    out = torch.empty(height, width, 3, dtype=torch.uint8, device=y.device)
    out.copy_(rgb.permute(1, 2, 0))
    return out.cpu().numpy()


def upscale_rgb_uint8(model: FastESPCN, rgb: np.ndarray) -> np.ndarray:
    """An RGB (channels=3) model on one HxWx3 ``uint8`` frame -> ``uint8`` frame ``model.scale`` times larger."""
    if model.channels != 3:
        raise ValueError("upscale_rgb_uint8 needs an RGB (channels=3) model")
    with torch.inference_mode():
        return model.upscale_uint8(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0].permute(1, 2, 0).cpu().numpy()
