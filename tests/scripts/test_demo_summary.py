"""demo.py's multiblock summary: each phase beside the one before it, and a phase that adds nothing named."""
from __future__ import annotations

import pytest

from tests.scripts.helpers import load_script


def results(*psnrs: float, identity: float = 26.0) -> dict:
    """results.json of a run whose phases scored ``psnrs`` on one test set."""
    return {f"phase{index}": {"metrics": {"test": {"model": {"psnr_rgb_report": psnr},
                                                   "identity": {"psnr_rgb_report": identity}}}}
            for index, psnr in enumerate(psnrs, start=1)}


@pytest.fixture(scope="module")
def demo():
    return load_script("demo.py")


def test_every_phase_adding_is_said(demo, capsys):
    demo.multiblock_summary(results(26.9, 27.0, 27.05, 27.1))
    out = capsys.readouterr().out
    assert "multiblock phase1 test: model 26.90  identity (LR) 26.00  (+0.900 over identity" in out
    assert "multiblock phase4 test: model 27.10  identity (LR) 26.00  (+0.050 over phase3" in out
    assert "every phase adds" in out and "did not add" not in out


def test_a_phase_that_adds_nothing_is_named_with_why(demo, capsys):
    demo.multiblock_summary(results(26.96, 27.02, 27.05, 26.98))
    out = capsys.readouterr().out
    assert "multiblock: phase4 (-0.070 dB over phase3) did not add here." in out
    assert "every phase adds over the one before" not in out
    demo.multiblock_summary(results(26.96, 26.96, 27.05, 27.1))  # equal is not adding
    assert "phase2 (+0.000 dB over phase1) did not add" in capsys.readouterr().out
