"""The report's toy block (section 3.1, Fig 4/5): plain 3x3 convolutions with ReLU and a global residual."""
from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn


class ToyBlock(nn.Module):
    """n_layers conv3x3 (3->C, C->C, ..., C->3), ReLU between them, plus the input."""

    def __init__(self, n_layers: int = 6, n_feats: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        self.receptive_radius = n_layers  # one pixel per 3x3 convolution: local (models.exactness)
        widths = [in_channels] + [n_feats] * (n_layers - 1) + [in_channels]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(pairwise(widths)):
            layers.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            if i < n_layers - 1:
                layers.append(nn.ReLU())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)
