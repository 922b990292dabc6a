"""ESPCN training examples: sub-images of every training image at each of HR_SCALES, and of the 8
rotations/flips of each when AUGMENT; on the paper's fixed grid or at random offsets."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from core.errors import UserError
from data.degrade import modcrop
from data.resize import imresize
from data.samplers import EpochSampler, RandomSubimageSampler
from data.subimages import extract_subimages, grid_count
from pipelines.espcn.common import degrade_fn, model_space


def dihedral_variants(image: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.rot90(flipped, k)) for flipped in (image, image[:, ::-1])
            for k in range(4)]


def training_images(image: np.ndarray, settings: dict[str, Any]) -> list[np.ndarray]:
    """One training image in the model's colour space at each of HR_SCALES (MATLAB bicubic, the degradation's
    antialiased kernel; copies smaller than one sub-image skipped), and the 8 rotations/flips of each when
    AUGMENT."""
    hr = model_space(image, settings["CHANNELS"])
    smallest = settings["SUBIMAGE"] * settings["SCALE"]
    copies = [hr if f == 1 else imresize(hr, f) for f in settings["HR_SCALES"] if min(hr.shape[:2]) * f >= smallest]
    return [variant for copy in copies for variant in (dihedral_variants(copy) if settings["AUGMENT"] else [copy])]


def training_sampler(images, settings: dict[str, Any], seed: int) -> EpochSampler | RandomSubimageSampler:
    """The sampler SUBIMAGE_OFFSETS asks for, over every training image's variants."""
    side = settings["SUBIMAGE"] * settings["SCALE"]
    if images and all(min(image.shape[:2]) < side for _name, image in images):
        smallest = min((image for _name, image in images), key=lambda image: min(image.shape[:2]))
        raise UserError(f"no training sub-images: SUBIMAGE={settings['SUBIMAGE']} x SCALE={settings['SCALE']} = "
                        f"{side} HR pixels is larger than every training image (the smallest is "
                        f"{smallest.shape[1]}x{smallest.shape[0]}); lower SUBIMAGE")
    if settings["SUBIMAGE_OFFSETS"] == "random":
        return random_subimage_sampler(images, settings, seed)
    return EpochSampler(*build_subimages(images, settings), settings["BATCH_SIZE"], seed)


def build_subimages(images, settings: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    scale = settings["SCALE"]
    degrade = degrade_fn(settings)
    inputs, targets = [], []
    for _name, image in images:
        for variant in training_images(image, settings):
            lr, target = extract_subimages(variant, scale, size=settings["SUBIMAGE"],
                                           stride=settings["STRIDE"] * scale, degrade=degrade)
            inputs.append(lr)
            targets.append(target)
    if not inputs or sum(len(x) for x in inputs) == 0:
        raise UserError(f"no {settings['SUBIMAGE'] * scale}px sub-images fit in the training images; "
                        "use larger images or a smaller SUBIMAGE")
    return torch.from_numpy(np.concatenate(inputs)), torch.from_numpy(np.concatenate(targets))


def random_subimage_sampler(images, settings: dict[str, Any], seed: int) -> RandomSubimageSampler:
    """SUBIMAGE_OFFSETS=random: whole degraded images (and their 8 rotations/flips when AUGMENT), cropped at
    random offsets for every batch; an epoch has as many examples as the grid would cut from them."""
    scale = settings["SCALE"]
    degrade = degrade_fn(settings)
    pairs = []
    for _name, image in images:
        for variant in training_images(image, settings):
            high = modcrop(variant, scale)
            low = np.asarray(degrade(high, scale), dtype=np.float32)
            pairs.append((torch.from_numpy(np.ascontiguousarray(low.transpose(2, 0, 1))),
                          torch.from_numpy(np.ascontiguousarray(high.transpose(2, 0, 1), dtype=np.float32))))
    grid = sum(grid_count(lr.shape[1], lr.shape[2], settings["SUBIMAGE"], settings["STRIDE"]) for lr, _ in pairs)
    return RandomSubimageSampler(pairs, settings["SUBIMAGE"], scale, settings["BATCH_SIZE"], seed, grid)
