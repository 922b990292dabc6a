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


def test_room_on_a_gpu_counts_what_the_allocator_holds_cached(monkeypatch):
    from core.hardware import device_has_room

    gib = 1 << 30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * gib, 80 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 30 * gib)  # a big pass, cached
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 4 * gib)
    cuda = torch.device("cuda")
    assert device_has_room(cuda, 14 * gib)  # half of 2 GiB free + 26 GiB cached and unused
    assert not device_has_room(cuda, 15 * gib)
    assert not device_has_room(torch.device("cpu"), 1)
