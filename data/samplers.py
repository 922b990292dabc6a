"""Epoch sampling of in-memory training examples, as a pure function of (seed, step).

Each epoch is a fresh permutation drawn from a generator seeded by (seed, epoch); the last incomplete
batch of an epoch is dropped. A resumed run and every rank of a distributed run therefore see exactly the
batches of an uninterrupted single-process run; a rank keeps its contiguous slice of the global batch.
``to(device)`` keeps the examples on the training device (the GPU), so a step gathers its batch there
instead of copying it from the host.
"""
from __future__ import annotations

import torch
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
        self.steps_per_epoch = len(inputs) // batch_size
        self._cached: tuple[int, Tensor] | None = None

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
