from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.dist import DistInfo
from core.errors import UserError
from data.paired import (
    Pair,
    PairedImages,
    PatchSampler,
    find_realsr_pairs,
    load_pairs,
    lr_level_dir,
    pairs_with_lr_folder,
)


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def random_image(rng: np.random.Generator, h: int = 20, w: int = 24, high: int = 240) -> np.ndarray:
    return rng.integers(0, high, size=(h, w, 3), dtype=np.uint8)


def make_realsr(root: Path, names: list[str], offset: int = 7, split: str = "Train") -> Path:
    """Write pairs whose LR is HR + offset, in the given (unsorted) order; returns the pair folder."""
    folder = root / "RealSR" / "Canon" / split / "2"
    rng = np.random.default_rng(0)
    for name in names:
        hr = random_image(rng)
        save(folder / f"{name}_HR.png", hr)
        save(folder / f"{name}_LR2.png", hr + offset)
    return folder


def test_pairs_matched_by_name_not_order(tmp_path: Path) -> None:
    make_realsr(tmp_path, ["Canon_010", "Canon_002", "Canon_001"])
    pairs = find_realsr_pairs(tmp_path, "Canon", 2, "train")
    assert [p.name for p in pairs] == ["Canon_001", "Canon_002", "Canon_010"]
    assert [(p.lr_path.name, p.hr_path.name) for p in pairs][2] == ("Canon_010_LR2.png", "Canon_010_HR.png")
    images = load_pairs(pairs)
    assert images.names == ["Canon_001", "Canon_002", "Canon_010"]
    for lr, hr in images.arrays:
        assert lr.dtype == np.uint8 and lr.shape == hr.shape == (20, 24, 3)
        assert np.array_equal(lr.astype(int) - hr, np.full(hr.shape, 7))


def test_extra_lr_without_hr_is_named(tmp_path: Path) -> None:
    folder = make_realsr(tmp_path, ["Canon_001", "Canon_002"])
    save(folder / "Canon_000_LR2.png", random_image(np.random.default_rng(1)))
    with pytest.raises(UserError, match=r"LR image .*Canon_000_LR2\.png has no HR partner .*Canon_000_HR"):
        find_realsr_pairs(tmp_path)


def test_hr_without_lr_is_named(tmp_path: Path) -> None:
    folder = make_realsr(tmp_path, ["Canon_001", "Canon_002"])
    (folder / "Canon_002_LR2.png").unlink()
    with pytest.raises(UserError, match=r"HR image .*Canon_002_HR\.png has no LR partner .*Canon_002_LR2"):
        find_realsr_pairs(tmp_path)


def test_missing_folder_names_expected_layout(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        find_realsr_pairs(tmp_path, "Nikon", 3, "Test")
    message = str(err.value)
    assert str(tmp_path / "RealSR" / "Nikon" / "Test" / "3") in message
    assert "Nikon_001_HR.png + Nikon_001_LR3.png" in message


def test_empty_folder_and_foreign_names(tmp_path: Path) -> None:
    folder = tmp_path / "RealSR" / "Canon" / "Train" / "2"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("not an image")
    with pytest.raises(UserError, match="no image pairs in"):
        find_realsr_pairs(tmp_path)
    save(folder / "Canon_001_LR3.png", random_image(np.random.default_rng(0)))
    with pytest.raises(UserError, match=r"unexpected image .*Canon_001_LR3\.png"):
        find_realsr_pairs(tmp_path)
    with pytest.raises(UserError, match="unknown RealSR split 'val'"):
        find_realsr_pairs(tmp_path, split="val")


def test_size_mismatch_names_file_and_sizes(tmp_path: Path) -> None:
    folder = make_realsr(tmp_path, ["Canon_001", "Canon_002"])
    save(folder / "Canon_002_LR2.png", random_image(np.random.default_rng(0), h=10, w=12))
    expected = r"LR .*Canon_002_LR2\.png is 12x10 but HR .*Canon_002_HR\.png is 24x20"
    with pytest.raises(UserError, match=expected):
        load_pairs(find_realsr_pairs(tmp_path))


def test_lr_folder_replaces_lr_side(tmp_path: Path) -> None:
    make_realsr(tmp_path, ["Canon_001", "Canon_002"])
    pairs = find_realsr_pairs(tmp_path)
    lr_dir = lr_level_dir(tmp_path / "run", 1, "Train")
    assert lr_dir == tmp_path / "run" / "LR_1" / "train"
    with pytest.raises(UserError, match=r"LR folder not found: .*LR_1"):
        pairs_with_lr_folder(pairs, lr_dir)
    save(lr_dir / "Canon_002.png", np.zeros((20, 24, 3), np.uint8))
    with pytest.raises(UserError, match=r"LR image .*Canon_001\.png is missing \(HR is .*Canon_001_HR"):
        pairs_with_lr_folder(pairs, lr_dir)
    save(lr_dir / "Canon_001.png", np.full((20, 24, 3), 3, np.uint8))
    regenerated = pairs_with_lr_folder(pairs, lr_dir)
    assert regenerated == [
        Pair("Canon_001", lr_dir / "Canon_001.png", pairs[0].hr_path),
        Pair("Canon_002", lr_dir / "Canon_002.png", pairs[1].hr_path),
    ]
    assert load_pairs(regenerated).lr[0][0, 0].tolist() == [3, 3, 3]
    save(lr_dir / "Canon_003.png", np.zeros((20, 24, 3), np.uint8))
    with pytest.raises(UserError, match=r"LR image .*Canon_003\.png matches no HR image"):
        pairs_with_lr_folder(pairs, lr_dir)


def coordinate_images(h: int = 16, w: int = 20, offset: int = 0) -> PairedImages:
    """One pair whose pixels encode their position (R = row, G = column), LR = HR + offset."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    hr = np.stack([rows, cols, np.full_like(rows, 100)], axis=2).astype(np.uint8)
    pair = Pair("img", Path("lr.png"), Path("hr.png"))
    return PairedImages([pair], [hr + offset], [hr])


def dihedral_candidates(crop: np.ndarray) -> list[np.ndarray]:
    rotations = [np.rot90(crop, k) for k in range(4)]
    return rotations + [np.fliplr(r) for r in rotations]


def test_patches_are_aligned_crops_under_all_eight_transforms() -> None:
    images = coordinate_images(offset=50)
    hr_full = images.hr[0]
    sampler = PatchSampler(images, patch_size=5, batch_size=8, seed=3)
    seen = set()
    for step in range(16):
        lr, hr = sampler.batch(step)
        assert lr.shape == hr.shape == (8, 3, 5, 5) and lr.dtype == hr.dtype == torch.float32
        assert torch.equal(torch.round(lr * 255) - torch.round(hr * 255), torch.full_like(lr, 50))
        for patch in torch.round(hr * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy():
            top, left = int(patch[..., 0].min()), int(patch[..., 1].min())
            crop = hr_full[top : top + 5, left : left + 5]
            matches = [k for k, c in enumerate(dihedral_candidates(crop)) if np.array_equal(c, patch)]
            assert len(matches) == 1
            seen.add(matches[0])
    assert seen == set(range(8))


def test_identical_lr_and_hr_give_identical_patches() -> None:
    rng = np.random.default_rng(0)
    image = random_image(rng, 30, 40, high=256)
    images = PairedImages([Pair("a", Path("a"), Path("a"))], [image], [image])
    lr, hr = PatchSampler(images, 12, 6, seed=1).batch(0)
    assert torch.equal(lr, hr) and float(hr.max()) <= 1.0 and float(hr.min()) >= 0.0


def test_batches_are_a_pure_function_of_seed_and_step() -> None:
    images = coordinate_images(40, 40)
    first = PatchSampler(images, 8, 4, seed=7)
    again = PatchSampler(images, 8, 4, seed=7)
    lr_a, hr_a = first.batch(11)
    first.batch(12)
    lr_b, hr_b = again.batch(11)
    assert torch.equal(lr_a, lr_b) and torch.equal(hr_a, hr_b)
    assert not torch.equal(hr_a, first.batch(12)[1])
    assert not torch.equal(hr_a, PatchSampler(images, 8, 4, seed=8).batch(11)[1])


def test_rank_shards_concatenate_to_the_global_batch() -> None:
    images = coordinate_images(40, 40)
    sampler = PatchSampler(images, 8, 12, seed=0)
    lr, hr = sampler.batch(4)
    shards = [sampler.batch(4, DistInfo(rank=r, world_size=4)) for r in range(4)]
    assert all(s[0].shape == (3, 3, 8, 8) for s in shards)
    assert torch.equal(torch.cat([s[0] for s in shards]), lr)
    assert torch.equal(torch.cat([s[1] for s in shards]), hr)
    with pytest.raises(UserError, match="batch size 12 is not divisible by the 5 processes"):
        sampler.batch(0, DistInfo(rank=0, world_size=5))


def test_patches_cropped_on_the_device_equal_the_host_path() -> None:
    rng = np.random.default_rng(2)
    hr = [random_image(rng, 30 + 3 * i, 41 - 2 * i, high=256) for i in range(3)]
    lr = [(h.astype(np.uint16) * 257 + 3).astype(np.uint16) for h in hr]  # 16-bit LR_<i>, as phases write
    images = PairedImages([Pair(str(i), Path("x"), Path("y")) for i in range(3)], lr, hr)
    host = PatchSampler(images, 9, 8, seed=5)
    device = PatchSampler(images, 9, 8, seed=5).to(torch.device("cpu"))
    for step in range(12):
        for expected, got in zip(host.batch(step, DistInfo(rank=1, world_size=2)),
                                 device.batch(step, DistInfo(rank=1, world_size=2)), strict=True):
            assert got.dtype == torch.float32 and torch.equal(expected, got)


def test_uint16_lr_is_scaled_by_its_own_peak() -> None:
    hr = np.full((10, 10, 3), 255, np.uint8)
    lr = np.full((10, 10, 3), 32768, np.uint16)
    images = PairedImages([Pair("a", Path("a"), Path("b"))], [lr], [hr])
    lr_t, hr_t = PatchSampler(images, 4, 2).batch(0)
    assert torch.allclose(lr_t, torch.full_like(lr_t, 32768 / 65535))
    assert torch.equal(hr_t, torch.ones_like(hr_t))


def test_image_smaller_than_patch_is_named(tmp_path: Path) -> None:
    make_realsr(tmp_path, ["Canon_001"])
    images = load_pairs(find_realsr_pairs(tmp_path))
    with pytest.raises(UserError, match=r"image .*Canon_001_HR\.png is 24x20, smaller than the 21x21 patch"):
        PatchSampler(images, 21, 4)


def test_subset_keeps_names_and_arrays() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    images = PairedImages([Pair(n, Path(n), Path(n)) for n in "abc"], [image] * 3, [image + 1] * 3)
    held_out = images.subset([2, 0])
    assert held_out.names == ["c", "a"] and len(held_out) == 2 and held_out.hr[0][0, 0, 0] == 1


def test_sampler_is_far_faster_than_a_training_step() -> None:
    rng = np.random.default_rng(0)
    hr = [random_image(rng, 400, 600, high=256) for _ in range(8)]
    images = PairedImages([Pair(str(i), Path("x"), Path("y")) for i in range(8)], hr, hr)
    sampler = PatchSampler(images, 48, 16, seed=0)
    timings = []
    for step in range(20):
        start = time.perf_counter()
        sampler.batch(step)
        timings.append(time.perf_counter() - start)
    assert float(np.median(timings)) < 0.1
