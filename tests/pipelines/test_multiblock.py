"""Pieces of the phased multiblock training that need no data: the starting block and the settings checks."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.checkpoint import save_checkpoint
from core.errors import UserError
from models.rcan import Block
from pipelines.multiblock.run_folder import ARCH, block_kwargs, check_choices
from pipelines.multiblock.train import initial_block

SETTINGS = {"N_FEATS": 8, "N_RESBLOCKS": 2, "REDUCTION": 4, "END_CONV": True, "INIT": "inherit",
            "TAIL_GAIN": 0.1}


def write_parent(run: Path, seed: int = 123) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    parent = Block(**block_kwargs(SETTINGS))
    save_checkpoint(run / "N1.pt", {"model": parent.state_dict(), "meta": {"arch": ARCH, **block_kwargs(SETTINGS)}})
    return parent.state_dict()


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_inherit_starts_block_2_equal_to_n1(tmp_path: Path):
    parent = write_parent(tmp_path)
    assert same(initial_block(SETTINGS, tmp_path, 2, seed=0).state_dict(), parent)


def test_fresh_is_the_orthogonal_init_not_n1(tmp_path: Path):
    parent = write_parent(tmp_path)
    fresh = initial_block({**SETTINGS, "INIT": "fresh"}, tmp_path, 2, seed=0).state_dict()
    assert not same(fresh, parent)
    assert same(fresh, initial_block({**SETTINGS, "INIT": "fresh"}, tmp_path, 2, seed=0).state_dict())
    assert same(fresh, initial_block(SETTINGS, tmp_path, 1, seed=0).state_dict())  # block 1 has no parent


def test_inherit_without_parent_names_the_script(tmp_path: Path):
    with pytest.raises(UserError, match=r"phase1_1\.py"):
        initial_block(SETTINGS, tmp_path, 2, seed=0)


def test_inherit_from_another_architecture_is_a_user_error(tmp_path: Path):
    write_parent(tmp_path)
    with pytest.raises(UserError, match="does not fit"):
        initial_block({**SETTINGS, "N_FEATS": 16}, tmp_path, 2, seed=0)


def test_misspelt_choices_are_refused():
    check_choices({"INIT": "fresh", "WARMUP_OPTIMIZER": "adadelta", "SELECT": "last", "LOSS": "L1"})
    for name in ("INIT", "WARMUP_OPTIMIZER", "SELECT", "LOSS"):
        with pytest.raises(UserError, match=name):
            check_choices({name: "nonsense"})


def test_small_tail_gain_starts_the_block_near_identity(tmp_path: Path):
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        near = (initial_block(SETTINGS, tmp_path, 1, seed=0)(x) - x).abs().mean()
        report = (initial_block({**SETTINGS, "TAIL_GAIN": 1.0}, tmp_path, 1, seed=0)(x) - x).abs().mean()
    assert near < 0.2 * report
