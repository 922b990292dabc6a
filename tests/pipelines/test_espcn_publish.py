import json
from pathlib import Path

import pytest
import torch

from core.checkpoint import load_checkpoint, save_checkpoint
from core.errors import UserError
from core.runs import write_json
from models.espcn import ESPCN
from pipelines.espcn.common import load_espcn
from pipelines.espcn.publish import export


def test_export_keeps_weights_and_provenance(tmp_path: Path):
    run = tmp_path / "run"
    net = ESPCN(scale=2, channels=1)
    meta = {"arch": "espcn", "scale": 2, "channels": 1, "features": [64, 32], "settings": {"EPOCHS": 3}}
    save_checkpoint(run / "best.pt", {"model": net.state_dict(), "optimizer": {"big": torch.zeros(1000)},
                                      "meta": meta, "step": 30})
    start = {"path": "runs/long/best.pt", "sha256": "ab" * 32, "command": "python espcn.py train --set EPOCHS=9"}
    write_json(run / "settings.json", {"SCALE": 2, "seed": 4, "command": "python espcn.py train", "lower": 1,
                                       "init_weights": start})
    write_json(run / "results.json", {"metrics": {"Set5": {"model": {"psnr_y": 33.0}}}, "best_epoch": 3.0})
    target = export(run, "espcn_x2_y", out_dir=tmp_path / "weights")
    state = load_checkpoint(target)
    assert set(state) == {"model", "meta"} and "settings" not in state["meta"]
    loaded = load_espcn(target, torch.device("cpu"))
    assert loaded.scale == 2 and torch.equal(loaded.conv1.weight, net.conv1.weight)
    record = json.loads((tmp_path / "weights" / "espcn_x2_y.json").read_text())
    assert record["command"] == "python espcn.py train" and record["seed"] == 4
    assert record["settings"] == {"SCALE": 2} and record["metrics"]["Set5"]["model"]["psnr_y"] == 33.0
    assert record["init_weights"] == start


def test_export_of_an_unfinished_run_is_refused(tmp_path: Path):
    with pytest.raises(UserError, match=r"no results\.json"):
        export(tmp_path, "x", out_dir=tmp_path / "weights")
