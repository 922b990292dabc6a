"""Reading and writing images losslessly, with atomic writes.

``read_image`` always returns an HxWx3 array: grey, grey+alpha, RGBA and palette images become RGB (alpha
is dropped), and 16-bit images keep their 16 bits (``uint16``); an EXIF orientation tag (photos from phones
and cameras) is applied, so every image is read the way viewers show it. ``write_image`` writes 8-bit PNG, BMP or
JPEG through Pillow and 16-bit PNG itself, always via a temporary file in the target folder
and a rename, so a killed process never leaves a truncated image behind.

Pillow cannot hold 16-bit RGB (it truncates such PNGs to 8 bits on read and refuses them on write), so
every 16-bit PNG is decoded and encoded here, with zlib and numpy (see the ``_png16`` helpers).
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.atomic import atomic_write
from core.errors import UserError

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
_WRITE_FORMATS = {".png": "PNG", ".bmp": "BMP", ".jpg": "JPEG", ".jpeg": "JPEG"}
_JPEG_QUALITY = 95  # our choice: JPEG output is for viewing only; results that are scored stay PNG
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel: grey, RGB, grey+alpha, RGBA


def is_image_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def each_once(paths: list[Path]) -> list[Path]:
    """``paths`` in order, a file named twice (``a.png ./a.png``, or a file and its folder) kept once."""
    kept: dict[Path, Path] = {}
    for path in paths:
        kept.setdefault(path.resolve(), path)
    return list(kept.values())


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into an HxWx3 ``uint8`` (or ``uint16`` for 16-bit files) array, turned as its
    EXIF orientation tag says (a photo tagged "rotate 90" comes out as viewers show it).

    A missing, truncated or corrupt file raises ``UserError`` naming the file.
    """
    path = Path(path)
    try:
        if _is_png16(path):
            return _grey_to_rgb(_read_png16(path))
        with Image.open(path) as img:
            img.load()
            return _to_rgb_array(ImageOps.exif_transpose(img))
    except FileNotFoundError:
        raise UserError(f"image not found: {path}; check the path") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, zlib.error) as err:
        raise UserError(f"cannot decode image {path} ({err}); replace or remove the file") from None


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    if img.mode.startswith("I"):  # 16-bit grey: "I;16*", or "I" (int32) from 16-bit PGM/TIFF
        grey = np.asarray(img)
        if grey.min() < 0 or grey.max() > 65535:
            raise ValueError(f"values outside 0..65535 in a mode {img.mode} image")
        return _grey_to_rgb(grey.astype(np.uint16))
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # Pillow warns when converting a transparent palette straight to RGB
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img))


def _grey_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = array[:, :, None]
    return np.ascontiguousarray(np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array)


def write_image(path: str | os.PathLike, array: np.ndarray, bits: int = 8) -> None:
    """Write an HxW, HxWx1 or HxWx3 image atomically, creating parent folders.

    Float input in [0, 1] is rounded to ``bits`` (8 or 16); ``uint8`` / ``uint16`` input is written as is
    (``bits`` is then ignored). 16 bits need a ``.png`` name; 8 bits may be ``.png``, ``.bmp`` or ``.jpg``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _WRITE_FORMATS:
        raise UserError(f"cannot write {path}: unknown image type; use a .png, .bmp or .jpg name")
    if np.issubdtype(array.dtype, np.floating):
        array = to_uint(array, bits)
    if array.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"write_image needs float, uint8 or uint16 data, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ValueError(f"write_image needs an HxW, HxWx1 or HxWx3 array, got shape {array.shape}")
    if array.dtype == np.uint16:
        if suffix != ".png":
            raise UserError(f"cannot write 16-bit {path}: only PNG holds 16 bits; use a .png name")
        atomic_write(path, lambda f: _write_png16(f, array))
        return
    image = Image.fromarray(np.ascontiguousarray(array))
    fmt = _WRITE_FORMATS[suffix]
    options = {"quality": _JPEG_QUALITY} if fmt == "JPEG" else {}
    atomic_write(path, lambda f: image.save(f, format=fmt, **options))


def _is_png16(path: Path) -> bool:
    """True for a PNG whose header says 16 bits per sample (read the first 25 bytes only)."""
    with open(path, "rb") as f:
        head = f.read(25)
    return len(head) == 25 and head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR" and head[24] == 16


def _read_png16(path: Path) -> np.ndarray:
    """Decode a non-interlaced 16-bit PNG into HxWx1 or HxWx3 ``uint16`` (alpha dropped)."""
    header, idat = _png_chunks(path.read_bytes())
    width, height, _, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if interlace:
        raise ValueError("interlaced 16-bit PNG is not supported; re-save it without interlacing")
    if colour not in _PNG_CHANNELS:
        raise ValueError(f"colour type {colour} is not valid at 16 bits")
    channels = _PNG_CHANNELS[colour]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8)
    if rows.size != height * (1 + width * 2 * channels):
        raise ValueError("image data is shorter or longer than the header says")
    rows = rows.reshape(height, -1)
    raw = _unfilter(rows[:, 0], rows[:, 1:].reshape(height, width, 2 * channels))
    pixels = raw.view(">u2").astype(np.uint16)
    return pixels[:, :, :3] if channels >= 3 else pixels[:, :, :1]


def _png_chunks(data: bytes) -> tuple[bytes, bytes]:
    """(IHDR data, all IDAT data joined) of a PNG file, checking every chunk's CRC up to IEND."""
    pos, header, idat = len(_PNG_SIGNATURE), b"", []
    while True:
        if pos + 12 > len(data):
            raise ValueError("file is truncated")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            raise ValueError("file is truncated")
        body = data[pos + 8 : end]
        if zlib.crc32(kind + body) != int.from_bytes(data[end : end + 4], "big"):
            raise ValueError(f"bad checksum in the {kind.decode(errors='replace')} chunk")
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            return header, b"".join(idat)
        pos = end + 4


def _unfilter(kinds: np.ndarray, filtered: np.ndarray) -> np.ndarray:
    """Undo PNG's row filters: (H,) filter types and (H, W, bytes per pixel) filtered bytes -> raw bytes."""
    if kinds.max(initial=0) > 4:
        raise ValueError(f"unknown PNG filter type {kinds.max()}")
    if kinds.max(initial=0) <= 2:
        return _unfilter_rows(kinds, filtered)
    return _unfilter_wavefront(kinds, filtered)


def _unfilter_rows(kinds: np.ndarray, filtered: np.ndarray) -> np.ndarray:
    """Filters None (0), Sub (1) and Up (2) only: one vectorised step per row (uint8 arithmetic wraps)."""
    raw = np.empty_like(filtered)
    prior = np.zeros_like(filtered[0])
    for y, kind in enumerate(kinds):
        row = filtered[y]
        if kind == 1:
            row = np.cumsum(row, axis=0, dtype=np.uint8)  # running sum along x, per byte of the pixel
        elif kind == 2:
            row = row + prior
        raw[y] = prior = row
    return raw


def _unfilter_wavefront(kinds: np.ndarray, filtered: np.ndarray) -> np.ndarray:
    """All five filters. Average (3) and Paeth (4) need the already decoded left, upper and upper-left
    bytes, so pixels are decoded one anti-diagonal y + x = d at a time: H + W vectorised steps, not H * W."""
    height, width, _ = filtered.shape
    raw = np.zeros((height + 1, width + 1, filtered.shape[2]), np.int16)  # row 0, column 0: zeros outside
    for d in range(height + width - 1):
        y = np.arange(max(0, d - width + 1), min(height, d + 1))
        x = d - y
        a, b, c = raw[y + 1, x], raw[y, x + 1], raw[y, x]  # left, up, up-left
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        predictor = np.choose(kinds[y, None], [np.zeros_like(a), a, b, (a + b) >> 1, paeth])
        raw[y + 1, x + 1] = (filtered[y, x] + predictor) & 255
    return raw[1:, 1:].astype(np.uint8)


def _write_png16(f: BinaryIO, array: np.ndarray) -> None:
    """Encode HxW (grey) or HxWx3 (RGB) ``uint16`` as PNG, every row with the Up filter."""
    height, width = array.shape[:2]
    raw = np.ascontiguousarray(array, dtype=">u2").view(np.uint8).reshape(height, -1)  # any memory layout
    filtered = raw.copy()
    filtered[1:] -= raw[:-1]  # Up: each byte minus the byte above it, modulo 256
    rows = np.concatenate([np.full((height, 1), 2, np.uint8), filtered], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 16, 2 if array.ndim == 3 else 0, 0, 0, 0)
    f.write(_PNG_SIGNATURE)
    for kind, body in ((b"IHDR", header), (b"IDAT", zlib.compress(rows.tobytes(), 6)), (b"IEND", b"")):
        f.write(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))


def to_float(array: np.ndarray) -> np.ndarray:
    """uint8 / uint16 image -> float32 in [0, 1]; float input is returned as float32."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    return array.astype(np.float32)


def to_uint(array: np.ndarray, bits: int = 8) -> np.ndarray:
    """float image in [0, 1] -> rounded ``uint8`` (bits=8) or ``uint16`` (bits=16), clipped to the range."""
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    peak = 255.0 if bits == 8 else 65535.0
    dtype = np.uint8 if bits == 8 else np.uint16
    return np.round(np.clip(array, 0.0, 1.0) * peak).astype(dtype)
