"""espcn.py export (safetensors, ONNX, plain state dict) of the shipped weights, and eval of foreign weights."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import UserError
from pipelines.espcn.common import load_espcn
from tests.conftest import REPO
from tests.scripts.helpers import load_script

SHIPPED = REPO / "weights" / "espcn_x3_y.pt"
CPU = torch.device("cpu")


def export(tmp_path: Path, fmt: str, weights: Path = SHIPPED, *extra: str) -> Path:
    target = tmp_path / f"out.{fmt}"
    load_script("espcn.py").main(["export", "--weights", str(weights), "--format", fmt, "--out", str(target),
                                  *extra])
    return target


def test_onnx_runs_in_onnxruntime_like_pytorch_on_odd_sizes(tmp_path: Path):
    ort = pytest.importorskip("onnxruntime")
    target = export(tmp_path, "onnx")
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    net = load_espcn(SHIPPED, CPU)
    for shape in [(1, 1, 37, 51), (2, 1, 20, 9)]:  # height and width are dynamic, batch too
        x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
        [got] = session.run(None, {"input": x.numpy()})
        with torch.no_grad():
            want = net(x).numpy()
        assert got.shape == (shape[0], 1, 3 * shape[2], 3 * shape[3])
        assert np.abs(got - want).max() < 1e-4
    recorded = session.get_modelmeta().custom_metadata_map
    assert json.loads(recorded["architecture"]) == {"arch": "espcn", "scale": 3, "channels": 1, "features": [64, 32]}
    assert "Y (BT.601" in recorded["input"]


def test_safetensors_records_the_architecture_and_loads_back(tmp_path: Path):
    pytest.importorskip("safetensors")
    from safetensors import safe_open

    target = export(tmp_path, "safetensors")
    with safe_open(str(target), framework="pt") as handle:
        metadata = handle.metadata()
        assert sorted(handle.keys()) == [f"conv{i}.{p}" for i in (1, 2, 3) for p in ("bias", "weight")]
    assert json.loads(metadata["architecture"])["scale"] == 3
    assert metadata["layers"] == "conv5x5(1->64) tanh, conv3x3(64->32) tanh, conv3x3(32->9), pixel shuffle 3"
    loaded, shipped = load_espcn(target, CPU), load_espcn(SHIPPED, CPU)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), shipped.state_dict().values(),
                                                  strict=True))


def test_state_dict_is_plain_and_default_target_sits_beside_the_weights(tmp_path: Path):
    weights = tmp_path / "best.pt"
    weights.write_bytes(SHIPPED.read_bytes())
    load_script("espcn.py").main(["export", "--weights", str(weights), "--format", "state_dict"])
    state = torch.load(tmp_path / "best.pth", weights_only=True)
    assert list(state) == [f"conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")]
    assert state["conv3.weight"].shape == (9, 32, 3, 3)


class ThirdPartyESPCN(nn.Module):
    """The layer naming of a popular public reimplementation (yjn870/ESPCN-pytorch): same maths."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.first_part = nn.Sequential(nn.Conv2d(1, 64, 5, padding=2), nn.Tanh(), nn.Conv2d(64, 32, 3, padding=1),
                                        nn.Tanh())
        self.last_part = nn.Sequential(nn.Conv2d(32, scale * scale, 3, padding=1), nn.PixelShuffle(scale))


def foreign_copy(tmp_path: Path) -> Path:
    ours = load_espcn(SHIPPED, CPU)
    theirs = ThirdPartyESPCN(3)
    for mine, their in zip((ours.conv1, ours.conv2, ours.conv3),
                           (theirs.first_part[0], theirs.first_part[2], theirs.last_part[0]), strict=True):
        their.load_state_dict(mine.state_dict())
    path = tmp_path / "espcn_x3.pth"
    torch.save(theirs.state_dict(), path)
    return path


def test_foreign_state_dict_loads_and_scores_like_the_original(tmp_path: Path):
    foreign = foreign_copy(tmp_path)
    assert list(torch.load(foreign, weights_only=True))[:3] == ["first_part.0.weight", "first_part.0.bias",
                                                                "first_part.2.weight"]
    scores = {}
    for name, weights in {"shipped": SHIPPED, "foreign": foreign}.items():
        load_script("espcn.py").main(["eval", "--weights", str(weights), "--set", "EVAL_SETS=skimage-test",
                                      "--set", "SCALE=3", "--out", str(tmp_path / name)])
        scores[name] = json.loads((tmp_path / name / "eval.json").read_text())["metrics"]["skimage-test"]
    assert scores["foreign"]["model"]["psnr_y"] == pytest.approx(scores["shipped"]["model"]["psnr_y"], abs=1e-9)
    assert scores["foreign"]["model"]["psnr_y"] > scores["foreign"]["bicubic"]["psnr_y"]


def test_foreign_state_dict_with_other_settings_says_which_to_pass(tmp_path: Path):
    foreign = foreign_copy(tmp_path)
    with pytest.raises(UserError, match="needs --set SCALE=3 --set CHANNELS=1 --set FEATURES=64,32"):
        load_espcn(foreign, CPU, {"SCALE": 2, "CHANNELS": 1, "FEATURES": [64, 32]})
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "other.pth")
    with pytest.raises(UserError, match="is not an ESPCN state dict"):
        load_espcn(tmp_path / "other.pth", CPU, {"SCALE": 3, "CHANNELS": 1, "FEATURES": [64, 32]})
