"""SUBIMAGE_OFFSETS=random: aligned LR/HR crops at random offsets, the grid's layout, a pure function of the step."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.dist import DistInfo
from core.errors import UserError
from data.samplers import RandomSubimageSampler

SCALE, SIZE = 3, 5


def coordinate_pairs() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """HR pixels hold their own (row, column); LR pixel (y, x) holds HR's top-left of its 3x3 cell."""
    pairs = []
    for height, width in ((9, 12), (7, 7)):
        rows = torch.arange(height * SCALE, dtype=torch.float32)[:, None].expand(-1, width * SCALE)
        cols = torch.arange(width * SCALE, dtype=torch.float32)[None, :].expand(height * SCALE, -1)
        hr = torch.stack([rows, cols])
        pairs.append((hr[:, ::SCALE, ::SCALE].clone(), hr.clone()))
    return pairs


def test_crops_are_aligned_and_unshuffled_like_the_grid():
    sampler = RandomSubimageSampler(coordinate_pairs(), SIZE, SCALE, batch_size=8, seed=1, examples_per_epoch=40)
    lr, target = sampler.batch(3)
    assert lr.shape == (8, 2, SIZE, SIZE) and target.shape == (8, 2 * SCALE * SCALE, SIZE, SIZE)
    hr = F.pixel_shuffle(target, SCALE)
    assert torch.equal(hr[:, :, ::SCALE, ::SCALE], lr)  # the HR crop starts where the LR crop does, x3
    assert torch.equal(hr[:, 0, 1:] - hr[:, 0, :-1], torch.ones_like(hr[:, 0, 1:]))  # one contiguous crop
    assert sampler.steps_per_epoch == 5


def test_batches_are_a_pure_function_of_seed_and_step_and_ranks_slice_them():
    pairs = coordinate_pairs()
    first = RandomSubimageSampler(pairs, SIZE, SCALE, 4, seed=7, examples_per_epoch=16)
    again = RandomSubimageSampler(pairs, SIZE, SCALE, 4, seed=7, examples_per_epoch=16)
    assert all(torch.equal(a, b) for a, b in zip(first.batch(11), again.batch(11), strict=True))
    assert not torch.equal(first.batch(11)[0], first.batch(12)[0])
    offsets = {tuple(first.batch(step)[0][k, :, 0, 0].tolist()) for step in range(30) for k in range(4)}
    assert len(offsets) > 20  # fresh offsets, not a fixed grid
    halves = [first.batch(11, DistInfo(rank=r, world_size=2)) for r in (0, 1)]
    assert torch.equal(torch.cat([h[0] for h in halves]), first.batch(11)[0])


def test_images_too_small_for_one_crop_are_an_error():
    tiny = [(torch.zeros(1, 3, 3), torch.zeros(1, 9, 9))]
    with pytest.raises(UserError, match="no 15px sub-images fit"):
        RandomSubimageSampler(tiny, SIZE, SCALE, 4, seed=0, examples_per_epoch=16)
