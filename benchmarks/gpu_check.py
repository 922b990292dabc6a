"""One-shot GPU check: does every path of the project run on this CUDA GPU, and how fast.

    python benchmarks/gpu_check.py --out runs/gpu_check            # on one CUDA GPU, about 3-5 minutes
    python benchmarks/gpu_check.py --dry-run --out runs/gpu_dry     # the same steps, tiny, on the CPU

Steps (each timed, each recorded even when it fails, the JSON rewritten after every step):
  phases       the six phase scripts in order with tiny settings on synthesised RealSR-layout pairs
  devices      a checkpoint written on the GPU loaded by a CPU-only process; a run resumed across devices
  block_step   the full-size block training step (R=16, C=64, batch 16, 48x48, Adam, L1): fp32 eager and
               each speed setting (bf16, fp16 + scaler, channels_last, torch.compile)
  espcn_epoch  one `espcn.py train` epoch as a whole command (T91 when SR_DATA has it)
  espcn_fps    ESPCN x3 640x360 -> 1080p frames/s: fp32, fp16, compiled (inference.fast_espcn)
  banded       exact banded inference against whole-image, with TF32 on and off
  precision    Y PSNR of fp16/bf16 inference against fp32 with the shipped x3 weights
  eval_speed   `espcn.py eval`'s scoring on the device against the network's forward passes alone
               (Set5 + Set14 when SR_DATA has them), bicubic rows cached (warm) and not (cold)
Writes gpu_check.json and gpu_check.md into --out. Runs with any interpreter that has torch (2.11+),
numpy and scikit-image; it needs neither PyAV nor this project's virtual environment.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
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
from engine.speed import Speed  # noqa: E402
from engine.trainer import Stage, TrainConfig, Trainer, train_step  # noqa: E402
from models.espcn import ESPCN  # noqa: E402
from models.rcan import Block, orthogonal_init_  # noqa: E402

FULL = {"features": 64, "resblocks": 16, "batch": 16, "patch": 48, "frame": (360, 640), "band_image": 512,
        "steps": 20}
TINY = {"features": 8, "resblocks": 2, "batch": 4, "patch": 16, "frame": (36, 64), "band_image": 48, "steps": 3}
PHASES = ["phase1_1.py", "phase1_2.py", "phase2_1.py", "phase2_2.py", "phase3.py", "phase4.py"]


class Check:
    """What the steps share: the device, the sizes, a scratch folder, and subprocess / timing helpers."""

    def __init__(self, device: torch.device, dry_run: bool, scratch: Path) -> None:
        self.device, self.dry_run, self.scratch = device, dry_run, scratch
        self.size = TINY if dry_run else FULL
        self.data_root = Path(os.environ["SR_DATA"]) if os.environ.get("SR_DATA") else None

    def script(self, *args: str, env: dict[str, str] | None = None, timeout: int = 600) -> dict[str, Any]:
        began = time.perf_counter()
        done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, check=False)
        result = {"command": " ".join(Path(a).name if a.endswith(".py") else a for a in args),
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
    for script in PHASES:  # one command line for all six, as `make phases PRESET=tiny` runs them
        steps.append(check.script(script, "--data", str(data), "--out", str(run), "--device", str(check.device),
                                  "--set", "PRESET=tiny"))
        if steps[-1]["returncode"]:
            break
    results = json.loads((run / "results.json").read_text()) if (run / "results.json").exists() else {}
    return {"ok": len(steps) == len(PHASES) and not any(s["returncode"] for s in steps), "scripts": steps,
            "phases_in_results": sorted(results)}


def tiny_trainer(run_dir: Path, device: torch.device, steps: int, crash_at: int | None = None) -> Trainer:
    torch.manual_seed(0)
    net = orthogonal_init_(Block(8, 1))

    def batches(step: int, _dist):
        if step == crash_at:
            raise RuntimeError("simulated crash")
        x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(step))
        return x, (0.9 * x + 0.05)

    def evaluate(_model: torch.nn.Module) -> dict[str, float]:
        return {"val_psnr": 0.0}  # the check needs the checkpoints, not the scores

    stage = Stage("a", steps, lambda m: torch.optim.Adam(m.parameters(), lr=1e-3), Constant(1e-3))
    return Trainer(net, [stage], batches, torch.nn.functional.l1_loss, evaluate,
                   TrainConfig(run_dir=run_dir, eval_every=4, progress=False), device)


def devices(check: Check) -> dict[str, Any]:
    """A GPU-written checkpoint loaded by a CPU-only process; a GPU run crashed and resumed on the CPU."""
    run, reference = check.scratch / "across", check.scratch / "cpu_only"
    with contextlib.suppress(RuntimeError):
        tiny_trainer(run, check.device, 12, crash_at=9).fit()
    resumed = tiny_trainer(run, torch.device("cpu"), 12).fit(resume=True)
    tiny_trainer(reference, torch.device("cpu"), 12).fit()
    ours, theirs = load_checkpoint(run / "latest.pt")["model"], load_checkpoint(reference / "latest.pt")["model"]
    diff = max((ours[k] - theirs[k]).abs().max().item() for k in ours)
    code = ("import sys, torch; sys.path.insert(0, '.'); from core.checkpoint import load_checkpoint; "
            "from pipelines.multiblock.run_folder import load_block; "
            "b = load_block(__import__('pathlib').Path(sys.argv[1]), clamp=True); "
            "print(tuple(b(torch.rand(1, 3, 8, 8)).shape))")
    loaded = check.script("-c", code, str(check.scratch / "phases" / "N1.pt"), env={"CUDA_VISIBLE_DEVICES": ""})
    return {"ok": resumed.step == 12 and loaded["returncode"] == 0, "cpu_process_loads_N1": loaded,
            "resumed_on_cpu_at_step": 8, "final_step": resumed.step,
            "max_weight_diff_vs_cpu_only_run": diff}


def block_step(check: Check) -> dict[str, Any]:
    size = check.size
    x = torch.rand(size["batch"], 3, size["patch"], size["patch"], device=check.device)
    y = torch.rand_like(x)
    variants = {"fp32 eager": Speed(), "fp32 channels_last": Speed(channels_last=True),
                "bf16": Speed(precision="bf16"), "bf16 channels_last": Speed(precision="bf16", channels_last=True),
                "bf16 channels_last compile": Speed(precision="bf16", channels_last=True, compile=True)}
    if check.device.type == "cuda":
        variants["fp16 channels_last (scaler)"] = Speed(precision="fp16", channels_last=True)
        variants["fp32 channels_last compile"] = Speed(channels_last=True, compile=True)
    timings: dict[str, Any] = {}
    for name, speed in variants.items():
        torch.manual_seed(0)
        net = speed.prepare_module(orthogonal_init_(Block(size["features"], size["resblocks"])).to(check.device))
        module = torch.compile(net) if speed.compile else net
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
        scaler = speed.grad_scaler(check.device)

        def step(module=module, optimizer=optimizer, scaler=scaler, speed=speed) -> None:
            train_step(module, x, y, torch.nn.functional.l1_loss, optimizer, scaler, speed)

        began = time.perf_counter()
        try:
            seconds = check.median_seconds(step, size["steps"], warmup=3)
        except Exception as err:  # one variant failing (e.g. no compiler for torch.compile) is a result
            timings[name] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
            continue
        timings[name] = {"ms_per_step": round(1e3 * seconds, 3),
                         "first_steps_seconds": round(time.perf_counter() - began - seconds * size["steps"], 2)}
    base = timings["fp32 eager"].get("ms_per_step")
    for entry in timings.values():
        if base and "ms_per_step" in entry:
            entry["speedup_vs_fp32_eager"] = round(base / entry["ms_per_step"], 2)
    best = max((e.get("speedup_vs_fp32_eager", 0) for e in timings.values()), default=0)
    return {"ok": all("error" not in e for e in timings.values()), "variants": timings,
            "best_speedup": best, "target_2x_met": best >= 2.0,
            "size": {k: size[k] for k in ("features", "resblocks", "batch", "patch")}}


def espcn_epoch(check: Check) -> dict[str, Any]:
    has_t91 = check.data_root is not None and (check.data_root / "T91").is_dir()
    train_set, eval_set = ("T91", "Set5") if has_t91 and not check.dry_run else ("skimage-train", "skimage-test")
    out = check.scratch / "espcn"
    result = check.script("espcn.py", "train", "--device", str(check.device), "--out", str(out),
                          "--set", "EPOCHS=1", "--set", f"TRAIN_SET={train_set}", "--set", f"EVAL_SETS={eval_set}",
                          *(["--data", str(check.data_root)] if check.data_root else []))
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
    return {"ok": result["returncode"] == 0, "train_set": train_set, "whole_command": result,
            "train_seconds_one_epoch": results.get("train_seconds"),
            "subimages": json.loads((out / "settings.json").read_text()).get("subimages")
            if (out / "settings.json").exists() else None}


def espcn_fps(check: Check) -> dict[str, Any]:
    from inference.fast_espcn import FastESPCN

    torch.manual_seed(0)
    net = ESPCN(3, 1).to(check.device).eval()
    frame = torch.rand(1, 1, *check.size["frame"], device=check.device)
    variants = {"fp32": {"backend": "auto"}, "compile": {"backend": "compile"}}
    if check.device.type == "cuda":
        variants["fp16"] = {"backend": "channels_last", "half": True}
        variants["fp16 compile"] = {"backend": "compile", "half": True}
    repeats = 10 if check.dry_run else 200
    result: dict[str, Any] = {"frame": f"{check.size['frame'][1]}x{check.size['frame'][0]} -> x3"}
    for name, options in variants.items():
        try:
            model = FastESPCN(net, device=check.device, **options)
            seconds = check.median_seconds(lambda model=model: model(frame), repeats, warmup=3)
            result[name] = {"ms_per_frame": round(1e3 * seconds, 3), "frames_per_s": round(1 / seconds, 1)}
        except Exception as err:
            result[name] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
    best = max((v.get("frames_per_s", 0) for v in result.values() if isinstance(v, dict)), default=0)
    result.update(ok=all("error" not in v for v in result.values() if isinstance(v, dict)),
                  best_frames_per_s=best, target_300_fps_met=best >= 300)
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
    result["ok"] = True
    result["tf32_off_within_1e-5"] = result["tf32_off"]["max_abs_banded_vs_whole"] <= 1e-5
    return result


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
    result: dict[str, Any] = {"images": "Set5" if has_set5 else "bundled test photos",
                              "protocol": "Y, shave 3, MATLAB bicubic LR", "psnr_y": means}
    result["diff_vs_fp32_db"] = {name: means[name] - means["fp32"] for name in means if name != "fp32"}
    result["target_within_0.01_db_met"] = all(abs(d) <= 0.01 for d in result["diff_vs_fp32_db"].values())
    result["ok"] = True
    return result


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

    def score(cache: BaselineCache) -> None:
        for images in sets:
            score_scaled_images(model, images, scale=3, channels=1, device=check.device, cache=cache)

    repeats = 1 if check.dry_run else 3
    seconds = {"network": check.median_seconds(lambda: [model(y) for y in lr_y], repeats),
               "score_warm": check.median_seconds(lambda: score(warm), repeats),
               "score_cold": check.median_seconds(lambda: score(BaselineCache()), repeats, warmup=1)}
    ratios = {name: round(value / seconds["network"], 2) for name, value in seconds.items() if name != "network"}
    return {"ok": True, "sets": names or ["bundled test photos"], "seconds": seconds,
            "score_over_network": ratios, "target_3x_met": ratios["score_warm"] <= 3}


STEPS = {"phases": phases, "devices": devices, "block_step": block_step, "espcn_epoch": espcn_epoch,
         "espcn_fps": espcn_fps, "banded": banded, "precision": precision, "eval_speed": eval_speed}


# ------------------------------------------------------------------------------------------- report
def machine(device: torch.device) -> dict[str, Any]:
    info = {"torch": torch.__version__, "python": sys.version.split()[0], "cpu": cpu_description(),
            "device": str(device)}
    if device.type == "cuda":
        info.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version())
    return info


def targets(steps: dict[str, Any]) -> dict[str, Any]:
    block, fps = steps.get("block_step", {}), steps.get("espcn_fps", {})
    precision_diff, bands = steps.get("precision", {}).get("diff_vs_fp32_db"), steps.get("banded", {})
    return {"block step, best setting >= 2x fp32 eager": block.get("best_speedup"),
            "ESPCN 1080p x3 >= 300 frames/s": fps.get("best_frames_per_s"),
            "fp16/bf16 inference within 0.01 dB of fp32": precision_diff,
            "banded vs whole, TF32 off, <= 1e-5": bands.get("tf32_off", {}).get("max_abs_banded_vs_whole"),
            "banded vs whole, TF32 on": bands.get("tf32_on", {}).get("max_abs_banded_vs_whole"),
            "eval scoring <= 3x the network (warm, cold)": steps.get("eval_speed", {}).get("score_over_network")}


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# GPU check {report['date']} ({'dry run, CPU' if report['dry_run'] else report['machine'].get('gpu')})",
             "", f"Machine: `{json.dumps(report['machine'])}`", "", "| step | ok | seconds |", "|---|---|---|"]
    lines += [f"| {name} | {'yes' if step.get('ok') else 'NO'} | {step.get('seconds', '')} |"
              for name, step in report["steps"].items()]
    block = report["steps"].get("block_step", {}).get("variants", {})
    if block:
        lines += ["", "Block training step (ms per step; speedup over fp32 eager):", "",
                  "| variant | ms/step | speedup |", "|---|---|---|"]
        lines += [f"| {name} | {v.get('ms_per_step', v.get('error', ''))} | {v.get('speedup_vs_fp32_eager', '')} |"
                  for name, v in block.items()]
    fps = report["steps"].get("espcn_fps", {})
    if fps:
        lines += ["", f"ESPCN {fps.get('frame', '')}:", ""]
        lines += [f"- {name}: {v.get('frames_per_s', v.get('error'))} frames/s"
                  for name, v in fps.items() if isinstance(v, dict)]
    lines += ["", "Targets (the GPU issue's; a dry run's tiny sizes say nothing about them):", ""]
    lines += [f"- {text}: {value}" for text, value in targets(report["steps"]).items()]
    lines += ["", "Full results: gpu_check.json (same folder)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "gpu_check", help="folder for the results")
    parser.add_argument("--dry-run", action="store_true", help="the same steps at tiny sizes on the CPU")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {', '.join(STEPS)}")
    args = parser.parse_args(argv)
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
            began = time.perf_counter()
            print(f"[gpu-check] {name} ...", flush=True)
            try:
                report["steps"][name] = STEPS[name](check)
            except Exception as err:
                report["steps"][name] = {"ok": False, "error": f"{type(err).__name__}: {err}",
                                         "traceback": traceback.format_exc()[-1500:]}
            report["steps"][name]["seconds"] = round(time.perf_counter() - began, 1)
            print(f"[gpu-check] {name}: {'ok' if report['steps'][name].get('ok') else 'FAILED'} "
                  f"({report['steps'][name]['seconds']} s)", flush=True)
            (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if all(step.get("ok") for step in report["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
