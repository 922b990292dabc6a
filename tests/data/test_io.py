from __future__ import annotations

import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import data.io as dio
from core.errors import UserError
from data.io import is_image_file, read_image, to_float, to_uint, write_image

RNG = np.random.default_rng(0)


def rgb8(h: int = 12, w: int = 10) -> np.ndarray:
    return RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def rgb16(h: int = 12, w: int = 10, c: int = 3) -> np.ndarray:
    return RNG.integers(0, 65536, size=(h, w, c), dtype=np.uint16)


def encode_png16(pixels: np.ndarray, kinds: list[int]) -> bytes:
    """A reference PNG encoder (RGBA, 16 bits) applying filter ``kinds[y]`` to row y, per the PNG spec."""
    h, w, c = pixels.shape
    bpp = 2 * c
    raw = pixels.astype(">u2").view(np.uint8).reshape(h, w * bpp).astype(np.int32)
    left = np.pad(raw, ((0, 0), (bpp, 0)))[:, :-bpp]
    up = np.pad(raw, ((1, 0), (0, 0)))[:-1]
    upleft = np.pad(raw, ((1, 0), (bpp, 0)))[:-1, :-bpp]
    p = left + up - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    predictors = [np.zeros_like(raw), left, up, (left + up) // 2, paeth]
    rows = b"".join(bytes([k]) + ((raw[y] - predictors[k][y]) % 256).astype(np.uint8).tobytes()
                    for y, k in enumerate(kinds))
    header = struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in ((b"IHDR", header), (b"IDAT", zlib.compress(rows)), (b"IEND", b"")):
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return out


def test_suffixes():
    assert is_image_file("a/B.PNG") and is_image_file("x.bmp") and is_image_file("x.jpeg")
    assert not is_image_file("notes.txt") and not is_image_file("png")


def test_rgb_png_bmp_exact(tmp_path: Path):
    image = rgb8()
    for name in ("a.png", "a.bmp"):
        write_image(tmp_path / name, image)
        got = read_image(tmp_path / name)
        assert got.dtype == np.uint8 and got.shape == (12, 10, 3)
        np.testing.assert_array_equal(got, image)


def test_jpeg_read(tmp_path: Path):
    smooth = np.broadcast_to(np.linspace(20, 230, 32, dtype=np.uint8)[None, :, None], (24, 32, 3))
    write_image(tmp_path / "a.jpg", smooth)
    got = read_image(tmp_path / "a.jpg")
    assert got.shape == (24, 32, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - smooth).max() <= 3


def test_grey_becomes_rgb(tmp_path: Path):
    grey = RNG.integers(0, 256, size=(7, 9), dtype=np.uint8)
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    got = read_image(tmp_path / "g.png")
    assert got.shape == (7, 9, 3)
    for c in range(3):
        np.testing.assert_array_equal(got[:, :, c], grey)


def test_grey_alpha_and_rgba_drop_alpha(tmp_path: Path):
    image = rgb8()
    alpha = np.full((12, 10, 1), 7, np.uint8)
    Image.fromarray(np.concatenate([image, alpha], axis=2), mode="RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), image)
    la = np.concatenate([image[:, :, :1], alpha], axis=2)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), np.repeat(image[:, :, :1], 3, axis=2))


def test_palette_becomes_rgb(tmp_path: Path):
    palette = [255, 0, 0, 0, 128, 255, 10, 20, 30]
    index = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    for transparent in (False, True):
        img = Image.fromarray(index, mode="P")
        img.putpalette(palette)
        img.save(tmp_path / "p.png", **({"transparency": 1} if transparent else {}))
        got = read_image(tmp_path / "p.png")
        np.testing.assert_array_equal(got, np.array(palette, np.uint8).reshape(3, 3)[index])


def test_png16_rgb_round_trip_exact(tmp_path: Path):
    image = rgb16(33, 17)
    write_image(tmp_path / "deep" / "x.png", image)
    got = read_image(tmp_path / "deep" / "x.png")
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, image)
    # an independent decoder (FFmpeg through PyAV) reads our file the same
    with av.open(str(tmp_path / "deep" / "x.png")) as container:
        frame = next(container.decode(video=0))
    np.testing.assert_array_equal(frame.to_ndarray(format="rgb48le"), image)


def test_png16_grey_both_ways_with_pillow(tmp_path: Path):
    grey = rgb16(40, 50, 1)[:, :, 0]
    grey[:20] = np.arange(50, dtype=np.uint16) * 1000  # smooth rows make Pillow pick Sub/Up/Paeth filters
    Image.fromarray(grey).save(tmp_path / "pillow.png")  # Pillow writes 16-bit grey correctly (mode I;16)
    np.testing.assert_array_equal(read_image(tmp_path / "pillow.png"), np.repeat(grey[:, :, None], 3, 2))
    write_image(tmp_path / "ours.png", grey)
    with Image.open(tmp_path / "ours.png") as img:
        np.testing.assert_array_equal(np.asarray(img), grey)


def test_png16_all_five_filters_and_alpha(tmp_path: Path):
    pixels = rgb16(10, 6, 4)
    pixels[5:] = pixels[4]  # repeated rows: Up/Paeth predictors hit their equal-distance cases
    (tmp_path / "f.png").write_bytes(encode_png16(pixels, [0, 1, 2, 3, 4, 4, 3, 2, 1, 0]))
    np.testing.assert_array_equal(read_image(tmp_path / "f.png"), pixels[:, :, :3])
    (tmp_path / "s.png").write_bytes(encode_png16(pixels, [1, 2, 0, 1, 2, 0, 1, 2, 2, 1]))
    np.testing.assert_array_equal(read_image(tmp_path / "s.png"), pixels[:, :, :3])


def test_float_input_is_rounded(tmp_path: Path):
    image = RNG.random((5, 6, 3))
    write_image(tmp_path / "f16.png", image, bits=16)
    np.testing.assert_array_equal(read_image(tmp_path / "f16.png"), np.round(image * 65535).astype(np.uint16))
    write_image(tmp_path / "f8.png", image[:, :, :1])
    np.testing.assert_array_equal(read_image(tmp_path / "f8.png")[:, :, 0], np.round(image[:, :, 0] * 255))


def test_to_float_and_to_uint():
    assert to_float(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]
    assert to_float(np.array([65535], np.uint16)).dtype == np.float32
    assert to_uint(np.array([-0.2, 0.5, 1.3])).tolist() == [0, 128, 255]
    assert to_uint(np.array([0.5]), bits=16).tolist() == [32768]
    with pytest.raises(ValueError):
        to_uint(np.zeros(1), bits=12)


@pytest.mark.parametrize("bits", [8, 16])
def test_truncated_or_corrupt_file_names_it(tmp_path: Path, bits: int):
    path = tmp_path / "broken.png"
    write_image(path, rgb8(64, 64) if bits == 8 else rgb16(64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"broken\.png"):
        read_image(path)
    flipped = bytearray(data)
    flipped[60] ^= 0xFF  # inside the image data: a bad CRC (16-bit) or bad zlib stream (8-bit)
    path.write_bytes(bytes(flipped))
    with pytest.raises(UserError, match=r"broken\.png"):
        read_image(path)


def test_truncated_jpeg_missing_and_garbage(tmp_path: Path):
    write_image(tmp_path / "t.jpg", rgb8(64, 64))
    (tmp_path / "t.jpg").write_bytes((tmp_path / "t.jpg").read_bytes()[:300])
    with pytest.raises(UserError, match=r"t\.jpg"):
        read_image(tmp_path / "t.jpg")
    with pytest.raises(UserError, match=r"missing\.png"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(UserError, match=r"text\.png"):
        read_image(tmp_path / "text.png")


def test_atomic_write_leaves_only_the_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / "a" / "b" / "x.png"
    write_image(target, rgb16())
    write_image(target, rgb16())  # overwriting works too
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.png"]
    before = target.read_bytes()

    def crash(f, array):
        f.write(b"half an image")
        raise RuntimeError("killed")

    monkeypatch.setattr(dio, "_write_png16", crash)
    with pytest.raises(RuntimeError):
        write_image(target, rgb16())
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.png"]


def test_write_refuses_what_cannot_be_written(tmp_path: Path):
    with pytest.raises(UserError, match="only PNG"):
        write_image(tmp_path / "x.bmp", rgb16())
    with pytest.raises(UserError, match="unknown image type"):
        write_image(tmp_path / "x.gif", rgb8())
    assert list(tmp_path.iterdir()) == []
