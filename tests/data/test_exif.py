"""Images are read the way viewers show them: the EXIF orientation tag is applied."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.datasets import load_images
from data.io import read_image

ORIENTATION = 0x0112


def tagged_jpeg(path: Path, orientation: int, width: int = 200, height: int = 120) -> np.ndarray:
    """A width x height JPEG (stored) with a left-to-right ramp; returns the stored pixels as decoded."""
    ramp = np.tile(np.linspace(0, 255, width, dtype=np.uint8)[None, :, None], (height, 1, 3))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    Image.fromarray(ramp).save(path, quality=95, exif=exif)
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


@pytest.mark.parametrize(("orientation", "turn"), [(1, lambda a: a), (3, lambda a: np.rot90(a, 2)),
                                                    (6, lambda a: np.rot90(a, -1)), (8, lambda a: np.rot90(a, 1))])
def test_orientation_tag_is_applied(tmp_path: Path, orientation, turn):
    stored = tagged_jpeg(tmp_path / "photo.jpg", orientation)
    image = read_image(tmp_path / "photo.jpg")
    assert np.array_equal(image, turn(stored))
    assert image.shape == ((120, 200, 3) if orientation in (1, 3) else (200, 120, 3))


def test_training_folders_read_the_displayed_orientation(tmp_path: Path):
    tagged_jpeg(tmp_path / "rotated.jpg", 6)
    [(name, image)] = load_images(tmp_path)
    assert name == "rotated" and image.shape == (200, 120, 3)
