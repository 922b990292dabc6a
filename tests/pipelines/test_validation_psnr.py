"""The validation score that selects checkpoints, computed on the device in torch, equals the numpy oracle."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from data.io import to_float
from data.paired import Pair, PairedImages
from inference.banded import banded_forward
from models.rcan import Block, orthogonal_init_
from pipelines.multiblock.train import as_tensor, mean_psnr
from tests.inference import metrics_reference as reference


def test_validation_psnr_equals_the_numpy_reference_for_8_and_16_bit_inputs():
    rng = np.random.default_rng(0)
    hr = [rng.integers(0, 256, (37, 29 + 4 * i, 3), dtype=np.uint8) for i in range(3)]
    lr = [np.clip(h.astype(np.int32) * 257 + rng.integers(-900, 900, h.shape), 0, 65535).astype(np.uint16)
          for h in hr]
    images = PairedImages([Pair(str(i), Path("lr"), Path("hr")) for i in range(3)], lr, hr)
    torch.manual_seed(0)
    net = orthogonal_init_(Block(8, 2)).eval()
    cpu = torch.device("cpu")
    outputs = [banded_forward(net, as_tensor(low, cpu))[0].permute(1, 2, 0).numpy() for low in lr]
    expected = np.mean([reference.psnr(np.clip(out, 0, 1), to_float(high), space="rgb", shave=0)
                        for out, high in zip(outputs, hr, strict=True)])
    assert mean_psnr(net, images, torch.device("cpu")) == pytest.approx(expected, abs=1e-6)


def test_images_reach_the_device_scaled_by_their_own_peak():
    eight, sixteen = np.full((2, 3, 3), 255, np.uint8), np.full((2, 3, 3), 32768, np.uint16)
    assert torch.equal(as_tensor(eight, torch.device("cpu")), torch.ones(1, 3, 2, 3))
    assert torch.allclose(as_tensor(sixteen, torch.device("cpu")), torch.full((1, 3, 2, 3), 32768 / 65535))
    assert torch.allclose(as_tensor(sixteen, torch.device("cpu"))[0].permute(1, 2, 0), torch.from_numpy(
        to_float(sixteen)))
