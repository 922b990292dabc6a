from __future__ import annotations

import pytest
import torch

from core.errors import UserError
from core.settings import resolve_device


def test_device_names_are_checked_in_one_line():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UserError, match="--device gpu: expected auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_a_cuda_device_without_a_gpu_is_one_line():
    with pytest.raises(UserError, match="--device cuda:1: no CUDA GPU is visible"):
        resolve_device("cuda:1")
