"""The one training loop, configured by stages.

A stage is a number of iterations with its own optimizer, learning-rate schedule and an optional
``prepare`` hook (e.g. switch a block's output clamp on). The loop evaluates every ``eval_every``
iterations and at the end of each stage, logs a CSV row, writes the full-state ``latest`` checkpoint
(and ``best`` when the monitored validation metric improves), and stops a stage early when its schedule
says so (the ESPCN plateau rule). Batches are a pure function of the iteration, so a resumed run repeats
an uninterrupted one exactly. SIGTERM and Ctrl-C write a checkpoint at the next iteration boundary.
"""
from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from core.checkpoint import check_meta, load_checkpoint, load_weights, save_checkpoint
from core.dist import DistInfo, broadcast_flag
from core.errors import StopRequested, UserError
from engine.csv_log import CsvLog
from engine.schedules import Schedule

BatchFn = Callable[[int, DistInfo], tuple[Tensor, Tensor]]
EvalFn = Callable[[nn.Module], dict[str, float]]


@dataclass
class Stage:
    name: str
    steps: int
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    schedule: Schedule
    prepare: Callable[[nn.Module], None] | None = None


@dataclass
class TrainConfig:
    run_dir: Path
    latest_name: str = "latest.pt"
    best_name: str | None = "best.pt"
    log_name: str = "log.csv"
    eval_every: int = 100
    monitor: str = "val_psnr"
    steps_per_epoch: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    progress: bool = True


@dataclass
class TrainResult:
    step: int
    best: float
    last_eval: dict[str, float]
    stopped_early: list[str]


class Trainer:
    def __init__(self, net: nn.Module, stages: list[Stage], batches: BatchFn,
                 loss_fn: Callable[[Tensor, Tensor], Tensor], evaluate: EvalFn, config: TrainConfig,
                 device: torch.device, dist_info: DistInfo | None = None,
                 train_module: nn.Module | None = None) -> None:
        """``net`` is what is checkpointed; ``train_module`` (sharing its parameters, default ``net``) is what
        the loop calls on a batch, e.g. an ESPCN view that returns pre-shuffled output."""
        self.net, self.stages, self.batches = net, stages, batches
        self.loss_fn, self.evaluate, self.config = loss_fn, evaluate, config
        self.device = device
        self.dist = dist_info or DistInfo()
        module = train_module if train_module is not None else net
        if self.dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            module = nn.parallel.DistributedDataParallel(module, device_ids=ids)
        self.module = module
        self.latest_path = config.run_dir / config.latest_name
        self.best_path = config.run_dir / config.best_name if config.best_name else None
        self._stop_signal: int | None = None

    # ----------------------------------------------------------------- state
    def _state(self, stage_index: int, stage_step: int, step: int, optimizer, schedule: Schedule,
               best: float, stopped_early: list[str], last_eval: dict[str, float]) -> dict[str, Any]:
        return {
            "model": self.net.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "schedule": schedule.state_dict() if schedule is not None else None,
            "stage_index": stage_index,
            "stage_step": stage_step,
            "step": step,
            "best": best,
            "stopped_early": stopped_early,
            "last_eval": last_eval,
            "rng": torch.get_rng_state(),
            "meta": self.config.meta,
        }

    def _save(self, path: Path, state: dict[str, Any]) -> None:
        if self.dist.is_main:
            save_checkpoint(path, state)

    def _load_resume_state(self, resume: bool) -> dict[str, Any] | None:
        if not self.latest_path.exists():
            return None
        if not resume:
            state = load_checkpoint(self.latest_path)
            raise UserError(f"{self.latest_path} already holds a run at iteration {state.get('step', '?')}; "
                            "pass --resume to continue it, or choose another --out")
        state = load_checkpoint(self.latest_path)
        structural = {key: value for key, value in self.config.meta.items() if key != "settings"}
        check_meta(state, self.latest_path, **structural)
        load_weights(self.net, state, self.latest_path)
        torch.set_rng_state(state["rng"])
        if self.dist.is_main:
            print(f"resuming {self.latest_path} at iteration {state['step']}", flush=True)
        return state

    # ------------------------------------------------------------------ loop
    def fit(self, resume: bool = False) -> TrainResult:
        state = self._load_resume_state(resume)
        step = state["step"] if state else 0
        first_stage = state["stage_index"] if state else 0
        best = state["best"] if state else -math.inf
        stopped_early: list[str] = list(state["stopped_early"]) if state else []
        last_eval: dict[str, float] = dict(state["last_eval"]) if state else {}
        log = CsvLog(self.config.run_dir / self.config.log_name, resume_step=step if state else None) \
            if self.dist.is_main else None
        total = sum(stage.steps for stage in self.stages)
        bar = tqdm(total=total, initial=min(step, total), disable=None if self.dist.is_main and
                   self.config.progress else True, dynamic_ncols=True, leave=False)
        previous = self._install_signal_handlers()
        try:
            for index in range(first_stage, len(self.stages)):
                stage = self.stages[index]
                resuming_here = state is not None and index == state["stage_index"]
                stage_step = state["stage_step"] if resuming_here else 0
                if stage.prepare is not None:
                    stage.prepare(self.net)
                optimizer = stage.make_optimizer(self.net)
                if resuming_here and state["optimizer"] is not None:
                    optimizer.load_state_dict(state["optimizer"])
                    stage.schedule.load_state_dict(state["schedule"])
                step, best, last_eval = self._run_stage(index, stage, stage_step, step, optimizer, best,
                                                        stopped_early, last_eval, log, bar)
            done = self._state(len(self.stages), 0, step, None, None, best, stopped_early, last_eval)
            self._save(self.latest_path, done)
        finally:
            bar.close()
            self._restore_signal_handlers(previous)
        return TrainResult(step, best, last_eval, stopped_early)

    def _run_stage(self, index: int, stage: Stage, stage_step: int, step: int, optimizer,
                   best: float, stopped_early: list[str], last_eval: dict[str, float],
                   log: CsvLog | None, bar: tqdm) -> tuple[int, float, dict[str, float]]:
        loss_sum = torch.zeros((), device=self.device)
        loss_count = 0
        started = time.perf_counter()
        self.module.train()
        while stage_step < stage.steps:
            lr = stage.schedule.lr(stage_step)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_factor", 1.0)
            inputs, targets = self.batches(step, self.dist)
            inputs = inputs.to(self.device, non_blocking=True)
            targets = targets.to(self.device, non_blocking=True)
            loss = self.loss_fn(self.module(inputs), targets)
            if not torch.isfinite(loss).item():
                raise UserError(
                    f"loss became {loss.item()} at iteration {step + 1} (stage {stage.name}); stopped. "
                    f"The last good checkpoint is kept in {self.latest_path}; lower the learning rate "
                    "or check the data")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            loss_count += 1
            step += 1
            stage_step += 1
            bar.update(1)
            stage_over = stage_step >= stage.steps
            if step % self.config.eval_every == 0 or stage_over:
                last_eval = self._evaluate()
                row = {"step": step, "stage": stage.name, "lr": lr,
                       "loss": (loss_sum / max(1, loss_count)).item(),
                       "seconds": round(time.perf_counter() - started, 3), **last_eval}
                if self.config.steps_per_epoch:
                    row["epoch"] = step / self.config.steps_per_epoch
                loss_sum.zero_()
                loss_count = 0
                metric = last_eval.get(self.config.monitor, -math.inf)
                improved = metric > best
                best = max(best, metric)
                if stage.schedule.observe(metric) and not stage_over:
                    stopped_early.append(f"{stage.name}@{step}")
                    stage_over = True
                    stage_step = stage.steps
                if log is not None:
                    log.append(row)
                bar.set_postfix(loss=f"{row['loss']:.4g}", **{self.config.monitor: f"{metric:.3f}"})
                next_index, next_step = (index + 1, 0) if stage_over else (index, stage_step)
                checkpoint = self._state(next_index, next_step, step,
                                         None if stage_over else optimizer,
                                         None if stage_over else stage.schedule,
                                         best, stopped_early, last_eval)
                self._save(self.latest_path, checkpoint)
                if improved and self.best_path is not None:
                    self._save(self.best_path, checkpoint)
                self.module.train()
                if stage_over:
                    break
            if broadcast_flag(self._stop_signal is not None, self.dist):
                self._save(self.latest_path, self._state(index, stage_step, step, optimizer, stage.schedule,
                                                         best, stopped_early, last_eval))
                raise StopRequested(f"stopped by signal at iteration {step}; checkpoint written to "
                                    f"{self.latest_path}; rerun with --resume to continue")
        return step, best, last_eval

    def _evaluate(self) -> dict[str, float]:
        self.net.eval()
        with torch.no_grad():
            return dict(self.evaluate(self.net))

    # --------------------------------------------------------------- signals
    def _install_signal_handlers(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}

        def request_stop(signum: int, _frame) -> None:
            self._stop_signal = signum

        try:
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, request_stop)
        except ValueError:  # not the main thread: leave signals alone
            pass
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
