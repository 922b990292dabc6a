"""Pieces of the phased multiblock training that need no data: the starting block and the settings checks."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.checkpoint import load_checkpoint, save_checkpoint
from core.errors import UserError
from models.blocks import RCAB, ResBlock, block_kwargs
from models.rcan import Block
from pipelines.multiblock.chain import phase
from pipelines.multiblock.phase_settings import catalogue, check_phase_settings
from pipelines.multiblock.resolve import resolve_run
from pipelines.multiblock.run_folder import ARCH, load_block
from pipelines.multiblock.train import initial_block

SETTINGS = {"N_FEATS": 8, "N_RESBLOCKS": 2, "RESBLOCK": "rcab", "REDUCTION": 4, "END_CONV": True, "INIT": "inherit",
            "TAIL_GAIN": 0.1}
FIRST, SECOND = phase("phase1_1.py"), phase("phase2_1.py")  # block 1 (no parent) and block 2 (parent N1)


def write_parent(run: Path, seed: int = 123) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    parent = Block(**block_kwargs(SETTINGS))
    save_checkpoint(run / "N1.pt", {"model": parent.state_dict(), "meta": {"arch": ARCH, **block_kwargs(SETTINGS)}})
    return parent.state_dict()


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_inherit_starts_block_2_equal_to_n1(tmp_path: Path):
    parent = write_parent(tmp_path)
    assert same(initial_block(SETTINGS, tmp_path, SECOND, seed=0).state_dict(), parent)


def test_fresh_is_the_orthogonal_init_not_n1(tmp_path: Path):
    parent = write_parent(tmp_path)
    fresh = initial_block({**SETTINGS, "INIT": "fresh"}, tmp_path, SECOND, seed=0).state_dict()
    assert not same(fresh, parent)
    assert same(fresh, initial_block({**SETTINGS, "INIT": "fresh"}, tmp_path, SECOND, seed=0).state_dict())
    assert same(fresh, initial_block(SETTINGS, tmp_path, FIRST, seed=0).state_dict())  # block 1 has no parent


def test_a_phase_run_too_early_names_the_scripts_to_run_first(tmp_path: Path):
    import phase2_1

    with pytest.raises(UserError, match=r"needs .*N1\.pt.*run phase1_1\.py and phase1_2\.py first"):
        resolve_run(vars(phase2_1), ["--out", str(tmp_path)], "phase2_1.py")
    assert not any(tmp_path.iterdir())


def test_inherit_from_another_architecture_is_a_user_error(tmp_path: Path):
    write_parent(tmp_path)
    with pytest.raises(UserError, match="does not fit"):
        initial_block({**SETTINGS, "N_FEATS": 16}, tmp_path, SECOND, seed=0)


def test_misspelt_choices_are_refused():
    chosen = {"INIT": "fresh", "WARMUP_OPTIMIZER": "adadelta", "SELECT": "last", "LOSS": "L1", "RESBLOCK": "rb"}
    check_phase_settings({**catalogue(), **chosen}, "phase2_1.py")
    for name in chosen:
        expected = "unknown term 'nonsense'; expected terms" if name == "LOSS" else "expected one of "
        with pytest.raises(UserError, match=rf"^{name}='nonsense': {expected}"):
            check_phase_settings({**catalogue(), name: "nonsense"}, "phase2_1.py")
    with pytest.raises(UserError, match=r"^INIT='inherit': expected one of blocks, fresh"):
        check_phase_settings({**catalogue(), "INIT": "inherit"}, "phase4.py")


def test_small_tail_gain_starts_the_block_near_identity(tmp_path: Path):
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        near = (initial_block(SETTINGS, tmp_path, FIRST, seed=0)(x) - x).abs().mean()
        report = (initial_block({**SETTINGS, "TAIL_GAIN": 1.0}, tmp_path, FIRST, seed=0)(x) - x).abs().mean()
    assert near < 0.2 * report


def test_the_residual_block_design_is_a_setting_recorded_in_the_checkpoint(tmp_path: Path):
    block = initial_block({**SETTINGS, "RESBLOCK": "rb"}, tmp_path, FIRST, seed=0)
    assert all(isinstance(unit, ResBlock) for unit in block.body) and len(block.body) == 2
    save_checkpoint(tmp_path / "N1.pt", {"model": block.state_dict(),
                                         "meta": {"arch": ARCH, **block_kwargs({**SETTINGS, "RESBLOCK": "rb"})}})
    loaded = load_block(tmp_path / "N1.pt", clamp=True)
    assert all(isinstance(unit, ResBlock) for unit in loaded.body) and loaded.clamp
    assert same(loaded.state_dict(), block.state_dict())


def test_a_checkpoint_from_before_the_setting_holds_rcabs_and_an_unregistered_design_is_refused(tmp_path: Path):
    write_parent(tmp_path)
    state = load_checkpoint(tmp_path / "N1.pt")
    del state["meta"]["resblock"]  # what phase scripts wrote before RESBLOCK existed
    save_checkpoint(tmp_path / "old.pt", state)
    assert all(isinstance(unit, RCAB) for unit in load_block(tmp_path / "old.pt", clamp=True).body)
    state["meta"]["resblock"] = "mine"
    save_checkpoint(tmp_path / "mine.pt", state)
    with pytest.raises(UserError, match=r"resblock='mine', which models/blocks/ does not register") as refused:
        load_block(tmp_path / "mine.pt", clamp=True)
    assert "\n" not in str(refused.value)
