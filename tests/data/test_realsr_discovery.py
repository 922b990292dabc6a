"""RealSR is found under the names it is published with, or a folder the user names; when nothing is found,
one line says which folders were looked for."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import UserError
from data.paired import find_realsr_pairs, find_realsr_root


def make(root: Path, count: int = 2) -> None:
    folder = root / "Canon" / "Train" / "2"
    folder.mkdir(parents=True)
    for number in range(1, count + 1):
        for side in ("HR", "LR2"):
            Image.fromarray(np.full((8, 8, 3), number, np.uint8)).save(folder / f"Canon_{number:03d}_{side}.png")


@pytest.mark.parametrize("name", ["RealSR", "RealSR(V3)", "RealSR_V3"])
def test_published_names_are_found(tmp_path: Path, name: str):
    make(tmp_path / name)
    assert find_realsr_root(tmp_path) == tmp_path / name
    assert [pair.name for pair in find_realsr_pairs(tmp_path)] == ["Canon_001", "Canon_002"]


def test_data_root_may_be_the_realsr_folder_itself(tmp_path: Path):
    make(tmp_path / "RealSR(V3)")
    assert len(find_realsr_pairs(tmp_path / "RealSR(V3)")) == 2


def test_a_named_folder_relative_or_absolute(tmp_path: Path):
    make(tmp_path / "elsewhere" / "my_realsr")
    assert len(find_realsr_pairs(tmp_path, realsr_folder="elsewhere/my_realsr")) == 2
    assert len(find_realsr_pairs("/nonexistent", realsr_folder=tmp_path / "elsewhere" / "my_realsr")) == 2
    with pytest.raises(UserError, match=r"looked for .*missing/Canon/Train/2 .*DATASET_DIR=FOLDER names another"):
        find_realsr_pairs(tmp_path, realsr_folder="missing")


def test_nothing_found_is_one_line_naming_every_folder_looked_for(tmp_path: Path):
    with pytest.raises(UserError) as err:
        find_realsr_pairs(tmp_path, "Canon", 2, "Test")
    message = str(err.value)
    assert "\n" not in message
    for name in ("RealSR", "RealSR(V3)", "RealSR_V3"):
        assert str(tmp_path / name / "Canon" / "Test" / "2") in message
    assert "--set DATASET_DIR=FOLDER" in message and "Canon_001_LR2.png" in message
