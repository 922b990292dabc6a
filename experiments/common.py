"""What the experiment scripts share: command line with presets, data, running phase scripts, tables, plots.

- ``parse``: the script's settings block -> ``RunContext`` (settings < PRESETS[PRESET] < --set), with the
  common flags of every script (``--data --out --device --seed --resume``).
- ``prepare_data``: a data root holding ``RealSR/<CAMERA>/{Train,Test}/<SCALE>/`` pairs. ``--data`` that
  already holds them (the real RealSR, or pairs made earlier) is used as is; otherwise same-size pairs are
  synthesised (``data.synth``) into ``<out>/data`` from T91 (train) and Set14 (test) when ``--data``,
  ``SR_DATA`` or ``../shared/datasets`` has them, else from the photos bundled with scikit-image, so a
  fresh clone with no dataset still runs.
- ``run_phase``: a phase script through its ``main(argv)``, exactly as from the command line.
- ``markdown_table`` / ``data_sentence`` / ``write_outputs``: ``<out>/table.md`` and ``<out>/results.json``.
"""
from __future__ import annotations

import importlib.util
import os
import shlex
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from core.errors import UserError
from core.rules import at_least, check_settings, one_of
from core.runs import prepare_run_dir, read_json, write_json, write_text_atomic
from core.settings import RunContext, parse_cli
from data.datasets import bundled_photos, list_images
from data.io import read_image
from data.pair_layouts import PairSource, find_pairs
from data.paired import find_realsr_root
from data.synth import synthesise_realsr
from models.blocks import network_settings
from pipelines.multiblock import chain
from pipelines.multiblock.phase_settings import catalogue

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"
SOURCES = ("auto", "t91", "skimage")
RULES = {"SOURCE": one_of(*SOURCES), "REPEATS": at_least(1)}  # the settings every experiment shares


# ------------------------------------------------------------------------------ command line
def parse(namespace: dict[str, Any], argv: list[str] | None, name: str) -> RunContext:
    """Settings block < preset < --set, plus the common flags; ``--out`` defaults to runs/experiments/<name>."""
    ctx = parse_cli(namespace, argv, namespace["__doc__"], f"runs/experiments/{name}", accepted=network_defaults())
    ctx.settings = {**ctx.settings, **network_of(ctx.given)}  # --set RESBLOCK=naf reaches the phase scripts
    check_settings(ctx.settings, RULES, ctx.settings)
    return ctx


def command_line(script: str, argv: Sequence[str] | None) -> str:
    return " ".join(["python", f"experiments/{script}", *map(shlex.quote, argv or [])])


def seeds(ctx: RunContext) -> list[int]:
    """--seed, --seed+1, ... REPEATS of them: every compared variant is trained once per seed."""
    return [ctx.seed + k for k in range(ctx.settings.get("REPEATS", 1))]


# ------------------------------------------------------------------------------------- data
def _folder_with(names: Sequence[str], candidates: Iterable[Path | None]) -> Path | None:
    for root in candidates:
        if root is not None and all((Path(root) / name).is_dir() for name in names):
            return Path(root)
    return None


def _at_least(images: Iterable[tuple[str, np.ndarray]], min_side: int, skipped: list[str]) -> Iterator:
    for name, image in images:
        if min(image.shape[:2]) >= min_side:
            yield name, image
        else:
            skipped.append(name)


def _folder_images(folder: Path) -> Iterator[tuple[str, np.ndarray]]:
    return ((str(path), read_image(path)) for path in list_images(folder))


def _has_realsr(root: Path, camera: str, scale: int) -> bool:
    """RealSR pairs under ``root`` by any of its published folder names (data.paired.find_realsr_root)."""
    try:
        find_realsr_root(root, camera, scale, "Train")
    except UserError:
        return False
    return True


def prepare_data(ctx: RunContext, min_side: int = 0) -> tuple[Path, dict[str, Any]]:
    """(data root holding RealSR pairs, a description for results.json); see the module docstring.

    ``min_side``: synthesise only from images whose shorter side is at least this (the largest patch).
    An experiment without a DATASET setting (toy_blockwise, patch_size, gradient_loss) reads RealSR's layout."""
    s = ctx.settings
    layout = str(s.get("DATASET", "realsr")).lower()
    if layout != "realsr":  # City100 or a folder of pairs: real pairs, found by the phase scripts
        find_pairs(ctx.data_root, PairSource(layout, s["CAMERA"], s["SCALE"]), "train")  # refused here if absent
        return ctx.data_root, {"source": f"the {layout} pairs ({s['CAMERA']}) under {ctx.data_root}"}
    if str(s["SOURCE"]) == "auto" and _has_realsr(ctx.data_root, s["CAMERA"], s["SCALE"]):
        return ctx.data_root, {"source": f"RealSR pairs under {ctx.data_root}"}
    t91_root, record = _synthesis_plan(ctx, min_side)
    root = ctx.out / "data"
    previous = read_json(root / "experiment_data.json")
    if {key: previous.get(key) for key in record} == record:  # made earlier with the same plan
        return root, previous
    return root, _synthesise(ctx, root, t91_root, record)


def _synthesis_plan(ctx: RunContext, min_side: int) -> tuple[Path | None, dict[str, Any]]:
    """(the folder holding T91/ and Set14/, or None for the bundled photos; what will be synthesised)."""
    s = ctx.settings
    source = str(s["SOURCE"])
    found = _folder_with(("T91", "Set14"), (ctx.data_root, os.environ.get("SR_DATA"), SHARED_DATASETS))
    if source == "t91" and found is None:
        raise UserError(f"SOURCE=t91: no T91/ and Set14/ under {ctx.data_root} or {SHARED_DATASETS}; pass "
                        "--data DIR holding them, or set SOURCE=auto")
    use_t91 = found is not None and source != "skimage"
    max_size = s["SYNTH_MAX_SIZE"] or None
    if max_size is not None and max_size < min_side:
        raise UserError(f"SYNTH_MAX_SIZE={max_size} is smaller than the {min_side}-pixel patches; raise it")
    record = {"source": f"synthesised from {found}/T91 (train) and {found}/Set14 (test)" if use_t91 else
              "synthesised from the photos bundled with scikit-image (skimage-train, skimage-test)",
              "max_size": max_size, "min_side": min_side, "seed": ctx.seed, "camera": s["CAMERA"],
              "scale": s["SCALE"]}
    return (found if use_t91 else None), record


def _synthesise(ctx: RunContext, root: Path, t91_root: Path | None, record: dict[str, Any]) -> dict[str, Any]:
    """Write the pairs ``record`` describes into ``root`` and record them in ``experiment_data.json``."""
    if t91_root is not None:
        train, test = _folder_images(t91_root / "T91"), _folder_images(t91_root / "Set14")
    else:
        train, test = bundled_photos("train"), bundled_photos("test")
    skipped: list[str] = []
    min_side, max_size = record["min_side"], record["max_size"]
    prepare_run_dir(root)
    written = synthesise_realsr(root, _at_least(train, min_side, skipped), _at_least(test, min_side, skipped),
                                camera=record["camera"], scale=record["scale"], seed=ctx.seed, max_size=max_size,
                                overwrite=True)
    record = {**record, "train_pairs": len(written["Train"]), "test_pairs": len(written["Test"]),
              "skipped_smaller_than_min_side": skipped}
    write_json(root / "experiment_data.json", record)
    print(f"data: {record['source']}: {record['train_pairs']} train / {record['test_pairs']} test pairs "
          f"(HR centre crops of at most {max_size or 'full'} px) in {root}", flush=True)
    return record


def data_sentence(record: dict[str, Any], detail: str = "") -> str:
    """'Data: <source> (N train / M test pairs, HR crops of at most S px<detail>)', the counts only for
    synthesised pairs; every table.md opens with it."""
    if "train_pairs" not in record:
        return f"Data: {record['source']}"
    return (f"Data: {record['source']} ({record['train_pairs']} train / {record['test_pairs']} test pairs, HR crops "
            f"of at most {record['max_size'] or 'full'} px{detail})")


# ------------------------------------------------------------------------------ phase scripts
def load_script(name: str) -> ModuleType:
    """A script (e.g. 'phase1_1.py', 'experiments/toy_blockwise.py') imported as a module, without running it."""
    module_name = "_script_" + name.removesuffix(".py").replace("/", "_")
    spec = importlib.util.spec_from_file_location(module_name, REPO / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(_text, value))
    return str(value)


def run_phase(ctx: RunContext, script: str, data: Path, out: Path, settings: dict[str, Any] | None = None,
              seed: int | None = None) -> None:
    """``python <script> --data DATA --out OUT --device D --seed S [--resume] --set K=V ...`` in-process."""
    argv = ["--data", str(data), "--out", str(out), "--device", ctx.args.device,
            "--seed", str(ctx.seed if seed is None else seed)]
    if ctx.resume:
        argv.append("--resume")
    for key, value in (settings or {}).items():
        argv += ["--set", f"{key}={_text(value)}"]
    print(f"\n$ python {script} {' '.join(map(shlex.quote, argv))}", flush=True)
    load_script(script).main(argv)


def pick(settings: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {name: settings[name] for name in names}


# The network's settings (models.blocks: the Block's and every residual block's own) and its initialisation.
NETWORK_KEYS = (*network_settings(), "TAIL_GAIN")


def network_of(settings: dict[str, Any]) -> dict[str, Any]:
    """What ``settings`` (an experiment's, with --set) state of ``NETWORK_KEYS``: passed on to the phase scripts,
    which default the rest."""
    return {name: settings[name] for name in NETWORK_KEYS if name in settings}


def network_defaults() -> dict[str, Any]:
    """The phase scripts' defaults of ``NETWORK_KEYS``."""
    known = catalogue()
    return {name: known[name] for name in NETWORK_KEYS}


BLOCK_KEYS = ("DATASET", "CAMERA", "SCALE", "PATCH_SIZE", "BATCH_SIZE", "WARMUP_OPTIMIZER", "LR_WARMUP",
              "ITERS_WARMUP", "ITERS_CLAMP_HIGH", "LR_CLAMP_HIGH",
              "ITERS_CLAMP_LOW", "LR_CLAMP_LOW", "EVAL_EVERY", "VAL_FRACTION", "VALIDATE_ON_TEST")
COMBINED_KEYS = ("DATASET", "CAMERA", "SCALE", "PATCH_SIZE", "BATCH_SIZE", "ITERS_HIGH", "LR_HIGH", "ITERS_LOW",
                 "LR_LOW", "EVAL_EVERY", "VAL_FRACTION", "VALIDATE_ON_TEST")


def timed_phase(ctx: RunContext, script: str, data: Path, out: Path, settings: dict[str, Any],
                seed: int, key: str) -> None:
    """``run_phase``, its wall time (training, evaluation, LR regeneration) kept in ``<out>/wall_seconds.json``;
    a --resume of a finished phase keeps the first, real, time."""
    started = time.perf_counter()
    run_phase(ctx, script, data, out, settings, seed)
    record = read_json(out / "wall_seconds.json")
    record[key] = max(record.get(key, 0.0), round(time.perf_counter() - started, 1))
    write_json(out / "wall_seconds.json", record)


def run_phased(ctx: RunContext, data: Path, run: Path, seed: int) -> dict[str, float]:
    """The six phase scripts in order into ``run`` with the experiment's block and phase-4 settings;
    returns the wall seconds per script."""
    s = ctx.settings
    block, regen = {**pick(s, BLOCK_KEYS), **network_of(s)}, pick(s, ("DATASET", "CAMERA", "SCALE"))
    later = {**block, "INIT": s["BLOCK_INIT"]}
    for phase in chain.PHASES:
        settings = (pick(s, COMBINED_KEYS) if phase is chain.LAST else block if phase is chain.FIRST
                    else later if phase.network else regen)
        timed_phase(ctx, phase.script, data, run, settings, seed, phase.script)
    return read_json(run / "wall_seconds.json")


def block_iterations(settings: dict[str, Any]) -> int:
    return settings["ITERS_WARMUP"] + settings["ITERS_CLAMP_HIGH"] + settings["ITERS_CLAMP_LOW"]


def phase_metrics(run: Path, phase: str) -> dict[str, dict[str, float]]:
    """``{"model": {...}, "identity": {...}}`` of one phase entry of a phase run's results.json."""
    entry = read_json(run / "results.json").get(phase)
    if entry is None:
        raise UserError(f"{run / 'results.json'} has no {phase!r} entry; the phase did not finish")
    (scores,) = entry["metrics"].values()  # one test set per phase entry
    return scores


# ------------------------------------------------------------------------------------ numbers
def mean_sd(values: Sequence[float], digits: int = 2) -> str:
    """'31.23' for one value, '31.23 ± 0.05' (sample sd over seeds) for several."""
    values = [float(v) for v in values]
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_outputs(ctx: RunContext, title: str, sections: Sequence[str], results: dict[str, Any],
                  command: str) -> str:
    """``<out>/table.md`` (title, the command, then each section) and ``<out>/results.json``."""
    text = "\n\n".join([f"# {title}", f"`{command}`", *sections]) + "\n"
    write_text_atomic(ctx.out / "table.md", text)
    write_json(ctx.out / "results.json", {**results, "command": command, "settings": ctx.settings,
                                           "seed": ctx.seed})
    print("\n" + text, flush=True)
    return text


def save_figure(fig, path: Path) -> None:
    from engine.plots import plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"plot: {path}", flush=True)


def finish_psnr_plot(fig, ax, identity: float, path: Path, *, xlabel: str, title: str, seeds_run: int,
                     **legend) -> None:
    """The end of every test-PSNR curve plot: identity line, labels, seed count, legend, save."""
    ax.axhline(identity, color="k", linestyle=":", label=f"identity (LR) {identity:.2f}")
    ax.set(xlabel=xlabel, ylabel="test PSNR RGB (dB)",
           title=f"{title} ({seeds_run} seed{'s' if seeds_run > 1 else ''})")
    ax.legend(fontsize=8, **legend)
    save_figure(fig, path)
