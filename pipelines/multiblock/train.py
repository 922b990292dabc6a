"""Training one network of the chain (block N_i, or N) on (LR_<i-1>, HR) and scoring it: phases 1-1, 2-1, 3.

Everything here receives the resolved run (``resolve.Run``): settings, seed, device, speed, pairs and record
were checked there; nothing here reads the command line, settings files or run.json."""
from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from core.checkpoint import check_meta, keeps_checkpoint, load_checkpoint, load_weights, save_checkpoint
from core.dist import DistInfo, barrier, mean_over_shards
from core.hardware import device_has_room
from core.runs import run_lock_of_all_ranks, update_results
from data.io import to_float
from data.paired import PairedImages, PatchSampler, decoded_on, load_pairs, peak
from data.splits import hold_out
from engine.csv_log import append_results_row, results_row
from engine.losses import make_loss
from engine.plots import plot_curves, plot_phases
from engine.progress import format_duration
from engine.report import metrics_table
from engine.tensorboard import fixed_crop
from engine.trainer import Stage, TrainConfig, Trainer, TrainResult, constant_stage
from inference.exact_forward import exact_forward
from inference.metrics import psnr_per_image
from inference.scoring import score_pairs
from inference.self_ensemble import DESCRIPTION as ENSEMBLE_DESCRIPTION
from inference.self_ensemble import plus
from inference.whole_image import run_model
from models.blocks import block_kwargs
from models.rcan import Block, orthogonal_init_
from pipelines.multiblock import chain
from pipelines.multiblock.chain import Phase
from pipelines.multiblock.run_folder import ARCH, record_start

if TYPE_CHECKING:
    from pipelines.multiblock.resolve import Run


def initial_block(settings: Mapping[str, Any], run_dir: Path, phase: Phase, seed: int) -> Block:
    """The block ``phase`` trains, before training: orthogonal init (report 4.1; the tail conv with gain
    TAIL_GAIN), or the weights of the block it needs (N_<i-1>, present and of this run: checked when the run
    was resolved) when ``INIT=inherit`` (report 4.2; block 1 has no parent and is always fresh)."""
    torch.manual_seed(seed)
    block = Block(**block_kwargs(settings))
    orthogonal_init_(block)
    # The report's gain 1 everywhere starts the block far from identity (~0 dB); a small tail gain keeps
    # its residual small at the start, which is the report's stated aim (sec. 4.1).
    torch.nn.init.orthogonal_(block.tail.weight, gain=settings["TAIL_GAIN"])
    if phase.needs and settings["INIT"] == "inherit":
        parent = run_dir / f"{phase.needs[-1]}.pt"
        state = load_checkpoint(parent)
        check_meta(state, parent, arch=ARCH)
        load_weights(block, state, parent)
    return block


def split_validation(images: PairedImages, settings: dict[str, Any], seed: int) -> tuple[PairedImages, Any]:
    """(training pairs, validation pairs): whole pairs held out (VAL_FRACTION), or the test pairs when
    VALIDATE_ON_TEST reproduces the report's (optimistic) protocol."""
    if settings["VALIDATE_ON_TEST"]:
        return images, None
    kept, held_out = hold_out(len(images), settings["VAL_FRACTION"], seed)
    return images.subset(kept), images.subset(held_out)


def mean_psnr(net: torch.nn.Module, images: PairedImages, device: torch.device,
              dist_info: DistInfo | None = None) -> float:
    """Mean RGB PSNR, no shave: the same-size validation score that selects checkpoints. Images go to the
    device as decoded (8/16-bit); the network runs whole where it fits on a GPU, else in exact bands; the
    PSNR is computed there (float64), and the host reads one number. Under torchrun each rank scores its
    share of the pairs (called on every rank)."""
    net.to(device)

    def score(pair: tuple[np.ndarray, np.ndarray]) -> torch.Tensor:
        lr, hr = pair
        return psnr_per_image(exact_forward(net, as_tensor(lr, device)).clamp_(0.0, 1.0), as_tensor(hr, device),
                              space="rgb", shave=0)

    with torch.inference_mode():
        return mean_over_shards(score, images.arrays, dist_info or DistInfo())


def as_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """A decoded HxWx3 uint8/uint16 image as a 1x3xHxW float32 tensor in [0, 1] on ``device``."""
    return decoded_on(image, device)[None].float() / peak(image)


def preview_crop(model: torch.nn.Module, pair: tuple[np.ndarray, np.ndarray],
                 device: torch.device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(LR, output, HR) of the centre crop of one validation pair: what TensorBoard shows at evaluations."""
    lr, hr = fixed_crop(to_float(pair[0]), to_float(pair[1]), scale=1)
    return lr, np.clip(run_model(model, lr, device), 0.0, 1.0), hr


def set_clamp(value: bool):
    def prepare(net: torch.nn.Module) -> None:
        for module in net.modules():
            if isinstance(module, Block):
                module.clamp = value
    return prepare


def block_stages(settings: Mapping[str, Any]) -> list[Stage]:
    """Report 4.3 (each ``optimizer`` at a constant learning rate, the blocks' outputs clamped to [0, 1] or not):
    unclamped warm-up, then N_i^+ with Adam 1e-4, then 1e-5 (stages of 0 steps left out)."""
    stages = [constant_stage("warmup", settings["ITERS_WARMUP"], settings["WARMUP_OPTIMIZER"], settings["LR_WARMUP"],
                             set_clamp(False)),
              constant_stage("clamp_high", settings["ITERS_CLAMP_HIGH"], "adam", settings["LR_CLAMP_HIGH"],
                             set_clamp(True)),
              constant_stage("clamp_low", settings["ITERS_CLAMP_LOW"], "adam", settings["LR_CLAMP_LOW"],
                             set_clamp(True))]
    return [stage for stage in stages if stage.steps > 0]


@dataclass
class NetworkJob:
    """The network ``run.phase`` trains (block N_i in phases 1-1, 2-1, 3; N in phase 4), named by the phase's
    ``network`` (N1.pt, N1_latest.pt, log_N1.csv, train_N1.log, ...)."""

    net: torch.nn.Module
    stages: list[Stage]
    meta: dict[str, Any]  # recorded in every checkpoint (architecture, run-wide settings)


@dataclass
class PhaseImages:
    train: PairedImages
    val: PairedImages
    test: PairedImages  # the test pairs with this network's input (LR_<reads>)
    raw_test: PairedImages  # the test pairs with the dataset's LR: the identity baseline


def load_phase_images(run: Run) -> PhaseImages:
    """The phase's pairs in memory: its inputs (LR_<reads>, HR) split into training and validation, the test
    pairs, and the test pairs with the dataset's LR (the identity baseline)."""
    train, test = load_pairs(run.inputs["train"]), load_pairs(run.inputs["test"])
    raw_test = load_pairs(run.pairs["test"]) if run.phase.reads else test
    train, val = split_validation(train, run.settings, run.seed)
    return PhaseImages(train, val if val is not None else test, test, raw_test)


def train_network(run: Run, job: NetworkJob) -> None:
    """Train ``job.net`` on (LR_<reads>, HR), score the test pairs, write ``<name>.pt`` and results."""
    images = load_phase_images(run)
    # Only now, with the inputs read, is anything written, and only by the run holding the folder.
    with run_lock_of_all_ranks(run.out, run.dist), keeps_checkpoint(run.out / f"{run.phase.network}_latest.pt"):
        record_start(run, run.phase.network)
        started = time.perf_counter()
        trainer = make_trainer(run, job, images)
        result = trainer.fit(resume=run.resume)
        if run.dist.is_main:
            _, selected = trainer.select(run.settings["SELECT"])
            with trainer.numerics():  # scored in the numerics it trained in (TF32 or strict fp32)
                score_and_record(run, job, images, result, selected["step"], time.perf_counter() - started)


def make_trainer(run: Run, job: NetworkJob, images: PhaseImages) -> Trainer:
    s, run_dir, name, device, dist_info = run.settings, run.out, run.phase.network, run.device, run.dist
    sampler = PatchSampler(images.train, s["PATCH_SIZE"], s["BATCH_SIZE"], run.seed)
    if device_has_room(device, images.train.nbytes * 2):  # 16-bit LR_<i> are kept as int32 there
        sampler.to(device)
    else:
        sampler.pinned = device.type == "cuda"

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        scores = {"val_psnr": mean_psnr(model, images.val, device, dist_info)}
        if s["TEST_CURVE"]:
            scores["test_psnr"] = mean_psnr(model, images.test, device, dist_info)
        return scores

    config = TrainConfig(
        run_dir=run_dir, latest_name=f"{name}_latest.pt", best_name=f"{name}_best.pt", log_name=f"log_{name}.csv",
        text_log_name=f"train_{name}.log", eval_every=s["EVAL_EVERY"], meta=job.meta,
        header=run.header,
        speed=run.speed,
        tensorboard_dir=run_dir / "tensorboard" / name if s.get("TENSORBOARD") else None,
        preview=functools.partial(preview_crop, pair=images.val.arrays[0], device=device), ema_decay=s["EMA"])
    loss = make_loss(s["LOSS"])
    return Trainer(job.net, job.stages, sampler.batch, loss, evaluate, config, device, dist_info)  # moves it there


def score_and_record(run: Run, job: NetworkJob, images: PhaseImages, result: TrainResult, selected_step: int,
                     seconds: float) -> None:
    """Write ``<name>.pt`` (the selected weights, now in ``job.net``, clamped), score the test pairs, add the
    phase's entry to results.json and its row to the sweep's results.csv, plot the curves."""
    s, phase, name = run.settings, run.phase, run.phase.network
    set_clamp(True)(job.net)
    save_checkpoint(run.out / f"{name}.pt", {"model": job.net.state_dict(), "meta": job.meta,
                                             "selected_step": selected_step, "select": s["SELECT"]})
    metrics = {run.test_set: score_test_pairs(run, job.net, images)}
    entry = {"metrics": metrics, "network": name, "selected_step": selected_step,
             "best_val_psnr_rgb": result.best if math.isfinite(result.best) else None,
             "iterations": result.step, "train_seconds": round(seconds, 1),
             "protocol": "same-size pairs; *_y: BT.601 Y, no shave; *_rgb: RGB, no shave; *_report: RGB, no "
                         "shave, top-left crop of at most 1500x1500 (the report's); identity = the dataset LR"
                         + ("; " + ENSEMBLE_DESCRIPTION if s["SELF_ENSEMBLE"] else "")}
    update_results(run.out, {phase.result: entry})
    plot_curves(run.out / f"log_{name}.csv", run.out / f"curves_{name}.png", title=f"{name} ({phase.script})")
    plot_phases(run.out, chain.NETWORKS)
    append_results_row(run.out.parent / "results.csv", results_row(
        run.out, s, run.seed, metrics, phase=phase.result, script=phase.script, selected_step=selected_step,
        iterations=result.step, train_seconds=entry["train_seconds"]))
    print(metrics_table(metrics))


def score_test_pairs(run: Run, net: torch.nn.Module, images: PhaseImages) -> dict[str, dict[str, float]]:
    """The test pairs' scores: the model (and ``model+``, the x8 self-ensemble, with SELF_ENSEMBLE), its input
    LR_<reads> when that is not the dataset's LR, and the dataset's LR (``identity``)."""
    began = time.perf_counter()
    metrics = score_pairs(net, images.test.named, device=run.device)
    if run.settings["SELF_ENSEMBLE"]:  # scored beside the plain model, never used to select it
        print(f"{run.phase.network}: scoring the {len(images.test)} test pairs with the x8 self-ensemble "
              f"(SELF_ENSEMBLE=true), ETA {format_duration(8 * (time.perf_counter() - began))}", flush=True)
        ensembled = score_pairs(net, images.test.named, device=run.device, ensemble=True)
        metrics = {"model": metrics.pop("model"), plus("model"): ensembled[plus("model")], **metrics}
    if run.phase.reads > 0:  # the baseline is the dataset's LR; LR_<i-1> (this block's input) is reported too
        metrics["input"] = metrics.pop("identity")
    metrics["identity"] = score_pairs(None, images.raw_test.named, device=run.device)["identity"]
    return metrics


def train_block(run: Run) -> None:
    """Phases 1-1, 2-1 and the training half of 3: the block ``run.phase`` trains, on (LR_<reads>, HR)."""
    s, phase = run.settings, run.phase
    block = initial_block(s, run.out, phase, run.seed)
    meta = {"arch": ARCH, "block": chain.BLOCKS.index(phase.network) + 1, **block_kwargs(s), "run": run.record}
    job = NetworkJob(block, block_stages(s), meta)
    train_network(run, job)
    barrier(run.dist)  # <network>.pt is written by rank 0; phase3.py's other ranks read it next
