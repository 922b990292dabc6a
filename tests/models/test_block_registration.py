"""A new residual block is its file plus its registration: nothing else in the house is edited.

``ScaledBlock`` below is defined here and nowhere else; a fresh interpreter registers it before the phase
settings are read, and then the phase command line accepts ``RESBLOCK=scaled`` and its own setting, checks that
setting's range, records both as run-wide, builds the block, and banded inference runs it exactly."""
from __future__ import annotations

import textwrap
from typing import ClassVar

import torch
from torch import nn

from core.rules import between
from models.blocks import BlockSetting, ResidualBlock
from models.exactness import Local, Pooled, Residual, Step


class ScaledBlock(ResidualBlock):
    """x + conv3x3(x) * SCALED_GAIN * sigmoid(mean(conv3x3(x))): a block with a setting of its own."""

    name = "scaled"
    settings: ClassVar = {"SCALED_GAIN": BlockSetting(0.5, between(0, 1), "scale of the residual branch")}

    def __init__(self, n_feats: int, scaled_gain: float = 0.5) -> None:
        super().__init__()
        self.gain = scaled_gain
        self.conv = nn.Conv2d(n_feats, n_feats, 3, padding=1)

    def layer_order(self) -> tuple[Step, ...]:
        return (Residual((Local(self.conv, 1), Pooled(lambda mean: self.gain * torch.sigmoid(mean)))),)


def test_registering_a_block_defined_in_a_test_module_is_all_it_takes(tmp_path):
    from tests.scripts.helpers import run_script  # here: importing it reads the phase settings, this module must not

    code = textwrap.dedent(f"""
        import torch
        from core.errors import UserError
        from models.blocks import block_kwargs, register
        from tests.models.test_block_registration import ScaledBlock
        register(ScaledBlock)
        from inference.banded import banded_forward
        from models.rcan import Block
        from pipelines.multiblock.phase_settings import RUN_WIDE
        from pipelines.multiblock.resolve import resolve_run
        from tests.scripts.helpers import load_script

        def parse(*items):
            argv = ["--out", {str(tmp_path / "run")!r}]
            for item in ("PRESET=tiny", "RESBLOCK=scaled", *items):
                argv += ["--set", item]
            return resolve_run(vars(load_script("phase1_1.py")), [*argv, "--dry-run"], "phase1_1.py").settings

        settings = parse("SCALED_GAIN=0.25")
        assert "SCALED_GAIN" in RUN_WIDE and settings["SCALED_GAIN"] == 0.25
        block = Block(**block_kwargs(settings)).eval()
        assert all(isinstance(unit, ScaledBlock) and unit.gain == 0.25 for unit in block.body)
        x = torch.rand(1, 3, 13, 11)
        with torch.no_grad():
            assert torch.allclose(banded_forward(block, x, band=4), block(x), atol=1e-5, rtol=0)
        try:
            parse("SCALED_GAIN=2")
        except UserError as refused:
            print(refused)
    """)
    done = run_script("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SCALED_GAIN=2.0: expected a number in [0, 1] (--set SCALED_GAIN=...)"
