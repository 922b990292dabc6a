"""espcn.py end to end on photos bundled with scikit-image (no dataset needed), plus its error paths."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import UserError
from core.runs import sha256
from data.io import read_image
from tests.scripts.helpers import load_script, run_script

pytestmark = pytest.mark.slow  # trains through espcn.py, in-process and as subprocesses

TRAIN = ["--set", "TRAIN_SET=skimage-train", "--set", "EVAL_SETS=skimage-test", "--set", "AUGMENT=true",
         "--set", "EPOCHS=4", "--set", "SCALE=2", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("espcn") / "run"
    load_script("espcn.py").main(["train", "--out", str(run), *TRAIN])
    return run


def test_train_writes_the_run_folder_and_beats_bicubic(trained: Path):
    for name in ("settings.json", "latest.pt", "best.pt", "log.csv", "results.json", "curves.png"):
        assert (trained / name).is_file(), name
    results = json.loads((trained / "results.json").read_text())
    scores = results["metrics"]["skimage-test"]
    assert set(scores) == {"model", "bicubic"}
    assert set(scores["model"]) >= {"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"}
    assert scores["model"]["psnr_y"] > scores["bicubic"]["psnr_y"]
    settings = json.loads((trained / "settings.json").read_text())
    assert settings["SCALE"] == 2 and settings["EPOCHS"] == 4 and settings["val_images"]
    sweep = (trained.parent / "results.csv").read_text().splitlines()
    assert "skimage-test/model/psnr_y" in sweep[0] and len(sweep) == 2


def test_eval_scores_any_folder_with_grey_and_odd_sized_images(trained: Path, tmp_path: Path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (61, 47), dtype=np.uint8), mode="L").save(folder / "grey.png")
    Image.fromarray(rng.integers(0, 255, (33, 51, 3), dtype=np.uint8)).save(folder / "odd.bmp")
    load_script("espcn.py").main(["eval", "--weights", str(trained / "best.pt"), "--set",
                                  f"EVAL_SETS={folder}", "--out", str(tmp_path / "eval")])
    out = capsys.readouterr().out
    assert "mine" in out and "bicubic" in out
    scores = json.loads((tmp_path / "eval" / "eval.json").read_text())["metrics"][str(folder)]
    assert np.isfinite(scores["model"]["psnr_y"]) and np.isfinite(scores["bicubic"]["ssim_rgb"])


def test_eval_writes_per_image_csv_figure_images_and_the_8bit_protocol(trained: Path, tmp_path: Path,
                                                                      monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no --out: a dated folder under ./runs
    load_script("espcn.py").main(["eval", "--weights", str(trained / "best.pt"), "--set", "EVAL_SETS=skimage-test",
                                  "--set", "EVAL_8BIT=true", "--set", "FIGURE_CROP=coffee:10,20,48",
                                  "--save-images"])
    assert "psnr_y_8bit" in capsys.readouterr().out
    (out,) = (tmp_path / "runs").glob("eval-*")
    lines = (out / "per_image.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[:4] == ["set", "name", "height", "width"] and len(lines) == 3
    assert {"model_psnr_y", "bicubic_ssim_rgb", "model_psnr_y_8bit", "bicubic_ssim_y_8bit"} <= set(header)
    coffee = dict(zip(header, lines[1].split(","), strict=True))
    assert coffee["name"] == "coffee" and (coffee["height"], coffee["width"]) == ("400", "600")
    means = json.loads((out / "eval.json").read_text())["metrics"]["skimage-test"]
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert means["model"]["psnr_y_8bit"] == pytest.approx(np.mean([float(r["model_psnr_y_8bit"]) for r in rows]))
    assert read_image(out / "images" / "skimage-test" / "coffee_x2.png").shape == (400, 600, 3)
    assert read_image(out / "compare_skimage-test.png").shape[1] > 600
    assert "BasicSR" in json.loads((out / "eval.json").read_text())["protocol"]


def test_self_ensemble_eval_writes_model_plus_beside_model_and_each_pass_time(trained: Path, tmp_path: Path, capsys):
    load_script("espcn.py").main(["eval", "--weights", str(trained / "best.pt"), "--set", "EVAL_SETS=skimage-test",
                                  "--set", "FIGURE=false", "--set", "SELF_ENSEMBLE=true", "--save-images",
                                  "--out", str(tmp_path / "eval")])
    printed = capsys.readouterr().out
    assert "model+" in printed and "model+ pass" in printed
    written = json.loads((tmp_path / "eval" / "eval.json").read_text())
    means = written["metrics"]["skimage-test"]
    assert list(means) == ["model", "model+", "bicubic"] and written["self_ensemble"] is True
    assert means["model+"]["psnr_y"] != means["model"]["psnr_y"]
    assert "x8 self-ensemble" in written["protocol"] and set(written["pass_seconds"]) == {"model", "model+"}
    header = (tmp_path / "eval" / "per_image.csv").read_text().splitlines()[0].split(",")
    assert {"model_psnr_y", "model+_psnr_y", "bicubic_psnr_y"} <= set(header)
    images = tmp_path / "eval" / "images" / "skimage-test"
    assert (images / "coffee_x2.png").is_file() and (images / "coffee_x2+.png").is_file()


def test_self_ensemble_upscale_refuses_videos_in_one_line(trained: Path, tmp_path: Path):
    (tmp_path / "clip.mp4").write_bytes(b"not read")
    result = run_script("espcn.py", "upscale", "--weights", str(trained / "best.pt"), str(tmp_path / "clip.mp4"),
                        "--set", "SELF_ENSEMBLE=true", "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: SELF_ENSEMBLE=true is for images, not videos ({tmp_path / 'clip.mp4'}): it would take 8x the time "
        "per frame; upscale the videos without it"]
    assert not (tmp_path / "out").exists()


def test_a_second_eval_into_the_same_folder_is_refused_and_the_first_kept(trained: Path, tmp_path: Path):
    args = ["eval", "--weights", str(trained / "best.pt"), "--set", "EVAL_SETS=skimage-test", "--set",
            "FIGURE=false", "--out", str(tmp_path / "eval")]
    load_script("espcn.py").main(args)
    first = (tmp_path / "eval" / "eval.json").read_bytes()
    with pytest.raises(UserError, match=r"already holds an evaluation \(eval.json\); choose another --out"):
        load_script("espcn.py").main(args)
    assert (tmp_path / "eval" / "eval.json").read_bytes() == first


def test_eval_rejects_a_crop_outside_the_image(trained: Path, tmp_path: Path):
    result = run_script("espcn.py", "eval", "--weights", str(trained / "best.pt"), "--set", "EVAL_SETS=skimage-test",
                        "--set", "FIGURE_CROP=coffee:590,0,48", "--out", str(tmp_path / "eval"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: FIGURE_CROP window 590,0,48 does not fit coffee (600x400")


def test_upscale_is_true_upscaling_of_files_and_folders(trained: Path, tmp_path: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.full((21, 13), 128, np.uint8), mode="L").save(folder / "grey.png")
    Image.fromarray(np.zeros((10, 17, 4), np.uint8), mode="RGBA").save(tmp_path / "rgba.png")
    load_script("espcn.py").main(["upscale", "--weights", str(trained / "best.pt"), str(folder),
                                  str(tmp_path / "rgba.png"), "--out", str(tmp_path / "out")])
    assert read_image(tmp_path / "out" / "grey_x2.png").shape == (42, 26, 3)
    assert read_image(tmp_path / "out" / "rgba_x2.png").shape == (20, 34, 3)


def test_upscale_into_the_same_folder_again_is_refused_until_overwrite(trained: Path, tmp_path: Path):
    """A second run into one --out, two inputs for one output name: one line each, nothing replaced."""
    grey = np.full((9, 11), 100, np.uint8)
    Image.fromarray(grey, mode="L").save(tmp_path / "a.png")
    out = tmp_path / "out"
    command = ["espcn.py", "upscale", "--weights", str(trained / "best.pt"), str(tmp_path / "a.png"), "--out", str(out)]
    assert run_script(*command).returncode == 0
    written = (out / "a_x2.png").read_bytes()
    (out / "a_x2.png").write_bytes(b"kept")
    again = run_script(*command)
    assert again.returncode == 2 and again.stderr.strip().splitlines() == [
        f"error: {out / 'a_x2.png'} already exists; pass --overwrite to replace it, or choose another --out"]
    assert (out / "a_x2.png").read_bytes() == b"kept"
    assert run_script(*command, "--overwrite").returncode == 0 and (out / "a_x2.png").read_bytes() == written
    Image.fromarray(grey).save(tmp_path / "a.bmp")
    two = tmp_path / "two"
    twice = run_script(*command[:4], str(tmp_path / "a.png"), str(tmp_path / "a.bmp"), "--out", str(two))
    assert twice.returncode == 2 and twice.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'a.png'} and {tmp_path / 'a.bmp'} would both be written to {two / 'a_x2.png'}; "
        "rename one, or run them with different --out"]
    assert not two.exists()
    solo = tmp_path / "solo"
    solo.mkdir()
    Image.fromarray(grey).save(solo / "a.png")
    once = run_script(*command[:4], str(solo / "a.png"), str(solo / "." / "a.png"), str(solo),
                      "--out", str(tmp_path / "once"))  # one file named three ways: upscaled once
    assert once.returncode == 0 and once.stdout.count("a_x2.png") == 1, once.stdout + once.stderr


def test_existing_run_without_resume_is_refused(trained: Path):
    result = run_script("espcn.py", "train", "--out", str(trained), *TRAIN)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {trained / 'latest.pt'} already holds a run at iteration "
        f"{json.loads((trained / 'log.csv').read_text().splitlines()[-1].split(',')[0])}; pass --resume to "
        "continue it, or choose another --out"]


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--data", "{tmp}", "--out", "{tmp}/run"], "error: no images in"),
    (["train", "--out", "{tmp}/run", "--set", "EPOCHS=many"], "error: --set EPOCHS='many': expected int"),
    (["train", "--out", "{tmp}/run", "--set", "EPOCH=3"], "error: --set EPOCH: unknown setting"),
    (["eval", "--weights", "{tmp}/missing.pt"], "error: weights not found"),
    (["upscale", "--weights", "{tmp}/bad.pt", "{tmp}/bad.pt"], "error: cannot read checkpoint"),
])
def test_user_errors_are_one_line_and_exit_2(tmp_path: Path, args, message):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    result = run_script("espcn.py", *[arg.format(tmp=tmp_path) for arg in args])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert not (tmp_path / "run" / "latest.pt").exists()


def test_bf16_training_where_its_kernels_cannot_run_is_refused_before_anything_is_written(tmp_path: Path):
    """As on an AVX2-only CPU (the switch CI uses): one line naming the setting and what the CPU lacks."""
    result = run_script("espcn.py", "train", "--out", str(tmp_path / "run"), *TRAIN, "--set", "PRECISION=bf16",
                        env={"SR_CPU_BF16": "off"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: PRECISION=bf16: bf16 is switched off (SR_CPU_BF16=off); use PRECISION=fp32 (or auto, which picks "
        "fp32 here)"]
    assert not (tmp_path / "run").exists()


def test_weights_of_another_architecture_are_refused(tmp_path: Path):
    from core.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "block.pt", {"model": {}, "meta": {"arch": "multiblock-block"}})
    result = run_script("espcn.py", "eval", "--weights", str(tmp_path / "block.pt"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: checkpoint {tmp_path / 'block.pt'} has arch='multiblock-block' but this run needs "
        "arch='espcn'; pass a matching checkpoint or change the settings"]


def test_init_weights_fine_tunes_from_a_trained_network(trained: Path, tmp_path: Path):
    """INIT_WEIGHTS=best.pt with a rate of 1e-12 (rates must be > 0) leaves the weights as they were, to 1e-9:
    the new run's first validation equals the old run's best, and its best.pt holds the same tensors."""
    run = tmp_path / "finetune"
    load_script("espcn.py").main(["train", "--out", str(run), *TRAIN, "--set", "EPOCHS=1", "--set",
                                  "LR_START=1e-12", "--set", "LR_END=1e-12",
                                  "--set", f"INIT_WEIGHTS={trained / 'best.pt'}"])
    before = torch.load(trained / "best.pt", weights_only=True)["model"]
    after = torch.load(run / "best.pt", weights_only=True)["model"]
    assert all(torch.allclose(before[key], after[key], rtol=0, atol=1e-9) for key in before)
    old = json.loads((trained / "results.json").read_text())["best_val_psnr_y"]
    assert json.loads((run / "results.json").read_text())["best_val_psnr_y"] == pytest.approx(old, abs=1e-6)
    recorded = json.loads((run / "settings.json").read_text())
    assert recorded["INIT_WEIGHTS"] == str(trained / "best.pt")
    assert recorded["init_weights"] == {"path": str(trained / "best.pt"), "sha256": sha256(trained / "best.pt"),
                                        "command": json.loads((trained / "settings.json").read_text())["command"],
                                        "seed": 0}


def test_init_weights_of_another_shape_are_refused_before_writing(trained: Path, tmp_path: Path):
    result = run_script("espcn.py", "train", "--out", str(tmp_path / "run"), *TRAIN, "--set", "SCALE=3",
                        "--set", f"INIT_WEIGHTS={trained / 'best.pt'}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: INIT_WEIGHTS={trained / 'best.pt'} holds an ESPCN with {{'scale': 2, 'channels': 1, "
        "'features': [64, 32]}; the settings ask for {'scale': 3, 'channels': 1, 'features': [64, 32]}"]
    assert not (tmp_path / "run").exists()


def test_ema_run_saves_the_average_as_the_weights_eval_scores(tmp_path: Path):
    run = tmp_path / "ema"
    load_script("espcn.py").main(["train", "--out", str(run), *TRAIN, "--set", "EPOCHS=2", "--set", "EMA=0.99"])
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["model"].keys() == best["trained_model"].keys()
    assert not all(torch.equal(best["model"][key], best["trained_model"][key]) for key in best["model"])
    load_script("espcn.py").main(["eval", "--weights", str(run / "best.pt"), "--set", "EVAL_SETS=skimage-test",
                                  "--out", str(tmp_path / "eval"), "--set", "FIGURE=false"])
    scored = json.loads((tmp_path / "eval" / "eval.json").read_text())["metrics"]["skimage-test"]["model"]
    trained = json.loads((run / "results.json").read_text())["metrics"]["skimage-test"]["model"]
    assert scored["psnr_y"] == pytest.approx(trained["psnr_y"], abs=1e-6)


def test_ema_outside_zero_one_is_refused_before_writing(tmp_path: Path):
    result = run_script("espcn.py", "train", "--out", str(tmp_path / "run"), *TRAIN, "--set", "EMA=1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: EMA=1.0: expected a number in [0, 1): a decay per step, e.g. 0.9999; 0 = off (--set EMA=...)"]
    assert not (tmp_path / "run").exists()


def test_a_fine_tune_resumes_without_its_init_weights_and_keeps_their_record(trained: Path, tmp_path: Path):
    init = tmp_path / "init.pt"
    init.write_bytes((trained / "best.pt").read_bytes())
    run = tmp_path / "finetune"
    args = ["train", "--out", str(run), *TRAIN, "--set", "EPOCHS=1", "--set", f"INIT_WEIGHTS={init}"]
    load_script("espcn.py").main(args)
    record = json.loads((run / "settings.json").read_text())["init_weights"]
    init.unlink()
    load_script("espcn.py").main([*args, "--resume"])
    assert json.loads((run / "settings.json").read_text())["init_weights"] == record
    assert record["sha256"] == sha256(trained / "best.pt")


def test_resume_with_other_settings_is_refused_and_the_run_folder_kept(trained: Path):
    before = {path.name: path.read_bytes() for path in trained.iterdir() if path.is_file()}
    recorded = json.loads((trained / "settings.json").read_text())
    result = run_script("espcn.py", "train", "--out", str(trained), *TRAIN, "--set", "LR_START=0.01",
                        "--seed", "7", "--resume")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --resume continues the run in {trained / 'latest.pt'}, which started with other settings: "
        f"LR_START={recorded['LR_START']!r} there, 0.01 now, seed={recorded['seed']!r} there, 7 now; resume with "
        "those values, or choose another --out"]
    assert {path.name: path.read_bytes() for path in trained.iterdir() if path.is_file()} == before


@pytest.mark.parametrize("setting, message", [
    ("SCHEDULE=step", "error: SCHEDULE='step': expected one of cosine, plateau (--set SCHEDULE=...)"),
    ("OPTIMIZER=adamw", "error: OPTIMIZER='adamw': expected one of adam, sgd (--set OPTIMIZER=...)"),
])
def test_a_bad_schedule_or_optimizer_on_resume_leaves_the_run_folder_as_it_was(trained: Path, setting: str,
                                                                                message: str):
    before = {path.name: path.read_bytes() for path in trained.iterdir() if path.is_file()}
    result = run_script("espcn.py", "train", "--out", str(trained), *TRAIN, "--set", setting, "--resume")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [message]
    assert {path.name: path.read_bytes() for path in trained.iterdir() if path.is_file()} == before
