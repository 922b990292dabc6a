"""Publish a trained ESPCN run as small shipped weights: ``weights/<name>.pt`` and ``weights/<name>.json``.

    python -m pipelines.espcn.publish runs/espcn_x3_best espcn_x3_y [--command "python espcn.py ..."]

The .pt keeps only what inference needs (model weights and architecture meta, loadable by
``espcn.py eval/upscale --weights``); the .json records the command, seed, data, settings, the weights a
fine-tuning started from (their SHA-256 and command), the epoch chosen on validation, and the scores with
their protocol, copied from the run's files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.checkpoint import load_checkpoint, save_checkpoint
from core.entry import cli_entry
from core.errors import UserError
from core.runs import read_json, write_json

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def export(run_dir: Path, name: str, command: str | None = None, out_dir: Path = WEIGHTS) -> Path:
    results, settings = read_json(run_dir / "results.json"), read_json(run_dir / "settings.json")
    if "metrics" not in results:
        raise UserError(f"{run_dir} has no results.json with metrics; finish 'espcn.py train' first")
    state = load_checkpoint(run_dir / "best.pt")
    target = out_dir / f"{name}.pt"
    save_checkpoint(target, {"model": state["model"], "meta": {k: v for k, v in state["meta"].items()
                                                                if k != "settings"}})
    write_json(out_dir / f"{name}.json", {
        "weights": target.name,
        "command": command or settings.get("command", ""),
        "seed": settings.get("seed"),
        "data": "T91 (training, minus the validation images below); scored on Set5, Set14",
        "val_images": settings.get("val_images"),
        **({"init_weights": settings["init_weights"]} if "init_weights" in settings else {}),
        "settings": {k: v for k, v in settings.items() if k.isupper()},
        "chosen_epoch": results.get("best_epoch"),
        "epochs_run": results.get("epochs_run"),
        "best_val_psnr_y": results.get("best_val_psnr_y"),
        "protocol": results.get("protocol"),
        "metrics": results["metrics"],
    })
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="run folder written by 'espcn.py train'")
    parser.add_argument("name", help="weights name, e.g. espcn_x3_y")
    parser.add_argument("--command", default=None, help="the training command, if settings.json lacks it")
    args = parser.parse_args(argv)
    print(f"wrote {export(args.run, args.name, args.command)}")


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
