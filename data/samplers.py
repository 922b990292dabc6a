"""Sampling of in-memory training examples, as a pure function of (seed, step).

Each epoch is a fresh permutation drawn from a generator seeded by (seed, epoch); the last incomplete
batch of an epoch is dropped. A resumed run and every rank of a distributed run therefore see exactly the
batches of an uninterrupted single-process run; a rank keeps its contiguous slice of the global batch.
``to(device)`` keeps the examples on the training device (the GPU), so a step gathers its batch there
instead of copying it from the host.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from core.dist import DistInfo, shard_range
from core.errors import UserError


class EpochSampler:
    def __init__(self, inputs: Tensor, targets: Tensor, batch_size: int, seed: int) -> None:
        if len(inputs) != len(targets):
            raise ValueError("inputs and targets differ in length")
        if len(inputs) < batch_size:
            raise UserError(f"only {len(inputs)} training examples for BATCH_SIZE={batch_size}; "
                            "lower BATCH_SIZE or add training images")
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.seed = batch_size, seed
        self.examples_per_epoch = len(inputs)
        self.steps_per_epoch = len(inputs) // batch_size
        self._cached: tuple[int, Tensor] | None = None

    @property
    def nbytes(self) -> int:
        return self.inputs.nbytes + self.targets.nbytes

    def to(self, device: torch.device) -> EpochSampler:
        """Keep the examples on ``device``; the batches stay the same (the permutation is drawn on the CPU)."""
        self.inputs, self.targets = self.inputs.to(device), self.targets.to(device)
        self._cached = None
        return self

    def _permutation(self, epoch: int) -> Tensor:
        if self._cached is None or self._cached[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(len(self.inputs), generator=generator)
            self._cached = (epoch, order.to(self.inputs.device))
        return self._cached[1]

    def batch(self, step: int, dist: DistInfo | None = None) -> tuple[Tensor, Tensor]:
        epoch, within = divmod(step, self.steps_per_epoch)
        index = self._permutation(epoch)[within * self.batch_size:(within + 1) * self.batch_size]
        if dist is not None and dist.enabled:
            if self.batch_size % dist.world_size:
                raise UserError(f"BATCH_SIZE={self.batch_size} is not divisible by the {dist.world_size} "
                                "processes; the global batch must split evenly across ranks")
            part = shard_range(self.batch_size, dist)
            index = index[part.start:part.stop]
        return self.inputs[index], self.targets[index]


class RandomSubimageSampler:
    """ESPCN sub-images cut at random offsets for every batch, instead of from the paper's fixed grid.

    Holds whole aligned (LR, HR) images as tensors (C, h, w) and (C, h*r, w*r); batch ``step`` draws, from a
    generator seeded by (seed, step), an image for each example (weighted by how many offsets it has) and a
    uniformly random LR offset, and returns the LR crop with its pixel-unshuffled HR crop: the same layout
    as ``data.subimages.extract_subimages``. An epoch has ``examples_per_epoch`` examples (the grid's count,
    so that epochs compare), and batches stay a pure function of (seed, step).
    """

    def __init__(self, pairs: list[tuple[Tensor, Tensor]], size: int, scale: int, batch_size: int, seed: int,
                 examples_per_epoch: int) -> None:
        fitting = [(lr, hr) for lr, hr in pairs if min(lr.shape[1:]) >= size]
        if not fitting:
            raise UserError(f"no {size * scale}px sub-images fit in the training images; use larger images "
                            "or a smaller SUBIMAGE")
        if examples_per_epoch < batch_size:
            raise UserError(f"only {examples_per_epoch} training examples for BATCH_SIZE={batch_size}; "
                            "lower BATCH_SIZE or add training images")
        self.pairs, self.size, self.scale = fitting, size, scale
        self.batch_size, self.seed = batch_size, seed
        self.examples_per_epoch = examples_per_epoch
        self.steps_per_epoch = examples_per_epoch // batch_size
        offsets = torch.tensor([(lr.shape[1] - size + 1) * (lr.shape[2] - size + 1) for lr, _hr in fitting],
                               dtype=torch.float64)
        self._weights = (offsets / offsets.sum()).numpy()

    @property
    def nbytes(self) -> int:
        return sum(lr.nbytes + hr.nbytes for lr, hr in self.pairs)

    def to(self, device: torch.device) -> RandomSubimageSampler:
        self.pairs = [(lr.to(device), hr.to(device)) for lr, hr in self.pairs]
        return self

    def batch(self, step: int, dist: DistInfo | None = None) -> tuple[Tensor, Tensor]:
        rng = np.random.default_rng([self.seed, step])
        index = rng.choice(len(self.pairs), size=self.batch_size, p=self._weights)
        heights = np.array([self.pairs[i][0].shape[1] for i in index])
        widths = np.array([self.pairs[i][0].shape[2] for i in index])
        tops = rng.integers(0, heights - self.size + 1)
        lefts = rng.integers(0, widths - self.size + 1)
        mine = shard_range(self.batch_size, dist) if dist is not None and dist.enabled else range(self.batch_size)
        if dist is not None and dist.enabled and self.batch_size % dist.world_size:
            raise UserError(f"BATCH_SIZE={self.batch_size} is not divisible by the {dist.world_size} processes; "
                            "the global batch must split evenly across ranks")
        s, r = self.size, self.scale
        lr = torch.stack([self.pairs[index[k]][0][:, tops[k]:tops[k] + s, lefts[k]:lefts[k] + s] for k in mine])
        hr = torch.stack([self.pairs[index[k]][1][:, tops[k] * r:(tops[k] + s) * r, lefts[k] * r:(lefts[k] + s) * r]
                          for k in mine])
        return lr, F.pixel_unshuffle(hr, r)
