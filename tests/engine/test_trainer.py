import math
import os
import signal
from pathlib import Path

import pytest
import torch
from torch import nn

from core.checkpoint import load_checkpoint
from core.dist import DistInfo
from core.errors import StopRequested, UserError
from engine import trainer as trainer_module
from engine.csv_log import read_log
from engine.schedules import Constant, Plateau
from engine.speed import Speed
from engine.trainer import SKIP_LIMIT, LossWatch, Stage, TrainConfig, Trainer


def batches(step: int, dist: DistInfo):
    generator = torch.Generator().manual_seed(step)
    x = torch.rand(4, 1, 8, 8, generator=generator)
    return x, 0.5 * x + 0.1


def crashing_at(crash_step: int):
    """``batches``, except that the batch of ``crash_step`` kills the run (RuntimeError 'killed')."""
    def batch_fn(step: int, dist: DistInfo):
        if step == crash_step:
            raise RuntimeError("killed")
        return batches(step, dist)
    return batch_fn


def make_trainer(run_dir: Path, batch_fn=batches, lr: float = 0.01, eval_every: int = 3, schedule=None,
                 ema_decay: float = 0.0, speed: Speed | None = None, optimizers: list | None = None):
    """The trainer of a small network in two stages (7 and 5 iterations), and the network; ``optimizers``
    receives each optimizer the stages make."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 1, 3, padding=1))

    def optimizer(model):
        made = torch.optim.Adam(model.parameters(), lr=lr)
        if optimizers is not None:
            optimizers.append(made)
        return made

    stages = [Stage("a", 7, optimizer, schedule or Constant(lr)), Stage("b", 5, optimizer, Constant(lr / 10))]

    def evaluate(model):
        x, y = batches(10_000, DistInfo())
        return {"val_psnr": -10 * torch.log10(((model(x) - y) ** 2).mean()).item()}

    config = TrainConfig(run_dir=run_dir, eval_every=eval_every, progress=False, ema_decay=ema_decay,
                         speed=speed or Speed())
    return Trainer(net, stages, batch_fn, nn.functional.l1_loss, evaluate, config, torch.device("cpu")), net


def test_a_crashed_run_resumed_ends_with_the_same_weights(tmp_path: Path):
    reference, ref_net = make_trainer(tmp_path / "ref")
    reference.fit()

    crashed, _ = make_trainer(tmp_path / "run", crashing_at(8))
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


def test_a_run_resumed_with_the_other_memory_format_ends_with_the_same_weights(tmp_path: Path):
    """Adam's state saved beside contiguous weights is resumed beside channels_last ones, in their layout."""
    reference, ref_net = make_trainer(tmp_path / "ref")
    reference.fit()

    with pytest.raises(RuntimeError, match="killed"):
        make_trainer(tmp_path / "run", crashing_at(5))[0].fit()
    assert load_checkpoint(tmp_path / "run" / "latest.pt")["optimizer"] is not None  # stage a's, at step 3
    optimizers: list = []
    resumed, net = make_trainer(tmp_path / "run", speed=Speed(channels_last=True), optimizers=optimizers)
    resumed.fit(resume=True)
    conv = net[2].weight
    assert conv.stride() != conv.contiguous().stride()
    for param in net.parameters():
        state = optimizers[0].state[param]  # stage a's optimizer, loaded from the checkpoint
        assert state["exp_avg"].stride() == state["exp_avg_sq"].stride() == param.stride()
    for a, b in zip(net.state_dict().values(), ref_net.state_dict().values(), strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-5)


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


def poisoned_from(first: int, last: int = 10**9):
    """Batches whose inputs are NaN at the steps ``first`` to ``last``: the loss of those iterations is NaN."""
    def batch_fn(step, dist):
        x, y = batches(step, dist)
        return (x * float("nan"), y) if first <= step <= last else (x, y)
    return batch_fn


@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # no gradient scaler: nothing skips a step
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path, precision: str):
    trainer, _ = make_trainer(tmp_path, poisoned_from(4, 4), speed=Speed(precision=precision))
    with pytest.raises(UserError, match=r"^loss became nan at iteration 5 \(stage a\); stopped"):
        trainer.fit()
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 3


def test_the_loss_watch_counts_non_finite_losses_leaves_them_out_of_the_mean_and_stops_at_a_run_of_them():
    watch, alone, latest = LossWatch(torch.device("cpu"), skip_limit=3), DistInfo(), Path("latest.pt")
    for step, loss in enumerate([1.0, math.nan, 3.0, math.inf, math.nan, 2.0], 1):
        watch.add(torch.tensor(loss), step)
    assert watch.check(alone, "a", latest) is False  # at most two in a row: the scaler skipped them
    assert watch.check(alone, "a", latest, stop=True) is True  # a stop request, read in the same collective
    assert watch.read(alone, "a", latest) == (2.0, 3)
    assert watch.read(alone, "a", latest)[1] == 0  # counted since the last read
    for step in (7, 8, 9):
        watch.add(torch.tensor(math.nan), step)
    with pytest.raises(UserError, match=r"^loss became nan at iteration 9 \(stage a\), 3 non-finite losses in a "
                                        r"row: the fp16 gradient scaler skipped their steps"):
        watch.check(alone, "a", latest)
    with pytest.raises(UserError, match=r"^loss became nan at iteration 9 "):  # an evaluation reads it too
        watch.read(alone, "a", latest)


def test_a_read_with_no_finite_loss_since_the_last_is_nan():
    watch, alone = LossWatch(torch.device("cpu"), skip_limit=3), DistInfo()
    for step, loss in enumerate([1.0, math.nan], 1):
        watch.add(torch.tensor(loss), step)
    watch.read(alone, "a", Path("latest.pt"))
    watch.add(torch.tensor(math.nan), 3)
    assert math.isnan(watch.read(alone, "a", Path("latest.pt"))[0])


FP16 = Speed(precision="fp16")  # on the CPU here: torch.amp.GradScaler("cpu") skips steps as on a GPU


def test_a_few_non_finite_losses_under_the_fp16_scaler_are_skipped_and_counted(tmp_path: Path):
    trainer, net = make_trainer(tmp_path, poisoned_from(4, 5), speed=FP16)
    assert trainer.fit().step == 12
    assert all(torch.isfinite(p).all() for p in net.parameters())  # the scaler skipped both steps
    rows = read_log(tmp_path / "log.csv")
    assert [(row["step"], row["skipped"]) for row in rows] == [(3, 0), (6, 2), (7, 0), (9, 0), (12, 0)]
    assert all(math.isfinite(row["loss"]) for row in rows)


def test_a_run_of_non_finite_losses_under_the_fp16_scaler_stops_the_run(tmp_path: Path, monkeypatch):
    assert SKIP_LIMIT == 16
    monkeypatch.setattr(trainer_module, "SKIP_LIMIT", 3)  # the stages here are shorter than 16 iterations
    trainer, _ = make_trainer(tmp_path, poisoned_from(4), speed=FP16)
    with pytest.raises(UserError, match="loss became nan at iteration 7 \\(stage a\\), 3 non-finite losses in a row"):
        trainer.fit()
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 6  # 5 and 6 skipped; nothing saved after 7


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

    crashed, _ = make_trainer(tmp_path / "run", crashing_at(8), ema_decay=0.8)
    with pytest.raises(RuntimeError, match="killed"):
        crashed.fit()
    make_trainer(tmp_path / "run", ema_decay=0.8)[0].fit(resume=True)
    ref, run = load_checkpoint(tmp_path / "ref" / "latest.pt"), load_checkpoint(tmp_path / "run" / "latest.pt")
    for key in ("model", "trained_model"):
        for a, b in zip(run[key].values(), ref[key].values(), strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize(("how", "kept"), [("best-val", "best.pt"), ("last", "latest.pt")])
def test_select_loads_the_best_evaluation_or_the_last_weights(tmp_path: Path, how: str, kept: str):
    trainer, net = make_trainer(tmp_path, lr=0.05)  # at this rate the best evaluation (iteration 9) is not the last
    trainer.fit()
    best, latest = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "latest.pt")
    assert best["step"] < latest["step"]
    path, state = trainer.select(how)
    assert path.name == kept and state["step"] == (best if how == "best-val" else latest)["step"]
    assert all(torch.equal(net.state_dict()[key], state["model"][key]) for key in state["model"])


def test_select_without_an_evaluation_keeps_the_last_weights(tmp_path: Path):
    trainer, _ = make_trainer(tmp_path)
    trainer.stages = []  # every stage of 0 iterations: no evaluation, no best.pt
    trainer.fit()
    path, state = trainer.select("best-val")
    assert (path.name, state["step"]) == ("latest.pt", 0)
