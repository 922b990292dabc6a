"""The ESPCN weights in weights/ are what their provenance files say: loadable, of the stated scale, and (where
the benchmark images are present) scoring the recorded PSNR under `espcn.py eval`."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.runs import read_json
from pipelines.espcn.common import load_espcn

from .helpers import REPO, load_script

pytestmark = pytest.mark.slow  # the shipped weights scored on Set5/Set14

WEIGHTS = sorted((REPO / "weights").glob("espcn_*.json"))  # the multiblock ones: test_shipped_multiblock.py
PAPER_TABLE_1_X3 = {"Set5": 32.55, "Set14": 29.08}  # Shi et al. 2016, Y, x3


def test_every_shipped_weight_has_a_provenance_file():
    assert {p.stem for p in (REPO / "weights").glob("*.pt")} == {p.stem for p in (REPO / "weights").glob("*.json")}
    assert {p.stem for p in (REPO / "weights").glob("espcn_*.pt")} == {p.stem for p in WEIGHTS}
    for path in WEIGHTS:
        entry = read_json(path)
        assert "espcn.py train" in entry["command"] and entry["weights"] == f"{path.stem}.pt"
        assert isinstance(entry["seed"], int)
        assert entry["val_images"], path.name


@pytest.mark.parametrize("path", WEIGHTS, ids=lambda p: p.stem)
def test_weights_load_with_the_recorded_scale_and_beat_bicubic(path: Path):
    entry = read_json(path)
    net = load_espcn(REPO / "weights" / entry["weights"], torch.device("cpu"))
    assert net.scale == entry["settings"]["SCALE"]
    assert net.channels == entry["settings"]["CHANNELS"]
    for name, scores in entry["metrics"].items():
        assert scores["model"]["psnr_y"] > scores["bicubic"]["psnr_y"] + 0.5, name


def test_default_x3_weights_meet_the_paper_table_1():
    """The recorded scores of the x3 weights that `espcn.py upscale` and `make demo` use."""
    metrics = read_json(REPO / "weights" / "espcn_x3_y.json")["metrics"]
    for name, paper in PAPER_TABLE_1_X3.items():
        assert metrics[name]["model"]["psnr_y"] >= paper, name


@pytest.mark.parametrize("path", WEIGHTS, ids=lambda p: p.stem)
def test_eval_reproduces_the_recorded_scores(path: Path, datasets_root: Path, tmp_path: Path):
    entry = read_json(path)
    load_script("espcn.py").main(["eval", "--weights", str(REPO / "weights" / entry["weights"]),
                                  "--data", str(datasets_root), "--out", str(tmp_path / "eval")])
    measured = read_json(tmp_path / "eval" / "eval.json")["metrics"]
    for name, scores in entry["metrics"].items():
        for key in scores["model"]:
            assert measured[name]["model"][key] == pytest.approx(scores["model"][key], abs=0.005), (name, key)
