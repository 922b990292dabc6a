"""The command line shared by the six phase scripts: one list of settings, presets, run-wide values.

Each phase script's settings block holds the settings that script uses, with their comments. The catalogue
of phase settings is the union of the six blocks, read from the scripts themselves (literal assignments,
parsed, never executed), so a setting is written once, in the script that uses it, and yet every phase
script accepts every phase setting: one ``--set`` list serves all six (``make phases ARGS=...``); a script
ignores what it does not use, and a name that no phase script has is still an error.

Run-wide settings (``RUN_WIDE``) must agree across the phases. They are set in ``phase1_1.py``'s block and
recorded in the run folder (``run.json``, see ``run_record``); a later script reads them from there, and a
value given to it (``--set``, ``--config``) that differs from the recorded one stops it before any work.
"""
from __future__ import annotations

import argparse
import ast
import functools
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.settings import (
    CliParser,
    RunContext,
    SettingValue,
    add_common_args,
    collect_settings,
    context_from_args,
    presets_help,
    settings_help,
)
from pipelines.multiblock.run_record import find_record

REPO = Path(__file__).resolve().parents[2]
PHASE_SCRIPTS = ("phase1_1.py", "phase1_2.py", "phase2_1.py", "phase2_2.py", "phase3.py", "phase4.py")
FIRST_SCRIPT = "phase1_1.py"
DEFAULT_OUT = "runs/multiblock"
# The values that make one run one configuration: the data (checked by a fingerprint of its pairs, see
# run_record), the block's architecture and initialisation, the validation split (with --seed), the preset.
RUN_WIDE = ("PRESET", "DATASET", "CAMERA", "SCALE", "N_FEATS", "N_RESBLOCKS", "RESBLOCK", "REDUCTION", "END_CONV",
            "TAIL_GAIN", "VAL_FRACTION", "VALIDATE_ON_TEST")
# Where the data is, not what it is: recorded by the first phase as the later ones' default, never enforced.
LOCATION = ("DATASET_DIR",)
# The settings.json section that --config replays for each script (a regeneration reads its block's).
CONFIG_SECTION = {"phase1_1.py": "N1", "phase1_2.py": "N1", "phase2_1.py": "N2", "phase2_2.py": "N2",
                  "phase3.py": "N3", "phase4.py": "N"}

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
    """The settings block of phase script ``name``: its UPPER_CASE literal assignments, in order."""
    return dict(_script_block(name))


@functools.cache
def _script_block(name: str) -> tuple[tuple[str, SettingValue], ...]:
    tree = ast.parse((REPO / name).read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            if target.isupper() and not target.startswith("_"):
                try:
                    found.append((target, ast.literal_eval(node.value)))
                except ValueError:
                    continue
    return tuple(found)


def catalogue() -> dict[str, SettingValue]:
    """Every phase setting with the default of the first script (in chain order) that has it."""
    known: dict[str, SettingValue] = {}
    for name in PHASE_SCRIPTS:
        for key, value in script_block(name).items():
            known.setdefault(key, value)
    return known


def _preset(name: SettingValue) -> dict[str, SettingValue]:
    if name not in PRESETS:
        raise UserError(f"PRESET={name!r}: expected one of {', '.join(PRESETS)}")
    return PRESETS[name]


def phase_help(script: str, block: dict[str, SettingValue]) -> str:
    """--help: this script's settings, the run-wide ones, what the presets set, and the names it ignores."""
    known = catalogue()
    sources = [REPO / script, *(REPO / name for name in PHASE_SCRIPTS)]  # this script's comments first
    own = {key: value for key, value in block.items() if key not in (*RUN_WIDE, *LOCATION)}
    run_wide = {key: known[key] for key in (*RUN_WIDE, *LOCATION)}
    where = ("recorded in the run folder's run.json; the later phases read them from there" if script == FIRST_SCRIPT
             else f"set in {FIRST_SCRIPT}, read here from the run folder's run.json; a different value given "
                  "here stops this script")
    parts = [settings_help(own, sources, title="settings of this script (override with --set NAME=VALUE):")
             if own else "settings of this script: none",
             settings_help(run_wide, sources, title=f"run-wide settings ({where}; {LOCATION[0]} is only a default):"),
             presets_help(PRESETS, [*own, *run_wide])]
    ignored = [key for key in known if key not in own and key not in run_wide]
    if ignored:
        parts.append("accepted and ignored here (settings of the other phase scripts, so that one --set list "
                     f"serves all six): {', '.join(ignored)}")
    return "\n\n".join(parts)


def parse_phase_cli(namespace: dict[str, Any], argv: list[str] | None, script: str) -> RunContext:
    """A phase script's command line: its block < preset < --config (its section) < --set, with the
    run-wide settings taken from the run folder's record when there is one, and checked against it."""
    block = collect_settings(namespace)
    parser = CliParser(description=namespace["__doc__"], epilog=phase_help(script, block),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, DEFAULT_OUT)
    args = parser.parse_args(argv)
    known = catalogue()
    record, source = find_record(Path(args.out))
    recorded = {key: value for key, value in {**record.get("settings", {}), **record.get("location", {})}.items()
                if key in known}
    defaults = {**known, **recorded}
    if recorded:  # the recorded preset, not the block's, fills this script's own settings
        namespace = {**namespace, **{key: value for key, value in recorded.items() if key in block}}
    ctx = context_from_args(namespace, args, PRESETS, accepted=defaults, section=CONFIG_SECTION[script])
    given = {key: value for key, value in ctx.given.items() if key in RUN_WIDE}
    if record:
        for key, value in given.items():
            if key in recorded and recorded[key] != value:
                raise UserError(f"{key}={value!r} differs from {key}={recorded[key]!r} recorded in "
                                f"{source} by {record.get('recorded_by', FIRST_SCRIPT)}; a run "
                                "is one configuration: drop the value or start a new run with another --out")
        if ctx.seed_given and ctx.seed != record.get("seed", ctx.seed):
            raise UserError(f"--seed {ctx.seed} differs from seed {record['seed']} recorded in "
                            f"{source}; drop --seed or start a new run with another --out")
        ctx.seed = record.get("seed", ctx.seed)
    preset = given.get("PRESET", defaults["PRESET"] if recorded else block.get("PRESET", known["PRESET"]))
    chosen = {key: defaults[key] if recorded else block.get(key, known[key]) for key in RUN_WIDE}
    if not recorded:
        chosen.update({key: value for key, value in _preset(preset).items() if key in chosen})
    chosen.update(given)
    location = {key: ctx.given.get(key, ctx.settings.get(key, defaults[key])) for key in LOCATION}
    ctx.settings = {**ctx.settings, **chosen, **location}
    return ctx
