"""The phase scripts' shared settings: one catalogue read from the six blocks, presets, run-wide values."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import UserError
from core.runs import write_json
from models.blocks import block_settings
from pipelines.multiblock.chain import FIRST
from pipelines.multiblock.chain import SCRIPTS as PHASE_SCRIPTS
from pipelines.multiblock.phase_settings import (
    LOCATION,
    PRESETS,
    RUN_WIDE,
    catalogue,
    script_block,
)
from pipelines.multiblock.resolve import resolve_run
from pipelines.multiblock.run_folder import record_path
from tests.scripts.helpers import load_script


def test_the_catalogue_is_the_union_of_the_six_blocks_and_the_residual_blocks_settings():
    known = catalogue()
    declared = block_settings()
    assert set(known) == {name for script in PHASE_SCRIPTS for name in script_block(script)} | set(declared)
    assert {"REDUCTION", "NAF_EXPANSION"} <= set(declared) and known["REDUCTION"] == declared["REDUCTION"].default
    assert known["INIT"] == "inherit" and script_block("phase4.py")["INIT"] == "blocks"
    assert script_block("phase1_2.py") == {} == script_block("phase2_2.py")


def test_run_wide_settings_live_in_the_first_script_only_or_in_the_residual_blocks():
    assert set(RUN_WIDE) | set(LOCATION) <= set(script_block(FIRST.script)) | set(block_settings())
    assert set(block_settings()) <= set(RUN_WIDE)
    for script in PHASE_SCRIPTS[1:]:
        assert not set(script_block(script)) & (set(RUN_WIDE) | set(LOCATION)), script


def test_presets_set_known_settings_and_the_speed_settings_stay_per_phase():
    known = catalogue()
    assert {"report", "small", "tiny"} <= set(PRESETS)
    for values in PRESETS.values():
        assert set(values) <= set(known)
    for name in ("PRECISION", "CHANNELS_LAST", "COMPILE", "DETERMINISTIC"):
        assert name not in RUN_WIDE
        for script in ("phase1_1.py", "phase2_1.py", "phase3.py", "phase4.py"):
            assert name in script_block(script), (name, script)


def phase(script: str) -> dict:
    return vars(load_script(script))


def parse_phase_cli(namespace: dict, argv: list[str], script: str):
    """The run ``script`` resolves from ``argv``; --dry-run: its inputs (earlier phases) are not needed."""
    return resolve_run(namespace, [*argv, "--dry-run"], script)


def tiny_record(tmp_path: Path) -> dict:
    record = {"recorded_by": "phase1_1.py", "settings": {**{k: catalogue()[k] for k in RUN_WIDE},
                                                         "PRESET": "tiny", "N_FEATS": 8, "CAMERA": "Nikon"},
              "location": {"DATASET_DIR": "RealSR(V3)"}, "seed": 7, "data": {}}
    tmp_path.mkdir(exist_ok=True)
    write_json(record_path(tmp_path), record)
    return record


def test_a_later_phase_reads_the_run_wide_values_from_the_record(tmp_path: Path):
    tiny_record(tmp_path)
    ctx = parse_phase_cli(phase("phase2_1.py"), ["--out", str(tmp_path), "--set", "N_FEATS=8"], "phase2_1.py")
    assert (ctx.settings["CAMERA"], ctx.settings["N_FEATS"], ctx.seed) == ("Nikon", 8, 7)
    assert ctx.origins["CAMERA"] == ctx.origins["seed"] == "run.json (phase1_1.py)"
    assert ctx.settings["DATASET_DIR"] == "RealSR(V3)"
    moved = parse_phase_cli(phase("phase1_2.py"), ["--out", str(tmp_path), "--set", "DATASET_DIR=/data/RealSR"],
                            "phase1_2.py")
    assert moved.settings["DATASET_DIR"] == "/data/RealSR"  # a location is a default, never a conflict
    with pytest.raises(UserError, match=rf"^PRESET='small' \(--set\) differs from PRESET='tiny' recorded in "
                                        rf"{tmp_path / 'run.json'} by phase1_1.py"):
        parse_phase_cli(phase("phase4.py"), ["--out", str(tmp_path), "--set", "PRESET=small"], "phase4.py")


def test_what_the_file_says_wins_over_a_preset_recorded_by_an_earlier_phase(tmp_path: Path):
    tiny_record(tmp_path)
    written = script_block("phase2_1.py")["ITERS_WARMUP"]
    ctx = parse_phase_cli(phase("phase2_1.py"), ["--out", str(tmp_path)], "phase2_1.py")
    assert ctx.settings["ITERS_WARMUP"] == written and "ITERS_WARMUP" not in ctx.origins  # the file's own
    given = parse_phase_cli(phase("phase2_1.py"), ["--out", str(tmp_path), "--set", "PRESET=tiny"], "phase2_1.py")
    assert given.settings["ITERS_WARMUP"] == PRESETS["tiny"]["ITERS_WARMUP"]  # a preset given here applies
    assert given.origins["ITERS_WARMUP"] == "preset tiny"
    edited = {**phase("phase2_1.py"), "LR_CLAMP_HIGH": 5e-4}  # the value a user wrote at the top of the file
    both = parse_phase_cli(edited, ["--out", str(tmp_path), "--set", "PRESET=tiny", "--set", "ITERS_WARMUP=7"],
                           "phase2_1.py")
    assert (both.settings["ITERS_WARMUP"], both.origins["ITERS_WARMUP"]) == (7, "--set")  # --set wins over both
    assert both.settings["LR_CLAMP_HIGH"] == PRESETS["tiny"]["LR_CLAMP_HIGH"]  # a preset given here beats the file
    assert parse_phase_cli(edited, ["--out", str(tmp_path)], "phase2_1.py").settings["LR_CLAMP_HIGH"] == 5e-4


def test_a_run_wide_value_written_in_a_later_script_is_never_replaced_silently(tmp_path: Path):
    tiny_record(tmp_path)
    edited = {**phase("phase2_1.py"), "N_FEATS": 32}
    with pytest.raises(UserError, match=r"^N_FEATS=32 \(written in phase2_1.py\) differs from N_FEATS=8 recorded in "):
        parse_phase_cli(edited, ["--out", str(tmp_path)], "phase2_1.py")


def test_the_settings_report_says_where_each_value_came_from(tmp_path: Path):
    tiny_record(tmp_path)
    ctx = parse_phase_cli(phase("phase2_1.py"), ["--out", str(tmp_path), "--set", "ITERS_WARMUP=7"], "phase2_1.py")
    lines = ctx.header.splitlines()
    assert lines[0] == "phase2_1.py settings (own, then run-wide):"
    assert any(line.split() == ["ITERS_WARMUP", "=", "7", "<-", "--set"] for line in lines)
    assert any(line.split() == ["CAMERA", "=", "Nikon", "<-", "run.json", "(phase1_1.py)"] for line in lines)
    assert any(line.split() == ["LR_WARMUP", "=", "1.0"] for line in lines)  # the file's own: no origin


def test_without_a_record_the_first_scripts_values_and_the_preset_apply(tmp_path: Path):
    ctx = parse_phase_cli(phase("phase4.py"), ["--out", str(tmp_path / "new"), "--set", "PRESET=small",
                                               "--set", "N_RESBLOCKS=3"], "phase4.py")
    assert (ctx.settings["N_FEATS"], ctx.settings["N_RESBLOCKS"], ctx.settings["ITERS_HIGH"]) == (16, 3, 200)
    assert ctx.settings["CAMERA"] == "Canon" and "ITERS_WARMUP" not in ctx.settings


def test_the_dataset_is_run_wide_and_its_folder_a_default(tmp_path: Path):
    assert "DATASET" in RUN_WIDE and LOCATION == ("DATASET_DIR",)
    record = {"recorded_by": "phase1_1.py", "settings": {**{k: catalogue()[k] for k in RUN_WIDE},
                                                         "DATASET": "city100", "CAMERA": "iPhoneX"},
              "location": {"DATASET_DIR": "City100/City100_iPhoneX"}, "seed": 0, "data": {}}
    write_json(record_path(tmp_path), record)
    ctx = parse_phase_cli(phase("phase1_2.py"), ["--out", str(tmp_path)], "phase1_2.py")
    assert (ctx.settings["DATASET"], ctx.settings["DATASET_DIR"]) == ("city100", "City100/City100_iPhoneX")
    with pytest.raises(UserError, match=r"^DATASET='paired' \(--set\) differs from DATASET='city100' recorded in "):
        parse_phase_cli(phase("phase2_1.py"), ["--out", str(tmp_path), "--set", "DATASET=paired"], "phase2_1.py")
