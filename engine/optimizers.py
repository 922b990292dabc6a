"""The training scripts' optimizers, in the implementation that suits the parameters' device, and their
state loaded into that implementation on resume."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

# Per-group choices of how a step is computed, not of what it computes: set for the device a run is on.
IMPLEMENTATION_FLAGS = ("fused", "foreach", "capturable", "differentiable")


def adam(params: Iterable[Any], device: torch.device, lr: float, **kwargs: Any) -> torch.optim.Adam:
    """``torch.optim.Adam`` over ``params`` (tensors or parameter groups) on ``device``; fused (one kernel
    for every parameter) on a CUDA GPU. There the fp16 gradient scaler also hands its inf/NaN check to the
    kernel, instead of reading a flag from the device before every step."""
    return torch.optim.Adam(params, lr=lr, fused=device.type == "cuda", **kwargs)


def optimizer_by_name(kind: str, lr: float) -> Callable[[nn.Module], torch.optim.Optimizer]:
    """A builder of ``kind`` (``adam`` or ``adadelta``, the report's sec. 4.3 settings) at ``lr`` for a network on
    its device. With fp16 on a GPU, a step of Adadelta (which has no fused kernel) waits for the gradient
    scaler's inf/NaN flag; Adam's does not (``adam``)."""
    if kind not in ("adam", "adadelta"):
        raise ValueError(f"optimizer {kind!r}: expected 'adam' or 'adadelta' (the settings' rules check this first)")

    def build(net: nn.Module) -> torch.optim.Optimizer:
        if kind == "adam":
            return adam(net.parameters(), next(net.parameters()).device, lr=lr, betas=(0.9, 0.999), eps=1e-8)
        return torch.optim.Adadelta(net.parameters(), lr=lr, rho=0.9, eps=1e-6, weight_decay=0)
    return build


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``optimizer.load_state_dict(state)`` for a run resumed on another device or memory format.

    torch's own load keeps the saved groups' implementation flags (``fused=True`` from a GPU run into a CPU
    one, ``fused=False`` from a CPU run into a GPU one) and the strides the state was saved with (Adam's
    moments stay contiguous beside channels_last parameters, which fused Adam refuses). Here the fresh
    optimizer's flags, chosen for this device, replace the saved ones before loading, so that torch puts
    scalar state such as ``step`` where they need it (on the parameter's device when fused or capturable,
    else as loaded: checkpoints load on the CPU); after it, every state tensor shaped like its parameter
    takes the parameter's memory layout (torch has given it the parameter's device and floating dtype)."""
    groups = [{**{key: value for key, value in saved.items() if key not in IMPLEMENTATION_FLAGS},
               **{flag: fresh[flag] for flag in IMPLEMENTATION_FLAGS if flag in fresh}}
              for saved, fresh in zip(state["param_groups"], optimizer.param_groups, strict=True)]
    optimizer.load_state_dict({**state, "param_groups": groups})
    for group in optimizer.param_groups:
        for param in group["params"]:
            per_param = optimizer.state.get(param, {})
            for key, value in per_param.items():
                if key != "step" and isinstance(value, torch.Tensor) and value.shape == param.shape:
                    per_param[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
