"""The phase scripts on pairs in City100's layout and in the generic HR/LR layout, made here (64x64 crops of
scikit-image photos, LR = the HR blurred, same size): phase 1-1 trains and scores the dataset's test pairs,
the dataset is recorded as run-wide, and its regeneration follows."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from core.entry import cli_entry
from tests.scripts.helpers import load_script

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # phase scripts in-process, seconds each

TINY = ["--set", "PRESET=tiny", "--set", "ITERS_WARMUP=30", "--set", "ITERS_CLAMP_HIGH=30", "--device", "cpu"]


def crops(count: int, size: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` (hr, lr) uint8 pairs: crops of scikit-image photos, LR blurred."""
    from skimage import data as skdata

    found = []
    for name in ("astronaut", "chelsea", "rocket", "coffee", "camera"):
        image = getattr(skdata, name)()
        image = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image[:, :, :3]
        for top in range(64, image.shape[0] - size, 96):
            hr = image[top:top + size, 100:100 + size].astype(np.float64) / 255
            lr = gaussian_filter(hr, sigma=(1.0, 1.0, 0))
            found.append(tuple(np.clip(np.round(a * 255), 0, 255).astype(np.uint8) for a in (hr, lr)))
            if len(found) == count:
                return found
    raise AssertionError("not enough crops")


def test_city100_layout_phase1_scores_its_test_split_and_records_the_dataset(tmp_path: Path, capsys):
    folder = tmp_path / "data" / "City100" / "City100_NikonD5500"
    folder.mkdir(parents=True)
    numbers = [*range(1, 8), 16]  # 001 and 016 are test scenes, 002-007 train
    for number, (hr, lr) in zip(numbers, crops(len(numbers)), strict=True):
        Image.fromarray(hr).save(folder / f"{number:03d}H.PNG", format="PNG")
        Image.fromarray(lr).save(folder / f"{number:03d}L.PNG", format="PNG")
    run = tmp_path / "run"
    common = ["--data", str(tmp_path / "data"), "--out", str(run)]
    load_script("phase1_1.py").main([*common, *TINY, "--set", "DATASET=city100", "--set", "CAMERA=NikonD5500"])
    results = json.loads((run / "results.json").read_text())
    scores = results["phase1"]["metrics"]["City100-NikonD5500-test"]
    assert scores["model"]["psnr_rgb"] > 30 and scores["identity"]["psnr_rgb"] > 30  # 60 iterations: no ranking
    record = json.loads((run / "run.json").read_text())
    assert record["settings"]["DATASET"] == "city100" and record["data"]["test_pairs"] == 2
    assert record["data"]["train_pairs"] == 6
    load_script("phase1_2.py").main(common)  # the dataset and camera come from run.json
    assert sorted(path.name for path in (run / "LR_1" / "test").iterdir()) == ["001.png", "016.png"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        cli_entry(load_script("phase1_2.py").main, [*common, "--set", "DATASET=realsr"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1
    assert err[0].startswith("error: DATASET='realsr' (--set) differs from DATASET='city100' recorded in"), err


def test_paired_layout_phase1_and_its_mistakes_before_any_work(tmp_path: Path, capsys):
    data = tmp_path / "my_pairs"
    pairs = crops(7)
    for split, chosen in (("train", pairs[:5]), ("test", pairs[5:])):
        for index, (hr, lr) in enumerate(chosen):
            for side, image in (("HR", hr), ("LR", lr)):
                (data / split / side).mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(data / split / side / f"img{index}.png")
    run = tmp_path / "run"
    load_script("phase1_1.py").main(["--data", str(data), "--out", str(run), *TINY, "--set", "DATASET=paired"])
    results = json.loads((run / "results.json").read_text())
    assert set(results["phase1"]["metrics"]) == {"my_pairs-test"}
    (data / "test" / "LR" / "img1.png").unlink()
    Image.fromarray(pairs[0][1][:32]).save(data / "train" / "LR" / "img0.png")
    for problem in ("no LR partner", "size mismatch"):
        capsys.readouterr()
        with pytest.raises(SystemExit):
            cli_entry(load_script("phase1_1.py").main, ["--data", str(data), "--out", str(tmp_path / problem),
                                                        *TINY, "--set", "DATASET=paired"])
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and problem in err[0], err
        assert not (tmp_path / problem).exists()  # refused before anything is written
        Image.fromarray(pairs[6][1]).save(data / "test" / "LR" / "img1.png")
