from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import data.datasets as ds
from core.errors import UserError
from core.settings import resolve_data_root
from data.datasets import (
    bundled_photos,
    image_folder,
    list_images,
    load_images,
    load_named_set,
)
from data.io import write_image


def make_set(root: Path, name: str, count: int = 3) -> list[np.ndarray]:
    images = [np.full((4 + i, 5, 3), 10 * i, np.uint8) for i in range(count)]
    for i, image in enumerate(images):
        write_image(root / name / f"img{i}.png", image)
    return images


def test_resolve_data_root(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SR_DATA", "/env/data")
    assert resolve_data_root("/given") == Path("/given")
    assert resolve_data_root(None) == Path("/env/data")
    monkeypatch.delenv("SR_DATA")
    assert resolve_data_root(None) == Path("datasets")


def test_image_folder_explains_the_layout(tmp_path: Path):
    (tmp_path / "Empty").mkdir()
    (tmp_path / "Notes").mkdir()
    (tmp_path / "Notes" / "readme.txt").write_text("no images here")
    for name in ("Set5", "Empty", "Notes"):
        expected = f"expected .*{name}/ with image files.*--data DIR or set SR_DATA"
        with pytest.raises(UserError, match=expected):
            image_folder(tmp_path, name)
    make_set(tmp_path, "Set5")
    assert image_folder(tmp_path, "Set5") == tmp_path / "Set5"


def test_list_images_sorted_and_filtered(tmp_path: Path):
    for name in ("b.png", "a.BMP", "c.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.BMP", "b.png", "c.jpg"]
    with pytest.raises(UserError, match="not found"):
        list_images(tmp_path / "nowhere")


def test_load_images_decodes_once_and_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    images = make_set(tmp_path, "Set")
    calls, real_read = [], ds.read_image

    def counting_read(path: Path) -> np.ndarray:
        calls.append(path)
        return real_read(path)

    monkeypatch.setattr(ds, "read_image", counting_read)
    first = load_images(tmp_path / "Set")
    assert [name for name, _ in first] == ["img0", "img1", "img2"]
    for (_, got), want in zip(first, images, strict=True):
        np.testing.assert_array_equal(got, want)
        assert not got.flags.writeable
    assert load_images(tmp_path / "Set")[1][1] is first[1][1] and len(calls) == 3
    write_image(tmp_path / "Set" / "img1.png", np.zeros((9, 9, 3), np.uint8))  # rewritten: decoded again
    assert load_images(tmp_path / "Set")[1][1].shape == (9, 9, 3) and len(calls) == 6


def test_duplicate_names_are_refused(tmp_path: Path):
    write_image(tmp_path / "S" / "x.png", np.zeros((4, 4, 3), np.uint8))
    write_image(tmp_path / "S" / "x.bmp", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(UserError, match="several files named x"):
        load_images(tmp_path / "S")


def test_bundled_photos_are_disjoint_rgb():
    train, test = bundled_photos("train"), bundled_photos("test")
    assert {name for name, _ in train}.isdisjoint(name for name, _ in test)
    assert [name for name, _ in test] == ["coffee", "motorcycle"] and len(train) == 6
    for _, image in train + test:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert min(image.shape[:2]) >= 300 and image.std() > 20  # real photos, not blank
    assert bundled_photos("test")[0][1] is test[0][1]  # cached
    with pytest.raises(UserError, match="'train' or 'test'"):
        bundled_photos("val")


def test_load_named_set(tmp_path: Path):
    assert [name for name, _ in load_named_set(None, "skimage-test")] == ["coffee", "motorcycle"]
    make_set(tmp_path, "Mine", count=2)
    assert [name for name, _ in load_named_set(tmp_path, "Mine")] == ["img0", "img1"]
    with pytest.raises(UserError, match="Missing"):
        load_named_set(tmp_path, "Missing")


def test_real_set5(datasets_root: Path):
    images = load_named_set(datasets_root, "Set5")
    assert [name for name, _ in images] == ["baby", "bird", "butterfly", "head", "woman"]
    for _, image in images:
        assert image.dtype == np.uint8 and image.shape[2] == 3 and min(image.shape[:2]) > 200
