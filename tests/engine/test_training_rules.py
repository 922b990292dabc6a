"""Rules of the training loop that a wrong line would break while every shape stays right: each parameter
group's ``lr_factor``, the schedule's rate reaching the optimizer, stage lengths, one fresh optimizer and one
``prepare`` call per stage, and ``best`` holding the best evaluation. Only the public ``Trainer(...).fit()``."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from core.checkpoint import load_checkpoint
from core.dist import DistInfo
from engine.schedules import Constant, Cosine, Plateau
from engine.trainer import Stage, TrainConfig, Trainer


def batches(step: int, _dist: DistInfo) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(step)
    x = torch.rand(4, 1, 6, 6, generator=generator)
    return x, 0.5 * x + 0.1


def two_layer_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Conv2d(3, 1, 3, padding=1))


def fit(run_dir: Path, net: nn.Module, stages: list[Stage], evaluate=None, eval_every: int = 100):
    evaluate = evaluate or (lambda _net: {"val_psnr": 0.0})
    config = TrainConfig(run_dir=run_dir, eval_every=eval_every, progress=False)
    return Trainer(net, stages, batches, nn.functional.mse_loss, evaluate, config, torch.device("cpu")).fit()


def gradients(net: nn.Module, step: int) -> list[torch.Tensor]:
    """The loss gradient of every parameter at ``net``'s current weights, on the batch of ``step``."""
    net.zero_grad()
    x, y = batches(step, DistInfo())
    nn.functional.mse_loss(net(x), y).backward()
    return [p.grad.clone() for p in net.parameters()]


def test_each_group_learns_at_the_schedule_rate_times_its_lr_factor(tmp_path: Path):
    """One plain SGD step: every parameter moves by -rate * lr_factor * gradient. The optimizer is built
    with a rate the schedule must overwrite (999)."""
    net = two_layer_net()
    before = [p.detach().clone() for p in net.parameters()]
    grads = gradients(net, step=0)

    def sgd(model: nn.Module) -> torch.optim.Optimizer:
        first, last = list(model[0].parameters()), list(model[2].parameters())
        return torch.optim.SGD([{"params": first, "lr": 999.0, "lr_factor": 1.0},
                                {"params": last, "lr": 999.0, "lr_factor": 0.1}])

    fit(tmp_path, net, [Stage("train", 1, sgd, Constant(0.05))])
    rates = [0.05, 0.05, 0.005, 0.005]  # conv1 weight, bias; conv2 (the last layer) weight, bias
    for rate, old, new, grad in zip(rates, before, net.parameters(), grads, strict=True):
        torch.testing.assert_close(new.detach(), old - rate * grad, rtol=1e-5, atol=1e-7)


def test_the_plateau_rate_reaches_the_optimizer_after_each_evaluation(tmp_path: Path):
    """Evaluated every iteration with scripted validation scores: the rate of each logged iteration is the
    one the plateau rule had set by then, and the stage stops when patience runs out."""
    scores = iter([20.0, 25.0, 25.05, 25.5, 25.5, 25.5, 25.5, 30.0])
    schedule = Plateau(lr_start=0.01, lr_end=0.0001, mu=0.1, patience=3, factor=10.0, cooldown=0)
    stages = [Stage("train", 8, lambda model: torch.optim.SGD(model.parameters(), lr=1.0), schedule)]
    result = fit(tmp_path, two_layer_net(), stages, lambda _net: {"val_psnr": next(scores)}, eval_every=1)
    rows = (tmp_path / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    rates = [float(row.split(",")[header.index("lr")]) for row in rows[1:]]
    # 25.05 improves by less than mu: 0.001 from the 4th iteration; the first 25.5 gains 0.45 (kept), the
    # second gains nothing: 0.0001 from the 6th; three evaluations without improvement stop the stage
    assert rates == [0.01, 0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001]
    assert result.stopped_early == ["train@7"] and result.step == 7


def test_a_cosine_stage_sets_each_iterations_rate_by_its_place_in_the_stage(tmp_path: Path):
    stages = [Stage("a", 2, lambda model: torch.optim.SGD(model.parameters(), lr=1.0), Constant(0.5)),
              Stage("b", 4, lambda model: torch.optim.SGD(model.parameters(), lr=1.0), Cosine(0.2, 0.0, 4))]
    fit(tmp_path, two_layer_net(), stages, eval_every=1)
    rows = [row.split(",") for row in (tmp_path / "log.csv").read_text().splitlines()]
    rates = [float(row[rows[0].index("lr")]) for row in rows[1:]]
    assert rates == pytest.approx([0.5, 0.5, 0.2, 0.1 * (1 + 0.5 ** 0.5), 0.1, 0.1 * (1 - 0.5 ** 0.5)])


def test_stages_run_their_iterations_each_with_a_fresh_optimizer_prepared_first(tmp_path: Path):
    events: list[str] = []
    optimizers: list[torch.optim.Optimizer] = []

    def adam(model: nn.Module) -> torch.optim.Optimizer:
        optimizers.append(torch.optim.Adam(model.parameters(), lr=1e-3))
        return optimizers[-1]

    def prepared(name: str):
        return lambda _net: events.append(f"prepare {name}")

    def counting(step: int, dist: DistInfo):
        events.append(f"step {step}")
        return batches(step, dist)

    stages = [Stage("a", 3, adam, Constant(1e-3), prepared("a")), Stage("empty", 0, adam, Constant(1e-3)),
              Stage("b", 2, adam, Constant(1e-4), prepared("b"))]
    config = TrainConfig(run_dir=tmp_path, eval_every=100, progress=False)
    result = Trainer(two_layer_net(), stages, counting, nn.functional.mse_loss, lambda _net: {"val_psnr": 0.0},
                     config, torch.device("cpu")).fit()
    assert events == ["prepare a", "step 0", "step 1", "step 2", "prepare b", "step 3", "step 4"]
    assert result.step == 5
    assert len({id(o) for o in optimizers}) == len(optimizers) == 3  # one per stage, the empty one too
    first, _empty, last = optimizers
    assert [int(s["step"]) for s in first.state.values()] == [3] * 4  # Adam's own count: a's iterations
    assert [int(s["step"]) for s in last.state.values()] == [2] * 4  # b started from a fresh state
    assert [g["lr"] for g in last.param_groups] == [1e-4]
    rows = (tmp_path / "log.csv").read_text().splitlines()[1:]
    assert [(row.split(",")[0], row.split(",")[1]) for row in rows] == [("3", "a"), ("5", "b")]


def test_best_holds_the_best_evaluation_and_latest_the_last(tmp_path: Path):
    scores = iter([10.0, 30.0, 30.0, 20.0])  # a tie is not an improvement: best stays at iteration 4
    stages = [Stage("train", 8, lambda model: torch.optim.SGD(model.parameters(), lr=0.01), Constant(0.01))]
    result = fit(tmp_path, two_layer_net(), stages, lambda _net: {"val_psnr": next(scores)}, eval_every=2)
    best, latest = load_checkpoint(tmp_path / "best.pt"), load_checkpoint(tmp_path / "latest.pt")
    assert (best["step"], best["best"], latest["step"]) == (4, 30.0, 8)
    assert result.best == 30.0 and result.last_eval == {"val_psnr": 20.0}
    assert not all(torch.equal(best["model"][k], latest["model"][k]) for k in best["model"])


@pytest.mark.parametrize("monitor", ["val_psnr", "test_psnr"])
def test_best_follows_the_monitored_metric_only(tmp_path: Path, monitor: str):
    scores = iter([(1.0, 9.0), (5.0, 2.0)])

    def evaluate(_net: nn.Module) -> dict[str, float]:
        val, test = next(scores)
        return {"val_psnr": val, "test_psnr": test}

    stages = [Stage("train", 4, lambda model: torch.optim.SGD(model.parameters(), lr=0.01), Constant(0.01))]
    config = TrainConfig(run_dir=tmp_path, eval_every=2, monitor=monitor, progress=False)
    Trainer(two_layer_net(), stages, batches, nn.functional.mse_loss, evaluate, config, torch.device("cpu")).fit()
    assert load_checkpoint(tmp_path / "best.pt")["step"] == (4 if monitor == "val_psnr" else 2)


# ------------------------------------------------------------------------------ schedules alone
def rates_after(schedule: Plateau, metrics: list[float]) -> list[float]:
    out = []
    for metric in metrics:
        schedule.observe(metric)
        out.append(schedule.lr(0))
    return out


def test_plateau_drops_below_mu_only():
    schedule = Plateau(lr_start=1.0, lr_end=1e-6, mu=0.5, patience=100, factor=2.0)
    assert rates_after(schedule, [10.0, 10.5, 10.99]) == [1.0, 1.0, 0.5]  # a gain of exactly mu is enough


def test_plateau_waits_cooldown_evaluations_between_drops_and_stops_at_lr_end():
    schedule = Plateau(lr_start=1.0, lr_end=0.1, mu=1.0, patience=100, factor=2.0, cooldown=2)
    # a drop, then two evaluations that may not drop, then the next drop
    assert rates_after(schedule, [10.0] * 10) == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125]
    assert rates_after(schedule, [10.0] * 4)[-1] == 0.1  # never below lr_end


def test_plateau_patience_counts_evaluations_without_improvement_since_the_best():
    schedule = Plateau(lr_start=1.0, lr_end=1.0, mu=0.0, patience=3)
    stops = [schedule.observe(m) for m in [1.0, 2.0, 1.5, 2.0, 1.0, 2.5, 2.5, 2.4, 2.5]]
    assert stops == [False, False, False, False, True, False, False, False, True]


def test_cosine_starts_at_lr_ends_at_lr_min_and_stays_there():
    cosine = Cosine(lr=0.3, lr_min=0.01, steps=40)
    assert cosine.lr(0) == pytest.approx(0.3)
    assert cosine.lr(20) == pytest.approx(0.155)  # halfway: the mean of the two
    assert cosine.lr(40) == pytest.approx(0.01) and cosine.lr(400) == pytest.approx(0.01)
    assert all(cosine.lr(k) > cosine.lr(k + 1) for k in range(40))
