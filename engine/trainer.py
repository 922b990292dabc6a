"""The one training loop, configured by stages.

A stage is a number of iterations with its own optimizer, learning-rate schedule and an optional
``prepare`` hook (e.g. switch a block's output clamp on). The loop evaluates every ``eval_every``
iterations and at the end of each stage, logs a CSV row, writes the full-state ``latest`` checkpoint
(and ``best`` when the monitored validation metric improves), and stops a stage early when its schedule
says so (the ESPCN plateau rule). With ``ema_decay`` an average of the weights is what is evaluated and
saved as the checkpoint's model (the trained weights beside it, for resuming). Batches are a pure function
of the iteration, so a resumed run repeats an uninterrupted one exactly. SIGTERM and Ctrl-C write a
checkpoint at the next check.

No step waits for the device: the loss is summed and checked for non-finite values on the device, and
the host looks at it only every ``check_every`` iterations and at evaluations (where a non-finite loss
stops the run, naming the first bad iteration, before any checkpoint is written). With fp16's gradient
scaler a non-finite loss is an overflow the scaler skips the step for: it is counted (the log's
``skipped``), and only ``SKIP_LIMIT`` of them in a row stop the run. Under torchrun every rank runs the
evaluation (a pipeline's callback scores its shard of the images, ``core.dist.mean_over_shards``) and every
decision (stop, non-finite loss, plateau, best checkpoint) is taken from rank 0's numbers, so all ranks act
at the same iteration.
"""
from __future__ import annotations

import contextlib
import io
import math
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core.checkpoint import check_meta, load_checkpoint, load_weights, save_checkpoint
from core.dist import DistInfo, barrier, from_every_rank, from_main, gathered
from core.errors import StopRequested, UserError
from engine.csv_log import CsvLog
from engine.optimizers import load_optimizer_state, optimizer_by_name
from engine.progress import ProgressReporter
from engine.schedules import Constant, Schedule
from engine.speed import Speed, backend_flags, without_autotuning
from engine.tensorboard import open_tensorboard
from engine.weight_average import WeightAverage

BatchFn = Callable[[int, DistInfo], tuple[Tensor, Tensor]]
EvalFn = Callable[[nn.Module], dict[str, float]]  # called on every rank at once; it may use collectives
PreviewFn = Callable[[nn.Module], tuple[np.ndarray, np.ndarray, np.ndarray]]  # (LR, output, HR) of one crop


@dataclass
class Stage:
    name: str
    steps: int
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    schedule: Schedule
    prepare: Callable[[nn.Module], None] | None = None


def constant_stage(name: str, steps: int, optimizer: str, lr: float,
                   prepare: Callable[[nn.Module], None] | None = None) -> Stage:
    """A stage of ``optimizer`` (adam or adadelta, ``engine.optimizers.optimizer_by_name``) at a constant
    ``lr``: the multiblock report's stages (sec. 4.3) and the toy experiments'."""
    return Stage(name, steps, optimizer_by_name(optimizer, lr), Constant(lr), prepare)


@dataclass
class TrainConfig:
    run_dir: Path
    latest_name: str = "latest.pt"
    best_name: str | None = "best.pt"
    log_name: str = "log.csv"
    eval_every: int = 100
    check_every: int = 50  # iterations between host checks of the loss and of stop requests
    monitor: str = "val_psnr"
    steps_per_epoch: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    text_log_name: str | None = None  # plain progress lines, e.g. train_N1.log (None: no file)
    speed: Speed = field(default_factory=Speed)
    tensorboard_dir: Path | None = None  # TensorBoard event files (None: off)
    preview: PreviewFn | None = None  # the validation crop TensorBoard shows at each evaluation
    ema_decay: float = 0.0  # > 0: evaluate and checkpoint an average of the weights (engine/weight_average.py)
    header: str | None = None  # written at the top of this run's part of the text log (e.g. its settings)


@dataclass
class LoopState:
    """Where the loop is; saved in every checkpoint under these names."""

    step: int = 0  # iterations done, all stages
    stage_index: int = 0
    stage_step: int = 0  # iterations done in the current stage
    best: float = -math.inf  # best monitored validation metric so far
    last_eval: dict[str, float] = field(default_factory=dict)
    stopped_early: list[str] = field(default_factory=list)  # "<stage>@<step>" for each early stop


@dataclass
class TrainResult:
    step: int
    best: float
    last_eval: dict[str, float]
    stopped_early: list[str]


# Non-finite losses in a row that stop an fp16 run. The gradient scaler skips each such step and halves its
# scale: 16 in a row take its starting 2**16 down to 1, no scaling left to back off. Overflows that come and
# go fall on a batch here and there, not on 16 in a row; such a streak means the run has diverged, or the
# data holds non-finite values.
SKIP_LIMIT = 16


class LossWatch:
    """Running sum of the finite losses, the number of non-finite ones, and the first iteration at which
    ``skip_limit`` of them came in a row, all kept on the device (no host sync per step). With the default
    limit of 1 the first non-finite loss stops the run; a gradient scaler's run (fp16) passes ``SKIP_LIMIT``:
    the scaler skips a step whose loss, hence gradients, is not finite, and training goes on."""

    def __init__(self, device: torch.device, skip_limit: int = 1) -> None:
        self.skip_limit = skip_limit
        self.total = torch.zeros((), device=device)
        self.count = torch.zeros((), dtype=torch.long, device=device)  # finite losses in ``total``
        self.skipped = torch.zeros((), dtype=torch.long, device=device)  # non-finite ones since the last read
        self.in_a_row = torch.zeros((), dtype=torch.long, device=device)
        self.first_bad_step = torch.full((), -1, dtype=torch.long, device=device)
        self.first_bad_value = torch.zeros((), device=device)

    def add(self, loss: Tensor, step: int) -> None:
        loss = loss.detach().float()
        finite = torch.isfinite(loss)
        self.total += torch.where(finite, loss, 0.0)
        self.count += finite
        self.skipped += ~finite
        self.in_a_row = torch.where(finite, 0, self.in_a_row + 1)
        bad = (self.in_a_row >= self.skip_limit) & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(bad, step, self.first_bad_step)
        self.first_bad_value = torch.where(bad, loss, self.first_bad_value)

    def read(self, dist: DistInfo, stage: str, latest: Path) -> tuple[float, int]:
        """(the mean finite loss since the last read, averaged over the ranks, NaN when none was finite; the
        non-finite losses since then on the rank that saw most: under DDP a step is skipped on every rank when
        one rank's loss is not finite, so adding the ranks' counts would count it again), in one collective,
        which also stops the run as ``check`` does."""
        every = self._gathered(dist, self.total / self.count, self.skipped)
        for counter in (self.total, self.count, self.skipped):
            counter.zero_()
        self._raise_if_bad(every, dist, stage, latest)
        return every[:, 2].mean().item(), int(every[:, 3].max().item())

    def check(self, dist: DistInfo, stage: str, latest: Path, stop: bool = False) -> bool:
        """Stop the run (``UserError``) when a rank saw ``skip_limit`` non-finite losses in a row; else whether a
        rank was asked to ``stop``: one collective."""
        every = self._gathered(dist, torch.tensor(float(stop)))
        self._raise_if_bad(every, dist, stage, latest)
        return bool(every[:, 2].max().item() > 0)

    def _gathered(self, dist: DistInfo, *values: Tensor) -> Tensor:
        """Each rank's (first bad step, its loss, ``values``...) as a row (``core.dist.gathered``)."""
        mine = [self.first_bad_step, self.first_bad_value, *values]
        return gathered(torch.stack([value.to(self.total.device, torch.float64) for value in mine]), dist)

    def _raise_if_bad(self, every: Tensor, dist: DistInfo, stage: str, latest: Path) -> None:
        bad = (every[:, 0] >= 0).nonzero().flatten().tolist()
        if not bad:
            return
        rank = min(bad, key=lambda r: every[r, 0].item())  # the earliest bad iteration, on the first rank that saw it
        step, value = int(every[rank, 0].item()), every[rank, 1].item()
        where = f" on rank {rank}" if dist.enabled else ""
        streak = (f", {self.skip_limit} non-finite losses in a row: the fp16 gradient scaler skipped their steps "
                  "and the run did not recover") if self.skip_limit > 1 else ""
        raise UserError(f"loss became {value} at iteration {step}{where} (stage {stage}){streak}; stopped. The last "
                        f"good checkpoint is kept in {latest}; lower the learning rate or check the data")


def train_step(module: nn.Module, inputs: Tensor, targets: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor],
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None, speed: Speed) -> Tensor:
    """One optimizer step on a batch already on the device, in the precision and memory format of ``speed``;
    the loss (fp32) is returned without being read, so the step does not wait for the device."""
    inputs, targets = speed.prepare_batch(inputs), speed.prepare_batch(targets)
    with speed.autocast(inputs.device):
        output = module(inputs)
    loss = loss_fn(output.float(), targets)
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return loss


class Trainer:
    def __init__(self, net: nn.Module, stages: list[Stage], batches: BatchFn,
                 loss_fn: Callable[[Tensor, Tensor], Tensor], evaluate: EvalFn, config: TrainConfig,
                 device: torch.device, dist_info: DistInfo | None = None,
                 train_module: nn.Module | None = None) -> None:
        """``net`` is what is checkpointed; ``train_module`` (sharing its parameters, default ``net``) is what
        the loop calls on a batch, e.g. an ESPCN view that returns pre-shuffled output. ``evaluate`` runs on
        every rank at each evaluation (each may score its shard of the images and reduce, see
        ``core.dist.mean_over_shards``); rank 0's numbers are the ones every rank uses."""
        self.net, self.stages, self.batches = net, stages, batches
        self.loss_fn, self.evaluate, self.config = loss_fn, evaluate, config
        self.device, self.speed = device, config.speed
        self.dist = dist_info or DistInfo(device=device if device.type == "cuda" else torch.device("cpu"))
        self.module = self._training_module(train_module if train_module is not None else net)
        self.average = WeightAverage(net, config.ema_decay) if config.ema_decay else None
        self.latest_path = config.run_dir / config.latest_name
        self.best_path = config.run_dir / config.best_name if config.best_name else None
        self._stop_signal: int | None = None

    def _training_module(self, module: nn.Module) -> nn.Module:
        self.net.to(self.device)
        self.speed.prepare_module(module)
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            module = nn.parallel.DistributedDataParallel(module, device_ids=ids)
        return self.speed.compiled(module)

    @property
    def evaluated(self) -> nn.Module:
        """The model that is evaluated and saved as the checkpoint's ``model``: the weight average when on."""
        return self.average.module if self.average is not None else self.net

    # ----------------------------------------------------------------- state
    def _checkpoint(self, state: LoopState, optimizer: torch.optim.Optimizer | None, schedule: Schedule | None,
                    scaler: torch.amp.GradScaler | None) -> dict[str, Any]:
        trained = {"trained_model": self.net.state_dict(), "average_float64": self.average.float64_state()} \
            if self.average is not None else {}
        return {
            "model": self.evaluated.state_dict(),
            **trained,
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "schedule": schedule.state_dict() if schedule is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            **asdict(state),
            "rng": torch.get_rng_state(),
            "meta": self.config.meta,
            "speed": self.speed.describe(),
        }

    def _save(self, path: Path, checkpoint: dict[str, Any]) -> None:
        if self.dist.is_main:
            save_checkpoint(path, checkpoint)

    def _load_resume_state(self, resume: bool) -> dict[str, Any] | None:
        self._check_ranks_see_one_checkpoint()
        if not self.latest_path.exists():
            return None
        if not resume:
            saved = load_checkpoint(self.latest_path)
            raise UserError(f"{self.latest_path} already holds a run at iteration {saved.get('step', '?')}; "
                            "pass --resume to continue it, or choose another --out")
        saved = load_checkpoint(self.latest_path)
        structural = {key: value for key, value in self.config.meta.items() if key != "settings"}
        check_meta(saved, self.latest_path, **structural)
        # A run with a weight average saved it as "model" (and in float64) and the weights it trains as
        # "trained_model".
        load_weights(self.net, {"model": saved.get("trained_model", saved["model"])}, self.latest_path)
        if self.average is not None:
            self.average.load_state_dict(saved["model"], saved.get("average_float64"))
        torch.set_rng_state(saved["rng"])
        return saved

    def _check_ranks_see_one_checkpoint(self) -> None:
        """Refuse, on every rank, a run whose ranks see different ``latest`` checkpoints (nodes without a
        shared file system): each would resume from another iteration, or start afresh, and diverge."""
        path = self.latest_path
        seen = from_every_rank((path.stat().st_size, path.stat().st_mtime_ns) if path.exists() else None, self.dist)
        if any(view != seen[0] for view in seen):
            views = ", ".join(f"rank {rank}: {'no file' if view is None else f'{view[0]} bytes'}"
                              for rank, view in enumerate(seen))
            raise UserError(f"the ranks see different checkpoints at {path} ({views}); every node must see the "
                            "run folder on one shared file system (docs/running.md: Several GPUs)")

    # ------------------------------------------------------------------ loop
    def fit(self, resume: bool = False) -> TrainResult:
        saved = self._load_resume_state(resume)
        state = LoopState(**{key: saved[key] for key in LoopState.__dataclass_fields__}) if saved else LoopState()
        log = CsvLog(self.config.run_dir / self.config.log_name, resume_step=state.step if saved else None) \
            if self.dist.is_main else None
        total = sum(stage.steps for stage in self.stages)
        name = self.config.text_log_name or "train.log"
        reporter = ProgressReporter(total, self.config.run_dir / name if self.config.text_log_name else None,
                                    is_main=self.dist.is_main, initial_step=state.step, name=Path(name).stem,
                                    stream=None if self.config.progress else io.StringIO())
        if self.config.header:
            reporter.log_only(self.config.header)
        if saved is not None:
            reporter.message(f"resuming {self.latest_path} at iteration {state.step}")
        self.tensorboard = open_tensorboard(self.dist.is_main and self.config.tensorboard_dir is not None,
                                            self.config.tensorboard_dir or self.config.run_dir)
        previous = self._install_signal_handlers()
        try:
            with backend_flags(self.speed, self.device):
                for index in range(state.stage_index, len(self.stages)):
                    resuming_here = saved is not None and index == saved["stage_index"]
                    self._run_stage(index, state, saved if resuming_here else None, log, reporter)
            state.stage_index, state.stage_step = len(self.stages), 0
            self._save(self.latest_path, self._checkpoint(state, None, None, None))
        finally:
            reporter.close()
            if self.tensorboard is not None:
                self.tensorboard.close()
            self._restore_signal_handlers(previous)
        return TrainResult(state.step, state.best, state.last_eval, state.stopped_early)

    def select(self, how: str = "best-val") -> tuple[Path, dict[str, Any]]:
        """(path, checkpoint) of the weights a finished run keeps, loaded into ``net``: the best evaluation's
        (``best-val``), else the last (``last``, or when no evaluation ran: every stage of 0 iterations)."""
        path = self.best_path if how == "best-val" and self.best_path and self.best_path.exists() else self.latest_path
        state = load_checkpoint(path)
        load_weights(self.net, state, path)
        return path, state

    def numerics(self) -> contextlib.AbstractContextManager:
        """The numerics the run trained in (TF32 or strict fp32): scoring the result inside them scores what
        was selected."""
        return backend_flags(self.speed, self.device)

    def _run_stage(self, index: int, state: LoopState, saved: dict[str, Any] | None, log: CsvLog | None,
                   reporter: ProgressReporter) -> None:
        stage = self.stages[index]
        state.stage_index, state.stage_step = index, saved["stage_step"] if saved else 0
        if stage.prepare is not None:
            stage.prepare(self.net)
            if self.average is not None:
                stage.prepare(self.average.module)
        optimizer = stage.make_optimizer(self.net)
        scaler = self.speed.grad_scaler(self.device)
        if saved is not None and saved["optimizer"] is not None:
            load_optimizer_state(optimizer, saved["optimizer"])
            stage.schedule.load_state_dict(saved["schedule"])
            if scaler is not None and saved.get("scaler"):
                scaler.load_state_dict(saved["scaler"])
        watch = LossWatch(self.device, SKIP_LIMIT if scaler is not None else 1)
        started = time.perf_counter()
        self.module.train()
        while state.stage_step < stage.steps:
            lr = stage.schedule.lr(state.stage_step)
            self._step(optimizer, scaler, lr, state.step, watch)
            state.step += 1
            state.stage_step += 1
            reporter.advance(1)
            stage_over = state.stage_step >= stage.steps
            if state.step % self.config.eval_every == 0 or stage_over:
                loss, skipped = watch.read(self.dist, stage.name, self.latest_path)
                row = {"step": state.step, "stage": stage.name, "lr": lr, "loss": loss,
                       **({"skipped": skipped} if scaler is not None else {}),
                       "seconds": round(time.perf_counter() - started, 3)}
                stop_early, improved = self._after_evaluation(stage, state, row, log, reporter)
                stage_over = stage_over or stop_early
                done = (index + 1, 0) if stage_over else (index, state.stage_step)
                self._save_evaluated(state, done, improved,
                                     None if stage_over else (optimizer, stage.schedule, scaler))
                self.module.train()
                if stage_over:
                    return
            if self._stop_requested(state.step, watch, stage.name):
                self._save(self.latest_path, self._checkpoint(state, optimizer, stage.schedule, scaler))
                barrier(self.dist)  # no rank exits (and makes torchrun kill the others) before the file is whole
                raise StopRequested(f"stopped by signal at iteration {state.step}; checkpoint written to "
                                    f"{self.latest_path}; rerun with --resume to continue")

    def _step(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None, lr: float,
              step: int, watch: LossWatch) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_factor", 1.0)
        inputs, targets = self.batches(step, self.dist)
        loss = train_step(self.module, inputs.to(self.device, non_blocking=True),
                          targets.to(self.device, non_blocking=True), self.loss_fn, optimizer, scaler, self.speed)
        watch.add(loss, step + 1)
        if self.average is not None:
            self.average.update()

    def _after_evaluation(self, stage: Stage, state: LoopState, row: dict[str, Any], log: CsvLog | None,
                          reporter: ProgressReporter) -> tuple[bool, bool]:
        """Evaluate (every rank), log, and take the decisions every rank shares: (stop the stage early,
        improved), from rank 0's numbers (the same on every rank where the callback reduces its shards')."""
        state.last_eval = from_main(self._evaluate(), self.dist)
        row.update(state.last_eval)
        if self.config.steps_per_epoch:
            row["epoch"] = state.step / self.config.steps_per_epoch
        metric = state.last_eval.get(self.config.monitor, -math.inf)
        improved = metric > state.best
        state.best = max(state.best, metric)
        stop = stage.schedule.observe(metric) and state.stage_step < stage.steps
        if stop:
            state.stopped_early.append(f"{stage.name}@{state.step}")
        if log is not None:
            log.append(row)
        reporter.on_eval(row)
        if stop:
            reporter.message(f"stage {stage.name} stopped early at iteration {state.step} (no improvement)")
        if self.tensorboard is not None:
            self.tensorboard.scalars(state.step, row)
            if self.config.preview is not None:
                self.evaluated.eval()
                with torch.no_grad(), without_autotuning():
                    self.tensorboard.images(state.step, "validation_crop", *self.config.preview(self.evaluated))
        return stop, improved

    def _save_evaluated(self, state: LoopState, done: tuple[int, int], improved: bool,
                        resumable: tuple[torch.optim.Optimizer, Schedule, Any] | None) -> None:
        """``latest`` (and ``best`` when the metric improved), positioned where the loop goes on."""
        position = replace(state, stage_index=done[0], stage_step=done[1])
        checkpoint = self._checkpoint(position, *(resumable or (None, None, None)))
        self._save(self.latest_path, checkpoint)
        if improved and self.best_path is not None:
            self._save(self.best_path, checkpoint)

    def _evaluate(self) -> dict[str, float]:
        self.evaluated.eval()
        with torch.no_grad(), without_autotuning():
            return dict(self.evaluate(self.evaluated))

    def _stop_requested(self, step: int, watch: LossWatch, stage: str) -> bool:
        """Every check_every iterations, a non-finite loss (raised) or a stop signal seen by any rank, in one
        collective; a signal is also seen at every other step when there is one process (free)."""
        if step % self.config.check_every == 0:
            return watch.check(self.dist, stage, self.latest_path, stop=self._stop_signal is not None)
        return not self.dist.enabled and self._stop_signal is not None

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
