"""ESPCN training examples: sub-images of every training image (and its 8 rotations/flips when AUGMENT)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from core.errors import UserError
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
