"""The six multiblock phase scripts, run in order on tiny same-size pairs made here in the RealSR layout.

The pairs are made with numpy/scipy from scikit-image photos (HR: 64x64 crops; LR: the HR blurred, same
size), not with ``data.synth``, as a user with their own pairs would. The chain runs as ``make phases`` with
one settings list for all six scripts; the other checks run a script through its ``main(argv)``, as a real
subprocess, or through ``cli_entry``. Two more chains, in-process, swap the residual block (``RESBLOCK=rb``, ``naf``).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from core.checkpoint import load_checkpoint, save_checkpoint
from core.entry import cli_entry
from core.runs import sha256
from data.io import read_image
from tests.scripts.helpers import REPO, load_script, run_script

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # the phase chain, in-process and run

TEST_SET = "RealSR-Canon-x2-test"
N_TRAIN, N_TEST = 8, 4
ARCH = ["N_FEATS=8", "N_RESBLOCKS=2"]
# One list for all six scripts, as `make phases ARGS=...` passes it: the tiny preset (seconds per phase), the
# architecture repeated (run-wide: equal values are accepted by the later phases), and a phase-4 setting that
# the other scripts accept and ignore.
ONE_LIST = ["PRESET=tiny", *ARCH, "ITERS_HIGH=40"]


PHASES = ("phase1_1.py", "phase1_2.py", "phase2_1.py", "phase2_2.py", "phase3.py", "phase4.py")


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


@pytest.fixture(scope="module")
def chain(one_thread, tmp_path_factory) -> tuple[Path, Path]:
    """(data root, run folder) after phase1_1.py ... phase4.py, in order, run as a user runs them:
    `make phases PRESET=tiny ARGS="--set ..."` (one identical command line for all six)."""
    base = tmp_path_factory.mktemp("multiblock")
    data, run = base / "data", base / "run"
    make_pairs(data)
    if shutil.which("make") is None:  # the same six command lines, in-process
        for script in PHASES:
            run_phase(script, data, run, ONE_LIST)
        return data, run
    preset, *others = ONE_LIST
    done = subprocess.run(["make", "-s", "-o", ".venv/.installed", "phases", f"PY={sys.executable}", f"DATA={data}",
                           f"RUN={run}", f"PRESET={preset.partition('=')[2]}",
                           f"ARGS=--device cpu {' '.join(sets(others))}"],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
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


# ------------------------------------------------------------------------- another residual block
@pytest.fixture(scope="module")
def rb_chain(one_thread, tmp_path_factory) -> tuple[Path, Path]:
    """(data root, run folder) after the six scripts, in-process, with RESBLOCK=rb: RCABs without attention."""
    base = tmp_path_factory.mktemp("multiblock_rb")
    data, run = base / "data", base / "run"
    make_pairs(data)
    for script in PHASES:
        run_phase(script, data, run, [*ONE_LIST, "RESBLOCK=rb"])
    return data, run


def test_a_second_block_design_goes_through_the_six_phases(rb_chain):
    _data, run = rb_chain
    assert json.loads((run / "run.json").read_text())["settings"]["RESBLOCK"] == "rb"
    for name in ("N1.pt", "N2.pt", "N3.pt", "N.pt"):
        state = load_checkpoint(run / name)
        assert state["meta"]["resblock"] == "rb", name
        assert not any("attention" in key for key in state["model"]), name
        assert any(key.endswith("body.1.conv2.weight") for key in state["model"]), name
    for stage in (1, 2, 3):
        manifest = json.loads((run / f"LR_{stage}" / "manifest.json").read_text())
        assert manifest["complete"] is True and manifest["images"] == N_TRAIN + N_TEST
    results = json.loads((run / "results.json").read_text())
    for phase in ("phase1", "phase2", "phase3", "phase4"):
        scores = results[phase]["metrics"][TEST_SET]
        for metric in ("psnr_rgb_report", "psnr_y"):  # measured: 3.7 to 5.2 dB above identity
            assert scores["model"][metric] > scores["identity"][metric], (phase, metric, scores)


def test_a_later_phase_given_the_other_block_design_stops(rb_chain, tmp_path, capsys):
    data, run = rb_chain
    copy = copy_run(run, tmp_path / "run", ("run.json", "N1.pt", "LR_1"))
    with pytest.raises(SystemExit):
        cli_entry(load_script("phase2_1.py").main, ["--data", str(data), "--out", str(copy), "--device", "cpu",
                                                    *sets(["RESBLOCK=rcab"])])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: RESBLOCK='rcab' (--set) differs from RESBLOCK='rb' recorded"), err


def test_the_nafnet_style_block_trains_through_the_six_phases(one_thread, tmp_path):
    """The block added in one file (models/blocks/naf.py) with a setting of its own, on the tiny chain."""
    data, run = tmp_path / "data", tmp_path / "run"
    make_pairs(data)
    for script in PHASES:
        run_phase(script, data, run, ["PRESET=tiny", "RESBLOCK=naf", "NAF_EXPANSION=3"])
    assert json.loads((run / "run.json").read_text())["settings"]["NAF_EXPANSION"] == 3
    for name in ("N1.pt", "N2.pt", "N3.pt", "N.pt"):
        state = load_checkpoint(run / name)
        assert (state["meta"]["resblock"], state["meta"]["naf_expansion"]) == ("naf", 3), name
    results = json.loads((run / "results.json").read_text())
    for phase in ("phase1", "phase2", "phase3", "phase4"):
        scores = results[phase]["metrics"][TEST_SET]
        assert scores["model"]["psnr_rgb_report"] > scores["identity"]["psnr_rgb_report"], (phase, scores)


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


# ------------------------------------------------------------------------------- one run, one configuration
def snapshot(folder: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*")}


def test_run_wide_settings_are_recorded_in_the_run_its_checkpoints_and_lr_folders(chain):
    _data, run = chain
    record = json.loads((run / "run.json").read_text())
    assert record["recorded_by"] == "phase1_1.py" and record["seed"] == 0
    assert record["settings"] | {"PRESET": "tiny", "N_FEATS": 8, "N_RESBLOCKS": 2, "CAMERA": "Canon"} == \
        record["settings"]
    assert record["data"]["train_pairs"] == N_TRAIN and len(record["data"]["fingerprint"]) == 64
    for name in ("N1.pt", "N2.pt", "N3.pt", "N.pt"):
        assert load_checkpoint(run / name)["meta"]["run"] == record, name
    for stage in (1, 2, 3):
        assert json.loads((run / f"LR_{stage}" / "manifest.json").read_text())["run"] == record
    settings = json.loads((run / "settings.json").read_text())
    for section in ("N1", "N2", "N3", "N"):
        assert settings[section]["PRESET"] == "tiny" and settings[section]["N_FEATS"] == 8, section
    assert settings["N2"]["ITERS_WARMUP"] == 150  # the tiny preset reached phase 2 through the record


@pytest.mark.parametrize(("assignment", "recorded"), [("CAMERA=Nikon", "'Canon'"), ("SCALE=3", "2"),
                                                      ("N_FEATS=16", "8")])
def test_a_different_run_wide_value_stops_a_later_phase_before_any_work(chain, tmp_path, assignment, recorded):
    data, run = chain
    copy = copy_run(run, tmp_path / "run", ("run.json", "settings.json", "N1.pt", "LR_1"))
    before = snapshot(copy)
    done = run_script("phase2_1.py", "--data", str(data), "--out", str(copy), "--device", "cpu",
                      *sets([*ONE_LIST, assignment]), env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr
    name, _, value = assignment.partition("=")
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"error: {name}={value if name != 'CAMERA' else repr(value)} (--set) differs from "
                               f"{name}={recorded} recorded in {copy / 'run.json'}"), lines[0]
    assert snapshot(copy) == before


def test_the_same_pairs_moved_and_renamed_as_published_match_other_pairs_do_not(chain, tmp_path, capsys):
    data, run = chain
    moved = tmp_path / "moved"
    shutil.copytree(data / "RealSR", moved / "RealSR(V3)")  # the name the release unpacks under
    copy = copy_run(run, tmp_path / "run", ("run.json", "N1.pt", "LR_1"))
    capsys.readouterr()
    run_phase("phase1_2.py", moved, copy)
    assert "up to date" in capsys.readouterr().out
    other = tmp_path / "other"
    make_pairs(other, size=48)
    with pytest.raises(SystemExit):
        cli_entry(load_script("phase1_2.py").main, ["--data", str(other), "--out", str(copy), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"differ from the ones recorded in {copy / 'run.json'}" in err[0], err


def test_config_replays_a_phase_and_set_still_wins(chain, tmp_path):
    """phase1_1.py --config <run>/settings.json (its N1 section) into a new folder, with two --set on top."""
    data, run = chain
    replay = tmp_path / "replay"
    load_script("phase1_1.py").main(["--data", str(data), "--out", str(replay), "--device", "cpu", "--config",
                                     str(run / "settings.json"), *sets(["ITERS_WARMUP=0", "ITERS_CLAMP_HIGH=0"])])
    original, replayed = (json.loads((folder / "settings.json").read_text())["N1"] for folder in (run, replay))
    assert {key for key in original if original[key] != replayed.get(key)} == \
        {"ITERS_WARMUP", "ITERS_CLAMP_HIGH", "command"}
    assert "--config" in replayed["command"] and "--config" not in original["command"]
    assert json.loads((replay / "run.json").read_text())["settings"] == \
        json.loads((run / "run.json").read_text())["settings"]


def test_unknown_names_are_still_refused_and_missing_realsr_names_the_folders(tmp_path):
    done = run_script("phase1_2.py", "--out", str(tmp_path / "run"), "--set", "N_FEAT=8")
    assert done.returncode == 2 and done.stderr.startswith("error: --set N_FEAT: unknown setting; known settings:")
    done = run_script("phase1_1.py", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--set", "PRESET=tiny")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    for name in ("RealSR", "RealSR(V3)", "RealSR_V3"):
        assert str(tmp_path / name / "Canon" / "Train" / "2") in lines[0]
    assert not (tmp_path / "run").exists()


def test_help_lists_own_run_wide_and_ignored_settings_and_the_presets():
    done = run_script("phase2_2.py", "--help")
    assert done.returncode == 0
    text = done.stdout
    assert "settings of this script: none" in text
    assert "N_FEATS=64  feature channels C (report: 64)" in text  # run-wide, with its comment
    assert "tiny: " in text and "N_FEATS=8" in text
    assert "accepted and ignored here" in text and "ITERS_HIGH" in text


def test_a_finished_run_publishes_its_network_with_its_provenance(chain, tmp_path: Path):
    from pipelines.multiblock.export import load_network
    from pipelines.multiblock.publish import publish

    _data, run = chain
    target = publish(run, "multiblock_test", command="make phases PRESET=tiny", out_dir=tmp_path)
    entry = json.loads((tmp_path / "multiblock_test.json").read_text())
    record = json.loads((run / "run.json").read_text())
    assert entry["data"]["fingerprint"] == record["data"]["fingerprint"] and entry["seed"] == record["seed"]
    assert set(entry["metrics"]) == {"phase1", "phase2", "phase3", "phase4"}
    assert entry["phase_commands"]["N"].startswith("python phase4.py ")  # each phase's command line
    assert entry["settings"]["N1"]["N_FEATS"] == 8 and entry["command"] == "make phases PRESET=tiny"
    shipped, _ = load_network(target)
    original, _ = load_network(run / "N.pt")
    x = torch.rand(1, 3, 20, 18)
    assert torch.equal(shipped(x), original(x))
