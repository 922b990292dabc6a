"""The six multiblock phase scripts, run in order on tiny same-size pairs made here in the RealSR layout.

The pairs are made with numpy/scipy from scikit-image photos (HR: 64x64 crops; LR: the HR blurred, same
size), not with ``data.synth``, as a user with their own pairs would. Every script runs through its
``main(argv)`` into one run folder; the error paths run as real subprocesses or through ``cli_entry``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from core.checkpoint import load_checkpoint, save_checkpoint
from core.errors import cli_entry
from data.io import read_image
from pipelines.multiblock.run_folder import sha256
from tests.scripts.helpers import load_script, run_script

pytestmark = pytest.mark.slow  # the phase chain, in-process and as subprocesses

TEST_SET = "RealSR-Canon-x2-test"
N_TRAIN, N_TEST = 8, 4
ARCH = ["N_FEATS=8", "N_RESBLOCKS=2"]
BATCHES = ["PATCH_SIZE=24", "BATCH_SIZE=4"]
# A few hundred iterations beat identity by a wide margin: Adam 2e-3 in the unclamped stage (the report's
# Adadelta needs thousands), then a short clamped stage. Blocks 2 and 3 start from an underfit parent applied
# once more (INIT=inherit), which oversharpens at first; they need their own short recovery.
PHASE1 = [*ARCH, *BATCHES, "WARMUP_OPTIMIZER=adam", "LR_WARMUP=2e-3", "ITERS_WARMUP=200", "ITERS_CLAMP_HIGH=100",
          "LR_CLAMP_HIGH=1e-3", "ITERS_CLAMP_LOW=0", "EVAL_EVERY=50"]
PHASE23 = [*ARCH, *BATCHES, "WARMUP_OPTIMIZER=adam", "LR_WARMUP=1e-3", "ITERS_WARMUP=60", "ITERS_CLAMP_HIGH=60",
           "LR_CLAMP_HIGH=5e-4", "ITERS_CLAMP_LOW=0", "EVAL_EVERY=30"]
PHASE4 = [*BATCHES, "ITERS_HIGH=40", "LR_HIGH=3e-4", "ITERS_LOW=0", "EVAL_EVERY=20"]


def sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def make_pairs(root: Path, size: int = 64, sigma: float = 1.0) -> None:
    """RealSR/Canon/{Train,Test}/2/Canon_NNN_{HR,LR2}.png: two crops per photo, LR = blurred HR."""
    from skimage import data as skdata

    photos = {"Train": ("astronaut", "chelsea", "rocket", "camera"), "Test": ("coffee", "immunohistochemistry")}
    for split, names in photos.items():
        folder = root / "RealSR" / "Canon" / split / "2"
        folder.mkdir(parents=True)
        number = 0
        for name in names:
            image = getattr(skdata, name)()
            image = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image[:, :, :3]
            h, w = image.shape[:2]
            for top, left in ((h // 4, w // 4), (h // 2, w // 2)):
                number += 1
                hr = image[top : top + size, left : left + size].astype(np.float64) / 255
                lr = gaussian_filter(hr, sigma=(sigma, sigma, 0))
                for side, array in (("HR", hr), ("LR2", lr)):
                    pixels = np.clip(np.round(array * 255), 0, 255).astype(np.uint8)
                    Image.fromarray(pixels).save(folder / f"Canon_{number:03d}_{side}.png")


def run_phase(script: str, data: Path, out: Path, settings: list[str] | None = None) -> None:
    load_script(script).main(["--data", str(data), "--out", str(out), "--device", "cpu", *sets(settings or [])])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions gain nothing from threads, and on a shared CPU several threads cost 10x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def chain(one_thread, tmp_path_factory) -> tuple[Path, Path]:
    """(data root, run folder) after phase1_1.py ... phase4.py, in order."""
    base = tmp_path_factory.mktemp("multiblock")
    data, run = base / "data", base / "run"
    make_pairs(data)
    for script, settings in (("phase1_1.py", PHASE1), ("phase1_2.py", None), ("phase2_1.py", PHASE23),
                             ("phase2_2.py", None), ("phase3.py", PHASE23), ("phase4.py", PHASE4)):
        run_phase(script, data, run, settings)
    return data, run


def copy_run(run: Path, target: Path, names: tuple[str, ...]) -> Path:
    """A run folder holding copies of ``names`` (files or folders) from ``run``."""
    target.mkdir()
    for name in names:
        source = run / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target / name)
    return target


def lr_files(run: Path, stage: int) -> list[Path]:
    return sorted((run / f"LR_{stage}").glob("*/*.png"))


def mtimes(paths: list[Path]) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in paths}


def is_16bit_png(path: Path) -> bool:
    head = path.read_bytes()[:25]
    return head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and head[24] == 16


# ------------------------------------------------------------------------------------ the chain
def test_checkpoints_and_lossless_lr_folders(chain):
    data, run = chain
    for name in ("N1.pt", "N2.pt", "N3.pt", "N.pt"):
        assert (run / name).is_file(), name
    for stage in (1, 2, 3):
        for split, count in (("train", N_TRAIN), ("test", N_TEST)):
            files = sorted((run / f"LR_{stage}" / split).glob("*.png"))
            assert [f.stem for f in files] == [f"Canon_{i:03d}" for i in range(1, count + 1)]
            for path in files:
                assert is_16bit_png(path), path
                image = read_image(path)
                hr = read_image(data / "RealSR/Canon" / split.capitalize() / "2" / f"{path.stem}_HR.png")
                assert image.dtype == np.uint16 and image.shape == hr.shape
        manifest = json.loads((run / f"LR_{stage}" / "manifest.json").read_text())
        assert manifest["complete"] is True and manifest["images"] == N_TRAIN + N_TEST
        assert manifest["checkpoint"] == f"N{stage}.pt"
        assert manifest["checkpoint_sha256"] == sha256(run / f"N{stage}.pt")


def test_every_phase_beats_identity_under_both_protocols(chain):
    _data, run = chain
    results = json.loads((run / "results.json").read_text())
    for phase in ("phase1", "phase2", "phase3", "phase4"):
        scores = results[phase]["metrics"][TEST_SET]
        for metric in ("psnr_rgb_report", "psnr_y"):
            assert scores["model"][metric] > scores["identity"][metric], (phase, metric, scores)
        assert {"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "psnr_rgb_report"} <= set(scores["model"])
    assert "input" in results["phase2"]["metrics"][TEST_SET]  # LR_1, the block's own input, beside


def test_plots_per_phase_and_across_phases(chain):
    _data, run = chain
    for name in ("phases.png", "curves_N1.png", "curves_N2.png", "curves_N3.png", "curves_N.png"):
        assert (run / name).stat().st_size > 0, name
    settings = json.loads((run / "settings.json").read_text())
    assert set(settings) == {"N1", "N2", "N3", "N"} and settings["N2"]["INIT"] == "inherit"


# ------------------------------------------------------------------------------ regeneration
def test_rerun_with_the_same_checkpoint_is_skipped(chain, capsys):
    data, run = chain
    before = mtimes([*lr_files(run, 1), run / "LR_1" / "manifest.json"])
    capsys.readouterr()
    run_phase("phase1_2.py", data, run)
    assert "up to date" in capsys.readouterr().out
    assert mtimes([*lr_files(run, 1), run / "LR_1" / "manifest.json"]) == before


def test_changed_checkpoint_regenerates(chain, tmp_path, capsys):
    data, run = chain
    copy = copy_run(run, tmp_path / "run", ("N1.pt", "LR_1"))
    old = read_image(copy / "LR_1" / "test" / "Canon_001.png")
    state = load_checkpoint(copy / "N1.pt")
    state["model"]["tail.bias"] = state["model"]["tail.bias"] + 0.02
    save_checkpoint(copy / "N1.pt", state)
    capsys.readouterr()
    run_phase("phase1_2.py", data, copy)
    assert f"wrote {N_TRAIN + N_TEST} images (0 already there)" in capsys.readouterr().out
    manifest = json.loads((copy / "LR_1" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["checkpoint_sha256"] == sha256(copy / "N1.pt")
    assert not np.array_equal(read_image(copy / "LR_1" / "test" / "Canon_001.png"), old)


def test_killed_regeneration_resumes_with_the_missing_images_only(chain, tmp_path, capsys):
    data, run = chain
    copy = copy_run(run, tmp_path / "run", ("N1.pt", "LR_1"))
    manifest_path = copy / "LR_1" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "complete": False}))
    files = lr_files(copy, 1)
    removed, kept = files[1::4], [f for i, f in enumerate(files) if i % 4 != 1]
    for path in removed:
        path.unlink()
    before = mtimes(kept)
    capsys.readouterr()
    run_phase("phase1_2.py", data, copy)
    out = capsys.readouterr().out
    assert f"wrote {len(removed)} images ({len(kept)} already there)" in out
    assert all(path.is_file() for path in removed) and mtimes(kept) == before
    assert json.loads(manifest_path.read_text())["complete"] is True


def test_lr_2_follows_a_regenerated_lr_1(chain, tmp_path, capsys):
    """LR_2's manifest records which N1.pt made its input: a new LR_1 makes LR_2 stale, same N2.pt or not."""
    data, run = chain
    copy = copy_run(run, tmp_path / "run", ("N1.pt", "LR_1", "N2.pt", "LR_2"))
    state = load_checkpoint(copy / "N1.pt")
    state["model"]["tail.bias"] = state["model"]["tail.bias"] - 0.02
    save_checkpoint(copy / "N1.pt", state)
    run_phase("phase1_2.py", data, copy)
    capsys.readouterr()
    run_phase("phase2_2.py", data, copy)
    assert f"wrote {N_TRAIN + N_TEST} images" in capsys.readouterr().out
    manifest = json.loads((copy / "LR_2" / "manifest.json").read_text())
    assert manifest["input_checkpoint_sha256"] == sha256(copy / "N1.pt")


# ----------------------------------------------------------------------------- out of order
def test_phase2_1_into_an_empty_folder_names_the_scripts_to_run_first(chain, tmp_path):
    data, _run = chain
    empty = tmp_path / "empty"
    done = run_script("phase2_1.py", "--data", str(data), "--out", str(empty), "--device", "cpu")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert "phase1_1.py" in lines[0] and "phase1_2.py" in lines[0] and "Traceback" not in done.stderr
    assert not empty.exists() or not any(empty.iterdir())  # nothing written


def test_phase4_without_n3_names_phase3(chain, tmp_path, capsys):
    data, run = chain
    copy = copy_run(run, tmp_path / "run", ("N1.pt", "N2.pt"))
    with pytest.raises(SystemExit) as stop:
        cli_entry(load_script("phase4.py").main, ["--data", str(data), "--out", str(copy), "--device", "cpu"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "phase3.py" in err[0] and "N3.pt" in err[0]


def test_lr_folder_made_by_an_older_checkpoint_is_refused(chain, tmp_path, capsys):
    data, run = chain
    copy = copy_run(run, tmp_path / "run", ("N1.pt", "LR_1"))
    state = load_checkpoint(copy / "N1.pt")
    state["selected_step"] = -1  # same weights, other file: LR_1 no longer provably made by it
    save_checkpoint(copy / "N1.pt", state)
    with pytest.raises(SystemExit):
        cli_entry(load_script("phase2_1.py").main, ["--data", str(data), "--out", str(copy), "--device", "cpu"])
    err = capsys.readouterr().err
    assert "older N1.pt" in err and "phase1_2.py" in err


# ------------------------------------------------------------------------------------- INIT
@pytest.mark.parametrize("init", ["inherit", "fresh"])
def test_phase2_starts_from_n1_only_when_inherited(chain, tmp_path, init):
    """With no iterations, N2.pt is the starting block: N1's weights (inherit) or a new init (fresh)."""
    data, run = chain
    copy = copy_run(run, tmp_path / "run", ("N1.pt", "LR_1"))
    no_training = ["ITERS_WARMUP=0", "ITERS_CLAMP_HIGH=0", "ITERS_CLAMP_LOW=0"]
    run_phase("phase2_1.py", data, copy, [*ARCH, f"INIT={init}", *no_training])
    n1, n2 = (load_checkpoint(copy / name)["model"] for name in ("N1.pt", "N2.pt"))
    same = all(torch.equal(n1[key], n2[key]) for key in n1)
    assert same == (init == "inherit")
