"""The report's training rules for a block, pinned where a changed line would still give the right shapes:
the warm-up runs unclamped and the clamped stages clamped (N_i^+), each stage with its optimizer and rate
for its iterations; SELECT picks the best validation checkpoint (or the last) for N<i>.pt. (INIT=inherit is
pinned in test_multiblock.py.)"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from core.checkpoint import load_checkpoint
from core.dist import DistInfo
from core.errors import UserError
from data.datasets import bundled_photos
from data.synth import synthesise_realsr
from engine.trainer import TrainConfig, Trainer
from models.rcan import Block
from pipelines.multiblock import train as multiblock_train
from pipelines.multiblock.phase_settings import catalogue, check_phase_settings
from pipelines.multiblock.train import block_stages
from tests.scripts.helpers import load_script

STAGES = {"ITERS_WARMUP": 3, "WARMUP_OPTIMIZER": "adadelta", "LR_WARMUP": 1.0, "ITERS_CLAMP_HIGH": 2,
          "LR_CLAMP_HIGH": 1e-4, "ITERS_CLAMP_LOW": 4, "LR_CLAMP_LOW": 1e-5}


def test_block_stages_are_the_reports_three():
    stages = block_stages(STAGES)
    assert [(s.name, s.steps) for s in stages] == [("warmup", 3), ("clamp_high", 2), ("clamp_low", 4)]
    block = Block(n_feats=4, n_resblocks=1)
    optimizers = [stage.make_optimizer(block) for stage in stages]
    assert [type(o).__name__ for o in optimizers] == ["Adadelta", "Adam", "Adam"]
    assert (optimizers[0].defaults["rho"], optimizers[0].defaults["eps"]) == (0.9, 1e-6)  # report 4.3
    assert [stage.schedule.lr(0) for stage in stages] == [1.0, 1e-4, 1e-5]
    adam = block_stages({**STAGES, "WARMUP_OPTIMIZER": "adam", "LR_WARMUP": 1e-4})[0].make_optimizer(block)
    assert type(adam).__name__ == "Adam" and adam.defaults["lr"] == 1e-4


def test_a_stage_of_zero_iterations_is_left_out():
    assert [s.name for s in block_stages({**STAGES, "ITERS_CLAMP_HIGH": 0})] == ["warmup", "clamp_low"]


def test_warmup_trains_unclamped_and_the_clamped_stages_clamped(tmp_path: Path):
    """What the block's clamp is at every training iteration, through the shared loop."""
    torch.manual_seed(0)
    block = Block(n_feats=4, n_resblocks=1, clamp=True)  # the warm-up must switch it off itself
    seen: list[bool] = []

    def batches(step: int, _dist: DistInfo) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(block.clamp)
        generator = torch.Generator().manual_seed(step)
        return torch.rand(2, 3, 8, 8, generator=generator), torch.rand(2, 3, 8, 8, generator=generator)

    Trainer(block, block_stages(STAGES), batches, nn.functional.l1_loss, lambda _net: {"val_psnr": 0.0},
            TrainConfig(run_dir=tmp_path, eval_every=100, progress=False), torch.device("cpu")).fit()
    assert seen == [False] * 3 + [True] * (2 + 4)


# ------------------------------------------------------------------------------ selection (SELECT)
@pytest.fixture(scope="module")
def realsr(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("realsr")
    synthesise_realsr(root, bundled_photos("train"), bundled_photos("test"), max_size=32)
    return root


@pytest.mark.parametrize(("select", "chosen"), [("best-val", 4), ("last", 8)])
def test_select_picks_the_best_validation_or_the_last_checkpoint(realsr: Path, tmp_path: Path, monkeypatch,
                                                                 select: str, chosen: int):
    """Scripted validation scores (evaluations at 2, 4, 6, 8): the best is at iteration 4."""
    scores = iter([20.0, 26.0, 24.0, 25.0])
    monkeypatch.setattr(multiblock_train, "mean_psnr", lambda _net, _images, _device, _dist: next(scores))
    settings = ["N_FEATS=4", "N_RESBLOCKS=1", "PATCH_SIZE=16", "BATCH_SIZE=2", "WARMUP_OPTIMIZER=adam",
                "LR_WARMUP=1e-3", "ITERS_WARMUP=4", "ITERS_CLAMP_HIGH=4", "ITERS_CLAMP_LOW=0", "EVAL_EVERY=2",
                "TEST_CURVE=false", "VAL_FRACTION=0.2", f"SELECT={select}"]
    run = tmp_path / "run"
    load_script("phase1_1.py").main(["--data", str(realsr), "--out", str(run), "--device", "cpu",
                                     *[arg for item in settings for arg in ("--set", item)]])
    final = load_checkpoint(run / "N1.pt")
    source = load_checkpoint(run / ("N1_best.pt" if select == "best-val" else "N1_latest.pt"))
    assert final["selected_step"] == source["step"] == chosen
    assert all(torch.equal(final["model"][key], source["model"][key]) for key in final["model"])
    results = json.loads((run / "results.json").read_text())["phase1"]
    assert (results["selected_step"], results["best_val_psnr_rgb"]) == (chosen, 26.0)


def test_with_ema_the_block_written_is_the_weight_average(realsr: Path, tmp_path: Path):
    settings = ["N_FEATS=4", "N_RESBLOCKS=1", "PATCH_SIZE=16", "BATCH_SIZE=2", "WARMUP_OPTIMIZER=adam",
                "LR_WARMUP=1e-3", "ITERS_WARMUP=4", "ITERS_CLAMP_HIGH=4", "ITERS_CLAMP_LOW=0", "EVAL_EVERY=2",
                "TEST_CURVE=false", "VAL_FRACTION=0.2", "SELECT=last", "EMA=0.5"]
    run = tmp_path / "run"
    load_script("phase1_1.py").main(["--data", str(realsr), "--out", str(run), "--device", "cpu",
                                     *[arg for item in settings for arg in ("--set", item)]])
    final, latest = load_checkpoint(run / "N1.pt"), load_checkpoint(run / "N1_latest.pt")
    assert all(torch.equal(final["model"][key], latest["model"][key]) for key in final["model"])
    assert not all(torch.equal(final["model"][key], latest["trained_model"][key]) for key in final["model"])


def test_self_ensemble_scores_model_plus_beside_model_and_never_selects(realsr: Path, tmp_path: Path, monkeypatch):
    """Selection sees only the plain validation score (scripted here: the best at iteration 4); the test pairs
    are scored plain and with the ensemble, both recorded."""
    scores = iter([20.0, 26.0, 24.0, 25.0])
    monkeypatch.setattr(multiblock_train, "mean_psnr", lambda _net, _images, _device, _dist: next(scores))
    settings = ["N_FEATS=4", "N_RESBLOCKS=1", "PATCH_SIZE=16", "BATCH_SIZE=2", "WARMUP_OPTIMIZER=adam",
                "LR_WARMUP=1e-3", "ITERS_WARMUP=4", "ITERS_CLAMP_HIGH=4", "ITERS_CLAMP_LOW=0", "EVAL_EVERY=2",
                "TEST_CURVE=false", "VAL_FRACTION=0.2", "SELF_ENSEMBLE=true"]
    run = tmp_path / "run"
    load_script("phase1_1.py").main(["--data", str(realsr), "--out", str(run), "--device", "cpu",
                                     *[arg for item in settings for arg in ("--set", item)]])
    results = json.loads((run / "results.json").read_text())["phase1"]
    assert results["selected_step"] == 4
    (methods,) = results["metrics"].values()
    assert list(methods) == ["model", "model+", "identity"]
    assert methods["model+"]["psnr_rgb"] != methods["model"]["psnr_rgb"]
    assert "x8 self-ensemble" in results["protocol"]
    header = (tmp_path / "results.csv").read_text().splitlines()[0].split(",")
    assert any(column.endswith("/model+/psnr_rgb") for column in header)


def test_an_ema_decay_outside_zero_one_is_refused():
    with pytest.raises(UserError, match=r"^EMA=1.5: expected a number in \[0, 1\): a decay per step, e.g. 0.9999; "
                                        r"0 = off \(--set EMA=...\)$"):
        check_phase_settings({**catalogue(), "SELECT": "last", "EMA": 1.5}, "phase1_1.py")
