"""Where images live: the data root, folders of HR images, and photos bundled with scikit-image.

Layout under the data root (``--data DIR``, else env ``SR_DATA``, else ``./datasets``): one folder per set,
``T91/``, ``Set5/``, ``Set14/`` or any other name, holding image files. The names ``skimage-train`` and
``skimage-test`` need no files at all: they are real photos shipped with scikit-image, so every script
and test can run on a fresh clone.

Decoded images are cached per process (keyed by the folder and its files' names, inodes, sizes and
modification times, so a folder rewritten since is decoded again) and handed out read-only so that no
caller can change the cached copy; take ``.copy()`` before writing into one.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.errors import UserError
from core.settings import resolve_data_root
from data.io import is_image_file, read_image

BUNDLED_SETS = {"skimage-train": "train", "skimage-test": "test"}
# Real colour photos (two grey ones are repeated into RGB); the two splits share no image or scene.
_BUNDLED = {
    "train": ("astronaut", "chelsea", "immunohistochemistry", "rocket", "camera", "grass"),
    "test": ("coffee", "motorcycle"),
}
_cache: dict[tuple, list[tuple[str, np.ndarray]]] = {}


def image_folder(root: str | os.PathLike, name: str) -> Path:
    """``root/name``, checked to exist and hold at least one image file."""
    folder = Path(root) / name
    if not folder.is_dir() or not list_images(folder):
        raise UserError(
            f"no images in {folder}: expected {Path(root)}/{name}/ with image files (.png/.bmp/.jpg); "
            "pass --data DIR or set SR_DATA"
        )
    return folder


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name."""
    if not Path(folder).is_dir():
        raise UserError(f"image folder not found: {folder}; check the path (or --data / SR_DATA)")
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image_file(p))


def load_images(folder: str | os.PathLike) -> list[tuple[str, np.ndarray]]:
    """(file stem, HxWx3 uint8/uint16 image) for every image in ``folder``, sorted, each decoded once."""
    paths = list_images(folder)
    key = (Path(folder).resolve(), *(_identity(p) for p in paths))
    if key not in _cache:
        stems = [p.stem for p in paths]
        duplicates = sorted({s for s in stems if stems.count(s) > 1})
        if duplicates:
            raise UserError(f"{folder} has several files named {duplicates[0]}.*; keep one per name")
        _cache[key] = [(p.stem, _read_only(read_image(p))) for p in paths]
    return list(_cache[key])


def _identity(path: Path) -> tuple:
    """What changes when a file is rewritten (a rename gives a new inode; mtime alone may not move)."""
    stat = path.stat()
    return path.name, stat.st_ino, stat.st_size, stat.st_mtime_ns


def bundled_photos(split: str) -> list[tuple[str, np.ndarray]]:
    """Photos shipped with scikit-image (no download): ``train`` (6) or ``test`` (2), HxWx3 uint8."""
    if split not in _BUNDLED:
        raise UserError(f"unknown bundled split {split!r}; use 'train' or 'test'")
    key = ("skimage", split)
    if key not in _cache:
        _cache[key] = [(name, _read_only(_bundled_photo(name))) for name in _BUNDLED[split]]
    return list(_cache[key])


def _bundled_photo(name: str) -> np.ndarray:
    from skimage import data as skdata  # imported here: scikit-image is slow to import

    image = skdata.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skdata, name)()
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def load_named_set(root: str | os.PathLike | None, name: str) -> list[tuple[str, np.ndarray]]:
    """A set by name: ``skimage-train`` / ``skimage-test`` (bundled, ``root`` unused) or ``root/name``."""
    if name in BUNDLED_SETS:
        return bundled_photos(BUNDLED_SETS[name])
    return load_images(image_folder(resolve_data_root(root), name))


def _read_only(image: np.ndarray) -> np.ndarray:
    image.flags.writeable = False
    return image
