"""Learning-rate schedules of one training stage. ``lr(step)`` gives the rate; ``observe(metric)`` feeds a
validation result back and returns True when the stage should stop (early stopping)."""
from __future__ import annotations

import math
from typing import Any


class Schedule:
    def lr(self, step: int) -> float:
        raise NotImplementedError

    def observe(self, metric: float) -> bool:
        return False

    def state_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        vars(self).update(state)


class Constant(Schedule):
    def __init__(self, lr: float) -> None:
        self.base = lr

    def lr(self, step: int) -> float:
        return self.base


class Cosine(Schedule):
    """Cosine decay from ``lr`` to ``lr_min`` over ``steps`` (the modern alternative to the plateau rule)."""

    def __init__(self, lr: float, lr_min: float, steps: int) -> None:
        self.base, self.lr_min, self.steps = lr, lr_min, max(1, steps)

    def lr(self, step: int) -> float:
        progress = min(1.0, step / self.steps)
        return self.lr_min + 0.5 * (self.base - self.lr_min) * (1.0 + math.cos(math.pi * progress))


class Plateau(Schedule):
    """The ESPCN paper's rule: start at ``lr_start``; when a validation result improves on the best so far
    by less than ``mu``, divide the rate by ``factor`` (not below ``lr_end``, and at most once per
    ``cooldown`` observations); stop after ``patience`` observations without any improvement.
    ``mu``, ``factor`` and ``cooldown`` are not given by the paper."""

    def __init__(self, lr_start: float, lr_end: float, mu: float, patience: int,
                 factor: float = 10.0, cooldown: int = 0) -> None:
        self.current, self.lr_end, self.mu = lr_start, lr_end, mu
        self.patience, self.factor, self.cooldown = patience, factor, cooldown
        self.best = -math.inf
        self.stale = 0
        self.since_drop = 0

    def lr(self, step: int) -> float:
        return self.current

    def observe(self, metric: float) -> bool:
        improvement = metric - self.best
        self.since_drop += 1
        if improvement < self.mu and self.current > self.lr_end and self.since_drop > self.cooldown:
            self.current = max(self.lr_end, self.current / self.factor)
            self.since_drop = 0
        if metric > self.best:
            self.best, self.stale = metric, 0
        else:
            self.stale += 1
        return self.stale >= self.patience
