"""FastESPCN gives the plain fp32 eager output (1e-4) on every backend, shape and thread count."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from inference.fast_espcn import (
    BF16_MIN_PSNR,
    FastESPCN,
    has_fused_conv,
    ort_missing,
    pick_backend,
    reduced_agrees,
    strip_rows,
    upscale_image,
    upscale_rgb_uint8,
    upscale_yuv420,
)
from inference.tiling import tiled_forward
from inference.whole_image import super_resolve
from models.espcn import ESPCN
from tests.conftest import requires_bf16

pytestmark = pytest.mark.precision

TOL = 1e-4
needs_onednn = pytest.mark.skipif(not has_fused_conv(), reason="PyTorch built without oneDNN")
needs_ort = pytest.mark.skipif(bool(ort_missing()), reason=f"the ort backend cannot run here: {ort_missing()}")


def make_net(scale: int, channels: int, features=(64, 32), gain: float = 3.0, seed: int = 0) -> ESPCN:
    """Random weights, scaled up so the tanh units saturate (a harder case than a fresh network)."""
    torch.manual_seed(seed)
    net = ESPCN(scale, channels, features).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(gain)
    return net


def eager(net: ESPCN, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(x)


@needs_onednn
@pytest.mark.parametrize(("scale", "channels", "features", "shape", "rows"), [
    (3, 1, (64, 32), (1, 1, 97, 131), None),
    (3, 1, (64, 32), (1, 1, 97, 131), 8),
    (2, 3, (64, 32), (2, 3, 37, 23), 5),
    (4, 1, (16, 8), (1, 1, 1, 1), None),
    (3, 1, (64, 32), (1, 1, 3, 50), 1),
    (3, 3, (32, 16), (1, 3, 70, 9), 16),
])
def test_strips_match_eager(scale, channels, features, shape, rows):
    net = make_net(scale, channels, features)
    x = torch.rand(shape)
    fast = FastESPCN(net, "strips", rows=rows)
    out = fast(x)
    ref = eager(net, x)
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert (out - ref).abs().max().item() < TOL


@needs_onednn
def test_strips_on_worker_threads_match_and_leave_the_thread_count_alone():
    net = make_net(3, 1)
    x = torch.rand(1, 1, 64, 80)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = FastESPCN(net, "strips", rows=8)(x)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert (out - eager(net, x)).abs().max().item() < TOL


@pytest.mark.parametrize("backend", ["channels_last", "eager", "auto"])
def test_other_backends_match_eager(backend):
    net = make_net(2, 3)
    x = torch.rand(1, 3, 29, 41)
    assert (FastESPCN(net, backend)(x) - eager(net, x)).abs().max().item() < TOL


@needs_ort
@pytest.mark.parametrize(("scale", "channels", "shape"), [(3, 1, (1, 1, 37, 53)), (2, 3, (2, 3, 19, 11)),
                                                          (4, 1, (1, 1, 1, 1))])
def test_ort_matches_eager(scale, channels, shape):
    net = make_net(scale, channels)
    x = torch.rand(shape)
    fast = FastESPCN(net, "ort")
    out = fast(x)
    assert out.shape == (shape[0], channels, shape[2] * scale, shape[3] * scale) and out.dtype == torch.float32
    assert (out - eager(net, x)).abs().max().item() < TOL


@needs_ort
@pytest.mark.parametrize(("scale", "size"), [(3, (23, 31)), (2, (9, 14)), (4, (5, 3))])
def test_ort_whole_rgb_frame_equals_the_float_path_within_one_8_bit_step(scale, size):
    """``rgb_frame`` (colour, chroma and rounding inside ONNX Runtime's graph) against the PyTorch path
    ``upscale_image`` takes on the other backends (Y of the float image, chroma by bicubic, then RGB)."""
    net = make_net(scale, 1, gain=1.0)
    rgb = np.random.default_rng(scale).integers(0, 256, (*size, 3), dtype=np.uint8)
    rgb[:2] = (255, 0, 0)  # saturated rows: clamped the same way
    out = upscale_image(FastESPCN(net, "ort"), rgb)
    ref = upscale_image(FastESPCN(net, "eager"), rgb)
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert out.shape == ref.shape == (size[0] * scale, size[1] * scale, 3) and out.dtype == np.uint8
    assert diff.max() <= 1 and diff.mean() < 0.01


def simulate_cpu(monkeypatch, bf16_fast: bool, ort: bool) -> None:
    """A CPU with or without bf16 hardware, onnxruntime installed or not (decisions only: no kernel runs)."""
    import inference.fast_espcn as fast_espcn
    from core import hardware

    monkeypatch.delenv(hardware.BF16_ENV, raising=False)
    monkeypatch.delenv("SR_AUTO_PRECISION", raising=False)  # auto as on a user's machine
    monkeypatch.setattr(hardware, "_hardware_bf16", lambda: hardware.Bf16Support(bf16_fast, bf16_fast))
    monkeypatch.setattr(fast_espcn, "ort_missing", lambda: "" if ort else "onnxruntime is not installed")


@needs_onednn
@pytest.mark.parametrize(("bf16_fast", "ort", "expected", "for_video"), [
    (True, True, ("ort", "fp32", ""), ("strips", "bf16")), (True, False, ("strips", "bf16", ""), ("strips", "bf16")),
    (False, True, ("ort", "fp32", ""), ("ort", "fp32")),
    (False, False, ("strips", "fp32", "onnxruntime is not installed"), ("strips", "fp32")),
])
def test_auto_backend_follows_the_cpu(monkeypatch, bf16_fast, ort, expected, for_video):
    """Photos: ONNX Runtime fp32 wherever it is installed (bf16 hardware or not); without it the strips, in bf16
    where the CPU computes bf16 in hardware, else in fp32 (and why). Video frames: the bf16 strips wherever the
    CPU computes bf16 in hardware, else as photos. A pinned UPSCALE_PRECISION=fp32 goes to ONNX Runtime
    wherever it is installed, video or not."""
    from pipelines.espcn.upscale import fast_model

    simulate_cpu(monkeypatch, bf16_fast, ort)
    net, cpu = make_net(3, 1, gain=1.0), torch.device("cpu")
    model = fast_model(net, {"INFERENCE": "auto", "UPSCALE_PRECISION": "auto"}, cpu)
    assert (model.backend, model.precision, model.fallback) == expected
    video = fast_model(net, {"INFERENCE": "auto", "UPSCALE_PRECISION": "auto"}, cpu, video=True)
    assert (video.backend, video.precision) == for_video
    for as_video in (False, True):
        pinned = fast_model(net, {"INFERENCE": "auto", "UPSCALE_PRECISION": "fp32"}, cpu, video=as_video)
        assert (pinned.backend, pinned.precision) == ("ort" if ort else "strips", "fp32")
    assert pick_backend("cuda") == pick_backend("cuda", "bf16") == "channels_last"


def test_ort_asked_for_where_it_cannot_run_is_refused(monkeypatch):
    from core.errors import UserError
    from pipelines.espcn.upscale import fast_model

    simulate_cpu(monkeypatch, False, ort=False)
    with pytest.raises(ValueError, match="onnxruntime is not installed"):
        FastESPCN(make_net(3, 1), "ort")
    with pytest.raises(UserError, match="INFERENCE=ort, UPSCALE_PRECISION=auto: backend 'ort' runs on the CPU"):
        fast_model(make_net(3, 1), {"INFERENCE": "ort", "UPSCALE_PRECISION": "auto"}, torch.device("cpu"))


def test_weights_are_a_snapshot_and_inputs_are_not_modified():
    net = make_net(3, 1)
    x = torch.rand(1, 1, 20, 30)
    x_copy = x.clone()
    fast = FastESPCN(net)
    ref = eager(net, x)
    with torch.no_grad():
        net.conv1.weight.zero_()
    assert (fast(x) - ref).abs().max().item() < TOL
    assert torch.equal(x, x_copy)


def test_fp16_on_cpu_bf16_off_the_strips_and_bad_names_are_refused():
    with pytest.raises(ValueError, match="CUDA only"):
        FastESPCN(make_net(3, 1), precision="fp16", device="cpu")
    with pytest.raises(ValueError, match="strip backend"):
        FastESPCN(make_net(3, 1), backend="channels_last", precision="bf16")
    with pytest.raises(ValueError, match="precision must be one of"):
        FastESPCN(make_net(3, 1), precision="int8")
    with pytest.raises(ValueError, match="backend must be one of"):
        FastESPCN(make_net(3, 1), backend="fastest")


def test_reduced_precision_agreement_thresholds():
    ref = torch.rand(1, 1, 64, 64)
    assert reduced_agrees(ref.clone(), ref)
    assert reduced_agrees(ref + 1e-4, ref)  # 80 dB
    assert not reduced_agrees(ref + 3e-3, ref)  # about 50 dB: fails fp16's 60
    assert reduced_agrees(ref + 2e-3, ref, BF16_MIN_PSNR) and not reduced_agrees(ref + 4e-3, ref, BF16_MIN_PSNR)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * np.log10(1 / torch.mean((a - b) ** 2).item())


@requires_bf16
@needs_onednn
@pytest.mark.parametrize(("scale", "channels", "shape", "rows"), [
    (3, 1, (1, 1, 97, 131), None), (3, 1, (1, 1, 40, 50), 8), (2, 3, (2, 3, 37, 23), 5), (4, 1, (1, 1, 1, 1), None),
])
def test_bf16_strips_stay_near_fp32_borders_included(scale, channels, shape, rows):
    """bf16 is not exact: it is held to the agreement the first-input check asks for, with a margin."""
    net = make_net(scale, channels, gain=1.0)
    x = torch.rand(shape)
    fast = FastESPCN(net, "strips", precision="bf16", rows=rows)
    out = fast(x)
    ref = eager(net, x)
    assert out.shape == ref.shape and out.dtype == torch.float32 and fast.reduced
    assert psnr(out, ref) > BF16_MIN_PSNR + 3
    assert not torch.equal(out, FastESPCN(net, "strips", rows=rows)(x))  # bf16 did run


@requires_bf16
@needs_onednn
def test_bf16_that_disagrees_on_the_first_input_falls_back_to_fp32_for_good(monkeypatch):
    import inference.fast_espcn as fast_espcn

    monkeypatch.setattr(fast_espcn, "BF16_MIN_PSNR", 200.0)  # no bf16 output can agree this well
    net = make_net(3, 1, gain=1.0)
    fast = FastESPCN(net, precision="bf16")
    x = torch.rand(1, 1, 30, 40)
    with pytest.warns(UserWarning, match="bf16 output differs from fp32"):
        out = fast(x)
    assert not fast.reduced and (out - eager(net, x)).abs().max().item() < TOL
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second check, so no second warning
        assert fast(torch.rand(1, 1, 9, 7)).shape == (1, 1, 27, 21)


@requires_bf16
@needs_onednn
@pytest.mark.parametrize("name", ["espcn_x2_y", "espcn_x3_y", "espcn_x4_y"])
def test_shipped_weights_keep_their_psnr_within_0_05_db_in_bf16(name):
    """Small size: crops of the photos bundled with scikit-image, the metric's protocol (Y, shave = scale).
    benchmarks/espcn_speed.py measures the same on Set5 and Set14 (docs/benchmarks.md)."""
    from data.datasets import bundled_photos
    from inference.scoring import score_8bit_luma, score_scaled_set
    from pipelines.espcn.common import DEFAULT_WEIGHTS, load_espcn

    net = load_espcn(DEFAULT_WEIGHTS.parent / f"{name}.pt", torch.device("cpu"))
    images = [(n, image[:96, :120]) for n, image in bundled_photos("test")]
    scores = [score_scaled_set(FastESPCN(net, precision=p), images, scale=net.scale, channels=1,
                               device=torch.device("cpu"))["model"]["psnr_y"] for p in ("fp32", "bf16")]
    assert abs(scores[0] - scores[1]) < 0.05, scores
    video = [score_8bit_luma(FastESPCN(net, precision=p), images, scale=net.scale) for p in ("fp32", "bf16")]
    assert abs(video[0] - video[1]) < 0.05, video  # the 8-bit path: integer input, no hi + lo split


def rounded(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0, 1).mul(255).round().to(torch.uint8)


def u8(x: torch.Tensor) -> torch.Tensor:
    return x.mul(255).round().to(torch.uint8)


@needs_onednn
@pytest.mark.parametrize(("scale", "channels", "shape", "rows"), [
    (3, 1, (1, 1, 97, 131), None), (3, 1, (1, 1, 40, 50), 8), (2, 3, (2, 3, 37, 23), 5), (4, 1, (1, 1, 1, 1), None),
])
def test_uint8_frames_give_the_rounded_float_output(scale, channels, shape, rows):
    """8 bits in and out (integers into the network, each strip rounded as it is written) is
    ``to_uint8(net(x / 255))``: equal but for a float rounding landing on the other side of a half."""
    net = make_net(scale, channels)
    x = u8(torch.rand(shape))
    out = FastESPCN(net, "strips", rows=rows).upscale_uint8(x)
    ref = rounded(eager(net, x.float() / 255))
    diff = (out.int() - ref.int()).abs()
    assert out.dtype == torch.uint8 and out.shape == ref.shape
    assert diff.max().item() <= 1 and diff.float().mean().item() < 1e-3


@requires_bf16
@needs_onednn
def test_uint8_frames_in_bf16_stay_near_fp32_and_clamp_like_to_uint8():
    net = make_net(3, 1, gain=1.0)
    x = u8(torch.rand(1, 1, 61, 83))
    fast = FastESPCN(net, "strips", precision="bf16", rows=16)
    out, ref = fast.upscale_uint8(x), FastESPCN(net, "strips").upscale_uint8(x)
    assert fast.reduced and out.dtype == torch.uint8 and not torch.equal(out, ref)  # bf16 did run
    assert psnr(out.float() / 255, ref.float() / 255) > 45  # 8-bit rounding turns bf16's small errors into 1s
    with torch.no_grad():  # every output above 1, then below 0: clamped to 255 and 0
        net.conv3.weight.mul_(0.01)
        for bias, level in ((1.2, 255), (-0.2, 0)):
            net.conv3.bias.fill_(bias)
            fast = FastESPCN(net, "strips", precision="bf16")
            assert (fast.upscale_uint8(x) == level).all() and fast.reduced


@needs_onednn
def test_bf16_is_refused_where_its_kernels_cannot_run(monkeypatch):
    from core import hardware

    monkeypatch.setattr(hardware, "_hardware_bf16", lambda: hardware.Bf16Support(False, False, "no avx512bw"))
    monkeypatch.delenv(hardware.BF16_ENV, raising=False)
    with pytest.raises(ValueError, match="bf16 inference cannot run here: no avx512bw"):
        FastESPCN(make_net(3, 1), "strips", precision="bf16")


def test_uint8_upscaling_takes_uint8_only_and_other_backends_round_their_float_output():
    net = make_net(3, 1, gain=1.0)
    x = u8(torch.rand(1, 1, 12, 17))
    fast = FastESPCN(net, "channels_last")
    assert torch.equal(fast.upscale_uint8(x), rounded(fast(x.float() / 255)))
    with pytest.raises(ValueError, match="uint8"):
        fast.upscale_uint8(x.float())


@needs_ort
@pytest.mark.parametrize(("scale", "channels"), [(3, 1), (2, 3)])
def test_ort_uint8_frames_are_the_rounded_float_output(scale, channels):
    """The 8-bit graph (1/255 and 255 folded into the weights, rounding by QuantizeLinear) against the float
    network rounded: equal but where float rounding lands a value on the other side of a half."""
    net = make_net(scale, channels, gain=1.0)
    x = u8(torch.rand(2, channels, 13, 19))
    fast = FastESPCN(net, "ort")
    out, ref = fast.upscale_uint8(x), rounded(eager(net, x.float() / 255))
    diff = (out.int() - ref.int()).abs()
    assert out.dtype == torch.uint8 and out.shape == ref.shape == (2, channels, 13 * scale, 19 * scale)
    assert diff.max() <= 1 and diff.float().mean() < 1e-3


def test_strip_height_keeps_the_first_feature_map_near_8_mb():
    assert strip_rows(640, 64, 360) == 51
    assert strip_rows(10_000, 64, 360) == 8  # never fewer than 8 rows
    assert strip_rows(640, 64, 20) == 20
    assert strip_rows(320, 64, 180, workers=2) == 45  # two strips per worker


def test_fast_model_runs_through_tiling_and_super_resolve():
    net = make_net(3, 1, gain=1.0)
    fast = FastESPCN(net)
    x = torch.rand(1, 1, 50, 70)
    tiled = tiled_forward(fast, x, tile=16)
    assert (tiled - eager(net, x)).abs().max().item() < TOL
    rgb = np.random.default_rng(0).random((30, 40, 3), dtype=np.float32)
    a = super_resolve(fast, rgb, scale=3, channels=1, device=torch.device("cpu"), tile=16)
    b = super_resolve(net, rgb, scale=3, channels=1, device=torch.device("cpu"), tile=16)
    assert a.shape == (90, 120, 3) and np.abs(a - b).max() < TOL


def test_yuv420_frame_goes_y_through_the_network_and_chroma_through_bicubic():
    net = make_net(3, 1, gain=1.0)
    fast = FastESPCN(net)
    rng = np.random.default_rng(1)
    y = rng.integers(16, 236, (24, 32), dtype=np.uint8)
    u = np.full((12, 16), 90, np.uint8)
    v = np.full((12, 16), 170, np.uint8)
    out_y, out_u, out_v = upscale_yuv420(fast, y, u, v)
    assert out_y.shape == (72, 96) and out_u.shape == out_v.shape == (36, 48)
    assert out_y.dtype == out_u.dtype == np.uint8
    expected = eager(net, torch.from_numpy(y).float()[None, None] / 255)[0, 0].clamp(0, 1).mul(255).round()
    assert np.abs(out_y.astype(int) - expected.numpy().astype(int)).max() <= 1
    assert (out_u == 90).all() and (out_v == 170).all()  # flat chroma stays flat: no colour shift


def test_rgb_frame_through_an_rgb_model():
    net = make_net(2, 3, gain=1.0)
    rgb = np.random.default_rng(2).integers(0, 256, (10, 14, 3), dtype=np.uint8)
    out = upscale_rgb_uint8(FastESPCN(net), rgb)
    expected = eager(net, torch.from_numpy(rgb).float().permute(2, 0, 1)[None] / 255)
    expected = expected[0].permute(1, 2, 0).clamp(0, 1).mul(255).round().numpy()
    assert out.shape == (20, 28, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    with pytest.raises(ValueError, match="channels=1"):
        upscale_yuv420(FastESPCN(net), rgb[..., 0], rgb[:5, :7, 0], rgb[:5, :7, 1])



def test_fp16_is_decided_once_for_the_weights_not_per_input_size(monkeypatch):
    """A folder of photos of many sizes pays the fp32 + fp16 comparison (and its host read) once."""
    import inference.fast_espcn as fast_espcn

    decided = []
    monkeypatch.setattr(fast_espcn, "reduced_agrees", lambda fast, ref, bound: decided.append(tuple(ref.shape)) or True)
    model = FastESPCN(ESPCN(3, 1).eval(), backend="channels_last")
    model.precision = "fp16"  # as on a GPU (autocast("cuda") does nothing here); the decision logic is what is tested
    with pytest.warns(UserWarning):  # autocast: "CUDA is not available. Disabling"
        for shape in ((1, 1, 20, 30), (1, 1, 17, 11), (1, 1, 20, 30)):
            assert model(torch.rand(shape)).shape == (1, 1, 3 * shape[2], 3 * shape[3])
    assert decided == [(1, 1, 60, 90)]


def test_a_torch_without_onednns_fused_operator_falls_back_to_channels_last_in_fp32(monkeypatch):
    """The strip backend needs a private operator (torch.ops.mkldnn._convolution_pointwise); without it and
    without onnxruntime the default path is the public channels-last network, and bf16 (a strip-backend
    feature) is refused."""
    import inference.fast_espcn as fast_espcn
    from pipelines.espcn.upscale import fast_model

    monkeypatch.setattr(fast_espcn, "has_fused_conv", lambda: False)
    monkeypatch.setattr(fast_espcn, "ort_missing", lambda: "onnxruntime is not installed")
    net = make_net(3, 1, gain=1.0)
    fast = FastESPCN(net)
    x = torch.rand(1, 1, 21, 17)
    assert fast.backend == "channels_last" and (fast(x) - eager(net, x)).abs().max().item() < TOL
    with pytest.raises(ValueError, match="strip backend"):
        FastESPCN(net, precision="bf16")
    monkeypatch.delenv("SR_AUTO_PRECISION", raising=False)  # auto as on a user's machine
    model = fast_model(net, {"INFERENCE": "auto", "UPSCALE_PRECISION": "auto"}, torch.device("cpu"))
    assert (model.backend, model.precision) == ("channels_last", "fp32")


@needs_ort
def test_shipped_weights_keep_their_psnr_on_onnx_runtime():
    """Small size, as the bf16 test above: ONNX Runtime's fp32 against the eager network, float and 8-bit."""
    from data.datasets import bundled_photos
    from inference.scoring import score_8bit_luma, score_scaled_set
    from pipelines.espcn.common import DEFAULT_WEIGHTS, load_espcn

    net = load_espcn(DEFAULT_WEIGHTS.parent / "espcn_x3_y.pt", torch.device("cpu"))
    images = [(n, image[:96, :120]) for n, image in bundled_photos("test")]
    scores = [score_scaled_set(FastESPCN(net, b), images, scale=3, channels=1, device=torch.device("cpu"))
              ["model"]["psnr_y"] for b in ("ort", "eager")]
    assert abs(scores[0] - scores[1]) < 0.05, scores
    video = [score_8bit_luma(FastESPCN(net, b), images, scale=3) for b in ("ort", "eager")]
    assert abs(video[0] - video[1]) < 0.05, video
