"""``espcn.py train``: sub-images, the one training loop with the paper's plateau rule (or cosine), final scoring."""
from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.checkpoint import keeps_checkpoint, load_checkpoint
from core.dist import DistInfo, init_distributed, mean_over_shards
from core.errors import UserError
from core.hardware import device_has_room
from core.runs import read_json, run_lock_of_all_ranks, setting_changes, update_results, write_json
from core.settings import RunContext
from data.degrade import modcrop
from data.io import to_float
from data.splits import hold_out
from engine.csv_log import append_results_row, results_row
from engine.losses import comparable_loss, make_loss
from engine.optimizers import adam
from engine.plots import plot_curves
from engine.report import metrics_table
from engine.schedules import Cosine, Plateau
from engine.speed import Speed, speed_from_settings
from engine.tensorboard import fixed_crop
from engine.trainer import Stage, TrainConfig, Trainer
from inference.metrics import psnr
from inference.scoring import score_scaled_set
from inference.whole_image import super_resolve
from models.espcn import ESPCN, PreshuffledView, espcn_param_groups
from pipelines.espcn.cli import settings_report
from pipelines.espcn.common import ARCH, degrade_fn, load_set, protocol_text
from pipelines.espcn.fine_tune import initial_weights, recorded_starting_point, starting_point
from pipelines.espcn.training_data import training_sampler


def validation_psnr(net: ESPCN, images, settings: dict[str, Any], device: torch.device,
                    dist_info: DistInfo | None = None) -> float:
    """Mean Y PSNR (shave = scale) on held-out training images degraded like the training data; under
    torchrun each rank scores its share of them (called on every rank)."""
    scale, degrade = settings["SCALE"], degrade_fn(settings)

    def score(named: tuple[str, np.ndarray]) -> float:
        hr = modcrop(to_float(named[1]), scale)
        sr = super_resolve(net, degrade(hr, scale), scale=scale, channels=settings["CHANNELS"], device=device,
                           tile=settings["EVAL_TILE"])
        return psnr(sr, hr, space="y", shave=scale)

    return mean_over_shards(score, images, dist_info or DistInfo())


def preview_crop(model: ESPCN, image: np.ndarray, settings: dict[str, Any],
                 device: torch.device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(LR, output, HR) of the centre crop of one held-out image: what TensorBoard shows at evaluations."""
    scale = settings["SCALE"]
    hr = modcrop(to_float(image), scale)
    lr, hr = fixed_crop(degrade_fn(settings)(hr, scale), hr, scale)
    return lr, super_resolve(model, lr, scale=scale, channels=settings["CHANNELS"], device=device), hr


def make_stage(settings: dict[str, Any], total_steps: int, steps_per_epoch: int) -> Stage:
    lr_start, lr_end = settings["LR_START"], settings["LR_END"]
    if settings["SCHEDULE"] == "plateau":
        schedule = Plateau(lr_start, lr_end, settings["MU"], settings["PATIENCE"], settings["LR_FACTOR"],
                           settings["COOLDOWN"])
    else:
        schedule = Cosine(lr_start, lr_end, total_steps)

    def make_optimizer(net: ESPCN) -> torch.optim.Optimizer:
        groups = espcn_param_groups(net, lr_start, settings["LAST_LAYER_LR"])
        if settings["OPTIMIZER"] == "adam":
            return adam(groups, next(net.parameters()).device, lr=lr_start)
        return torch.optim.SGD(groups, momentum=settings["MOMENTUM"])

    return Stage("train", total_steps, make_optimizer, schedule)


def meta_of(settings: dict[str, Any]) -> dict[str, Any]:
    return {"arch": ARCH, "scale": settings["SCALE"], "channels": settings["CHANNELS"],
            "features": list(settings["FEATURES"]), "settings": settings}


def train(ctx: RunContext) -> None:
    settings = ctx.settings
    dist_info, device = init_distributed(ctx.device)
    speed = speed_from_settings(settings, device)  # PRECISION checked against the device before any work
    train_images = load_set(ctx, settings["TRAIN_SET"])
    eval_sets = {name: load_set(ctx, name) for name in settings["EVAL_SETS"]}
    kept, held_out = hold_out(len(train_images), settings["VAL_FRACTION"], ctx.seed)
    train_images, val_images = [train_images[i] for i in kept], [train_images[i] for i in held_out]
    sampler = training_sampler(train_images, settings, ctx.seed)
    latest = ctx.out / "latest.pt"
    resuming = ctx.resume and latest.is_file()  # the checkpoint's weights replace INIT_WEIGHTS'
    start = None if resuming else initial_weights(settings)
    origin = recorded_starting_point(ctx.out) if resuming else starting_point(settings)
    if resuming:
        check_resumed_settings(ctx, latest)
    # Only now, with the inputs checked, is anything written, and only by the run holding the folder.
    with run_lock_of_all_ranks(ctx.out, dist_info), keeps_checkpoint(latest):
        if latest.exists() and not ctx.resume:  # before settings.json is touched
            raise UserError(f"{latest} already holds a run at iteration {load_checkpoint(latest).get('step', '?')}; "
                            "pass --resume to continue it, or choose another --out")
        _train(ctx, dist_info, device, speed, (train_images, val_images, eval_sets), sampler, start, origin)


# how a run is watched, scored at its end or laid out in memory, and INIT_WEIGHTS (the checkpoint replaces it)
NOT_COMPARED_ON_RESUME = ("TENSORBOARD", "EVAL_SETS", "EVAL_TILE", "COMPILE", "CHANNELS_LAST", "INIT_WEIGHTS")


def check_resumed_settings(ctx: RunContext, latest: Path) -> None:
    """``--resume`` continues the training that ``settings.json`` records: refuse, in one line naming each
    difference, settings (or a seed) other than those it started with."""
    names = [key for key in (*ctx.settings, "seed") if key not in NOT_COMPARED_ON_RESUME]
    changes = setting_changes(comparable_loss(read_json(ctx.out / "settings.json")),
                              comparable_loss({**ctx.settings, "seed": ctx.seed}), names)
    if changes:
        raise UserError(f"--resume continues the run in {latest}, which started with other settings: "
                        f"{changes}; resume with those values, or choose another --out")


def _train(ctx: RunContext, dist_info: DistInfo, device: torch.device, speed: Speed, images: tuple, sampler,
           start: dict[str, torch.Tensor] | None, origin: dict[str, Any]) -> None:
    """Train ESPCN on ``sampler`` and score ``best.pt``; ``origin`` is the INIT_WEIGHTS record for settings.json."""
    settings = ctx.settings
    train_images, val_images, eval_sets = images
    torch.manual_seed(ctx.seed)
    net = ESPCN(settings["SCALE"], settings["CHANNELS"], tuple(settings["FEATURES"]))
    if start is not None:
        net.load_state_dict(start)
    trainer = make_trainer(ctx, net, sampler, val_images, dist_info, device, speed)
    if dist_info.is_main:
        _record_settings(ctx, dist_info, device, train_images, val_images, sampler.examples_per_epoch,
                         sampler.steps_per_epoch, origin)
    started = time.perf_counter()
    result = trainer.fit(resume=ctx.resume)
    if dist_info.is_main:
        with trainer.numerics():  # scored in the numerics it trained in (TF32 or strict fp32)
            _score_best(ctx, trainer, eval_sets, device, {
                "best_val_psnr_y": result.best,
                "epochs_run": result.step / sampler.steps_per_epoch,
                "stopped_early": result.stopped_early,
                "train_seconds": round(time.perf_counter() - started, 1),
            }, sampler.steps_per_epoch)


def make_trainer(ctx: RunContext, net: ESPCN, sampler, val_images, dist_info: DistInfo,
                 device: torch.device, speed: Speed) -> Trainer:
    """The trainer of ``net`` (moved to ``device`` by it) on ``sampler``'s sub-images, whose examples move to
    the device when they fit there (a step then gathers its batch without a host copy)."""
    settings, run_dir = ctx.settings, ctx.out
    if device_has_room(device, sampler.nbytes):
        sampler.to(device)
    total = settings["EPOCHS"] * sampler.steps_per_epoch
    return Trainer(
        net, [make_stage(settings, total, sampler.steps_per_epoch)], sampler.batch,
        make_loss(settings["LOSS"]),
        lambda model: {"val_psnr": validation_psnr(model, val_images, settings, device, dist_info)},
        TrainConfig(run_dir=run_dir, eval_every=sampler.steps_per_epoch, steps_per_epoch=sampler.steps_per_epoch,
                    meta=meta_of(settings), text_log_name="train.log", speed=speed,
                    tensorboard_dir=run_dir / "tensorboard" if settings.get("TENSORBOARD") else None,
                    preview=functools.partial(preview_crop, image=val_images[0][1], settings=settings,
                                              device=device),
                    ema_decay=settings["EMA"], header=settings_report(ctx)),
        device, dist_info, train_module=PreshuffledView(net))


def _record_settings(ctx: RunContext, dist_info: DistInfo, device: torch.device, train_images, val_images,
                     subimages: int, steps_per_epoch: int, origin: dict[str, Any]) -> None:
    write_json(ctx.out / "settings.json", {**ctx.settings, "seed": ctx.seed, "data": str(ctx.data_root),
                                           "command": ctx.command,
                                           "device": str(device), "world_size": dist_info.world_size,
                                           "train_images": len(train_images),
                                           "val_images": [name for name, _ in val_images],
                                           "subimages": subimages, **origin})
    print(f"{subimages} sub-images from {len(train_images)} images, {len(val_images)} held out "
          f"for validation, {steps_per_epoch} steps per epoch", flush=True)


def _score_best(ctx: RunContext, trainer: Trainer, eval_sets: dict, device: torch.device, training: dict[str, Any],
                steps_per_epoch: int) -> None:
    """best.pt scored on the EVAL_SETS, into results.json, the sweep's results.csv and the printed table."""
    settings, run_dir = ctx.settings, ctx.out
    path, state = trainer.select("best-val")
    net = trainer.net
    metrics = {name: score_scaled_set(net, images, scale=settings["SCALE"], channels=settings["CHANNELS"],
                                      device=device, tile=settings["EVAL_TILE"])
               for name, images in eval_sets.items()}
    results = update_results(run_dir, {"metrics": metrics, "protocol": protocol_text(settings["SCALE"]),
                                       "checkpoint": path.name, "best_epoch": state["step"] / steps_per_epoch,
                                       **training})
    plot_curves(run_dir / "log.csv", run_dir / "curves.png", x="epoch", title=f"ESPCN x{settings['SCALE']}")
    append_results_row(run_dir.parent / "results.csv", sweep_row(run_dir, settings, ctx.seed, results))
    print(metrics_table(metrics))


def sweep_row(run_dir: Path, settings: dict[str, Any], seed: int, results: dict[str, Any]) -> dict[str, Any]:
    row = results_row(run_dir, settings, seed, results["metrics"])
    row["best_val_psnr_y"] = round(results["best_val_psnr_y"], 4)
    row["epochs_run"] = results["epochs_run"]
    return row
