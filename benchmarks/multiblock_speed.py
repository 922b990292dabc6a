"""The shipped multiblock network on a CPU: the default path against ONNX Runtime, the bands and plain eager.

    python benchmarks/multiblock_speed.py [--quick] [--threads N] [--sizes 840x600,1260x900] [--rounds 3]
                                          [--paths default,onnx,bands,eager] [--weights W] [--data DIR]

Paths, on one image each size: ``default`` = ``inference.multiblock_forward`` (what apply, its API, LR
regeneration and final scoring run: ONNX Runtime on the whole image where it fits, else bands; the line it
printed is reported); ``onnx`` = ONNX Runtime's CPU provider on the project's own export
(``inference.onnx_runtime``, what ``python -m pipelines.multiblock.export --format onnx`` writes), whole image;
``bands`` = ``inference.banded.banded_forward`` (today's exact path before this one); ``eager`` = plain
PyTorch ``net(x)``, whole image. The network: ``weights/multiblock_city100_iphonex.pt``; the image: City100's
``001L.PNG`` (840x600, from ``--data`` or ../shared/datasets) where present, else scikit-image's astronaut,
resized (bicubic) to each size.

Every (round, size, path) runs in a fresh process (this script with ``--worker``), so no path's memory hides
another's (ONNX Runtime's arena and the allocator keep what they took): it loads the network (and the ONNX
export, made once before the rounds and cached by weights hash), then calls the path twice. ``first`` is the
first call's time (one photo through ``apply``), ``time`` the second's (a folder of same-size photos), and
``extra`` the peak resident memory over both calls minus that before them (sampled every 5 ms). Rounds
interleave the paths (A B C D A B C D ...); times are medians over rounds, memory the largest. Outputs of the
first round are compared with the bands' (max absolute difference). A progress line follows each run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import REPO, PeakRSS, finish, parser, rounded, start  # repo on sys.path

from core.hardware import cpu_description
from data.io import read_image, to_float
from data.resize import imresize
from engine.progress import format_duration

PATHS = ("default", "onnx", "bands", "eager")
WEIGHTS = REPO / "weights" / "multiblock_city100_iphonex.pt"
CITY100_PHOTO = Path("City100") / "City100_iPhoneX" / "001L.PNG"


def parse_args() -> argparse.Namespace:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default=None, help="image sizes WxH, comma-separated (default 840x600,1260x900; "
                                                 "--quick: 210x150,420x300)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; --quick: 1)")
    p.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated subset of {','.join(PATHS)}")
    p.add_argument("--weights", type=Path, default=WEIGHTS, help="multiblock weights (default: the shipped ones)")
    p.add_argument("--data", type=Path, default=None, help="the datasets folder holding City100 (default: $SR_DATA "
                                                           "or ../shared/datasets; a synthetic photo without it)")
    p.add_argument("--worker", nargs=3, metavar=("PATH", "IMAGE_NPY", "OUT_NPY"), help=argparse.SUPPRESS)
    args = p.parse_args()
    unknown = set(args.paths.split(",")) - set(PATHS)
    if unknown:
        p.error(f"--paths: unknown {', '.join(sorted(unknown))} (choose from {', '.join(PATHS)})")
    return args


# ------------------------------------------------------------------------------------ one path, one process
def run_worker(args: argparse.Namespace) -> None:
    """Time one path twice on one image; print its figures as one JSON line (the last line of stdout)."""
    from inference import multiblock_forward as mf
    from inference import onnx_runtime
    from inference.banded import banded_forward
    from pipelines.multiblock.export import load_network

    if args.threads:
        torch.set_num_threads(args.threads)
    path, image_file, out_file = args.worker
    net = load_network(args.weights)[0].eval()
    if path == "onnx":
        session = onnx_runtime.ort_network(net, mf.onnx_example(net), graph=mf.onnx_graph(net))
        forward = session
    else:
        forward = {"default": lambda x: mf.multiblock_forward(net, x), "bands": lambda x: banded_forward(net, x),
                   "eager": net}[path]
    x = torch.from_numpy(np.load(image_file))
    seconds = []
    with PeakRSS() as memory, torch.inference_mode():
        for _ in range(2):
            began = time.perf_counter()
            y = forward(x)
            seconds.append(time.perf_counter() - began)
    if out_file != "-":
        np.save(out_file, y.numpy())
    print(json.dumps({"first_s": seconds[0], "seconds": seconds[1], "extra_mb": memory.extra_mb,
                      "peak_mb": memory.peak_mb}), flush=True)


def worker(args: argparse.Namespace, path: str, image: Path, out: Path | None) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--weights", str(args.weights),
               "--worker", path, str(image), str(out or "-")]
    if args.threads:
        command += ["--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"error: the {path} worker failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1])
    chosen = [line for line in lines if line.startswith("CPU path:")]
    if chosen:
        result["choice"] = chosen[0]
    return result


# ------------------------------------------------------------------------------------ the run
def photo(data: Path | None) -> tuple[np.ndarray, str]:
    """City100's 001L.PNG as float32 HxWx3, or scikit-image's astronaut where City100 is not here."""
    for root in (data, os.environ.get("SR_DATA"), REPO.parent / "shared" / "datasets"):
        if root and (Path(root) / CITY100_PHOTO).is_file():
            return to_float(read_image(Path(root) / CITY100_PHOTO)), str(CITY100_PHOTO)
    from skimage import data as skdata

    return to_float(skdata.astronaut()), "scikit-image astronaut (City100 not found)"


def sized(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` at ``width`` x ``height`` (MATLAB bicubic), as a 1x3xHxW float32 array."""
    if image.shape[:2] != (height, width):
        image = np.clip(imresize(image, output_shape=(height, width)), 0.0, 1.0)
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)


def export_once(weights: Path) -> float:
    """Export the network for ONNX Runtime (cached by weights hash: later processes read the file); seconds."""
    from inference import multiblock_forward as mf
    from inference import onnx_runtime
    from pipelines.multiblock.export import load_network

    net = load_network(weights)[0].eval()
    began = time.perf_counter()
    onnx_runtime.ort_network(net, mf.onnx_example(net), graph=mf.onnx_graph(net))
    return time.perf_counter() - began


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"median_s": statistics.median(r["seconds"] for r in runs),
            "min_s": min(r["seconds"] for r in runs),
            "first_call_median_s": statistics.median(r["first_s"] for r in runs),
            "extra_mb": max(r["extra_mb"] for r in runs), "peak_mb": max(r["peak_mb"] for r in runs),
            "runs": len(runs)}


def ratio(seconds: float, other: dict[str, Any] | None) -> str:
    return f"{seconds / other['median_s']:.2f}x" if other else "-"


def table(result: dict[str, Any], paths: list[str]) -> str:
    """The figures as a Markdown table (what docs/benchmarks.md shows)."""
    rows = ["| image | path | median (min) s | first call s | extra memory | vs ONNX Runtime | vs eager | "
            "max diff vs bands |", "|---|---|---|---|---|---|---|---|"]
    for size, entry in result["sizes"].items():
        for path in paths:
            s = entry[path]
            diff = s.get("max_abs_diff_vs_bands")
            rows.append(f"| {size} | {path} | {s['median_s']:.2f} ({s['min_s']:.2f}) | "
                        f"{s['first_call_median_s']:.2f} | {s['extra_mb']:.0f} MB | "
                        f"{ratio(s['median_s'], entry.get('onnx'))} | {ratio(s['median_s'], entry.get('eager'))} | "
                        f"{'-' if diff is None else f'{diff:.1e}'} |")
        if entry.get("default_choice"):
            rows.append(f"| {size} | default chose | {entry['default_choice']} | | | | | |")
    return "\n".join(rows)


def main() -> None:
    args = parse_args()
    if args.worker:
        run_worker(args)
        return
    result = start(args)
    print(f"CPU: {cpu_description()}; {args.threads or torch.get_num_threads()} threads", flush=True)
    paths = [p for p in PATHS if p in args.paths.split(",")]
    sizes = [tuple(int(v) for v in size.split("x"))
             for size in (args.sizes or ("210x150,420x300" if args.quick else "840x600,1260x900")).split(",")]
    rounds = args.rounds or (1 if args.quick else 3)
    image, source = photo(args.data)
    result["setup"] = {"weights": str(args.weights.relative_to(REPO) if args.weights.is_relative_to(REPO)
                                      else args.weights), "image": source, "rounds": rounds, "paths": paths}
    if {"default", "onnx"} & set(paths):
        print("exporting the network for ONNX Runtime (once for these weights; cached)...", flush=True)
        result["setup"]["export_s"] = export_once(args.weights)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    total, done, began = rounds * len(sizes) * len(paths), 0, time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for width, height in sizes:
            np.save(folder / f"{width}x{height}.npy", sized(image, width, height))
        for round_ in range(rounds):
            for width, height in sizes:
                size = f"{width}x{height}"
                for path in paths:
                    out = folder / f"{size}-{path}.npy" if round_ == 0 else None
                    run = worker(args, path, folder / f"{size}.npy", out)
                    runs.setdefault((size, path), []).append(run)
                    done += 1
                    left = (time.perf_counter() - began) / done * (total - done)
                    print(f"[{done}/{total}] round {round_ + 1}, {size}, {path}: {run['seconds']:.2f} s "
                          f"(first call {run['first_s']:.2f} s), +{run['extra_mb']:.0f} MB"
                          f"{'; ' + run['choice'] if 'choice' in run else ''}; ETA {format_duration(left)}",
                          flush=True)
        result["sizes"] = {}
        for width, height in sizes:
            size = f"{width}x{height}"
            entry = result["sizes"][size] = {path: summarise(runs[(size, path)]) for path in paths}
            if "default" in paths:
                entry["default_choice"] = runs[(size, "default")][0].get("choice", "")
            if "bands" in paths:
                reference = np.load(folder / f"{size}-bands.npy")
                for path in paths:
                    entry[path]["max_abs_diff_vs_bands"] = float(
                        np.abs(np.load(folder / f"{size}-{path}.npy") - reference).max())
    print(table(result, paths), flush=True)
    finish(rounded(result), args)


if __name__ == "__main__":
    main()
