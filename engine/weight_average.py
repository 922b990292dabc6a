"""An exponential moving average of a network's weights (EMA, as BasicSR's ``ema_decay``).

After every optimizer step the average moves towards the trained weights by ``1 - decay``; with decay
0.9999 it spans about the last 10,000 steps. Averaging removes the step-to-step noise of the last updates,
which a small network trained to its plateau is limited by. The trainer evaluates and checkpoints the
average as the model; the trained weights travel beside it so that a resumed run trains on from them.

The average is accumulated in float64: a float32 weight of 0.1 has a resolution of 7e-9, and with decay
0.99999 a step of 1e-5 x (a difference of 1e-3) = 1e-8 rounds to one unit or nothing, so a float32 average
lags or freezes (measured: a run with EMA=0.99999 whose validation PSNR fell as the rate decayed). The
float32 module that is evaluated and saved is refreshed from the float64 values when it is asked for.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from core.rules import EMA_RULE, check_settings


def check_ema_setting(decay: float) -> None:
    check_settings({"EMA": decay}, {"EMA": EMA_RULE}, {"EMA": 0.0})


class WeightAverage:
    def __init__(self, net: nn.Module, decay: float) -> None:
        check_ema_setting(decay)
        self.decay = decay
        self.net = net
        self._module = copy.deepcopy(net).requires_grad_(False)
        self._names = [name for name, _ in net.named_parameters()]
        self._trained = list(net.parameters())
        self._float64 = [p.detach().to(torch.float64, copy=True) for p in self._trained]
        self._incoming = [torch.empty_like(value) for value in self._float64]  # the trained weights in float64
        self._stale = False

    @torch.no_grad()
    def update(self) -> None:
        """One step of the average (a hot path: nothing else is done here)."""
        torch._foreach_copy_(self._incoming, self._trained)  # into buffers made once, not new ones per step
        torch._foreach_lerp_(self._float64, self._incoming, 1.0 - self.decay)
        self._stale = True

    @property
    def module(self) -> nn.Module:
        """The average as a network of the trained one's dtype (rounded from the float64 values); buffers
        (e.g. running statistics) are the trained network's, copied, not averaged."""
        if self._stale:
            with torch.no_grad():
                for param, value in zip(self._module.parameters(), self._float64, strict=True):
                    param.copy_(value)
                for mine, theirs in zip(self._module.buffers(), self.net.buffers(), strict=True):
                    mine.copy_(theirs)
            self._stale = False
        return self._module

    def float64_state(self) -> dict[str, torch.Tensor]:
        """The float64 values, for a checkpoint from which a resumed run continues exactly."""
        return dict(zip(self._names, self._float64, strict=True))

    def load_state_dict(self, state: dict[str, torch.Tensor], float64: dict[str, torch.Tensor] | None = None) -> None:
        """The average from a checkpoint: its module weights, and the float64 values when it holds them."""
        self._module.load_state_dict(state)
        with torch.no_grad():
            for name, value, param in zip(self._names, self._float64, self._module.parameters(), strict=True):
                value.copy_(float64[name] if float64 is not None else param)
        self._stale = False
