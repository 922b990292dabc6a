import os
import signal
from pathlib import Path

import pytest
import torch
from torch import nn

from core.checkpoint import load_checkpoint
from core.dist import DistInfo
from core.errors import StopRequested, UserError
from engine.schedules import Constant, Plateau
from engine.trainer import Stage, TrainConfig, Trainer


def batches(step: int, dist: DistInfo):
    generator = torch.Generator().manual_seed(step)
    x = torch.rand(4, 1, 8, 8, generator=generator)
    return x, 0.5 * x + 0.1


def make_trainer(run_dir: Path, batch_fn=batches, lr: float = 0.01, eval_every: int = 3, schedule=None,
                 ema_decay: float = 0.0):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 1, 3, padding=1))

    def optimizer(model):
        return torch.optim.Adam(model.parameters(), lr=lr)

    stages = [Stage("a", 7, optimizer, schedule or Constant(lr)), Stage("b", 5, optimizer, Constant(lr / 10))]

    def evaluate(model):
        x, y = batches(10_000, DistInfo())
        return {"val_psnr": -10 * torch.log10(((model(x) - y) ** 2).mean()).item()}

    config = TrainConfig(run_dir=run_dir, eval_every=eval_every, progress=False, ema_decay=ema_decay)
    return Trainer(net, stages, batch_fn, nn.functional.l1_loss, evaluate, config, torch.device("cpu")), net


def test_a_crashed_run_resumed_ends_with_the_same_weights(tmp_path: Path):
    reference, ref_net = make_trainer(tmp_path / "ref")
    reference.fit()

    def crash_at_8(step, dist):
        if step == 8:
            raise RuntimeError("killed")
        return batches(step, dist)

    crashed, _ = make_trainer(tmp_path / "run", crash_at_8)
    with pytest.raises(RuntimeError, match="killed"):
        crashed.fit()
    assert load_checkpoint(tmp_path / "run" / "latest.pt")["step"] == 7  # end of stage a
    resumed, net = make_trainer(tmp_path / "run")
    result = resumed.fit(resume=True)
    assert result.step == 12
    for a, b in zip(net.state_dict().values(), ref_net.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["3", "6", "7", "9", "12"]


def test_sigterm_writes_a_checkpoint_and_resume_matches(tmp_path: Path):
    reference, ref_net = make_trainer(tmp_path / "ref")
    reference.fit()

    def signal_at_4(step, dist):
        if step == 4:
            os.kill(os.getpid(), signal.SIGTERM)
        return batches(step, dist)

    stopped, _ = make_trainer(tmp_path / "run", signal_at_4)
    with pytest.raises(StopRequested, match="iteration 5"):
        stopped.fit()
    assert load_checkpoint(tmp_path / "run" / "latest.pt")["step"] == 5
    resumed, net = make_trainer(tmp_path / "run")
    resumed.fit(resume=True)
    for a, b in zip(net.state_dict().values(), ref_net.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_existing_run_needs_resume_flag(tmp_path: Path):
    make_trainer(tmp_path)[0].fit()
    with pytest.raises(UserError, match="pass --resume"):
        make_trainer(tmp_path)[0].fit()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path):
    def poisoned(step, dist):
        x, y = batches(step, dist)
        return (x * float("nan"), y) if step == 4 else (x, y)

    trainer, _ = make_trainer(tmp_path, poisoned)
    with pytest.raises(UserError, match="loss became nan at iteration 5"):
        trainer.fit()
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 3


def test_plateau_stops_a_stage_early_and_best_is_kept(tmp_path: Path):
    trainer, _ = make_trainer(tmp_path, lr=0.0, eval_every=1, schedule=Plateau(0.0, 0.0, 0.0, patience=2))
    result = trainer.fit()
    assert result.stopped_early == ["a@3"]  # no learning: two stale evaluations after the first
    assert result.step == 3 + 5
    assert load_checkpoint(tmp_path / "best.pt")["step"] == 1


def test_resume_with_another_architecture_is_a_user_error(tmp_path: Path):
    trainer, _ = make_trainer(tmp_path)
    trainer.config.meta = {"arch": "toy", "scale": 2, "settings": {"EPOCHS": 1}}
    trainer.fit()
    other, _ = make_trainer(tmp_path)
    other.config.meta = {"arch": "toy", "scale": 3, "settings": {"EPOCHS": 2}}
    with pytest.raises(UserError, match="has scale=2 but this run needs scale=3"):
        other.fit(resume=True)


def test_a_weight_average_is_validated_and_saved_as_the_model_without_changing_training(tmp_path: Path):
    plain, plain_net = make_trainer(tmp_path / "plain")
    plain.fit()
    averaged, _ = make_trainer(tmp_path / "ema", ema_decay=0.8)
    averaged.fit()
    saved = load_checkpoint(tmp_path / "ema" / "latest.pt")
    for a, b in zip(saved["trained_model"].values(), plain_net.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # the average only watches the training
    assert not torch.equal(saved["model"]["0.weight"], saved["trained_model"]["0.weight"])
    logged = float((tmp_path / "ema" / "log.csv").read_text().splitlines()[-1].split(",")[-1])
    assert logged == pytest.approx(averaged.evaluate(averaged.average.module)["val_psnr"], abs=1e-9)
    assert logged != pytest.approx(float((tmp_path / "plain" / "log.csv").read_text().splitlines()[-1].split(",")[-1]))


def test_a_run_with_a_weight_average_resumes_to_the_same_average(tmp_path: Path):
    reference, _ = make_trainer(tmp_path / "ref", ema_decay=0.8)
    reference.fit()

    def crash_at_8(step, dist):
        if step == 8:
            raise RuntimeError("killed")
        return batches(step, dist)

    crashed, _ = make_trainer(tmp_path / "run", crash_at_8, ema_decay=0.8)
    with pytest.raises(RuntimeError, match="killed"):
        crashed.fit()
    make_trainer(tmp_path / "run", ema_decay=0.8)[0].fit(resume=True)
    ref, run = load_checkpoint(tmp_path / "ref" / "latest.pt"), load_checkpoint(tmp_path / "run" / "latest.pt")
    for key in ("model", "trained_model"):
        for a, b in zip(run[key].values(), ref[key].values(), strict=True):
            assert torch.equal(a, b)
