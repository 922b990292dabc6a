"""ESPCN end to end: sub-images from HR folders, training, scoring, upscaling (called by ``espcn.py``)."""
from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from data.color import rgb_to_y
from data.datasets import load_named_set
from data.degrade import bicubic_downscale, gaussian_downscale, modcrop
from data.io import is_image_file, read_image, to_float, write_image
from data.samplers import EpochSampler
from data.subimages import extract_subimages
from engine.checkpoint import check_meta, load_checkpoint, load_weights
from engine.dist import cleanup, init_distributed
from engine.errors import UserError
from engine.evaluation import score_scaled_set
from engine.fast_inference import BACKENDS, FastESPCN, upscale_rgb_uint8, upscale_yuv420
from engine.inference import super_resolve
from engine.logs import plot_curves
from engine.losses import make_loss
from engine.metrics import psnr
from engine.report import metrics_table
from engine.runs import append_results_row, prepare_run_dir, update_results, write_json
from engine.schedules import Cosine, Plateau
from engine.settings import (
    CliParser,
    RunContext,
    add_common_args,
    collect_settings,
    context_from_args,
    settings_help,
)
from engine.trainer import Stage, TrainConfig, Trainer
from engine.video import Frame, VideoWriter, is_video_file, output_suffix, probe, read_video, run_pipeline
from models.espcn import ESPCN, PreshuffledView, espcn_param_groups

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "espcn_x3_y.pt"
ARCH = "espcn"


# ------------------------------------------------------------------------------ command line
def run(namespace: dict[str, Any], argv: list[str] | None) -> None:
    parser = CliParser(description=namespace["__doc__"],
                       epilog=settings_help(collect_settings(namespace), namespace["__file__"]),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=CliParser)
    train_parser = commands.add_parser("train", help="train on TRAIN_SET, then score EVAL_SETS")
    add_common_args(train_parser, default_out="runs/espcn")
    eval_parser = commands.add_parser("eval", help="score a checkpoint on HR folders (EVAL_SETS)")
    add_common_args(eval_parser, default_out="")
    upscale_parser = commands.add_parser("upscale", help="upscale images or folders (no downscaling first)")
    add_common_args(upscale_parser, default_out="upscaled")
    upscale_parser.add_argument("inputs", nargs="+", help="image files or folders of images")
    for sub in (eval_parser, upscale_parser):
        sub.add_argument("--weights", default=None, help=f"checkpoint (default: {DEFAULT_WEIGHTS.name})")
    args = parser.parse_args(argv)
    ctx = context_from_args(namespace, args)
    ctx.settings = apply_preset(ctx.settings, namespace["PRESETS"], args.overrides)
    {"train": train, "eval": evaluate, "upscale": upscale}[args.command](ctx)


def apply_preset(settings: dict[str, Any], presets: dict[str, dict[str, Any]],
                 overrides: list[str]) -> dict[str, Any]:
    """Settings block < preset < explicit --set."""
    name = settings["PRESET"]
    if name not in presets:
        raise UserError(f"PRESET={name!r}: expected one of {', '.join(presets)}")
    explicit = {item.partition("=")[0].strip() for item in overrides}
    return {**settings, **{k: v for k, v in presets[name].items() if k not in explicit}}


# ------------------------------------------------------------------------------------ data
def degrade_fn(settings: dict[str, Any]):
    kind = settings["DEGRADATION"]
    if kind == "gaussian":
        return functools.partial(gaussian_downscale, sigma=settings["BLUR_SIGMA"] * settings["SCALE"])
    if kind == "bicubic":
        return bicubic_downscale
    raise UserError(f"DEGRADATION={kind!r}: expected 'gaussian' or 'bicubic'")


def model_space(image: np.ndarray, channels: int) -> np.ndarray:
    """uint image -> float HxWxC in the model's colour space (Y or RGB)."""
    rgb = to_float(image)
    return rgb_to_y(rgb)[..., None] if channels == 1 else rgb


def dihedral_variants(image: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.rot90(flipped, k)) for flipped in (image, image[:, ::-1])
            for k in range(4)]


def split_validation(images: list[tuple[str, np.ndarray]], fraction: float, seed: int):
    """Hold out whole images (at least one, never all) for validation."""
    if fraction <= 0 or len(images) < 2:
        raise UserError(f"validation needs VAL_FRACTION > 0 and at least 2 training images "
                        f"(got {fraction} and {len(images)})")
    order = np.random.default_rng(seed).permutation(len(images))
    n_val = min(len(images) - 1, max(1, round(fraction * len(images))))
    val = [images[i] for i in sorted(order[:n_val])]
    train = [images[i] for i in sorted(order[n_val:])]
    return train, val


def build_subimages(images, settings: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    scale, channels = settings["SCALE"], settings["CHANNELS"]
    degrade = degrade_fn(settings)
    inputs, targets = [], []
    for _name, image in images:
        hr = model_space(image, channels)
        for variant in dihedral_variants(hr) if settings["AUGMENT"] else [hr]:
            lr, target = extract_subimages(variant, scale, size=settings["SUBIMAGE"],
                                           stride=settings["STRIDE"] * scale, degrade=degrade)
            inputs.append(lr)
            targets.append(target)
    if not inputs or sum(len(x) for x in inputs) == 0:
        raise UserError(f"no {settings['SUBIMAGE'] * scale}px sub-images fit in the training images; "
                        "use larger images or a smaller SUBIMAGE")
    return torch.from_numpy(np.concatenate(inputs)), torch.from_numpy(np.concatenate(targets))


def load_set(ctx: RunContext, name: str) -> list[tuple[str, np.ndarray]]:
    """A folder under the data root, a path to a folder, or a bundled set (skimage-train/-test)."""
    path = Path(name).expanduser()
    if path.is_dir() and (path.is_absolute() or name.startswith(".")):
        return load_named_set(path.parent, path.name)
    return load_named_set(ctx.data_root, name)


# ----------------------------------------------------------------------------------- train
def validation_psnr(net: ESPCN, images, settings: dict[str, Any], device: torch.device) -> float:
    """Mean Y PSNR (shave = scale) on held-out training images degraded like the training data."""
    scale, degrade = settings["SCALE"], degrade_fn(settings)
    scores = []
    for _name, image in images:
        hr = modcrop(to_float(image), scale)
        sr = super_resolve(net, degrade(hr, scale), scale=scale, channels=settings["CHANNELS"], device=device,
                           tile=settings["EVAL_TILE"])
        scores.append(psnr(sr, hr, space="y", shave=scale))
    return float(np.mean(scores))


def make_stage(settings: dict[str, Any], total_steps: int, steps_per_epoch: int) -> Stage:
    lr_start, lr_end = settings["LR_START"], settings["LR_END"]
    if settings["SCHEDULE"] == "plateau":
        schedule = Plateau(lr_start, lr_end, settings["MU"], settings["PATIENCE"], settings["LR_FACTOR"],
                           settings["COOLDOWN"])
    elif settings["SCHEDULE"] == "cosine":
        schedule = Cosine(lr_start, lr_end, total_steps)
    else:
        raise UserError(f"SCHEDULE={settings['SCHEDULE']!r}: expected 'plateau' or 'cosine'")

    def make_optimizer(net: ESPCN) -> torch.optim.Optimizer:
        groups = espcn_param_groups(net, lr_start, settings["LAST_LAYER_LR"])
        if settings["OPTIMIZER"] == "adam":
            return torch.optim.Adam(groups)
        if settings["OPTIMIZER"] == "sgd":
            return torch.optim.SGD(groups, momentum=settings["MOMENTUM"])
        raise UserError(f"OPTIMIZER={settings['OPTIMIZER']!r}: expected 'adam' or 'sgd'")

    return Stage("train", total_steps, make_optimizer, schedule)


def meta_of(settings: dict[str, Any]) -> dict[str, Any]:
    return {"arch": ARCH, "scale": settings["SCALE"], "channels": settings["CHANNELS"],
            "features": list(settings["FEATURES"]), "settings": settings}


def train(ctx: RunContext) -> None:
    settings = ctx.settings
    dist_info, device = init_distributed(ctx.device)
    run_dir = prepare_run_dir(ctx.out) if dist_info.is_main else ctx.out
    train_images = load_set(ctx, settings["TRAIN_SET"])
    eval_sets = {name: load_set(ctx, name) for name in settings["EVAL_SETS"]}
    train_images, val_images = split_validation(train_images, settings["VAL_FRACTION"], ctx.seed)
    inputs, targets = build_subimages(train_images, settings)
    sampler = EpochSampler(inputs, targets, settings["BATCH_SIZE"], ctx.seed)
    torch.manual_seed(ctx.seed)
    net = ESPCN(settings["SCALE"], settings["CHANNELS"], tuple(settings["FEATURES"])).to(device)
    if dist_info.is_main:
        write_json(run_dir / "settings.json", {**settings, "seed": ctx.seed, "data": str(ctx.data_root),
                                               "command": " ".join(["python", *sys.argv]),
                                               "device": str(device), "world_size": dist_info.world_size,
                                               "train_images": len(train_images),
                                               "val_images": [name for name, _ in val_images],
                                               "subimages": len(inputs)})
        print(f"{len(inputs)} sub-images from {len(train_images)} images, {len(val_images)} held out "
              f"for validation, {sampler.steps_per_epoch} steps per epoch", flush=True)
    total = settings["EPOCHS"] * sampler.steps_per_epoch
    trainer = Trainer(
        net, [make_stage(settings, total, sampler.steps_per_epoch)], sampler.batch,
        make_loss(settings["LOSS"]),
        lambda model: {"val_psnr": validation_psnr(model, val_images, settings, device)},
        TrainConfig(run_dir=run_dir, eval_every=sampler.steps_per_epoch,
                    steps_per_epoch=sampler.steps_per_epoch, meta=meta_of(settings)),
        device, dist_info, train_module=PreshuffledView(net))
    started = time.perf_counter()
    result = trainer.fit(resume=ctx.resume)
    if dist_info.is_main:
        state = load_checkpoint(run_dir / "best.pt")
        load_weights(net, state, run_dir / "best.pt")
        metrics = {name: score_scaled_set(net, images, scale=settings["SCALE"],
                                          channels=settings["CHANNELS"], device=device,
                                          tile=settings["EVAL_TILE"])
                   for name, images in eval_sets.items()}
        results = update_results(run_dir, {
            "metrics": metrics,
            "protocol": protocol_text(settings["SCALE"]),
            "checkpoint": "best.pt",
            "best_epoch": state["step"] / sampler.steps_per_epoch,
            "best_val_psnr_y": result.best,
            "epochs_run": result.step / sampler.steps_per_epoch,
            "stopped_early": result.stopped_early,
            "train_seconds": round(time.perf_counter() - started, 1),
        })
        plot_curves(run_dir / "log.csv", run_dir / "curves.png", x="epoch",
                    title=f"ESPCN x{settings['SCALE']}")
        append_results_row(run_dir.parent / "results.csv", sweep_row(run_dir, settings, ctx.seed, results))
        print(metrics_table(metrics))
    cleanup(dist_info)


def protocol_text(scale: int) -> str:
    return (f"HR modcropped to a multiple of {scale}; LR by MATLAB-compatible bicubic imresize; "
            f"*_y: BT.601 Y (MATLAB rgb2ycbcr), {scale}-pixel border shaved, data range 255; "
            f"*_rgb: RGB, same shave; mean over images; model weights from best.pt (validation split)")


def sweep_row(run_dir: Path, settings: dict[str, Any], seed: int, results: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"run": str(run_dir), "seed": seed}
    row.update({k: ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v for k, v in settings.items()})
    for set_name, methods in results["metrics"].items():
        for method, values in methods.items():
            for metric, value in values.items():
                row[f"{set_name}/{method}/{metric}"] = round(value, 4)
    row["best_val_psnr_y"] = round(results["best_val_psnr_y"], 4)
    row["epochs_run"] = results["epochs_run"]
    return row


# ------------------------------------------------------------------------ eval and upscale
def load_espcn(path: Path, device: torch.device) -> ESPCN:
    state = load_checkpoint(path)
    meta = state.get("meta", {})
    check_meta(state, path, arch=ARCH)
    if "scale" not in meta:
        raise UserError(f"{path} records no scale; it was not written by espcn.py train")
    net = ESPCN(meta["scale"], meta["channels"], tuple(meta["features"]))
    load_weights(net, state, path)
    return net.to(device).eval()


def weights_path(ctx: RunContext) -> Path:
    path = Path(ctx.args.weights) if ctx.args.weights else DEFAULT_WEIGHTS
    if not path.is_file():
        raise UserError(f"weights not found: {path}; pass --weights PATH to a checkpoint written by "
                        "'espcn.py train'")
    return path


def evaluate(ctx: RunContext) -> None:
    path = weights_path(ctx)
    net = load_espcn(path, ctx.device)
    sets = {name: load_set(ctx, name) for name in ctx.settings["EVAL_SETS"]}
    metrics = {name: score_scaled_set(net, images, scale=net.scale, channels=net.channels, device=ctx.device,
                                      tile=ctx.settings["EVAL_TILE"])
               for name, images in sets.items()}
    print(f"{path} (x{net.scale}, {'Y' if net.channels == 1 else 'RGB'}); {protocol_text(net.scale)}")
    print(metrics_table(metrics))
    if ctx.args.out:
        out = prepare_run_dir(ctx.out)
        write_json(out / "eval.json", {"weights": str(path), "metrics": metrics,
                                       "protocol": protocol_text(net.scale)})


def input_media(inputs: list[str]) -> tuple[list[Path], list[Path]]:
    """(image files, video files) named on the command line or found in the named folders."""
    images: list[Path] = []
    videos: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and (is_image_file(p) or is_video_file(p)))
            if not found:
                raise UserError(f"no image or video files in folder {path}")
            images += [p for p in found if is_image_file(p)]
            videos += [p for p in found if is_video_file(p)]
        elif path.is_file():
            (videos if is_video_file(path) else images).append(path)
        else:
            raise UserError(f"input not found: {path}")
    return images, videos


def fast_model(net: ESPCN, settings: dict[str, Any], device: torch.device) -> FastESPCN:
    """The inference path named by INFERENCE/HALF (engine/fast_inference.py), checked for this device."""
    if settings["INFERENCE"] not in BACKENDS:
        raise UserError(f"INFERENCE={settings['INFERENCE']!r}: expected one of {', '.join(BACKENDS)}")
    if settings["HALF"] and device.type != "cuda":
        raise UserError("HALF=true needs --device cuda: fp16/bf16 are about 100x slower than fp32 on a CPU")
    try:
        return FastESPCN(net, backend=settings["INFERENCE"], half=settings["HALF"], device=device)
    except ValueError as err:
        raise UserError(f"INFERENCE={settings['INFERENCE']}: {err}") from None


def upscale(ctx: RunContext) -> None:
    """Upscale images (each alone, colour via MATLAB bicubic as in scoring) and videos (frame by frame,
    streamed), overlapping reading and writing with the network; prints frames per second."""
    net = load_espcn(weights_path(ctx), ctx.device)
    images, videos = input_media(ctx.args.inputs)
    out = prepare_run_dir(ctx.out)
    model = fast_model(net, ctx.settings, ctx.device)
    if images:
        upscale_images(model, images, out, ctx)
    for path in videos:
        upscale_video(model, path, out, ctx.settings)


def upscale_images(model: FastESPCN, files: list[Path], out: Path, ctx: RunContext) -> None:
    scale, channels, tile = model.scale, model.channels, ctx.settings["EVAL_TILE"]

    def load(path: Path) -> tuple[Path, np.ndarray]:
        return path, to_float(read_image(path))

    def process(item: tuple[Path, np.ndarray]) -> tuple[Path, np.ndarray, np.ndarray]:
        path, image = item
        sr = super_resolve(model, image, scale=scale, channels=channels, device=ctx.device, tile=tile)
        return path, image, sr

    def save(item: tuple[Path, np.ndarray, np.ndarray]) -> None:
        path, image, sr = item
        target = out / f"{path.stem}_x{scale}.png"
        write_image(target, sr)
        bar.write(f"{path} {image.shape[1]}x{image.shape[0]} -> {target} {sr.shape[1]}x{sr.shape[0]}")

    with tqdm(total=len(files), unit="image", disable=None, dynamic_ncols=True, leave=False) as bar:
        stats = run_pipeline(map(load, files), process, save, on_item=bar.update)
    print(f"{stats.items} image(s) in {stats.seconds:.2f} s: {stats.fps:.2f} images/s "
          f"({stats.compute_fps:.2f} images/s in the network and colour steps)", flush=True)


def upscale_video(model: FastESPCN, path: Path, out: Path, settings: dict[str, Any]) -> None:
    """One video, streamed: Y through the network and chroma by bicubic (Y model), or RGB through it."""
    info = probe(path)
    scale = model.scale
    target = out / f"{path.stem}_x{scale}{output_suffix(path)}"
    writer = VideoWriter(target, info.width * scale, info.height * scale, info.rate,
                         codec=settings["VIDEO_CODEC"], crf=settings["VIDEO_CRF"])

    def process(frame: Frame) -> Frame:
        planes = (upscale_yuv420(model, *frame.planes) if model.channels == 1
                  else (upscale_rgb_uint8(model, frame.planes[0]),))
        return Frame(planes, frame.pts, frame.time_base, frame.index)

    kind = "yuv420p" if model.channels == 1 else "rgb24"
    try:
        with tqdm(total=info.frames, unit="frame", desc=path.name, disable=None, dynamic_ncols=True,
                  leave=False) as bar:
            stats = run_pipeline(read_video(path, kind), process, writer.write, on_item=bar.update)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    print(f"{path} {info.width}x{info.height} -> {target} {writer.width}x{writer.height} ({writer.codec}), "
          f"{stats.items} frames at {float(info.rate):.3f} fps in {stats.seconds:.2f} s: {stats.fps:.2f} frames/s "
          f"({stats.compute_fps:.2f} frames/s in the network and colour steps)", flush=True)

