"""Same-size LR/HR pairs: RealSR's layout, name matching with checks, in-memory loading, a patch sampler.

Published layout: ``<root>/RealSR/<Camera>/<Train|Test>/<scale>/<Camera>_NNN_HR.png`` beside
``<Camera>_NNN_LR<scale>.png``; the LR image has the HR image's size. The release unpacks as ``RealSR(V3)/``;
that name and its common renamings are found too (``REALSR_NAMES``), or a folder named by the caller.
Pairs are matched by name, never by sorted index, so one missing or extra file is an error naming it
instead of a silent misalignment (``pair_by_name``, which the other layouts of ``data.pair_layouts`` use too).

The phased training regenerates the LR side: ``<run>/LR_<i>/<split>/<name>.png`` (split ``train`` or
``test``, ``name`` the pair name without ``_HR``, e.g. ``LR_1/train/Canon_001.png``), see ``lr_level_dir``.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.dist import DistInfo
from core.errors import UserError
from data.datasets import list_images
from data.io import read_image

SPLITS = ("Train", "Test")
FOLDER_SETTING = "DATASET_DIR"  # the phase setting that names a pair folder, for messages
# The names RealSR is published and commonly unpacked under; ``<root>`` itself may be that folder too.
REALSR_NAMES = ("RealSR", "RealSR(V3)", "RealSR_V3", "RealSR (V3)", "RealSRV3", "RealSR-V3")


@dataclass(frozen=True)
class Pair:
    """One LR/HR pair; ``name`` is the HR file stem without ``_HR`` (e.g. ``Canon_001``)."""

    name: str
    lr_path: Path
    hr_path: Path


def realsr_dir(root: str | os.PathLike, camera: str = "Canon", scale: int = 2, split: str = "Train",
               folder: str | os.PathLike = "RealSR") -> Path:
    """``<root>/<folder>/<camera>/<Train|Test>/<scale>``; ``split`` is case-insensitive."""
    canonical = split.capitalize()
    if canonical not in SPLITS:
        raise UserError(f"unknown RealSR split {split!r}; use 'Train' or 'Test'")
    return Path(root) / folder / camera / canonical / str(scale)


def find_realsr_root(root: str | os.PathLike, camera: str = "Canon", scale: int = 2, split: str = "Train",
                     folder: str | os.PathLike = "") -> Path:
    """The folder playing ``RealSR/`` that holds ``<camera>/<split>/<scale>/``: ``folder`` when given (absolute
    or under ``root``), else the first of ``REALSR_NAMES`` under ``root``, else ``root`` itself."""
    candidates = [Path(root) / folder] if str(folder) else [*(Path(root) / name for name in REALSR_NAMES),
                                                             Path(root)]
    for candidate in candidates:
        if realsr_dir(candidate, camera, scale, split, folder="").is_dir():
            return candidate
    looked = ", ".join(str(realsr_dir(candidate, camera, scale, split, folder="")) for candidate in candidates)
    how = (f"--set {FOLDER_SETTING}=FOLDER names another" if str(folder) else
           f"pass the folder holding one of them with --data, or name it with --set {FOLDER_SETTING}=FOLDER")
    raise UserError(f"RealSR pairs not found: looked for {looked} (each holding {camera}_001_HR.png + "
                    f"{camera}_001_LR{scale}.png, ...); {how}")


def lr_level_dir(run_dir: str | os.PathLike, level: int, split: str) -> Path:
    """Where LR level ``level`` (N_level's outputs) is written: ``<run_dir>/LR_<level>/<train|test>``."""
    return Path(run_dir) / f"LR_{level}" / split.lower()


def find_realsr_pairs(
    root: str | os.PathLike, camera: str = "Canon", scale: int = 2, split: str = "Train",
    realsr_folder: str | os.PathLike = "",
) -> list[Pair]:
    """Match ``*_HR`` with ``*_LR<scale>`` images by name in the RealSR folder (``find_realsr_root``);
    sorted by name."""
    folder = realsr_dir(find_realsr_root(root, camera, scale, split, realsr_folder), camera, scale, split, "")
    layout = f"{camera}_001_HR.png + {camera}_001_LR{scale}.png, ..."
    pattern = re.compile(rf"^(?P<name>.+)_(?:(?P<hr>HR)|LR{scale})$")
    hr, lr = sides_by_pattern(folder, pattern, lambda match: bool(match["hr"]),
                              f"RealSR x{scale} files are named like {layout}")
    pairs = pair_by_name(hr, lr, hr_file=lambda name, _lr: folder / f"{name}_HR.png",
                         lr_file=lambda name, _hr: folder / f"{name}_LR{scale}.png")
    if not pairs:
        raise UserError(f"no image pairs in {folder} (expected {layout})")
    return pairs


def sides_by_pattern(folder: Path, pattern: re.Pattern, is_hr: Callable[[re.Match], bool],
                     named_like: str) -> tuple[dict[str, Path], dict[str, Path]]:
    """(HR, LR) image files of ``folder`` by the ``name`` group of ``pattern`` (matched on the stem); a file it
    does not match is an error saying the files are ``named_like``; two files for one name, an error too."""
    hr: dict[str, Path] = {}
    lr: dict[str, Path] = {}
    for path in list_images(folder):
        match = pattern.match(path.stem)
        if match is None:
            raise UserError(f"unexpected image {path}: {named_like}")
        add_once(hr if is_hr(match) else lr, match["name"], path)
    return hr, lr


def add_once(side: dict[str, Path], name: str, path: Path) -> None:
    """``side[name] = path``; a second file for one name is an error naming both."""
    if name in side:
        raise UserError(f"two files for one image: {side[name]} and {path}; remove one")
    side[name] = path


def pair_by_name(hr: dict[str, Path], lr: dict[str, Path], hr_file: Callable[[str, Path], Path],
                 lr_file: Callable[[str, Path], Path]) -> list[Pair]:
    """The pairs of the names found on both sides, sorted by name. A name on one side only is an error
    naming the file and the partner it lacks (``lr_file(name, hr_path)``, ``hr_file(name, lr_path)``)."""
    for name, path in hr.items():
        if name not in lr:
            raise UserError(f"HR image {path} has no LR partner {lr_file(name, path)}")
    for name, path in lr.items():
        if name not in hr:
            raise UserError(f"LR image {path} has no HR partner {hr_file(name, path)}")
    return [Pair(name, lr[name], hr[name]) for name in sorted(hr)]


def pairs_with_lr_folder(pairs: list[Pair], lr_dir: str | os.PathLike) -> list[Pair]:
    """The same pairs with the LR side replaced by ``<lr_dir>/<name>.<ext>`` (a regenerated LR_i image)."""
    lr_dir = Path(lr_dir)
    if not pairs:
        raise UserError(f"no image pairs for {lr_dir}")
    if not lr_dir.is_dir():
        raise UserError(f"LR folder not found: {lr_dir}; run the phase that writes it first")
    by_name: dict[str, Path] = {}
    for path in list_images(lr_dir):
        add_once(by_name, path.stem, path)
    names = {pair.name for pair in pairs}
    for name, path in by_name.items():
        if name not in names:
            raise UserError(f"LR image {path} matches no HR image (expected names like {pairs[0].name}.png)")
    for pair in pairs:
        if pair.name not in by_name:
            raise UserError(f"LR image {lr_dir / (pair.name + '.png')} is missing (HR is {pair.hr_path})")
    return [Pair(pair.name, by_name[pair.name], pair.hr_path) for pair in pairs]


@dataclass
class PairedImages:
    """Decoded pairs kept in memory as decoded (``uint8`` or ``uint16`` HxWx3)."""

    pairs: list[Pair]
    lr: list[np.ndarray]
    hr: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def names(self) -> list[str]:
        return [pair.name for pair in self.pairs]

    @property
    def arrays(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(lr, hr)`` per pair, for evaluation."""
        return list(zip(self.lr, self.hr, strict=True))

    @property
    def named(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """``(name, lr, hr)`` per pair, for scoring (``inference.scoring.score_pairs``)."""
        return [(pair.name, lr, hr) for pair, lr, hr in zip(self.pairs, self.lr, self.hr, strict=True)]

    @property
    def nbytes(self) -> int:
        return sum(image.nbytes for image in (*self.lr, *self.hr))

    def subset(self, indices: list[int]) -> PairedImages:
        """The pairs at ``indices`` (e.g. whole images held out for validation), sharing the arrays."""
        return PairedImages(
            [self.pairs[i] for i in indices], [self.lr[i] for i in indices], [self.hr[i] for i in indices]
        )


def load_pairs(pairs: list[Pair]) -> PairedImages:
    """Decode every file once; LR and HR of a same-size pair must have identical height and width."""
    lr_images, hr_images = [], []
    for pair in pairs:
        lr, hr = read_image(pair.lr_path), read_image(pair.hr_path)
        if lr.shape[:2] != hr.shape[:2]:
            raise UserError(
                f"size mismatch: LR {pair.lr_path} is {_size(lr)} but HR {pair.hr_path} is {_size(hr)}; "
                "same-size pairs need identical sizes"
            )
        lr_images.append(lr)
        hr_images.append(hr)
    return PairedImages(list(pairs), lr_images, hr_images)


def _size(image: np.ndarray) -> str:
    return f"{image.shape[1]}x{image.shape[0]}"


class PatchSampler:
    """Random aligned LR/HR patches with the 8 dihedral transforms (rot90 x k, then optional flip).

    Each batch is a pure function of ``(seed, step)``: a resumed run, or every rank of a distributed run,
    draws the same global batch without any stored sampler state.
    """

    def __init__(self, images: PairedImages, patch_size: int, batch_size: int, seed: int = 0) -> None:
        if patch_size < 1 or batch_size < 1:
            raise UserError(f"patch size and batch size must be positive, got {patch_size} and {batch_size}")
        if len(images) == 0:
            raise UserError("no image pairs to sample patches from")
        for pair, hr in zip(images.pairs, images.hr, strict=True):
            if min(hr.shape[:2]) < patch_size:
                raise UserError(
                    f"image {pair.hr_path} is {_size(hr)}, smaller than the {patch_size}x{patch_size} patch; "
                    "remove it or lower the patch size"
                )
        self.images = images
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.seed = seed
        self._heights = np.array([hr.shape[0] for hr in images.hr])
        self._widths = np.array([hr.shape[1] for hr in images.hr])
        self._on_device: tuple[list[torch.Tensor], list[torch.Tensor], list[float], list[float]] | None = None
        self.pinned = False  # host batches in page-locked memory, so a copy to the GPU can overlap compute

    def to(self, device: torch.device) -> PatchSampler:
        """Keep the decoded images on ``device`` (8-bit as uint8, 16-bit LR_<i> as int32) and crop the
        patches there: on a GPU a batch then costs a few small kernels and no host copy. Same batches."""
        self._on_device = ([decoded_on(lr, device) for lr in self.images.lr],
                           [decoded_on(hr, device) for hr in self.images.hr],
                           [peak(lr) for lr in self.images.lr], [peak(hr) for hr in self.images.hr])
        return self

    def batch(self, step: int, dist: DistInfo | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lr, hr)`` NCHW float32 in [0, 1]: this rank's contiguous shard of the global batch ``step``."""
        dist = dist or DistInfo()
        if self.batch_size % dist.world_size:
            raise UserError(f"batch size {self.batch_size} is not divisible by the {dist.world_size} processes")
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, step]))
        size = self.batch_size
        index = rng.integers(0, len(self.images), size=size)
        top = rng.integers(0, self._heights[index] - self.patch_size + 1)
        left = rng.integers(0, self._widths[index] - self.patch_size + 1)
        transform = rng.integers(0, 8, size=size)
        shard = size // dist.world_size
        mine = range(dist.rank * shard, (dist.rank + 1) * shard)
        if self._on_device is not None:
            return self._device_batch([(index[k], top[k], left[k], transform[k]) for k in mine])
        lr_patches, hr_patches = [], []
        for k in mine:
            window = np.s_[top[k] : top[k] + self.patch_size, left[k] : left[k] + self.patch_size]
            lr_patches.append(_dihedral(self.images.lr[index[k]][window], transform[k]))
            hr_patches.append(_dihedral(self.images.hr[index[k]][window], transform[k]))
        lr, hr = _to_tensor(lr_patches), _to_tensor(hr_patches)
        return (lr.pin_memory(), hr.pin_memory()) if self.pinned else (lr, hr)

    def _device_batch(self, picks: list[tuple[int, int, int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        lr_images, hr_images, lr_peaks, hr_peaks = self._on_device
        p = self.patch_size

        def patches(images: list[torch.Tensor], peaks: list[float]) -> torch.Tensor:
            out = []
            for i, top, left, transform in picks:
                patch = torch.rot90(images[i][:, top:top + p, left:left + p], int(transform) % 4, dims=(1, 2))
                patch = patch.flip(2) if transform >= 4 else patch
                out.append(patch.float() / peaks[i])
            return torch.stack(out)

        return patches(lr_images, lr_peaks), patches(hr_images, hr_peaks)


def peak(image: np.ndarray) -> float:
    """The value that means 1.0 in a decoded image: its integer dtype's maximum (1.0 for floats)."""
    return float(np.iinfo(image.dtype).max) if image.dtype.kind in "ui" else 1.0


def decoded_on(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """A decoded HxWxC image as a CxHxW integer tensor on ``device``, as decoded: uint8 stays uint8, 16-bit
    becomes int32 (which every device supports); divide by ``peak(image)`` for floats in [0, 1]."""
    dtype = np.uint8 if image.dtype == np.uint8 else np.int32
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=dtype)).to(device)


def _dihedral(patch: np.ndarray, transform: int) -> np.ndarray:
    """Transform 0..7: rotate by 90 degrees ``transform % 4`` times, then flip left-right if ``>= 4``."""
    patch = np.rot90(patch, transform % 4)
    return patch[:, ::-1] if transform >= 4 else patch


def _to_tensor(patches: list[np.ndarray]) -> torch.Tensor:
    """Stack HxWxC patches into NCHW float32 in [0, 1], scaling each by its own dtype's peak."""
    peaks = np.array([peak(p) for p in patches], np.float32)
    stacked = np.stack(patches).astype(np.float32)
    stacked /= peaks[:, None, None, None]
    return torch.from_numpy(stacked.transpose(0, 3, 1, 2).copy())
