"""ESPCN training examples: sub-images of every training image (and its 8 rotations/flips when AUGMENT)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from core.errors import UserError
from data.degrade import modcrop
from data.samplers import RandomSubimageSampler
from data.subimages import extract_subimages
from pipelines.espcn.common import degrade_fn, model_space


def dihedral_variants(image: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.rot90(flipped, k)) for flipped in (image, image[:, ::-1])
            for k in range(4)]


def build_subimages(images, settings: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    scale, channels = settings["SCALE"], settings["CHANNELS"]
    degrade = degrade_fn(settings)
    inputs, targets = [], []
    for _name, image in images:
        hr = model_space(image, channels)
        for variant in dihedral_variants(hr) if settings["AUGMENT"] else [hr]:
            lr, target = extract_subimages(variant, scale, size=settings["SUBIMAGE"],
                                           stride=settings["STRIDE"] * scale, degrade=degrade)
            inputs.append(lr)
            targets.append(target)
    if not inputs or sum(len(x) for x in inputs) == 0:
        raise UserError(f"no {settings['SUBIMAGE'] * scale}px sub-images fit in the training images; "
                        "use larger images or a smaller SUBIMAGE")
    return torch.from_numpy(np.concatenate(inputs)), torch.from_numpy(np.concatenate(targets))


def random_subimage_sampler(images, settings: dict[str, Any], seed: int,
                            examples_per_epoch: int) -> RandomSubimageSampler:
    """SUBIMAGE_OFFSETS=random: whole degraded images (and their 8 rotations/flips when AUGMENT), cropped at
    random offsets for every batch; an epoch has as many examples as the grid would give."""
    scale, channels = settings["SCALE"], settings["CHANNELS"]
    degrade = degrade_fn(settings)
    pairs = []
    for _name, image in images:
        hr = model_space(image, channels)
        for variant in dihedral_variants(hr) if settings["AUGMENT"] else [hr]:
            high = modcrop(variant, scale)
            low = np.asarray(degrade(high, scale), dtype=np.float32)
            pairs.append((torch.from_numpy(np.ascontiguousarray(low.transpose(2, 0, 1))),
                          torch.from_numpy(np.ascontiguousarray(high.transpose(2, 0, 1), dtype=np.float32))))
    return RandomSubimageSampler(pairs, settings["SUBIMAGE"], scale, settings["BATCH_SIZE"], seed,
                                 examples_per_epoch)
