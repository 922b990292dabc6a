"""The C SSIM kernel: equal to the eager PyTorch SSIM and squared error (channels, luma, float32 and float64,
strided views, bands on several threads), and a clean fall-back to PyTorch where it cannot be built."""
from __future__ import annotations

import stat

import pytest
import torch

from inference import metrics, ssim_kernel

C1, C2 = 2 * 0.01**2, 2 * 0.03**2  # doubled, as inference.metrics passes them


@pytest.fixture
def fresh_kernel(monkeypatch, tmp_path):
    """The loader forgets what it built, with its cache in tmp_path; forgotten again after the test."""
    monkeypatch.setenv("SR_KERNEL_CACHE", str(tmp_path / "cache"))
    ssim_kernel._loaded.cache_clear()
    yield tmp_path / "cache"
    ssim_kernel._loaded.cache_clear()


def needs_kernel() -> None:
    if ssim_kernel.load() is None:
        pytest.skip(f"no C kernel here: {ssim_kernel.backend()}")


def pair(shape: tuple[int, ...], seed: int = 0, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g, dtype=torch.float64)
    b = (0.9 * a + 0.2 * torch.rand(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return a.to(dtype), b.to(dtype)


def eager(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per plane (N, C): the eager SSIM and the sum of squared differences, in float64."""
    a, b = a.double(), b.double()
    planes = [metrics._ssim_torch(a[:, c : c + 1], b[:, c : c + 1], C1, C2) for c in range(a.shape[1])]
    return torch.stack(planes, dim=1), (a - b).square().sum(dim=(2, 3))


@pytest.mark.parametrize("shape", [(1, 3, 57, 83), (2, 1, 12, 40), (1, 1, 300, 11 + 64)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kernel_equals_eager_per_channel(shape, dtype):
    needs_kernel()
    a, b = pair(shape, dtype=dtype)
    got = ssim_kernel.ssim_and_sse(a, b, metrics._WINDOW, C1, C2)
    want = eager(a, b)
    assert got[0].shape == got[1].shape == shape[:2]
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=1e-13)
    torch.testing.assert_close(got[1], want[1], rtol=1e-13, atol=0)
    torch.testing.assert_close(ssim_kernel.sse(a, b), want[1], rtol=1e-13, atol=0)


def test_luma_plane_is_formed_in_float64_from_float32_channels():
    """Y of float32 RGB, formed inside the kernel, scores as the float64 Y the PyTorch path computes."""
    needs_kernel()
    a, b = pair((2, 3, 40, 60), seed=4, dtype=torch.float32)
    luma = ([0.25, 0.5, 0.125], 0.0625)
    weights = torch.tensor(luma[0], dtype=torch.float64).view(1, 3, 1, 1)
    y_a, y_b = ((x.double() * weights).sum(dim=1, keepdim=True) + luma[1] for x in (a, b))
    got = ssim_kernel.ssim_and_sse(a, b, metrics._WINDOW, C1, C2, luma)
    want = eager(y_a, y_b)
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=1e-13)
    torch.testing.assert_close(got[1], want[1], rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="2 luma weights for 3 channels"):
        ssim_kernel.sse(a, b, ([1.0, 1.0], 0.0))


def test_kernel_reads_strided_views():
    """Shaved views (row stride larger than the width, planes apart) are read in place, not copied wrongly."""
    needs_kernel()
    a, b = pair((2, 3, 90, 70), seed=1)
    view_a, view_b = a[..., 3:-4, 5:-2], b[..., 3:-4, 5:-2]
    got = ssim_kernel.ssim_and_sse(view_a, view_b, metrics._WINDOW, C1, C2)
    want = eager(view_a.contiguous(), view_b.contiguous())
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-13, atol=1e-13)


def test_bands_on_several_threads_equal_one_band():
    """Four threads split each plane into bands; the last band owns the bottom rows' squared error."""
    needs_kernel()
    a, b = pair((1, 1, 600, 500), seed=2)
    b[..., -3:, :] = 0.0  # an error only in the bottom rows: counted once, by the last band
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 4):
            torch.set_num_threads(count)
            results.append((*ssim_kernel.ssim_and_sse(a, b, metrics._WINDOW, C1, C2),
                            ssim_kernel.sse(a, b)))
    finally:
        torch.set_num_threads(threads)
    for x, y in zip(*results, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(results[0][1], (a - b).square().sum(dim=(2, 3)), rtol=1e-13, atol=0)


@pytest.mark.parametrize("space", ["y", "rgb"])
def test_metrics_agree_with_the_pytorch_backend(space, monkeypatch):
    """psnr/ssim through the kernel equal the same calls on the PyTorch path, for float32 and 8-bit input."""
    needs_kernel()
    a, b = pair((1, 3, 64, 48), seed=5, dtype=torch.float32)
    a8, b8 = (x.mul(255).round().to(torch.uint8) for x in (a, b))
    calls = [lambda: metrics.psnr_ssim_per_image(a, b, space=space, shave=3),
             lambda: metrics.psnr_ssim_per_image(a8, b8, space=space, shave=2, data_range=255),
             lambda: (metrics.psnr_per_image(a, b, space=space), metrics.ssim_per_image(a, b, space=space))]
    with_kernel = [call() for call in calls]
    monkeypatch.setattr(metrics._Scored, "kernel", property(lambda self: False))
    for got, call in zip(with_kernel, calls, strict=True):
        want = call()
        torch.testing.assert_close(got[0], want[0], rtol=1e-12, atol=0)
        torch.testing.assert_close(got[1], want[1], rtol=0, atol=1e-13)


def test_built_once_into_the_cache_folder(fresh_kernel):
    needs_kernel()
    built = list(fresh_kernel.iterdir())
    assert [p.suffix for p in built] == [".so"] and built[0].name.startswith("ssim_kernel-")
    stamp = built[0].stat().st_mtime_ns
    ssim_kernel._loaded.cache_clear()
    assert ssim_kernel.backend() == "c"
    assert list(fresh_kernel.iterdir()) == built and built[0].stat().st_mtime_ns == stamp


def test_no_compiler_falls_back_to_pytorch(fresh_kernel, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert ssim_kernel.load() is None
    assert ssim_kernel.backend() == "torch (no C compiler (/nonexistent/cc) found)"
    a, b = pair((1, 3, 40, 50), seed=3)
    torch.testing.assert_close(metrics.ssim_per_image(a, b), eager(a, b)[0].mean(dim=1), rtol=0, atol=1e-15)


def test_failed_build_is_reported_and_falls_back(fresh_kernel, monkeypatch, tmp_path):
    compiler = tmp_path / "broken-cc"
    compiler.write_text("#!/bin/sh\necho 'broken-cc 1.0'\n[ \"$1\" = --version ] && exit 0\necho boom >&2\nexit 1\n")
    compiler.chmod(compiler.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("CC", str(compiler))
    assert ssim_kernel.backend() == "torch (the C kernel did not compile: boom)"
    assert list(fresh_kernel.iterdir()) == []  # no half-written library left behind


def test_torch_backend_can_be_chosen(fresh_kernel, monkeypatch):
    monkeypatch.setenv("SR_SSIM_KERNEL", "torch")
    assert ssim_kernel.backend() == "torch (SR_SSIM_KERNEL=torch)"
