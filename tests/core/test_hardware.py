"""The one bf16 capability check: what oneDNN's kernels need, and the switch that answers as a CPU without it."""
from __future__ import annotations

import pytest
import torch

from core import hardware

pytestmark = pytest.mark.precision


def test_the_capability_is_what_onednn_checks_not_only_the_bf16_flag(monkeypatch: pytest.MonkeyPatch):
    """AVX2 only, or AVX-512 without BW/VL/DQ: oneDNN refuses bf16 convolutions whatever the flags say."""
    monkeypatch.delenv(hardware.BF16_ENV, raising=False)
    asked = hardware._hardware_bf16()
    kernels = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if kernels is not None and torch.backends.mkldnn.is_available():
        assert asked.runs == bool(kernels())
    assert asked.fast <= asked.runs and bool(asked.lacks) != asked.runs
    flags = hardware.cpu_flags()
    if asked.runs:  # then the flags agree with oneDNN's own rule
        assert any(all(f in flags for f in need) for need in hardware.ONEDNN_BF16_NEEDS)


def test_the_switch_answers_as_a_cpu_without_bf16(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(hardware, "_hardware_bf16", lambda: hardware.Bf16Support(True, True))
    for value in ("off", "OFF", "0", "false"):
        monkeypatch.setenv(hardware.BF16_ENV, value)
        answer = hardware.cpu_bf16()
        assert (answer.runs, answer.fast) == (False, False) and hardware.BF16_ENV in answer.lacks
    monkeypatch.setenv(hardware.BF16_ENV, "")
    assert hardware.cpu_bf16() == hardware.Bf16Support(True, True)
