"""What the six phase scripts accept: one list of settings, presets, run-wide values, their rules and --help.

Each phase script's settings block holds the settings that script uses, with their comments. The catalogue
of phase settings is the union of the six blocks, read from the scripts themselves (imported: their heavy
imports wait inside ``main``), so a setting is written once, in the script that uses it, and yet every phase
script accepts every phase setting: one ``--set`` list serves all six (``make phases ARGS=...``); a script
ignores what it does not use, and a name that no phase script has is still an error.

Run-wide settings (``RUN_WIDE``) must agree across the phases. They are set in ``phase1_1.py``'s block and
recorded in the run folder (``run.json``, see ``run_folder``); a later script reads them from there, and a
value given to it (``--set``, ``--config``) or written in its block that differs from the recorded one stops it
before any work (``resolve``, which turns a command line into a checked run).
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from core.rules import EMA_RULE, Rule, at_least, between, check_settings, fraction, one_of, positive
from core.settings import SettingValue, collect_settings, presets_help, setting_comments, settings_help
from data.pair_layouts import LAYOUTS
from engine.losses import LOSS_RULE
from engine.speed import SPEED_RULES
from models.blocks import block_settings, check_block_settings, network_rules, network_settings
from pipelines.multiblock import chain

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = "runs/multiblock"
# The values that make one run one configuration: the data (checked by a fingerprint of its pairs, see
# run_folder), the block's architecture (models.blocks: the residual blocks declare theirs) and initialisation,
# the validation split (with --seed), the preset.
RUN_WIDE = ("PRESET", "DATASET", "CAMERA", "SCALE", *network_settings(), "TAIL_GAIN", "VAL_FRACTION",
            "VALIDATE_ON_TEST")
# Where the data is, not what it is: recorded by the first phase as the later ones' default, never enforced.
LOCATION = ("DATASET_DIR",)

_FAST_WARMUP = {"WARMUP_OPTIMIZER": "adam"}  # the report's Adadelta at lr=1 needs thousands of iterations
PRESETS: dict[str, dict[str, SettingValue]] = {
    # The settings blocks as written: the report's sizes and schedules (values marked "ours" stay ours).
    "report": {},
    # CPU, minutes per phase (the experiments' small preset, docs/results.md): 16 features, 4 RCABs,
    # 600 iterations per block and 400 in phase 4, learning rates scaled up for the short schedule.
    "small": {**_FAST_WARMUP, "N_FEATS": 16, "N_RESBLOCKS": 4, "PATCH_SIZE": 32, "BATCH_SIZE": 8,
              "LR_WARMUP": 1e-3, "ITERS_WARMUP": 200, "ITERS_CLAMP_HIGH": 200, "LR_CLAMP_HIGH": 5e-4,
              "ITERS_CLAMP_LOW": 200, "LR_CLAMP_LOW": 1e-4, "ITERS_HIGH": 200, "LR_HIGH": 5e-4,
              "ITERS_LOW": 200, "LR_LOW": 1e-4, "EVAL_EVERY": 100},
    # Seconds per phase on a CPU (tests, make demo): 8 features, 2 RCABs, 24-pixel patches.
    "tiny": {**_FAST_WARMUP, "N_FEATS": 8, "N_RESBLOCKS": 2, "PATCH_SIZE": 24, "BATCH_SIZE": 4,
             "LR_WARMUP": 2e-3, "ITERS_WARMUP": 150, "ITERS_CLAMP_HIGH": 60, "LR_CLAMP_HIGH": 1e-3,
             "ITERS_CLAMP_LOW": 0, "ITERS_HIGH": 40, "LR_HIGH": 3e-4, "ITERS_LOW": 0, "EVAL_EVERY": 30},
}


def script_block(name: str) -> dict[str, SettingValue]:
    """The settings block of phase script ``name``, in order."""
    return collect_settings(vars(_script(name)))


@functools.cache
def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_phase_script_{name.removesuffix('.py')}", REPO / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def catalogue() -> dict[str, SettingValue]:
    """Every phase setting with the default of the first script (in chain order) that has it, then the
    residual blocks' own settings with their declared defaults (``models.blocks``)."""
    known: dict[str, SettingValue] = {}
    for name in chain.SCRIPTS:
        for key, value in script_block(name).items():
            known.setdefault(key, value)
    return {**{key: setting.default for key, setting in block_settings().items()}, **known}


def phase_help(script: str, block: dict[str, SettingValue]) -> str:
    """--help: this script's settings, the run-wide ones, what the presets set, and the names it ignores."""
    known, first = catalogue(), chain.FIRST.script
    comments = {key: setting.comment for key, setting in block_settings().items()}
    for name in reversed([script, *chain.SCRIPTS]):  # this script's comments win
        comments.update(setting_comments(REPO / name))
    own = {key: value for key, value in block.items() if key not in (*RUN_WIDE, *LOCATION)}
    run_wide = {key: known[key] for key in (*RUN_WIDE, *LOCATION)}
    where = ("recorded in the run folder's run.json; the later phases read them from there" if script == first
             else f"set in {first}, read here from the run folder's run.json; a different value given here stops "
                  "this script")
    parts = [settings_help(own, comments, title="settings of this script (override with --set NAME=VALUE):")
             if own else "settings of this script: none",
             settings_help(run_wide, comments, title=f"run-wide settings ({where}; {LOCATION[0]} is only a default):"),
             presets_help(PRESETS, [*own, *run_wide])]
    ignored = [key for key in known if key not in own and key not in run_wide]
    if ignored:
        parts.append("accepted and ignored here (settings of the other phase scripts, so that one --set list "
                     f"serves all six): {', '.join(ignored)}")
    return "\n\n".join(parts)


def add_phase_args(parser: argparse.ArgumentParser) -> None:
    """The flags of the edit-rerun-compare loop (``pipelines.multiblock.rerun``)."""
    parser.add_argument("--redo", action="store_true",
                        help="this phase finished with other settings: move its outputs and everything made after "
                             "them into <out>/archive/<time>-<script>/, then run it again")
    parser.add_argument("--from", dest="branch_from", default=None, metavar="RUN",
                        help="start --out (a new folder) from RUN's outputs up to this phase (linked or copied, "
                             "checked), then run this phase there with this script's settings")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the settings this script would run with, where each came from, and what it "
                             "would do; then exit")


# What each phase setting may be (core.rules); INIT's choices depend on the script.
RULES: dict[str, Rule] = {
    "DATASET": one_of(*LAYOUTS), "SCALE": between(1, 8), "TAIL_GAIN": at_least(0), "VAL_FRACTION": fraction(),
    "PATCH_SIZE": at_least(2), "BATCH_SIZE": at_least(1), "ITERS_WARMUP": at_least(0),
    "WARMUP_OPTIMIZER": one_of("adadelta", "adam"), "LR_WARMUP": positive(), "ITERS_CLAMP_HIGH": at_least(0),
    "LR_CLAMP_HIGH": positive(), "ITERS_CLAMP_LOW": at_least(0), "LR_CLAMP_LOW": positive(),
    "LOSS": LOSS_RULE, "EVAL_EVERY": at_least(1),
    "SELECT": one_of("best-val", "last"), "EMA": EMA_RULE, **SPEED_RULES, "ITERS_HIGH": at_least(0),
    "LR_HIGH": positive(), "ITERS_LOW": at_least(0), "LR_LOW": positive(), **network_rules(),
}
INIT_CHOICES = {chain.LAST.script: ("blocks", "fresh")}  # elsewhere: inherit | fresh


def check_phase_settings(settings: dict[str, Any], script: str) -> None:
    """Every rule, INIT's choices for ``script``, and the chosen residual block's own check across its
    settings."""
    rules = {**RULES, "INIT": one_of(*INIT_CHOICES.get(script, ("inherit", "fresh")))}  # PRESET: resolve_settings
    check_settings(settings, rules, catalogue())
    check_block_settings(settings)
