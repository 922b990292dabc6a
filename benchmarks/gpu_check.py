"""One-shot GPU check: does every path of the project run on this CUDA GPU, and how fast.

    python benchmarks/gpu_check.py --out runs/gpu_check            # on one CUDA GPU, about 3-5 minutes
    python benchmarks/gpu_check.py --dry-run --out runs/gpu_dry     # the same steps, tiny, on the CPU

Steps (each timed; each recorded even when it fails; the JSON rewritten after every step):
  phases       the six phase scripts in order with tiny settings on synthesised RealSR-layout pairs
  ddp          torchrun with one rank: the process group (NCCL on the GPU), DDP through the trainer and
               every collective (benchmarks/ddp_probe.py), then phase3.py (train N_3, then write LR_3, in one
               process and one process group) on a copy of the phases step's run folder
  devices      a GPU run crashed (a simulated crash, the only exception caught) and resumed on the CPU from
               the checkpoint it wrote; a checkpoint written on the GPU loaded by a CPU-only process
  block_step   the full-size block training step (R=16, C=64, batch 16, 48x48, Adam, L1) through the trainer
               and its backend settings: fp32 eager and each speed setting
  fp16_resume  fp16 with the gradient scaler through a stage change (Adadelta -> Adam, as the report's
               stages) and a crash + resume, against the same run uninterrupted
  espcn_epoch  one `espcn.py train` epoch as a whole command (T91 when SR_DATA has it)
  espcn_fps    ESPCN x3 640x360 -> 1080p frames/s: fp32 (auto and eager), fp16 (inference.fast_espcn)
  banded       exact banded inference against whole-image, with TF32 on and off
  precision    Y PSNR of fp16/bf16 inference against fp32 with the shipped x3 weights
  eval_speed   `espcn.py eval`'s scoring on the device against the network's forward passes alone
               (Set5 + Set14 when SR_DATA has them), bicubic rows cached (warm) and not (cold)

Verdicts are measured: each step states its targets (a value, what it must be, whether it is met); the step
is ok when every target it judges is met and nothing unexpected was raised. Speed targets are judged on a
GPU only (a dry run's tiny sizes say nothing about speed); correctness targets always. A failed step says
why in gpu_check.json and gpu_check.md and the other steps still run; the exit code is 1 unless all are ok.

Imports: torch (2.11 or newer), numpy, scipy, scikit-image, pillow, tqdm, matplotlib (the phase scripts
plot their curves) and this project's packages; neither PyAV nor this project's virtual environment is
needed (`make gpu-check PY=python3`).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from core.checkpoint import load_checkpoint  # noqa: E402
from core.hardware import cpu_description  # noqa: E402
from data.datasets import bundled_photos, load_named_set  # noqa: E402
from data.synth import synthesise_realsr  # noqa: E402
from engine.schedules import Constant  # noqa: E402
from engine.speed import Speed, tf32_runs  # noqa: E402
from engine.trainer import Stage, TrainConfig, Trainer  # noqa: E402
from models.espcn import ESPCN  # noqa: E402
from models.rcan import Block, orthogonal_init_  # noqa: E402
from pipelines.multiblock.chain import SCRIPTS  # noqa: E402

FULL = {"features": 64, "resblocks": 16, "batch": 16, "patch": 48, "frame": (360, 640), "band_image": 512,
        "steps": 20}
TINY = {"features": 8, "resblocks": 2, "batch": 4, "patch": 16, "frame": (36, 64), "band_image": 48, "steps": 3}


class SimulatedCrash(RuntimeError):
    """The one exception a step expects: raised on purpose to interrupt a training run."""


def target(name: str, value: Any, met: bool, speed: bool = False) -> dict[str, Any]:
    """One measured verdict: ``value`` against the target ``name`` states; ``speed`` targets are judged on a
    GPU only."""
    return {"target": name, "value": value, "met": bool(met), "speed": speed}


class Check:
    """What the steps share: the device, the sizes, a scratch folder, and subprocess / timing helpers."""

    def __init__(self, device: torch.device, dry_run: bool, scratch: Path) -> None:
        self.device, self.dry_run, self.scratch = device, dry_run, scratch
        self.size = TINY if dry_run else FULL
        self.data_root = Path(os.environ["SR_DATA"]) if os.environ.get("SR_DATA") else None

    def script(self, *args: str, env: dict[str, str] | None = None, timeout: int = 600,
               launcher: tuple[str, ...] = ()) -> dict[str, Any]:
        began = time.perf_counter()
        done = subprocess.run([sys.executable, *launcher, *args], cwd=REPO, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})}, check=False)
        result = {"command": " ".join(Path(a).name if a.endswith(".py") else a for a in (*launcher, *args)),
                  "seconds": round(time.perf_counter() - began, 2), "returncode": done.returncode}
        if done.returncode:
            result["stderr_tail"] = done.stderr[-800:]
        return result

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def median_seconds(self, fn: Callable[[], Any], repeats: int, warmup: int = 2) -> float:
        for _ in range(warmup):
            fn()
        self.sync()
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - began)
        return sorted(times)[len(times) // 2]


# ------------------------------------------------------------------------------------------- steps
def phases(check: Check) -> dict[str, Any]:
    data, run = check.scratch / "realsr", check.scratch / "phases"
    synthesise_realsr(data, bundled_photos("train"), bundled_photos("test"), max_size=64)
    steps = []
    for script in SCRIPTS:  # one command line for all six, as `make phases PRESET=tiny` runs them
        steps.append(check.script(script, "--data", str(data), "--out", str(run), "--device", str(check.device),
                                  "--set", "PRESET=tiny"))
        if steps[-1]["returncode"]:
            break
    results = json.loads((run / "results.json").read_text()) if (run / "results.json").exists() else {}
    return {"scripts": steps, "targets": [
        target("every phase script exits 0", [s["returncode"] for s in steps],
               len(steps) == len(SCRIPTS) and not any(s["returncode"] for s in steps)),
        target("results.json has phase1..phase4", sorted(results),
               sorted(results) == ["phase1", "phase2", "phase3", "phase4"])]}


def ddp(check: Check) -> dict[str, Any]:
    """torchrun, one rank: the process group, DDP and every collective on the device; then phase3.py."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = ("-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=1",
                "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}")
    out = check.scratch / "ddp"
    probed = check.script("benchmarks/ddp_probe.py", "--device", str(check.device), "--out", str(out / "probe"),
                          launcher=launcher)
    seen = json.loads((out / "probe" / "probe.json").read_text()) if (out / "probe" / "probe.json").exists() else {}
    backend = "nccl" if check.device.type == "cuda" else "gloo"
    result: dict[str, Any] = {"probe": probed, "seen": seen}
    targets = [
        target("probe exits 0", probed["returncode"], probed["returncode"] == 0),
        target(f"backend {backend}, one group per process",
               [seen.get("backend"), seen.get("same_group_on_second_call")],
               seen.get("backend") == backend and seen.get("same_group_on_second_call") is True),
        target("DDP wraps the training network and trains every step", [seen.get("ddp"), seen.get("steps")],
               seen.get("ddp") == "DistributedDataParallel" and seen.get("steps") == 6),
        target("collectives answer on the device", {k: seen.get(k) for k in ("gathered", "gathered_on", "from_main")},
               seen.get("gathered") == [[3.0]] * seen.get("world_size", 0)
               and seen.get("gathered_on") == check.device.type and seen.get("from_main") == {"checked": True})]
    source = check.scratch / "phases"
    if (source / "N2.pt").exists() and (source / "LR_2").is_dir():  # phase 3 again, on a copy without its outputs
        run = out / "phases"
        shutil.copytree(source, run, ignore=shutil.ignore_patterns("N3*", "LR_3", "N.pt", "N_*", "*N.csv",
                                                                  "*N.png", "*N.log", "run.lock"))
        phase3 = check.script("phase3.py", "--data", str(check.scratch / "realsr"), "--out", str(run), "--device",
                              str(check.device), "--set", "PRESET=tiny", launcher=launcher)
        manifest = run / "LR_3" / "manifest.json"
        result["phase3"] = phase3
        targets.append(target("phase3.py under torchrun trains N_3 and writes LR_3", phase3["returncode"],
                              phase3["returncode"] == 0 and (run / "N3.pt").exists()
                              and manifest.exists() and json.loads(manifest.read_text()).get("complete") is True))
    else:
        targets.append(target("phase3.py under torchrun (needs the phases step's N2.pt and LR_2)", "not run", False))
    result["targets"] = targets
    return result


def tiny_trainer(run_dir: Path, device: torch.device, steps: int, crash_at: int | None = None,
                 speed: Speed | None = None, stages: list[Stage] | None = None) -> Trainer:
    torch.manual_seed(0)
    net = orthogonal_init_(Block(8, 1))

    def batches(step: int, _dist):
        if step == crash_at:
            raise SimulatedCrash(f"simulated crash at step {step}")
        x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(step))
        return x, (0.9 * x + 0.05)

    def evaluate(_model: torch.nn.Module) -> dict[str, float]:
        return {"val_psnr": 0.0}  # the check needs the checkpoints, not the scores

    stages = stages or [Stage("a", steps, lambda m: torch.optim.Adam(m.parameters(), lr=1e-3), Constant(1e-3))]
    return Trainer(net, stages, batches, torch.nn.functional.l1_loss, evaluate,
                   TrainConfig(run_dir=run_dir, eval_every=4, progress=False, speed=speed or Speed()), device)


def crash_then_resume(run: Path, crash_device: torch.device, resume_device: torch.device,
                      **trainer_kwargs: Any) -> dict[str, Any]:
    """A run stopped by ``SimulatedCrash`` at step 9 (nothing else is caught), then resumed: the step its
    checkpoint held, the step the resumed run ended at, and its final weights."""
    crashed = None
    try:
        tiny_trainer(run, crash_device, 12, crash_at=9, **trainer_kwargs).fit()
    except SimulatedCrash as err:
        crashed = str(err)
    saved = load_checkpoint(run / "latest.pt") if (run / "latest.pt").exists() else {}
    resumed = tiny_trainer(run, resume_device, 12, **trainer_kwargs)
    final = resumed.fit(resume=True)
    return {"crashed": crashed, "resumed_from_step": saved.get("step"), "saved_scaler": saved.get("scaler"),
            "final_step": final.step,
            "weights": {k: v.detach().float().cpu() for k, v in resumed.net.state_dict().items()}}


def max_difference(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> float:
    return max((first[key] - second[key]).abs().max().item() for key in first)


def devices(check: Check) -> dict[str, Any]:
    """A GPU run crashed and resumed on the CPU; a GPU-written checkpoint loaded by a CPU-only process."""
    cpu = torch.device("cpu")
    across = crash_then_resume(check.scratch / "across", check.device, cpu)
    reference = tiny_trainer(check.scratch / "cpu_only", cpu, 12)
    reference.fit()
    diff = max_difference(across.pop("weights"), {k: v.float() for k, v in reference.net.state_dict().items()})
    code = ("import sys, torch; sys.path.insert(0, '.'); from core.checkpoint import load_checkpoint; "
            "from models.rcan import Block; b = Block(8, 1); "
            "b.load_state_dict(load_checkpoint(sys.argv[1])['model']); "
            "assert not torch.cuda.is_available(); print(tuple(b(torch.rand(1, 3, 8, 8)).shape))")
    gpu_written = check.scratch / "gpu_written"
    tiny_trainer(gpu_written, check.device, 4).fit()
    loaded = check.script("-c", code, str(gpu_written / "latest.pt"), env={"CUDA_VISIBLE_DEVICES": ""})
    return {**across, "cpu_process_loads_the_gpu_checkpoint": loaded, "max_weight_diff_vs_cpu_only_run": diff,
            "targets": [
                target("the crash happened at step 9", across["crashed"], across["crashed"] is not None),
                target("resumed from the checkpoint of step 8", across["resumed_from_step"],
                       across["resumed_from_step"] == 8),
                target("the resumed run ends at step 12", across["final_step"], across["final_step"] == 12),
                target("weights within 1e-3 of a CPU-only run", diff, diff <= 1e-3),
                target("a CPU-only process loads the GPU-written checkpoint", loaded["returncode"],
                       loaded["returncode"] == 0)]}


def timed_training(check: Check, speed: Speed, steps: int, warmup: int) -> float:
    """Median seconds per step of the full-size block trained by ``Trainer`` (its backend settings, autocast,
    memory format, compile and scaler) with ``speed``: the batch function stamps the time, after a device
    synchronisation, at the start of every step."""
    size = check.size
    x = torch.rand(size["batch"], 3, size["patch"], size["patch"], device=check.device)
    y = torch.rand_like(x)
    stamps: list[float] = []

    def batches(_step: int, _dist):
        check.sync()
        stamps.append(time.perf_counter())
        return x, y

    torch.manual_seed(0)
    net = orthogonal_init_(Block(size["features"], size["resblocks"]))
    stage = Stage("train", warmup + steps + 1, lambda m: torch.optim.Adam(m.parameters(), lr=1e-4), Constant(1e-4))
    with tempfile.TemporaryDirectory(dir=check.scratch) as run:
        Trainer(net, [stage], batches, torch.nn.functional.l1_loss, lambda _m: {"val_psnr": 0.0},
                TrainConfig(run_dir=Path(run), eval_every=10**9, progress=False, speed=speed), check.device).fit()
    durations = sorted(b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1:], strict=False))
    return durations[len(durations) // 2]


def block_step(check: Check) -> dict[str, Any]:
    # Speed() is strict IEEE fp32 (TF32 off); PRECISION=fp32 on an Ampere-or-newer GPU runs TF32 convolutions
    variants = {"fp32 eager": Speed(), "fp32 channels_last": Speed(channels_last=True),
                "bf16": Speed(precision="bf16"), "bf16 channels_last": Speed(precision="bf16", channels_last=True),
                "bf16 channels_last compile": Speed(precision="bf16", channels_last=True, compile=True)}
    if tf32_runs(check.device):
        variants["fp32 (TF32 convolutions) channels_last"] = Speed(channels_last=True, tf32=True)
    if check.device.type == "cuda":
        variants["fp16 channels_last (scaler)"] = Speed(precision="fp16", channels_last=True)
        variants["fp32 channels_last compile"] = Speed(channels_last=True, compile=True)
    timings: dict[str, Any] = {}
    for name, speed in variants.items():
        began = time.perf_counter()
        try:
            seconds = timed_training(check, speed, check.size["steps"], warmup=3)
        except Exception as err:  # a variant that fails is a finding (the step then fails); the others still run
            timings[name] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
            continue
        timings[name] = {"ms_per_step": round(1e3 * seconds, 3),
                         "whole_run_seconds": round(time.perf_counter() - began, 2)}
    base = timings["fp32 eager"].get("ms_per_step")
    for entry in timings.values():
        if base and "ms_per_step" in entry:
            entry["speedup_vs_fp32_eager"] = round(base / entry["ms_per_step"], 2)
    best = max((e.get("speedup_vs_fp32_eager", 0) for e in timings.values()), default=0)
    failed = [name for name, entry in timings.items() if "error" in entry]
    return {"variants": timings, "size": {k: check.size[k] for k in ("features", "resblocks", "batch", "patch")},
            "targets": [target("every speed setting trains", failed or "all", not failed),
                        target("best setting >= 2x fp32 eager", best, best >= 2.0, speed=True)]}


def fp16_resume(check: Check) -> dict[str, Any]:
    """The report's stage change (Adadelta warm-up, then Adam) in fp16 with the gradient scaler, crashed and
    resumed, against the same run uninterrupted (bf16 without a scaler on a CPU, where fp16 is refused)."""
    precision = "fp16" if check.device.type == "cuda" else "bf16"
    speed = Speed(precision=precision, channels_last=True)

    def stages() -> list[Stage]:
        return [Stage("warmup", 6, lambda m: torch.optim.Adadelta(m.parameters(), lr=1.0, rho=0.9, eps=1e-6),
                      Constant(1.0)),
                Stage("adam", 6, lambda m: torch.optim.Adam(m.parameters(), lr=1e-3), Constant(1e-3))]

    resumed = crash_then_resume(check.scratch / "fp16_resumed", check.device, check.device, speed=speed,
                                stages=stages())
    scaler = speed.grad_scaler(check.device) is not None
    straight = tiny_trainer(check.scratch / "fp16_straight", check.device, 12, speed=speed, stages=stages())
    straight.fit()
    diff = max_difference(resumed.pop("weights"),
                          {k: v.detach().float().cpu() for k, v in straight.net.state_dict().items()})
    finite = all(torch.isfinite(v).all().item() for v in straight.net.state_dict().values())
    targets = [target("resumed from step 8 (the Adam stage) and ended at 12",
                      [resumed["resumed_from_step"], resumed["final_step"]],
                      resumed["resumed_from_step"] == 8 and resumed["final_step"] == 12),
               target("finite weights after the stage change", finite, finite),
               target("crash + resume within 1e-3 of the uninterrupted run", diff, diff <= 1e-3)]
    if scaler:
        saved = resumed["saved_scaler"] or {}
        targets.append(target("the checkpoint of step 8 holds the scaler's scale", saved.get("scale"),
                              saved.get("scale") is not None))
    return {**resumed, "precision": precision, "scaler": scaler, "max_weight_diff_vs_uninterrupted": diff,
            "targets": targets}


def espcn_epoch(check: Check) -> dict[str, Any]:
    has_t91 = check.data_root is not None and (check.data_root / "T91").is_dir()
    train_set, eval_set = ("T91", "Set5") if has_t91 and not check.dry_run else ("skimage-train", "skimage-test")
    out = check.scratch / "espcn"
    result = check.script("espcn.py", "train", "--device", str(check.device), "--out", str(out),
                          "--set", "EPOCHS=1", "--set", f"TRAIN_SET={train_set}", "--set", f"EVAL_SETS={eval_set}",
                          *(["--data", str(check.data_root)] if check.data_root else []))
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
    return {"train_set": train_set, "whole_command": result, "train_seconds_one_epoch": results.get("train_seconds"),
            "targets": [target("espcn.py train exits 0 and writes results.json", result["returncode"],
                               result["returncode"] == 0 and "metrics" in results)]}


def espcn_fps(check: Check) -> dict[str, Any]:
    from inference.fast_espcn import FastESPCN

    torch.manual_seed(0)
    net = ESPCN(3, 1).to(check.device).eval()
    frame = torch.rand(1, 1, *check.size["frame"], device=check.device)
    variants = {"fp32": {"backend": "auto"}, "fp32 eager": {"backend": "eager"}}
    if check.device.type == "cuda":
        variants["fp16"] = {"backend": "channels_last", "precision": "fp16"}
    repeats = 10 if check.dry_run else 200
    result: dict[str, Any] = {"frame": f"{check.size['frame'][1]}x{check.size['frame'][0]} -> x3", "variants": {}}
    for name, options in variants.items():
        try:
            model = FastESPCN(net, device=check.device, **options)
            seconds = check.median_seconds(lambda model=model: model(frame), repeats, warmup=3)
            result["variants"][name] = {"ms_per_frame": round(1e3 * seconds, 3), "frames_per_s": round(1 / seconds, 1)}
        except Exception as err:  # a variant that fails is a finding (the step then fails)
            result["variants"][name] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
    best = max((v.get("frames_per_s", 0) for v in result["variants"].values()), default=0)
    failed = [name for name, v in result["variants"].items() if "error" in v]
    result["targets"] = [target("every variant runs", failed or "all", not failed),
                         target("best >= 300 frames/s", best, best >= 300, speed=True)]
    return result


@contextlib.contextmanager
def tf32(enabled: bool):
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def banded(check: Check) -> dict[str, Any]:
    from inference.banded import banded_forward

    torch.manual_seed(0)
    block = orthogonal_init_(Block(check.size["features"], check.size["resblocks"])).to(check.device).eval()
    side = check.size["band_image"]
    x = torch.rand(1, 3, side, side - 8, device=check.device)
    result: dict[str, Any] = {"image": f"{side - 8}x{side}"}
    with torch.inference_mode():
        reference = block.double()(x.double()).float()
        block.float()
        for name, enabled in (("tf32_on", True), ("tf32_off", False)):
            with tf32(enabled):
                whole, bands = block(x), banded_forward(block, x)
            result[name] = {"max_abs_banded_vs_whole": (whole - bands).abs().max().item(),
                            "max_abs_whole_vs_float64": (whole - reference).abs().max().item(),
                            "max_abs_banded_vs_float64": (bands - reference).abs().max().item()}
    off = result["tf32_off"]["max_abs_banded_vs_whole"]
    result["targets"] = [target("banded vs whole, TF32 off, <= 1e-5", off, off <= 1e-5)]
    return result


PRECISION_TARGETS_DB = {"fp16": 0.01, "bf16": 0.05}  # inference PSNR within this of fp32's


def precision(check: Check) -> dict[str, Any]:
    from data.color import rgb_to_y
    from data.degrade import bicubic_downscale, modcrop
    from data.io import to_float
    from inference.metrics import psnr
    from pipelines.espcn.common import DEFAULT_WEIGHTS, load_espcn

    net = load_espcn(DEFAULT_WEIGHTS, check.device)
    has_set5 = check.data_root is not None and (check.data_root / "Set5").is_dir()
    images = load_named_set(check.data_root, "Set5") if has_set5 else bundled_photos("test")
    dtypes = {"fp32": None, "bf16": torch.bfloat16}
    if check.device.type == "cuda":
        dtypes["fp16"] = torch.float16
    scores: dict[str, list[float]] = {name: [] for name in dtypes}
    for _name, image in images:
        hr = modcrop(to_float(image), 3)
        lr_y = torch.from_numpy(rgb_to_y(bicubic_downscale(hr, 3)).copy())[None, None].to(check.device)
        hr_y = rgb_to_y(hr)
        for name, dtype in dtypes.items():
            with torch.inference_mode(), torch.autocast(check.device.type, dtype=dtype, enabled=dtype is not None):
                sr = net(lr_y).float().clamp(0, 1)[0, 0].cpu().numpy()
            scores[name].append(psnr(sr[..., None], hr_y[..., None], space="y", shave=3))
    means = {name: sum(values) / len(values) for name, values in scores.items()}
    diffs = {name: means[name] - means["fp32"] for name in means if name != "fp32"}
    return {"images": "Set5" if has_set5 else "bundled test photos", "protocol": "Y, shave 3, MATLAB bicubic LR",
            "psnr_y": means, "diff_vs_fp32_db": diffs,
            "targets": [target(f"{name} within {PRECISION_TARGETS_DB[name]} dB of fp32", diff,
                               abs(diff) <= PRECISION_TARGETS_DB[name]) for name, diff in diffs.items()]}


def eval_speed(check: Check) -> dict[str, Any]:
    from data.color import rgb_to_y
    from inference.fast_espcn import FastESPCN
    from inference.scoring import BaselineCache, prepare_hr, score_scaled_images
    from pipelines.espcn.common import DEFAULT_WEIGHTS, load_espcn

    model = FastESPCN(load_espcn(DEFAULT_WEIGHTS, check.device), device=check.device)
    names = ["Set5", "Set14"] if check.data_root is not None and (check.data_root / "Set14").is_dir() else []
    sets = [load_named_set(check.data_root, name) for name in names] or [bundled_photos("test")]
    lr_y = [rgb_to_y(prepare_hr(image, 3, check.device)[1]) for images in sets for _, image in images]
    warm = BaselineCache()

    def score(cache: BaselineCache) -> list[dict[str, dict[str, float]]]:
        return [row.metrics for images in sets
                for row in score_scaled_images(model, images, scale=3, channels=1, device=check.device, cache=cache)]

    repeats = 1 if check.dry_run else 3
    seconds = {"network": check.median_seconds(lambda: [model(y) for y in lr_y], repeats),
               "score_warm": check.median_seconds(lambda: score(warm), repeats),
               "score_cold": check.median_seconds(lambda: score(BaselineCache()), repeats, warmup=1)}
    ratios = {name: round(value / seconds["network"], 2) for name, value in seconds.items() if name != "network"}
    cold, cached = score(BaselineCache()), score(warm)
    differ = [(row, method, metric) for row, (a, b) in enumerate(zip(cold, cached, strict=True))
              for method in a for metric in a[method] if abs(a[method][metric] - b[method][metric]) > 1e-9]
    return {"sets": names or ["bundled test photos"], "seconds": seconds, "score_over_network": ratios,
            "targets": [target("cached bicubic rows equal freshly computed ones", differ or "equal", not differ),
                        target("scoring (warm) <= 3x the network", ratios["score_warm"], ratios["score_warm"] <= 3,
                               speed=True)]}


STEPS = {"phases": phases, "ddp": ddp, "devices": devices, "block_step": block_step, "fp16_resume": fp16_resume,
         "espcn_epoch": espcn_epoch, "espcn_fps": espcn_fps, "banded": banded, "precision": precision,
         "eval_speed": eval_speed}


# ------------------------------------------------------------------------------------------- verdicts
def run_step(name: str, check: Check) -> dict[str, Any]:
    """The step's result with its verdict: ``ok`` when every target it judges is met, else ``why`` lists the
    targets missed; an exception it raised fails it with the exception as ``why``."""
    began = time.perf_counter()
    try:
        result = STEPS[name](check)
        judged = [t for t in result.get("targets", []) if not (t["speed"] and check.dry_run)]
        missed = [f"{t['target']}: got {t['value']}" for t in judged if not t["met"]]
        if not judged:
            missed = ["the step judged no target"]
        result.update(ok=not missed, **({"why": "; ".join(missed)} if missed else {}))
    except Exception as err:  # a step that dies is a result: say why, and let the other steps run
        result = {"ok": False, "why": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-1500:]}
    result["seconds"] = round(time.perf_counter() - began, 1)
    return result


def machine(device: torch.device) -> dict[str, Any]:
    info = {"torch": torch.__version__, "python": sys.version.split()[0], "cpu": cpu_description(),
            "device": str(device)}
    if device.type == "cuda":
        info.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version())
    return info


def summary(report: dict[str, Any]) -> str:
    failed = [name for name, step in report["steps"].items() if not step.get("ok")]
    total = len(report["steps"])
    if not failed:
        return f"{total} of {total} steps ok"
    return f"{len(failed)} of {total} steps failed: {', '.join(failed)}"


def markdown(report: dict[str, Any]) -> str:
    kind = "dry run, CPU: speed targets not judged" if report["dry_run"] else report["machine"].get("gpu")
    lines = [f"# GPU check {report['date']} ({kind})", "", f"Machine: `{json.dumps(report['machine'])}`", "",
             f"**{summary(report)}**", "", "| step | ok | seconds | why not |", "|---|---|---|---|"]
    lines += [f"| {name} | {'yes' if step.get('ok') else 'NO'} | {step.get('seconds', '')} | "
              f"{str(step.get('why', '')).replace('|', '/')[:300]} |" for name, step in report["steps"].items()]
    lines += ["", "Targets (value; met?; speed targets are judged on a GPU only):", ""]
    for name, step in report["steps"].items():
        lines += [f"- {name}: {t['target']}: {t['value']} ({'met' if t['met'] else 'NOT met'}"
                  f"{', speed' if t['speed'] else ''})" for t in step.get("targets", [])]
    block = report["steps"].get("block_step", {}).get("variants", {})
    if block:
        lines += ["", "Block training step through the trainer (ms per step; speedup over fp32 eager):", "",
                  "| variant | ms/step | speedup |", "|---|---|---|"]
        lines += [f"| {name} | {v.get('ms_per_step', v.get('error', ''))} | {v.get('speedup_vs_fp32_eager', '')} |"
                  for name, v in block.items()]
    fps = report["steps"].get("espcn_fps", {})
    if fps.get("variants"):
        lines += ["", f"ESPCN {fps.get('frame', '')}:", ""]
        lines += [f"- {name}: {v.get('frames_per_s', v.get('error'))} frames/s" for name, v in fps["variants"].items()]
    lines += ["", "Full results: gpu_check.json (same folder)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "gpu_check", help="folder for the results")
    parser.add_argument("--dry-run", action="store_true", help="the same steps at tiny sizes on the CPU")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {', '.join(STEPS)}")
    args = parser.parse_args(argv)
    unknown = [name for name in args.steps.split(",") if name not in STEPS]
    if unknown:
        print(f"error: unknown step(s) {', '.join(unknown)}; expected some of {', '.join(STEPS)}", file=sys.stderr)
        return 2
    if not args.dry_run and not torch.cuda.is_available():
        print("error: no CUDA GPU is visible; run with --dry-run for the CPU rehearsal", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                              "dry_run": args.dry_run, "machine": machine(device), "steps": {}}
    with tempfile.TemporaryDirectory() as scratch:
        check = Check(device, args.dry_run, Path(scratch))
        for name in args.steps.split(","):
            print(f"[gpu-check] {name} ...", flush=True)
            report["steps"][name] = step = run_step(name, check)
            print(f"[gpu-check] {name}: {'ok' if step['ok'] else 'FAILED: ' + step['why'][:300]} "
                  f"({step['seconds']} s)", flush=True)
            report["summary"] = summary(report)
            (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (args.out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if all(step["ok"] for step in report["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
