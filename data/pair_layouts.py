"""Same-size pair sets by layout: RealSR as published, City100, and a generic HR/LR folder layout.

``find_pairs(root, source, split)`` serves every layout; ``source`` (a ``PairSource``) is the run-wide choice
of layout, camera, scale and folder. Every layout matches its pairs by name (``data.paired.pair_by_name``):
a file without its partner, two files for one name or a file named outside the layout is an error naming
the file; sizes are checked when the pairs are decoded (``data.paired.load_pairs``). Suffixes count in
either case (``.png``, ``.PNG``, ``.jpg``, ...).

- ``realsr``: ``<root>/RealSR(V3)/<camera>/<Train|Test>/<scale>/<camera>_NNN_HR.png`` + ``_LR<scale>.png``
  (``data.paired.find_realsr_pairs``).
- ``city100``: ``<root>/City100/City100_<camera>/NNNH.PNG`` + ``NNNL.PNG``, one folder per version
  (``City100_iPhoneX``, ``City100_NikonD5500``: the authors' CameraSR release, the same naming in both);
  the split is the authors': scenes 001, 016, 048, 060 and 098 are the test set, the others train.
- ``paired``: ``<root>/train/HR/<name>.<ext>`` with ``<root>/train/LR/<name>.<ext>``, and ``test/`` alike:
  equal file stems (the suffixes may differ); folder names in any case (``Train/hr`` works).

``folder`` (the ``DATASET_DIR`` setting) names the folder that holds the layout, under ``root`` or absolute;
empty means the usual names above, or ``root`` itself.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserError
from data.datasets import list_images
from data.paired import FOLDER_SETTING, Pair, add_once, find_realsr_pairs, pair_by_name, sides_by_pattern

LAYOUTS = ("realsr", "city100", "paired")
SPLITS = ("train", "test")
CITY100_TEST = (1, 16, 48, 60, 98)  # the scenes of the authors' test set (CameraSR, Models/*/testset)
CITY100_VERSIONS = ("iPhoneX", "NikonD5500")
CITY100_PREFIX = "City100_"
_CITY100_NAME = re.compile(r"^(?P<name>\d+)(?P<side>[HL])$", re.IGNORECASE)


@dataclass(frozen=True)
class PairSource:
    """Which pairs: the layout, the camera (RealSR's camera folder; City100's version), RealSR's scale
    folder, and the folder holding the layout (``""``: the layout's usual names)."""

    layout: str = "realsr"
    camera: str = "Canon"
    scale: int = 2
    folder: str = ""


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise UserError(f"DATASET={layout!r}: expected one of {', '.join(LAYOUTS)} (--set DATASET=...)")
    return layout


def find_pairs(root: str | os.PathLike, source: PairSource, split: str) -> list[Pair]:
    """The ``split`` (``train`` or ``test``, any case) pairs of ``source`` under ``root``, sorted by name."""
    split = split.lower()
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; use 'train' or 'test'")
    layout = check_layout(source.layout)
    if layout == "realsr":
        return find_realsr_pairs(root, source.camera, source.scale, split.capitalize(), source.folder)
    if layout == "city100":
        return city100_pairs(find_city100_folder(root, source.camera, source.folder), split)
    return folder_pairs(Path(root) / source.folder, split)


def pair_set_name(root: str | os.PathLike, source: PairSource) -> str:
    """The set's name in results: ``RealSR-Canon-x2``, ``City100-iPhoneX`` (the folder's name after
    ``City100_``), or the generic layout's folder name."""
    layout = check_layout(source.layout)
    if layout == "realsr":
        return f"RealSR-{source.camera}-x{source.scale}"
    if layout == "city100":
        return f"City100-{find_city100_folder(root, source.camera, source.folder).name.removeprefix(CITY100_PREFIX)}"
    return (Path(root) / source.folder).resolve().name


# ------------------------------------------------------------------------------------------ City100
def find_city100_folder(root: str | os.PathLike, camera: str, folder: str = "") -> Path:
    """The folder holding City100's ``NNNH``/``NNNL`` images: ``folder`` when given (absolute or under
    ``root``), else ``<root>/City100/City100_<camera>``, ``<root>/City100_<camera>``, or ``root`` itself."""
    root = Path(root)
    candidates = [root / folder] if folder else [root / "City100" / f"{CITY100_PREFIX}{camera}",
                                                 root / f"{CITY100_PREFIX}{camera}", root]
    for candidate in candidates:
        if candidate.is_dir() and any(_CITY100_NAME.match(path.stem) for path in list_images(candidate)):
            return candidate
    looked = ", ".join(map(str, candidates))
    if folder:
        raise UserError(f"City100 pairs not found in {looked} (files named like 001H.PNG + 001L.PNG); "
                        f"--set {FOLDER_SETTING}=FOLDER names another")
    versions = sorted(path.name.removeprefix(CITY100_PREFIX) for parent in (root / "City100", root)
                      if parent.is_dir() for path in parent.iterdir()
                      if path.is_dir() and path.name.startswith(CITY100_PREFIX))
    pick = (f"this data holds {', '.join(CITY100_PREFIX + v for v in versions)}: choose with --set "
            f"CAMERA={versions[0]}" if versions else
            f"choose the version with --set CAMERA={' or '.join(CITY100_VERSIONS)}")
    raise UserError(f"City100 pairs not found: looked for {looked} (each holding 001H.PNG + 001L.PNG, ...); "
                    f"{pick}, pass the folder holding them with --data, or name it with --set {FOLDER_SETTING}=FOLDER")


def city100_pairs(folder: Path, split: str) -> list[Pair]:
    """``NNNH`` (HR) with ``NNNL`` (LR) in ``folder``; ``split`` = the authors' test scenes or the others."""
    hr, lr = sides_by_pattern(folder, _CITY100_NAME, lambda match: match["side"].upper() == "H",
                              "City100 files are named like 001H.PNG + 001L.PNG")
    pairs = pair_by_name(hr, lr, hr_file=lambda name, lr_path: folder / f"{name}H{lr_path.suffix}",
                         lr_file=lambda name, hr_path: folder / f"{name}L{hr_path.suffix}")
    chosen = [pair for pair in pairs if (int(pair.name) in CITY100_TEST) == (split == "test")]
    if not chosen:
        which = (f"the test scenes {', '.join(f'{n:03d}' for n in CITY100_TEST)} (the authors' split)"
                 if split == "test" else "training scenes (any but the 5 test scenes)")
        raise UserError(f"no City100 {split} pairs in {folder}: it holds none of {which}")
    return chosen


# ------------------------------------------------------------------------------------- generic layout
def folder_pairs(base: Path, split: str) -> list[Pair]:
    """``<base>/<split>/HR/<name>.*`` with ``<base>/<split>/LR/<name>.*`` (equal stems)."""
    split_dir = _child(base, split)
    hr_dir, lr_dir = _child(split_dir, "HR"), _child(split_dir, "LR")
    hr: dict[str, Path] = {}
    lr: dict[str, Path] = {}
    for side, folder in ((hr, hr_dir), (lr, lr_dir)):
        for path in list_images(folder):
            add_once(side, path.stem, path)
    pairs = pair_by_name(hr, lr, hr_file=lambda name, lr_path: hr_dir / f"{name}{lr_path.suffix}",
                         lr_file=lambda name, hr_path: lr_dir / f"{name}{hr_path.suffix}")
    if not pairs:
        raise UserError(f"no image pairs in {hr_dir} and {lr_dir} (expected equal names: HR/0001.png with "
                        "LR/0001.png, ...)")
    return pairs


def _child(parent: Path, name: str) -> Path:
    """``parent/name``, the name matched in any case; a missing folder is an error that shows the layout."""
    if parent.is_dir():
        for path in sorted(parent.iterdir()):
            if path.is_dir() and path.name.lower() == name.lower():
                return path
    base = parent if name.lower() in SPLITS else parent.parent
    raise UserError(f"folder {parent / name} not found: the paired layout is {base}/train/HR/<name>.png with "
                    f"{base}/train/LR/<name>.png (equal names), and test/ alike; pass the folder holding train/ "
                    f"and test/ with --data, or name it with --set {FOLDER_SETTING}=FOLDER")
