"""What ESPCN trains on: each image, its HR_SCALES copies (MATLAB bicubic) and their 8 rotations/flips, cut
on the grid or at random offsets."""
from __future__ import annotations

import re

import numpy as np
import pytest
import skimage.data

import espcn
from core.errors import UserError
from data.resize import imresize
from data.samplers import EpochSampler, RandomSubimageSampler
from pipelines.espcn.common import model_space
from pipelines.espcn.rules import check_espcn_settings
from pipelines.espcn.training_data import build_subimages, training_images, training_sampler

SETTINGS = {name: value for name, value in vars(espcn).items() if name.isupper()}
IMAGE = skimage.data.astronaut()[:200, :150]


def test_hr_scales_add_downscaled_copies_too_small_ones_skipped() -> None:
    settings = {**SETTINGS, "AUGMENT": False, "HR_SCALES": [1.0, 0.9, 0.6, 0.2]}  # 0.2: 30 px < one 51 px sub-image
    copies = training_images(IMAGE, settings)
    assert [c.shape for c in copies] == [(200, 150, 1), (180, 135, 1), (120, 90, 1)]
    np.testing.assert_array_equal(copies[1], imresize(model_space(IMAGE, 1), 0.9))


def grid_count(height: int, width: int) -> int:
    """Sub-images of 51 px HR (x3, 17 px LR) every 42 px (stride 14 LR) in one image."""
    return ((height - 51) // 42 + 1) * ((width - 51) // 42 + 1)


def test_every_copy_is_augmented_and_cut_into_subimages() -> None:
    settings = {**SETTINGS, "AUGMENT": True, "HR_SCALES": [1.0, 0.8]}
    assert len(training_images(IMAGE, settings)) == 16
    plain, _ = build_subimages([("a", IMAGE)], {**settings, "HR_SCALES": [1.0]})
    more, targets = build_subimages([("a", IMAGE)], settings)
    assert len(more) - len(plain) == 4 * (grid_count(160, 120) + grid_count(120, 160))
    assert more.shape[1:] == (1, 17, 17) and targets.shape[0] == len(more)


def test_hr_scales_outside_zero_to_one_are_refused_in_one_line() -> None:
    for factors, shown in (([1.0, 1.5], "1.0,1.5"), ([], "(empty)"), ([0.0], "0.0")):
        with pytest.raises(UserError, match=rf"^HR_SCALES={re.escape(shown)}: expected a comma-separated list of "
                                            r"at least one, each a number in \(0, 1\]"):
            check_espcn_settings({**SETTINGS, "HR_SCALES": factors}, SETTINGS)


def test_a_subimage_larger_than_every_training_image_is_one_line() -> None:
    with pytest.raises(UserError, match=r"^no training sub-images: SUBIMAGE=60 x SCALE=3 = 180 HR pixels is larger "
                                        r"than every training image \(the smallest is 150x200\); lower SUBIMAGE"):
        training_sampler([("a", IMAGE)], {**SETTINGS, "SUBIMAGE": 60, "STRIDE": 50}, seed=0)


def test_random_offsets_give_an_epoch_as_long_as_the_grid_without_cutting_it() -> None:
    images = [("a", IMAGE), ("b", skimage.data.coffee()[:170, :233])]
    settings = {**SETTINGS, "AUGMENT": True, "HR_SCALES": [1.0, 0.8]}
    grid = training_sampler(images, settings, seed=0)
    random = training_sampler(images, {**settings, "SUBIMAGE_OFFSETS": "random"}, seed=0)
    assert isinstance(grid, EpochSampler) and isinstance(random, RandomSubimageSampler)
    assert random.examples_per_epoch == grid.examples_per_epoch == len(build_subimages(images, settings)[0])
    assert random.steps_per_epoch == grid.steps_per_epoch
    with pytest.raises(UserError, match="SUBIMAGE_OFFSETS='spiral': expected one of grid, random"):
        check_espcn_settings({**settings, "SUBIMAGE_OFFSETS": "spiral"}, SETTINGS)
