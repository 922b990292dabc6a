import math

import numpy as np
import pytest
import skimage.data
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from core.errors import UserError
from data.color import rgb_to_y
from inference.metrics import PROTOCOLS, evaluate_pair, protocol, psnr, psnr_per_image, ssim, ssim_per_image

from . import metrics_reference as reference


@pytest.fixture(scope="module")
def photo_pair() -> tuple[np.ndarray, np.ndarray]:
    """A real photo crop and a noisy, slightly darker copy, float64 in [0, 1]."""
    ref = skimage.data.astronaut()[100:196, 150:262].astype(np.float64) / 255
    noise = np.random.default_rng(0).normal(0, 0.05, ref.shape)
    return np.clip(0.95 * ref + noise, 0, 1), ref


def test_psnr_constant_error_is_20_db() -> None:
    ref = np.full((16, 16, 3), 0.5)
    assert psnr(ref + 0.1, ref) == pytest.approx(20.0)
    assert psnr(255 * (ref + 0.1), 255 * ref, data_range=255) == pytest.approx(20.0)


def test_psnr_y_of_a_grey_shift() -> None:
    """+0.1 on R, G and B moves Y by 0.1 * (65.481 + 128.553 + 24.966) / 255 = 0.1 * 219 / 255."""
    ref = np.full((16, 16, 3), 0.4)
    assert psnr(ref + 0.1, ref, space="y") == pytest.approx(-20 * math.log10(0.1 * 219 / 255))


def test_psnr_y_matches_basicsr_convention(photo_pair) -> None:
    """BasicSR scores Y * 255 (16..235) with peak 255; a Y-only input is taken as Y already."""
    img, ref = photo_pair
    y255_img, y255_ref = 255 * rgb_to_y(img), 255 * rgb_to_y(ref)
    expected = peak_signal_noise_ratio(y255_ref, y255_img, data_range=255)
    assert psnr(img, ref, space="y") == pytest.approx(expected, abs=1e-9)
    assert psnr(y255_img, y255_ref, space="y", data_range=255) == pytest.approx(expected, abs=1e-9)
    with pytest.raises(ValueError, match="rgb"):
        psnr(y255_img, y255_ref, space="rgb", data_range=255)


def test_identical_images_give_inf() -> None:
    img = np.random.default_rng(1).random((12, 12, 3))
    assert psnr(img, img) == float("inf")
    assert ssim(img, img) == pytest.approx(1.0)


def test_shave_and_crop_remove_what_they_should() -> None:
    ref = np.random.default_rng(2).random((20, 20, 3))
    img = ref.copy()
    img[:2] += 0.5  # a bad top border
    assert math.isfinite(psnr(img, ref))
    assert psnr(img, ref, shave=2) == float("inf")
    img = ref.copy()
    img[10:, :] += 0.5  # damage outside the top-left 10x10 crop
    assert psnr(img, ref, crop=10) == float("inf")
    assert math.isfinite(psnr(img, ref, crop=11))


def test_psnr_matches_skimage(photo_pair) -> None:
    img, ref = photo_pair
    assert psnr(img, ref) == pytest.approx(peak_signal_noise_ratio(ref, img, data_range=1.0), abs=1e-9)


def test_ssim_matches_skimage_rgb_and_y(photo_pair) -> None:
    """skimage filters the padded image but averages the map with 5 px cropped: the same 'valid' mean."""
    img, ref = photo_pair
    options = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 1.0}
    expected_rgb = structural_similarity(img, ref, channel_axis=2, **options)
    expected_y = structural_similarity(rgb_to_y(img), rgb_to_y(ref), **options)
    assert ssim(img, ref) == pytest.approx(expected_rgb, abs=1e-9)
    assert ssim(img, ref, space="y") == pytest.approx(expected_y, abs=1e-9)
    assert 0.3 < expected_y < 0.95  # a real, informative value, not a degenerate 0 or 1


def test_ssim_shave_drops_the_border_before_the_window(photo_pair) -> None:
    img, ref = photo_pair
    options = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 1.0}
    expected = structural_similarity(img[4:-4, 4:-4], ref[4:-4, 4:-4], channel_axis=2, **options)
    assert ssim(img, ref, shave=4) == pytest.approx(expected, abs=1e-9)


def test_torch_inputs_match_numpy(photo_pair) -> None:
    img, ref = photo_pair
    t_img, t_ref = (torch.from_numpy(a).permute(2, 0, 1) for a in (img, ref))
    assert psnr(t_img, t_ref, space="y") == pytest.approx(psnr(img, ref, space="y"))
    assert ssim(t_img[None], t_ref[None]) == pytest.approx(ssim(img, ref))


def test_integer_images_need_their_data_range(photo_pair) -> None:
    img, ref = (np.round(255 * a).astype(np.uint8) for a in photo_pair)
    with pytest.raises(ValueError, match="data_range"):
        psnr(img, ref)
    assert psnr(img, ref, data_range=255) == pytest.approx(peak_signal_noise_ratio(ref, img), abs=1e-9)


def test_protocols() -> None:
    assert set(PROTOCOLS) == {"benchmark", "benchmark_rgb", "report", "realsr"}
    assert protocol("benchmark", 3) == {"space": "y", "shave": 3}
    assert protocol("benchmark_rgb", 2) == {"space": "rgb", "shave": 2}
    assert protocol("report", 2) == {"space": "rgb", "shave": 0, "crop": 1500}
    assert protocol("realsr", 2) == {"space": "y", "shave": 0}
    with pytest.raises(UserError, match="benchmark"):
        protocol("matlab", 2)


def test_evaluate_pair_shaves_scaled_pairs_only(photo_pair) -> None:
    img, ref = photo_pair
    same_size = evaluate_pair(img, ref, scale=1)
    assert set(same_size) == {"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"}
    assert same_size["psnr_rgb"] == pytest.approx(psnr(img, ref))
    assert same_size["ssim_y"] == pytest.approx(ssim(img, ref, space="y"))
    scaled = evaluate_pair(img, ref, scale=3)
    assert scaled["psnr_y"] == pytest.approx(psnr(img, ref, **protocol("benchmark", 3)))
    assert scaled["ssim_rgb"] == pytest.approx(ssim(img, ref, **protocol("benchmark_rgb", 3)))
    assert scaled["psnr_y"] != pytest.approx(same_size["psnr_y"])


# --------------------------------------------------------------- the torch metrics against the numpy oracle
@pytest.fixture(scope="module")
def photos() -> list[tuple[np.ndarray, np.ndarray]]:
    """Real photos with real SR-like errors: MATLAB-bicubic x3 round trips (float32, clipped), and their HR."""
    from data.degrade import bicubic_downscale, bicubic_upscale, modcrop

    pairs = []
    for name in ("astronaut", "coffee", "chelsea"):
        hr = modcrop(getattr(skimage.data, name)()[:150, :180].astype(np.float32) / 255, 3)
        pairs.append((np.clip(bicubic_upscale(bicubic_downscale(hr, 3), 3), 0, 1), hr))
    return pairs


@pytest.mark.parametrize("options", [{}, {"space": "y"}, {"shave": 3}, {"space": "y", "shave": 3},
                                     {"crop": 100}, {"space": "rgb", "crop": 90, "shave": 2}])
def test_torch_metrics_equal_the_numpy_reference(photos, options) -> None:
    for img, ref in photos:
        assert psnr(img, ref, **options) == pytest.approx(reference.psnr(img, ref, **options), abs=1e-9)
        assert ssim(img, ref, **options) == pytest.approx(reference.ssim(img, ref, **options), abs=1e-9)


def test_batches_give_per_image_values_and_their_mean(photos) -> None:
    """What training-time validation calls: NCHW float tensors in [0, 1], on their device."""
    a, ref_a = photos[0]
    b, ref_b = (x[: a.shape[0], : a.shape[1]] for x in photos[1])
    batch = torch.from_numpy(np.stack([a, b])).permute(0, 3, 1, 2)
    target = torch.from_numpy(np.stack([ref_a, ref_b])).permute(0, 3, 1, 2)
    per_image = psnr_per_image(batch, target, space="y", shave=3)
    assert per_image.shape == (2,) and per_image.dtype == torch.float64
    assert per_image[1].item() == pytest.approx(reference.psnr(b, ref_b, space="y", shave=3), abs=1e-9)
    assert psnr(batch, target, space="y", shave=3) == pytest.approx(per_image.mean().item())
    assert ssim_per_image(batch, target)[0].item() == pytest.approx(reference.ssim(a, ref_a), abs=1e-9)


def test_ssim_of_a_flat_image_is_exact() -> None:
    """Flat areas are where float32 filtering drifts (variances from differences of equal numbers)."""
    ref = np.full((40, 40, 3), 0.8)
    img = ref.copy()
    img[20:] = 0.2
    assert ssim(img, ref) == pytest.approx(reference.ssim(img, ref), abs=1e-12)
