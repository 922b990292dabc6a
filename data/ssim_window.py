"""SSIM's definition (Wang et al. 2004, MATLAB ssim_index.m, as BasicSR): an 11x11 Gaussian window of sigma
1.5, K1 = 0.01, K2 = 0.03. One definition for the metric (``inference.metrics``, float64) and the training
loss term (``engine.losses``, differentiable), which may not import each other."""
from __future__ import annotations

import torch

WINDOW_RADIUS = 5  # the window is 2 * 5 + 1 = 11 pixels wide
SIGMA = 1.5
K1, K2 = 0.01, 0.03  # C1 = (K1 * white)^2, C2 = (K2 * white)^2


def gaussian_window(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The window's 11 taps (one axis; the 2-D window is their outer product), summing to 1, on the CPU."""
    x = torch.arange(-WINDOW_RADIUS, WINDOW_RADIUS + 1, dtype=torch.float64)
    g = torch.exp(-(x**2) / (2 * SIGMA**2))
    return (g / g.sum()).to(dtype)
