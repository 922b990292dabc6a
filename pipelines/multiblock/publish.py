"""Publish a finished multiblock run's combined network N as shipped weights: ``weights/<name>.pt`` + ``.json``.

    python -m pipelines.multiblock.publish runs/experiments/city100/seed0/phased multiblock_city100_iphonex \\
        --command "python experiments/phases_vs_end_to_end.py --data DIR --set PRESET=city100 --seed 0"

The .pt keeps what inference needs (the weights and the architecture meta: ``python -m
pipelines.multiblock.apply --weights weights/<name>.pt`` and ``pipelines.multiblock.api.sharpen`` load it);
the .json records the command, the seed, the data (its dataset, camera and the fingerprint of its pairs,
``run_folder.data_fingerprint``), each phase's settings and command, the steps chosen on validation and the
test scores of every phase with their protocol, copied from the run's files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.checkpoint import load_checkpoint, save_checkpoint
from core.entry import cli_entry
from core.errors import UserError
from core.runs import read_json, write_json
from pipelines.multiblock import chain
from pipelines.multiblock.run_folder import read_record

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def publish(run_dir: Path, name: str, command: str = "", out_dir: Path = WEIGHTS) -> Path:
    results, settings, record = (read_json(run_dir / "results.json"), read_json(run_dir / "settings.json"),
                                 read_record(run_dir))
    last, weights = chain.LAST, run_dir / f"{chain.LAST.network}.pt"
    if last.result not in results or not weights.exists():
        raise UserError(f"{run_dir} holds no finished {last.script} ({weights.name}, results.json['{last.result}']); "
                        f"run {last.script} first")
    state = load_checkpoint(weights)
    target = out_dir / f"{name}.pt"
    save_checkpoint(target, {"model": state["model"], "meta": state["meta"]})
    wide = record.get("settings", {})
    write_json(out_dir / f"{name}.json", {
        "weights": target.name,
        "network": "N = N_3^+(N_2^+(N_1^+(x))) after phase 4 (same-size restoration, RGB in [0, 1])",
        "command": command,
        "seed": record.get("seed"),
        "data": {"dataset": wide.get("DATASET"), "camera": wide.get("CAMERA"), **record.get("data", {})},
        "phase_commands": {section: values.get("command") for section, values in settings.items()},
        "settings": {section: {k: v for k, v in values.items() if k.isupper()} for section, values in settings.items()},
        "selected_steps": {phase: entry.get("selected_step") for phase, entry in results.items()},
        "protocol": results[last.result].get("protocol"),
        "metrics": {phase: entry["metrics"] for phase, entry in results.items()},
    })
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder the six phase scripts wrote into")
    parser.add_argument("name", help="weights name, e.g. multiblock_city100_iphonex")
    parser.add_argument("--command", default="", help="the command that made the run (e.g. the experiment's)")
    args = parser.parse_args(argv)
    print(f"wrote {publish(args.run, args.name, args.command)}")


if __name__ == "__main__":
    cli_entry(main, sys.argv[1:])
