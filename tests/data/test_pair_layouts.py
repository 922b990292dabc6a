"""Pair sets by layout (RealSR, City100, generic HR/LR folders), made here as small files: matched by name,
split as published, and each mistake one line naming the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import UserError
from data.pair_layouts import PairSource, find_city100_folder, find_pairs, pair_set_name
from data.paired import load_pairs

CITY100 = PairSource("city100", camera="iPhoneX")
PAIRED = PairSource("paired")


def save(path: Path, value: int, size: tuple[int, int] = (8, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path, format="PNG")


def make_city100(folder: Path, numbers: range | list[int] = range(1, 21), hr: str = "H", lr: str = "L",
                 suffix: str = ".PNG") -> Path:
    for number in numbers:
        save(folder / f"{number:03d}{hr}{suffix}", number)
        save(folder / f"{number:03d}{lr}{suffix}", number + 100)
    return folder


def make_paired(root: Path, names: dict[str, list[str]], hr_suffix: str = ".png", lr_suffix: str = ".png") -> Path:
    for split, stems in names.items():
        for value, stem in enumerate(stems):
            save(root / split / "HR" / f"{stem}{hr_suffix}", value)
            save(root / split / "LR" / f"{stem}{lr_suffix}", value + 100)
    return root


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------------ City100
@pytest.mark.parametrize("version", ["iPhoneX", "NikonD5500"])
def test_city100_both_versions_split_as_the_authors(tmp_path: Path, version: str):
    make_city100(tmp_path / "City100" / f"City100_{version}", range(1, 101))
    source = PairSource("city100", camera=version)
    test, train = find_pairs(tmp_path, source, "test"), find_pairs(tmp_path, source, "Train")
    assert [pair.name for pair in test] == ["001", "016", "048", "060", "098"]
    assert len(train) == 95 and {pair.name for pair in train}.isdisjoint(pair.name for pair in test)
    assert (test[0].hr_path.name, test[0].lr_path.name) == ("001H.PNG", "001L.PNG")
    images = load_pairs(test)
    assert images.hr[1][0, 0, 0] == 16 and images.lr[1][0, 0, 0] == 116  # partners, by name
    assert pair_set_name(tmp_path, source) == f"City100-{version}"


@pytest.mark.parametrize(("hr", "lr", "suffix"), [("H", "L", ".png"), ("h", "l", ".PNG"), ("H", "L", ".Png")])
def test_city100_suffixes_and_sides_in_either_case(tmp_path: Path, hr: str, lr: str, suffix: str):
    make_city100(tmp_path / "City100_iPhoneX", [1, 2, 16], hr, lr, suffix)
    assert [pair.name for pair in find_pairs(tmp_path, CITY100, "train")] == ["002"]
    assert [pair.name for pair in find_pairs(tmp_path, CITY100, "test")] == ["001", "016"]


def test_city100_folder_found_under_usual_names_or_named(tmp_path: Path):
    make_city100(tmp_path / "data" / "City100" / "City100_iPhoneX")
    assert find_city100_folder(tmp_path / "data", "iPhoneX") == tmp_path / "data" / "City100" / "City100_iPhoneX"
    direct = tmp_path / "data" / "City100" / "City100_iPhoneX"
    assert find_city100_folder(direct, "Canon") == direct  # --data at the folder itself
    assert pair_set_name(direct, PairSource("city100")) == "City100-iPhoneX"
    mine = make_city100(tmp_path / "my_phone")
    assert find_city100_folder(tmp_path, "Canon", str(mine)) == mine
    assert pair_set_name(tmp_path, PairSource("city100", folder="my_phone")) == "City100-my_phone"


def test_city100_not_found_names_the_versions_there(tmp_path: Path):
    make_city100(tmp_path / "City100" / "City100_iPhoneX")
    with pytest.raises(UserError) as err:
        find_pairs(tmp_path, PairSource("city100", camera="Canon"), "train")
    message = one_line(err)
    assert str(tmp_path / "City100" / "City100_Canon") in message
    assert "holds City100_iPhoneX: choose with --set CAMERA=iPhoneX" in message and "DATASET_DIR=FOLDER" in message
    with pytest.raises(UserError, match="CAMERA=iPhoneX or NikonD5500"):
        find_pairs(tmp_path / "empty", CITY100, "train")


def test_city100_missing_partner_and_size_mismatch_name_the_file(tmp_path: Path):
    folder = make_city100(tmp_path / "City100_iPhoneX")
    (folder / "007L.PNG").unlink()
    with pytest.raises(UserError) as err:
        find_pairs(tmp_path, CITY100, "train")
    assert f"HR image {folder / '007H.PNG'} has no LR partner {folder / '007L.PNG'}" in one_line(err)
    save(folder / "007L.PNG", 1, size=(9, 10))
    with pytest.raises(UserError) as err:
        load_pairs(find_pairs(tmp_path, CITY100, "train"))
    assert f"LR {folder / '007L.PNG'} is 10x9 but HR {folder / '007H.PNG'} is 10x8" in one_line(err)


def test_city100_foreign_names_and_an_empty_split(tmp_path: Path):
    folder = make_city100(tmp_path / "City100_iPhoneX", [2, 3])
    with pytest.raises(UserError, match=r"no City100 test pairs in .*001, 016, 048, 060, 098"):
        find_pairs(tmp_path, CITY100, "test")
    save(folder / "003X.png", 0)
    with pytest.raises(UserError, match=r"unexpected image .*003X\.png: City100 files are named like 001H"):
        find_pairs(tmp_path, CITY100, "train")


# ------------------------------------------------------------------------------------- generic layout
def test_paired_layout_matches_equal_stems_in_any_case(tmp_path: Path):
    root = make_paired(tmp_path / "mine", {"train": ["b", "a", "c"], "test": ["z"]}, ".png", ".PNG")
    (root / "train").rename(root / "Train")
    (root / "Train" / "LR").rename(root / "Train" / "lr")
    pairs = find_pairs(root, PAIRED, "train")
    assert [(pair.name, pair.hr_path.name, pair.lr_path.name) for pair in pairs] == \
        [("a", "a.png", "a.PNG"), ("b", "b.png", "b.PNG"), ("c", "c.png", "c.PNG")]
    assert load_pairs(pairs).lr[0][0, 0, 0] == 101  # "a" was written second: value 1, LR 101
    assert [pair.name for pair in find_pairs(tmp_path, PairSource("paired", folder="mine"), "test")] == ["z"]
    assert pair_set_name(root, PAIRED) == "mine"


def test_paired_missing_partner_is_one_line_naming_the_file(tmp_path: Path):
    root = make_paired(tmp_path, {"train": ["a", "b"], "test": ["c"]})
    (root / "train" / "LR" / "b.png").unlink()
    with pytest.raises(UserError) as err:
        find_pairs(root, PAIRED, "train")
    assert one_line(err) == (f"HR image {root / 'train/HR/b.png'} has no LR partner {root / 'train/LR/b.png'}")
    save(root / "test" / "LR" / "d.png", 0)
    with pytest.raises(UserError) as err:
        find_pairs(root, PAIRED, "test")
    assert one_line(err) == f"LR image {root / 'test/LR/d.png'} has no HR partner {root / 'test/HR/d.png'}"


def test_paired_size_mismatch_and_two_files_for_one_name(tmp_path: Path):
    root = make_paired(tmp_path, {"train": ["a", "b"], "test": ["c"]})
    save(root / "train" / "LR" / "a.png", 0, size=(16, 20))
    with pytest.raises(UserError) as err:
        load_pairs(find_pairs(root, PAIRED, "train"))
    assert f"size mismatch: LR {root / 'train/LR/a.png'} is 20x16 but HR {root / 'train/HR/a.png'} is 10x8" \
        in one_line(err)
    save(root / "train" / "HR" / "b.jpg", 0)
    with pytest.raises(UserError, match=r"two files for one image: .*HR/b\.(jpg|png) and .*HR/b\.(jpg|png)"):
        find_pairs(root, PAIRED, "train")


def test_paired_missing_folders_show_the_layout(tmp_path: Path):
    make_paired(tmp_path, {"train": ["a"]})
    with pytest.raises(UserError) as err:
        find_pairs(tmp_path, PAIRED, "test")
    message = one_line(err)
    assert f"folder {tmp_path / 'test'} not found" in message and f"{tmp_path}/train/HR/<name>.png" in message
    (tmp_path / "train" / "LR" / "a.png").unlink()
    (tmp_path / "train" / "LR").rmdir()
    with pytest.raises(UserError, match=rf"folder {tmp_path / 'train' / 'LR'} not found: the paired layout is "
                                        rf"{tmp_path}/train/HR"):
        find_pairs(tmp_path, PAIRED, "train")


# --------------------------------------------------------------------------------- one entry point
def test_realsr_through_the_same_entry_point_and_unknown_layouts(tmp_path: Path):
    folder = tmp_path / "RealSR(V3)" / "Canon" / "Train" / "2"
    for side in ("HR", "LR2"):
        save(folder / f"Canon_001_{side}.PNG", 1)
    assert [pair.name for pair in find_pairs(tmp_path, PairSource(), "train")] == ["Canon_001"]
    assert pair_set_name(tmp_path, PairSource()) == "RealSR-Canon-x2"
    with pytest.raises(UserError, match=r"DATASET='div2k': expected one of realsr, city100, paired"):
        find_pairs(tmp_path, PairSource("div2k"), "train")
    with pytest.raises(UserError, match="unknown split 'val'"):
        find_pairs(tmp_path, PairSource(), "val")
