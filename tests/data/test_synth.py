from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skimage import data as skdata

from core.entry import cli_entry
from core.errors import UserError
from data.io import read_image, write_image
from data.paired import find_realsr_pairs, load_pairs
from data.synth import Degradation, degrade, main, prepare_hr, synthesise_realsr


def photos() -> list[tuple[str, np.ndarray]]:
    """Small crops of real photos with odd sizes (so modcrop matters)."""
    return [
        ("astronaut", skdata.astronaut()[40:101, 180:253]),
        ("chelsea", skdata.chelsea()[60:121, 100:177]),
        ("coffee", skdata.coffee()[100:165, 200:271]),
    ]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def test_writes_realsr_layout_of_same_size_pairs(tmp_path: Path) -> None:
    images = photos()
    written = synthesise_realsr(tmp_path, images[:2], images[2:], camera="Canon", scale=2, seed=0)
    folder = tmp_path / "RealSR" / "Canon" / "Train" / "2"
    assert sorted(p.name for p in folder.iterdir()) == [
        "Canon_001_HR.png", "Canon_001_LR2.png", "Canon_002_HR.png", "Canon_002_LR2.png"
    ]
    assert [p.hr_path for p in written["Test"]] == [tmp_path / "RealSR/Canon/Test/2/Canon_001_HR.png"]
    train = load_pairs(find_realsr_pairs(tmp_path, "Canon", 2, "Train"))
    assert train.names == ["Canon_001", "Canon_002"]
    assert [hr.shape for hr in train.hr] == [(60, 72, 3), (60, 76, 3)]
    assert np.array_equal(train.hr[0], images[0][1][:60, :72])
    for lr, hr in train.arrays:
        assert lr.shape == hr.shape and lr.dtype == np.uint8
        assert 20.0 < psnr(lr, hr) < 35.0
    manifest = json.loads((tmp_path / "RealSR/Canon/synthesis_x2.json").read_text())
    assert [(r["split"], r["name"], r["source"]) for r in manifest["pairs"]] == [
        ("Train", "Canon_001", "astronaut"),
        ("Train", "Canon_002", "chelsea"),
        ("Test", "Canon_001", "coffee"),
    ]
    assert all(0.4 <= r["blur_sigma"] <= 1.2 and 70 <= r["jpeg_quality"] <= 95 for r in manifest["pairs"])


def test_degradation_is_deterministic_for_a_seed() -> None:
    hr = prepare_hr(photos()[0][1], 3)
    lr_a, params_a = degrade(hr, 3, np.random.default_rng([5, 0, 1]))
    lr_b, params_b = degrade(hr, 3, np.random.default_rng([5, 0, 1]))
    lr_c, params_c = degrade(hr, 3, np.random.default_rng([6, 0, 1]))
    assert lr_a.shape == hr.shape == (60, 72, 3)
    assert params_a == params_b and np.array_equal(lr_a, lr_b)
    assert params_a != params_c and not np.array_equal(lr_a, lr_c)


def test_stronger_degradation_lowers_psnr() -> None:
    hr = prepare_hr(photos()[1][1], 2)
    mild, _ = degrade(hr, 2, np.random.default_rng(0), Degradation((0.3, 0.3), (0.0, 0.0), (95, 95)))
    harsh, _ = degrade(hr, 2, np.random.default_rng(0), Degradation((2.0, 2.0), (10.0, 10.0), (30, 30)))
    assert psnr(harsh, hr) < psnr(mild, hr) - 2.0


def test_max_size_centre_crops_before_modcrop() -> None:
    image = np.arange(101 * 90 * 3, dtype=np.uint32).reshape(101, 90, 3).astype(np.uint8)
    hr = prepare_hr(image, 2, max_size=41)
    assert hr.shape == (40, 40, 3)
    assert np.array_equal(hr, image[30:70, 24:64])


def test_refuses_to_mix_with_existing_pairs_unless_overwrite(tmp_path: Path) -> None:
    images = photos()
    synthesise_realsr(tmp_path, images[:2], images[2:])
    with pytest.raises(UserError, match=r"Train/2 already holds images; .*--overwrite"):
        synthesise_realsr(tmp_path, images[:1], images[2:])
    written = synthesise_realsr(tmp_path, images[:1], images[2:], overwrite=True)
    assert len(written["Train"]) == 1
    assert len(find_realsr_pairs(tmp_path)) == 1


def test_cli_writes_pairs_from_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, image in photos():
        write_image(tmp_path / ("test" if name == "coffee" else "train") / f"{name}.png", image)
    out = tmp_path / "out"
    argv = ["--train", str(tmp_path / "train"), "--test", str(tmp_path / "test"), "--out", str(out),
            "--camera", "Nikon", "--scale", "4", "--seed", "3"]
    cli_entry(main, argv)
    printed = capsys.readouterr().out
    assert f"Train: wrote 2 pairs to {out / 'RealSR/Nikon/Train/4'}" in printed
    assert f"Test: wrote 1 pairs to {out / 'RealSR/Nikon/Test/4'}" in printed
    hr = read_image(out / "RealSR/Nikon/Test/4/Nikon_001_HR.png")
    assert hr.shape == read_image(out / "RealSR/Nikon/Test/4/Nikon_001_LR4.png").shape == (64, 68, 3)


def test_cli_missing_folder_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(SystemExit) as exit_info:
        cli_entry(main, ["--train", str(missing), "--test", "skimage-test", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: HR folder not found: {missing}; pass a folder of images or "
                                "skimage-train or skimage-test"]
    assert not (tmp_path / "out").exists()
