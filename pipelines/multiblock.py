"""Phased training of the Multiblock Channel Attention Network (called by the phase scripts).

One run folder holds everything: ``N<i>_latest.pt`` (resume state), ``N<i>.pt`` (the trained block),
``LR_<i>/{train,test}/<name>.png`` (N_i^+ applied to the previous inputs, 16-bit PNG) with
``LR_<i>/manifest.json`` (which checkpoint made them), ``N_latest.pt`` / ``N.pt`` for the combined net,
``log_N<i>.csv`` curves and plots, and ``results.json`` with one entry per phase.

Block i trains on (LR_{i-1}, HR), LR_0 being the dataset's LR. What differs between phases is settings
and the block index, not code.
"""
from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data.io import is_image_file, read_image, to_float, write_image
from data.paired import (
    PairedImages,
    PatchSampler,
    find_realsr_pairs,
    load_pairs,
    lr_stage_dir,
    pairs_with_lr_folder,
)
from engine.checkpoint import check_meta, load_checkpoint, load_weights, save_checkpoint
from engine.dist import DistInfo, barrier, cleanup, init_distributed, shard_range
from engine.errors import UserError
from engine.evaluation import score_pairs
from engine.inference import run_model
from engine.logs import plot_curves
from engine.losses import make_loss
from engine.metrics import psnr
from engine.report import metrics_table
from engine.runs import prepare_run_dir, read_json, update_results, write_json
from engine.schedules import Constant
from engine.settings import RunContext
from engine.trainer import Stage, TrainConfig, Trainer
from models.rcan import Block, MultiBlockNet, orthogonal_init_

TRAIN_SCRIPT = {1: "phase1_1.py", 2: "phase2_1.py", 3: "phase3.py"}
REGEN_SCRIPT = {1: "phase1_2.py", 2: "phase2_2.py", 3: "phase3.py"}
SPLITS = ("train", "test")
ARCH = "multiblock-block"


# ----------------------------------------------------------------------------- helpers
BLOCK_KEYS = ("n_feats", "n_resblocks", "reduction", "end_conv")


def block_kwargs(settings: dict[str, Any]) -> dict[str, Any]:
    return {"n_feats": settings["N_FEATS"], "n_resblocks": settings["N_RESBLOCKS"],
            "reduction": settings["REDUCTION"], "end_conv": settings["END_CONV"]}


def test_set_name(settings: dict[str, Any]) -> str:
    return f"RealSR-{settings['CAMERA']}-x{settings['SCALE']}-test"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def realsr_pairs(ctx: RunContext, split: str):
    s = ctx.settings
    return find_realsr_pairs(ctx.data_root, s["CAMERA"], s["SCALE"], split.capitalize())


def stage_inputs(ctx: RunContext, stage: int, split: str, needed_by: str):
    """Pairs whose LR side is LR_<stage> (stage 0: the dataset's LR), checked to be complete and current."""
    pairs = realsr_pairs(ctx, split)
    if stage == 0:
        return pairs
    require_lr_folder(ctx.out, stage, needed_by)
    return pairs_with_lr_folder(pairs, lr_stage_dir(ctx.out, stage, split))


def require_lr_folder(run_dir: Path, stage: int, needed_by: str) -> None:
    weights = run_dir / f"N{stage}.pt"
    manifest = read_json(run_dir / f"LR_{stage}" / "manifest.json")
    first = " and ".join(dict.fromkeys([TRAIN_SCRIPT[stage], REGEN_SCRIPT[stage]]))
    if not weights.exists():
        raise UserError(f"{needed_by} needs {weights} and LR_{stage}/ in {run_dir}; run {first} first "
                        f"with the same --out")
    if not manifest.get("complete"):
        raise UserError(f"{needed_by} needs a complete LR_{stage}/ in {run_dir}; run {REGEN_SCRIPT[stage]} "
                        "first with the same --out")
    if manifest.get("checkpoint_sha256") != sha256(weights):
        raise UserError(f"LR_{stage}/ in {run_dir} was made by an older N{stage}.pt; rerun "
                        f"{REGEN_SCRIPT[stage]} to regenerate it")


def check_choices(settings: dict[str, Any]) -> None:
    """Refuse a misspelt choice before any work starts (not after minutes of loading or training)."""
    choices = {"INIT": ("inherit", "fresh"), "WARMUP_OPTIMIZER": ("adam", "adadelta"), "SELECT": ("best-val", "last"),
               "LOSS": ("l1", "mse")}
    for name, allowed in choices.items():
        if name in settings and str(settings[name]).lower() not in allowed:
            raise UserError(f"{name}={settings[name]!r}: expected one of {', '.join(allowed)} (--set {name}=...)")


def initial_block(settings: dict[str, Any], run_dir: Path, index: int, seed: int) -> Block:
    """Block N_<index> before training: orthogonal init (report 4.1; the tail conv with gain TAIL_GAIN), or
    N_<index-1>'s weights when
    ``INIT=inherit`` (report 4.2; block 1 has no parent and is always fresh)."""
    torch.manual_seed(seed)
    block = Block(**block_kwargs(settings))
    orthogonal_init_(block)
    # The report's gain 1 everywhere starts the block far from identity (~0 dB); a small tail gain keeps
    # its residual small at the start, which is the report's stated aim (sec. 4.1).
    torch.nn.init.orthogonal_(block.tail.weight, gain=settings["TAIL_GAIN"])
    if index > 1 and settings["INIT"] == "inherit":
        parent = run_dir / f"N{index - 1}.pt"
        if not parent.exists():
            raise UserError(f"{TRAIN_SCRIPT[index]} with INIT=inherit needs {parent}; run {TRAIN_SCRIPT[index - 1]} "
                            "first with the same --out, or set INIT=fresh")
        state = load_checkpoint(parent)
        check_meta(state, parent, arch=ARCH)
        load_weights(block, state, parent)
    return block


def load_block(path: Path, clamp: bool) -> Block:
    """A block rebuilt from the architecture its checkpoint records."""
    state = load_checkpoint(path)
    check_meta(state, path, arch=ARCH)
    meta = state.get("meta", {})
    try:
        block = Block(**{key: meta[key] for key in BLOCK_KEYS}, clamp=clamp)
    except KeyError:
        raise UserError(f"{path} records no block architecture; it was not written by a phase script") from None
    load_weights(block, state, path)
    return block


def split_validation(images: PairedImages, settings: dict[str, Any], seed: int) -> tuple[PairedImages, Any]:
    """(training pairs, validation pairs): whole pairs held out (VAL_FRACTION), or the test pairs when
    VALIDATE_ON_TEST reproduces the report's (optimistic) protocol."""
    if settings["VALIDATE_ON_TEST"]:
        return images, None
    fraction = settings["VAL_FRACTION"]
    if fraction <= 0 or len(images) < 2:
        raise UserError(f"VAL_FRACTION={fraction} with {len(images)} training pairs leaves no validation "
                        "pairs; raise it, add pairs, or set VALIDATE_ON_TEST=true")
    order = np.random.default_rng(seed).permutation(len(images))
    n_val = min(len(images) - 1, max(1, round(fraction * len(images))))
    return images.subset(sorted(order[n_val:].tolist())), images.subset(sorted(order[:n_val].tolist()))


def mean_psnr(net: torch.nn.Module, images: PairedImages, device: torch.device) -> float:
    """Mean RGB PSNR, no shave: the same-size validation score that selects checkpoints."""
    scores = [psnr(np.clip(run_model(net, to_float(lr), device), 0, 1), to_float(hr),
                   space="rgb", shave=0) for lr, hr in images.arrays]
    return float(np.mean(scores))


def make_optimizer(kind: str, lr: float):
    def build(net: torch.nn.Module) -> torch.optim.Optimizer:
        if kind == "adam":
            return torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
        if kind == "adadelta":
            return torch.optim.Adadelta(net.parameters(), lr=lr, rho=0.9, eps=1e-6, weight_decay=0)
        raise UserError(f"optimizer {kind!r}: expected 'adam' or 'adadelta'")
    return build


def set_clamp(value: bool):
    def prepare(net: torch.nn.Module) -> None:
        for module in net.modules():
            if isinstance(module, Block):
                module.clamp = value
    return prepare


def block_stages(settings: dict[str, Any]) -> list[Stage]:
    """Report 4.3: unclamped warm-up, then N_i^+ with Adam 1e-4, then 1e-5."""
    stages = [
        Stage("warmup", settings["ITERS_WARMUP"],
              make_optimizer(settings["WARMUP_OPTIMIZER"], settings["LR_WARMUP"]),
              Constant(settings["LR_WARMUP"]), set_clamp(False)),
        Stage("clamp_high", settings["ITERS_CLAMP_HIGH"], make_optimizer("adam", settings["LR_CLAMP_HIGH"]),
              Constant(settings["LR_CLAMP_HIGH"]), set_clamp(True)),
        Stage("clamp_low", settings["ITERS_CLAMP_LOW"], make_optimizer("adam", settings["LR_CLAMP_LOW"]),
              Constant(settings["LR_CLAMP_LOW"]), set_clamp(True)),
    ]
    return [stage for stage in stages if stage.steps > 0]


# ---------------------------------------------------------------------- training phases
def train_network(ctx: RunContext, net: torch.nn.Module, name: str, stages: list[Stage], input_stage: int,
                  phase_key: str, script: str, dist_info: DistInfo, device: torch.device,
                  meta: dict[str, Any]) -> None:
    """Train ``net`` on (LR_<input_stage>, HR), score the test pairs, write ``<name>.pt`` and results."""
    s, run_dir = ctx.settings, ctx.out
    train_images = load_pairs(stage_inputs(ctx, input_stage, "train", script))
    test_images = load_pairs(stage_inputs(ctx, input_stage, "test", script))
    raw_test = load_pairs(realsr_pairs(ctx, "test")) if input_stage > 0 else test_images
    train_images, val_images = split_validation(train_images, s, ctx.seed)
    val_images = val_images if val_images is not None else test_images
    sampler = PatchSampler(train_images, s["PATCH_SIZE"], s["BATCH_SIZE"], ctx.seed)
    loss_fn = make_loss(s["LOSS"], s["GRAD_LOSS_WEIGHT"])
    latest = run_dir / f"{name}_latest.pt"
    if latest.exists() and not ctx.resume:  # checked before settings.json is touched (the trainer checks too)
        raise UserError(f"{latest} already holds a run; pass --resume to continue it, or choose another --out")
    if dist_info.is_main:  # only now, with the inputs checked, is anything written
        prepare_run_dir(run_dir)
    write_settings(ctx, name, dist_info)

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        scores = {"val_psnr": mean_psnr(model, val_images, device)}
        if s["TEST_CURVE"]:
            scores["test_psnr"] = mean_psnr(model, test_images, device)
        return scores

    trainer = Trainer(
        net.to(device), stages, lambda step, d: sampler.batch(step, d.rank, d.world_size), loss_fn, evaluate,
        TrainConfig(run_dir=run_dir, latest_name=f"{name}_latest.pt", best_name=f"{name}_best.pt",
                    log_name=f"log_{name}.csv", eval_every=s["EVAL_EVERY"], meta=meta),
        device, dist_info)
    started = time.perf_counter()
    result = trainer.fit(resume=ctx.resume)
    if not dist_info.is_main:
        return
    chosen = run_dir / (f"{name}_best.pt" if s["SELECT"] == "best-val" else f"{name}_latest.pt")
    if not chosen.exists():  # no evaluation happened (every stage has 0 iterations): the starting weights
        chosen = run_dir / f"{name}_latest.pt"
    state = load_checkpoint(chosen)
    load_weights(net, state, chosen)
    set_clamp(True)(net)
    save_checkpoint(run_dir / f"{name}.pt", {"model": net.state_dict(), "meta": meta,
                                              "selected_step": state["step"], "select": s["SELECT"]})
    chain_test = [(pair.name, lr, hr) for pair, (lr, hr) in zip(test_images.pairs, test_images.arrays,
                                                                 strict=True)]
    metrics = score_pairs(net, chain_test, device=device)
    if input_stage > 0:  # the baseline is the dataset's LR; LR_<i-1> (this block's input) is reported too
        metrics["input"] = metrics.pop("identity")
    metrics["identity"] = score_pairs(None, [(p.name, lr, hr) for p, (lr, hr) in
                                             zip(raw_test.pairs, raw_test.arrays, strict=True)],
                                      device=device)["identity"]
    update_results(run_dir, {phase_key: {
        "metrics": {test_set_name(s): metrics},
        "network": name, "selected_step": state["step"],
        "best_val_psnr_rgb": result.best if math.isfinite(result.best) else None,
        "iterations": result.step, "train_seconds": round(time.perf_counter() - started, 1),
        "protocol": "same-size pairs; *_y: BT.601 Y, no shave; *_rgb: RGB, no shave; *_report: RGB, no "
                    "shave, top-left crop of at most 1500x1500 (the report's); identity = the dataset LR",
    }})
    plot_curves(run_dir / f"log_{name}.csv", run_dir / f"curves_{name}.png", title=f"{name} ({script})")
    plot_phases(run_dir)
    print(metrics_table({test_set_name(s): metrics}))


def train_block(ctx: RunContext, index: int) -> None:
    """Phases 1-1, 2-1 and the training half of 3: block N_<index> on (LR_<index-1>, HR)."""
    s = ctx.settings
    script = TRAIN_SCRIPT[index]
    check_choices(s)
    if index > 1:  # before anything is written: a script run too early names the scripts to run first
        require_lr_folder(ctx.out, index - 1, script)
    dist_info, device = init_distributed(ctx.device)
    block = initial_block(s, ctx.out, index, ctx.seed)
    meta = {"arch": ARCH, "block": index, **block_kwargs(s)}
    train_network(ctx, block, f"N{index}", block_stages(s), index - 1, f"phase{index}", script, dist_info,
                  device, meta)
    barrier(dist_info)  # N<index>.pt is written by rank 0; phase3.py's other ranks read it next
    cleanup(dist_info)


def write_settings(ctx: RunContext, name: str, dist_info: DistInfo) -> None:
    if dist_info.is_main:
        path = ctx.out / "settings.json"
        everything = read_json(path)
        everything[name] = {**ctx.settings, "seed": ctx.seed, "data": str(ctx.data_root),
                            "world_size": dist_info.world_size}
        write_json(path, everything)


# ------------------------------------------------------------------------ LR regeneration
def regenerate(ctx: RunContext, index: int) -> None:
    """Phases 1-2, 2-2 and the end of 3: run N_<index>^+ over the train and test inputs -> LR_<index>/."""
    script = REGEN_SCRIPT[index]
    dist_info, device = init_distributed(ctx.device)
    weights = ctx.out / f"N{index}.pt"
    if not weights.exists():
        raise UserError(f"{script} needs {weights}; run {TRAIN_SCRIPT[index]} first with the same --out")
    folder = ctx.out / f"LR_{index}"
    digest = sha256(weights)
    manifest_path = folder / "manifest.json"
    manifest = read_json(manifest_path)
    jobs = [(pair, lr_stage_dir(ctx.out, index, split) / f"{pair.name}.png")
            for split in SPLITS for pair in stage_inputs(ctx, index - 1, split, script)]
    # the input's maker too: LR_<index-1> regenerated by a changed N_<index-1> makes LR_<index> stale
    source = {"input": f"LR_{index - 1}" if index > 1 else "dataset LR",
              "input_checkpoint_sha256": read_json(ctx.out / f"LR_{index - 1}" / "manifest.json").get(
                  "checkpoint_sha256") if index > 1 else None}
    record = {"checkpoint": weights.name, "checkpoint_sha256": digest, **source}
    current = all(manifest.get(key) == value for key, value in record.items())
    if current and manifest.get("complete") and all(target.exists() for _pair, target in jobs):
        if dist_info.is_main:
            print(f"{folder} is up to date (made by {weights.name}, sha256 {digest[:12]}); skipped")
        return
    if dist_info.is_main:
        wanted = {target for _pair, target in jobs}
        for split in SPLITS:  # never mix generations, nor keep images of pairs no longer in the dataset
            split_dir = lr_stage_dir(ctx.out, index, split)
            for path in sorted(split_dir.iterdir()) if split_dir.is_dir() else []:
                if is_image_file(path) and (not current or path not in wanted):
                    path.unlink()
        write_json(manifest_path, {**record, "complete": False})
    barrier(dist_info)
    block = load_block(weights, clamp=True).to(device).eval()
    mine = [jobs[i] for i in shard_range(len(jobs), dist_info)]
    todo = [(pair, target) for pair, target in mine if not target.exists()]
    started = time.perf_counter()
    for number, (pair, target) in enumerate(todo, 1):
        lr = to_float(read_image(pair.lr_path))
        output = np.clip(run_model(block, lr, device), 0.0, 1.0)
        write_image(target, output, bits=16)
        if dist_info.is_main:
            print(f"[{number}/{len(todo)}] {target}", flush=True)
    barrier(dist_info)
    if dist_info.is_main:
        missing = [str(target) for _pair, target in jobs if not target.exists()]
        if missing:
            raise UserError(f"LR_{index} is incomplete ({len(missing)} images missing, e.g. {missing[0]}); "
                            f"rerun {script}")
        write_json(manifest_path, {**record, "complete": True, "images": len(jobs), "format": "16-bit RGB PNG",
                                   "seconds": round(time.perf_counter() - started, 1)})
        print(f"wrote {len(todo)} images ({len(jobs) - len(todo)} already there) to {folder}")


# ------------------------------------------------------------------------------- phase 4
def train_combined(ctx: RunContext) -> None:
    """Phase 4: N = N_3^+(N_2^+(N_1^+(x))) from the three blocks, trained end to end on (LR, HR).

    ``INIT=fresh`` builds N from three new blocks (``initial_block``: orthogonal init, TAIL_GAIN) instead:
    the single-backpropagation baseline of the report's Fig. 7, which needs no N<i>.pt."""
    s = ctx.settings
    init = str(s.get("INIT", "blocks")).lower()
    if init not in ("blocks", "fresh"):
        raise UserError(f"INIT={s['INIT']!r}: expected one of blocks, fresh (--set INIT=...)")
    check_choices({key: value for key, value in s.items() if key != "INIT"})
    paths = [ctx.out / f"N{i}.pt" for i in (1, 2, 3)]
    missing = [index for index, path in enumerate(paths, 1) if not path.exists()]
    if missing and init == "blocks":
        scripts = TRAIN_SCRIPT[3] if missing[0] == 3 else f"the phases from {TRAIN_SCRIPT[missing[0]]} to phase3.py"
        raise UserError(f"phase4.py needs {', '.join(paths[i - 1].name for i in missing)} in {ctx.out}; run "
                        f"{scripts} first with the same --out, or set INIT=fresh")
    dist_info, device = init_distributed(ctx.device)
    if init == "fresh":  # three new blocks, seeded seed, seed+1, seed+2 (initial_block seeds torch itself)
        blocks = [initial_block({**s, "INIT": "fresh"}, ctx.out, i, ctx.seed + i - 1) for i in (1, 2, 3)]
        for block in blocks:
            block.clamp = True
        net, block_meta = MultiBlockNet(blocks), block_kwargs(s)
    else:
        net = MultiBlockNet([load_block(path, clamp=True) for path in paths])
        block_meta = load_checkpoint(paths[0])["meta"]
    torch.manual_seed(ctx.seed)
    stages = [
        Stage("high", s["ITERS_HIGH"], make_optimizer("adam", s["LR_HIGH"]), Constant(s["LR_HIGH"]),
              set_clamp(True)),
        Stage("low", s["ITERS_LOW"], make_optimizer("adam", s["LR_LOW"]), Constant(s["LR_LOW"]),
              set_clamp(True)),
    ]
    meta = {"arch": "multiblock-net", "blocks": 3, **{key: block_meta[key] for key in BLOCK_KEYS}}
    train_network(ctx, net, "N", [st for st in stages if st.steps > 0], 0, "phase4", "phase4.py", dist_info,
                  device, meta)
    barrier(dist_info)
    cleanup(dist_info)


# ------------------------------------------------------------------------------- plots
def plot_phases(run_dir: Path) -> None:
    """The report's Fig. 8: test (or validation) PSNR against iteration, one line per phase."""
    from engine.logs import plt, read_log

    logs = [(name, run_dir / f"log_{name}.csv") for name in ("N1", "N2", "N3", "N")]
    logs = [(name, path) for name, path in logs if path.exists()]
    if not logs:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    offset = 0.0
    for name, path in logs:
        rows = read_log(path)
        key = "test_psnr" if rows and "test_psnr" in rows[0] else "val_psnr"
        ax.plot([offset + r["step"] for r in rows], [r.get(key, float("nan")) for r in rows],
                label=f"{name} {key}")
        offset += rows[-1]["step"] if rows else 0
    ax.set(xlabel="iteration (phases one after another)", ylabel="PSNR RGB (dB)", title="PSNR per phase")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run_dir / "phases.png", dpi=100)
    plt.close(fig)

