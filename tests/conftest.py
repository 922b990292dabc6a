"""Shared fixtures: where the real benchmark images live (skip tests that need them when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.hardware import cpu_bf16

REPO = Path(__file__).resolve().parents[1]
# Tests pin their precision: PRECISION=auto means fp32 here on every CPU (subprocesses inherit it).
os.environ.setdefault("SR_AUTO_PRECISION", "fp32")
# Multiblock networks on the CPU run in bands here, not by ONNX Runtime: an export per small random network
# would cost seconds. tests/inference/test_multiblock_forward.py and the apply tests set it to auto.
os.environ.setdefault("SR_MULTIBLOCK_CPU", "bands")


# Tests that run bf16 kernels on the CPU; the decisions around them are tested everywhere, with the hardware's
# answer simulated (core.hardware._hardware_bf16). `make test` reruns the precision tests with SR_CPU_BF16=off.
requires_bf16 = pytest.mark.skipif(not cpu_bf16().runs, reason=f"bf16 cannot run on this CPU: {cpu_bf16().lacks}")


def shared_datasets() -> Path | None:
    """The real T91/Set5/Set14 folder, from SR_DATA or ../shared/datasets, or None."""
    for candidate in (os.environ.get("SR_DATA"), REPO.parent / "shared" / "datasets"):
        if candidate and (Path(candidate) / "Set5").is_dir():
            return Path(candidate)
    return None


@pytest.fixture
def datasets_root() -> Path:
    root = shared_datasets()
    if root is None:
        pytest.skip("needs T91/Set5/Set14 (set SR_DATA or put them in ../shared/datasets)")
    return root


@pytest.fixture(scope="module")
def one_thread():
    """Tiny convolutions gain nothing from threads, and on a shared CPU several threads cost 10x."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
