"""A residual block's own settings reach it from the command line, and its checks run only where it is used."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.errors import UserError
from models.blocks import NAFBlock, block_kwargs, recorded_block_kwargs
from models.rcan import Block
from pipelines.multiblock.phase_settings import RUN_WIDE
from pipelines.multiblock.resolve import resolve_run
from tests.scripts.helpers import load_script


def phase1_settings(tmp_path: Path, *assignments: str) -> dict:
    argv = ["--out", str(tmp_path / "run")]
    for item in ("PRESET=tiny", *assignments):
        argv += ["--set", item]
    return resolve_run(vars(load_script("phase1_1.py")), [*argv, "--dry-run"], "phase1_1.py").settings


def test_set_reaches_the_naf_block_and_its_expansion(tmp_path: Path):
    settings = phase1_settings(tmp_path, "RESBLOCK=naf", "NAF_EXPANSION=3")
    assert "NAF_EXPANSION" in RUN_WIDE
    block = Block(**block_kwargs(settings))
    assert all(isinstance(unit, NAFBlock) for unit in block.body) and len(block.body) == 2  # tiny: R = 2
    assert block.body[0].depthwise.out_channels == 8 * 3 and block.body[0].project.in_channels == 8 * 3 // 2
    assert block_kwargs(settings) == {"n_feats": 8, "n_resblocks": 2, "resblock": "naf", "end_conv": True,
                                      "naf_expansion": 3}
    default = Block(**block_kwargs(phase1_settings(tmp_path, "RESBLOCK=naf")))
    assert default.body[0].depthwise.out_channels == 8 * 2


def test_a_blocks_own_check_runs_only_for_that_block(tmp_path: Path):
    with pytest.raises(UserError, match=r"^NAF_EXPANSION=1: SimpleGate halves N_FEATS \* NAF_EXPANSION = 7"):
        phase1_settings(tmp_path, "RESBLOCK=naf", "N_FEATS=7", "NAF_EXPANSION=1")
    with pytest.raises(UserError, match=r"^REDUCTION=16: the channel attention squeezes N_FEATS=8"):
        phase1_settings(tmp_path, "REDUCTION=16")
    for other in ("naf", "rb"):  # no channel-attention squeeze to check
        assert phase1_settings(tmp_path, f"RESBLOCK={other}", "REDUCTION=16")["REDUCTION"] == 16
    with pytest.raises(UserError, match=r"^NAF_EXPANSION=0: expected an integer >= 1"):
        phase1_settings(tmp_path, "NAF_EXPANSION=0")


def test_a_checkpoint_record_without_a_blocks_later_setting_loads_with_its_default():
    recorded = {"n_feats": 8, "n_resblocks": 1, "end_conv": True, "resblock": "naf"}
    assert recorded_block_kwargs(recorded)["naf_expansion"] == NAFBlock.settings["NAF_EXPANSION"].default
    rcab_then = {**recorded, "resblock": "rcab", "reduction": 2}
    assert recorded_block_kwargs(rcab_then) == rcab_then
    rb_then = {**recorded, "resblock": "rb", "reduction": 4}  # rb checkpoints recorded REDUCTION too
    block = Block(**recorded_block_kwargs(rb_then))
    assert block(torch.rand(1, 3, 5, 5)).shape == (1, 3, 5, 5)
