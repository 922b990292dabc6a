"""The multiblock network in weights/ is what its provenance file says: it loads, its recorded phase-4 scores beat
the identity baseline, and where City100's pairs are present they are the pairs it was trained on (same
fingerprint) and re-scoring its test pairs gives the recorded numbers."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.errors import UserError
from core.runs import read_json
from data.pair_layouts import PairSource, find_pairs
from data.paired import load_pairs
from inference.scoring import score_pairs
from pipelines.multiblock.export import load_network
from pipelines.multiblock.run_folder import data_fingerprint

from .helpers import REPO

pytestmark = pytest.mark.slow  # the shipped network scored on real pairs

SHIPPED = sorted((REPO / "weights").glob("multiblock_*.json"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_the_record_is_complete_and_the_network_loads_and_beats_identity(path: Path):
    entry = read_json(path)
    assert entry["weights"] == f"{path.stem}.pt" and isinstance(entry["seed"], int) and entry["command"]
    assert len(entry["data"]["fingerprint"]) == 64 and entry["data"]["test_pairs"] >= 1
    net, architecture = load_network(REPO / "weights" / entry["weights"])
    assert architecture["arch"] == "multiblock-net" and architecture["blocks"] == 3
    assert net(torch.rand(1, 3, 24, 20)).shape == (1, 3, 24, 20)
    (scores,) = entry["metrics"]["phase4"].values()
    assert scores["model"]["psnr_y"] > scores["identity"]["psnr_y"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_rescoring_the_test_pairs_gives_the_recorded_scores(path: Path, datasets_root: Path):
    entry = read_json(path)
    data = entry["data"]
    source = PairSource(data["dataset"], data["camera"])
    try:
        pairs = {split: find_pairs(datasets_root, source, split) for split in ("train", "test")}
    except UserError as err:  # the data set is not on this machine: nothing to compare
        pytest.skip(f"{data['dataset']} {data['camera']} pairs not under {datasets_root}: {err}")
    assert data_fingerprint(pairs) == data["fingerprint"]  # the very pairs it was trained and scored on
    net, _ = load_network(REPO / "weights" / entry["weights"])
    test = load_pairs(pairs["test"])
    scored = score_pairs(net, test.named, device=torch.device("cpu"))
    (recorded,) = entry["metrics"]["phase4"].values()
    for metric in ("psnr_rgb", "psnr_y"):
        assert scored["model"][metric] == pytest.approx(recorded["model"][metric], abs=0.005), metric
        assert scored["identity"][metric] == pytest.approx(recorded["identity"][metric], abs=1e-6), metric
