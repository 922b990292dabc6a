"""An exponential moving average of a network's weights (EMA, as BasicSR's ``ema_decay``).

After every optimizer step the average moves towards the trained weights by ``1 - decay``; with decay
0.9999 it spans about the last 10,000 steps. Averaging removes the step-to-step noise of the last updates,
which a small network trained to its plateau is limited by. The trainer evaluates and checkpoints the
average as the model; the trained weights travel beside it so that a resumed run trains on from them.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from core.errors import UserError


def check_ema_setting(decay: float) -> None:
    """The EMA setting: 0 (off) or a decay in (0, 1)."""
    if not 0 <= decay < 1:
        raise UserError(f"EMA={decay}: expected a decay in [0, 1), e.g. 0.9999 (0 = off)")


class WeightAverage:
    def __init__(self, net: nn.Module, decay: float) -> None:
        check_ema_setting(decay)
        self.decay = decay
        self.net = net
        self.module = copy.deepcopy(net).requires_grad_(False)
        self._averaged, self._trained = list(self.module.parameters()), list(net.parameters())

    @torch.no_grad()
    def update(self) -> None:
        """One step of the average; buffers (e.g. running statistics) are copied, not averaged."""
        torch._foreach_lerp_(self._averaged, self._trained, 1.0 - self.decay)
        for mine, theirs in zip(self.module.buffers(), self.net.buffers(), strict=True):
            mine.copy_(theirs)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
