"""Synthesise same-size LR/HR pairs in the RealSR layout from HR images, so the pipeline runs without RealSR.

Degradation chain, one draw of parameters per image from a generator seeded by ``(seed, split, index)``
(deterministic for a seed, independent of how many other images there are):

1. HR: optional centre crop to at most ``max_size`` x ``max_size``, then modcrop to a multiple of ``scale``.
2. Gaussian blur, sigma uniform in ``blur_sigma`` (HR pixels).
3. Bicubic downscale by ``scale`` (MATLAB ``imresize``, antialiased).
4. Additive Gaussian noise, sigma uniform in ``noise_sigma`` (on the 0..255 scale).
5. JPEG compression, quality uniform in ``jpeg_quality`` (Pillow, in memory; rounds to 8 bits first).
6. Bicubic upscale back to the HR size, so LR and HR have the same size as in RealSR.

Both sides are saved as 8-bit PNG: ``<out>/RealSR/<camera>/<Train|Test>/<scale>/<camera>_NNN_HR.png`` and
``<camera>_NNN_LR<scale>.png``; ``<out>/RealSR/<camera>/synthesis_x<scale>.json`` records the source file
and drawn parameters of every pair.
"""
from __future__ import annotations

import argparse
import io
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from core.entry import cli_entry
from core.errors import UserError
from data.datasets import BUNDLED_SETS, bundled_photos, list_images
from data.degrade import modcrop
from data.io import is_image_file, read_image, to_float, to_uint, write_image
from data.paired import Pair, realsr_dir
from data.resize import imresize


@dataclass(frozen=True)
class Degradation:
    """Ranges the per-image degradation parameters are drawn from (uniformly)."""

    blur_sigma: tuple[float, float] = (0.4, 1.2)
    noise_sigma: tuple[float, float] = (0.0, 4.0)
    jpeg_quality: tuple[int, int] = (70, 95)


def prepare_hr(image: np.ndarray, scale: int, max_size: int | None = None) -> np.ndarray:
    """Centre-crop to at most ``max_size`` per side, then crop to a multiple of ``scale``; 8-bit output."""
    hr = to_uint(to_float(image))
    if max_size is not None:
        top, left = max(0, (hr.shape[0] - max_size) // 2), max(0, (hr.shape[1] - max_size) // 2)
        hr = hr[top : top + max_size, left : left + max_size]
    return modcrop(hr, scale)


def degrade(
    hr: np.ndarray, scale: int, rng: np.random.Generator, chain: Degradation = Degradation()
) -> tuple[np.ndarray, dict[str, float]]:
    """The chain of the module docstring on a ``uint8`` HR image; returns ``(lr uint8, drawn parameters)``."""
    params = {
        "blur_sigma": float(rng.uniform(*chain.blur_sigma)),
        "noise_sigma": float(rng.uniform(*chain.noise_sigma)),
        "jpeg_quality": int(rng.integers(chain.jpeg_quality[0], chain.jpeg_quality[1] + 1)),
    }
    sigma = params["blur_sigma"]
    image = gaussian_filter(to_float(hr), sigma=(sigma, sigma, 0), mode="reflect")
    small = imresize(image, scale=1 / scale)
    small = small + rng.normal(0.0, params["noise_sigma"] / 255.0, size=small.shape)
    buffer = io.BytesIO()
    Image.fromarray(to_uint(small)).save(buffer, format="JPEG", quality=params["jpeg_quality"])
    with Image.open(buffer) as jpeg:
        small = to_float(np.asarray(jpeg.convert("RGB")))
    lr = imresize(small, output_shape=hr.shape[:2])
    return to_uint(lr), params


def synthesise_realsr(
    out_root: str | os.PathLike,
    train_images: Iterable[tuple[str, np.ndarray]],
    test_images: Iterable[tuple[str, np.ndarray]],
    camera: str = "Canon",
    scale: int = 2,
    seed: int = 0,
    max_size: int | None = None,
    chain: Degradation = Degradation(),
    overwrite: bool = False,
) -> dict[str, list[Pair]]:
    """Write degraded pairs for ``(source name, HR array)`` images; returns the written pairs per split."""
    if scale < 1:
        raise UserError(f"scale must be a positive integer, got {scale}")
    written: dict[str, list[Pair]] = {}
    records = []
    for split_id, (split, images) in enumerate((("Train", train_images), ("Test", test_images))):
        folder = _empty_folder(realsr_dir(out_root, camera, scale, split), overwrite)
        written[split] = []
        for index, (source, image) in enumerate(images, start=1):
            hr = prepare_hr(image, scale, max_size)
            if min(hr.shape[:2]) < 4 * scale:
                raise UserError(f"image {source} is too small ({image.shape[1]}x{image.shape[0]}) to degrade")
            lr, params = degrade(hr, scale, np.random.default_rng([seed, split_id, index]), chain)
            name = f"{camera}_{index:03d}"
            pair = Pair(name, folder / f"{name}_LR{scale}.png", folder / f"{name}_HR.png")
            write_image(pair.hr_path, hr)
            write_image(pair.lr_path, lr)
            written[split].append(pair)
            records.append({"split": split, "name": name, "source": source, **params})
        if not written[split]:
            raise UserError(f"no {split.lower()} images to synthesise from")
    manifest = {"scale": scale, "seed": seed, "max_size": max_size, "chain": asdict(chain), "pairs": records}
    manifest_path = Path(out_root) / "RealSR" / camera / f"synthesis_x{scale}.json"
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return written


def _empty_folder(folder: Path, overwrite: bool) -> Path:
    existing = [p for p in folder.iterdir() if is_image_file(p)] if folder.is_dir() else []
    if existing and not overwrite:
        raise UserError(f"{folder} already holds images; delete them, use another --out or pass --overwrite")
    for path in existing:
        path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def hr_source(spec: str) -> Iterable[tuple[str, np.ndarray]]:
    """``skimage-train`` / ``skimage-test`` (bundled photos) or a folder of HR images, read lazily."""
    if spec in BUNDLED_SETS:
        return bundled_photos(BUNDLED_SETS[spec])
    folder = Path(spec)
    if not folder.is_dir():
        choices = " or ".join(BUNDLED_SETS)
        raise UserError(f"HR folder not found: {folder}; pass a folder of images or {choices}")
    paths = list_images(folder)
    if not paths:
        raise UserError(f"no images in {folder}; pass a folder of .png/.bmp/.jpg HR images")
    return ((str(path), read_image(path)) for path in paths)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m data.synth", description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True, help="HR folder for Train (or skimage-train)")
    parser.add_argument("--test", required=True, help="HR folder for Test (or skimage-test)")
    parser.add_argument("--out", required=True, help="root to write RealSR/<camera>/... under")
    parser.add_argument("--camera", default="Canon")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-size", type=int, default=None, help="centre-crop HR images to at most N x N")
    parser.add_argument("--overwrite", action="store_true", help="replace images already in the output")
    args = parser.parse_args(argv)
    written = synthesise_realsr(
        args.out, hr_source(args.train), hr_source(args.test), args.camera, args.scale, args.seed,
        args.max_size, overwrite=args.overwrite,
    )
    for split, pairs in written.items():
        print(f"{split}: wrote {len(pairs)} pairs to {pairs[0].hr_path.parent}")
    print(f"parameters: {Path(args.out) / 'RealSR' / args.camera / f'synthesis_x{args.scale}.json'}")


if __name__ == "__main__":
    cli_entry(main)
