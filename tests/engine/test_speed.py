from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from core import hardware
from core.checkpoint import load_checkpoint
from core.errors import UserError
from engine import speed as speed_module
from engine.schedules import Constant
from engine.speed import Speed, bf16_is_fast, speed_from_settings
from engine.trainer import Stage, TrainConfig, Trainer
from tests.conftest import requires_bf16

pytestmark = pytest.mark.precision
CPU = torch.device("cpu")
FAST, EMULATED = hardware.Bf16Support(True, True), hardware.Bf16Support(True, False)
NONE = hardware.Bf16Support(False, False, "this CPU lacks what oneDNN's bf16 kernels need: avx512bw+avx512vl+avx512dq")


def simulate(monkeypatch: pytest.MonkeyPatch, support: hardware.Bf16Support) -> None:
    """The CPU's bf16 answer, replaced at the one seam that reads the hardware."""
    monkeypatch.delenv(hardware.BF16_ENV, raising=False)
    monkeypatch.setattr(hardware, "_hardware_bf16", lambda: support)


def test_fp16_is_refused_on_the_cpu_in_one_line():
    with pytest.raises(UserError, match="PRECISION=fp16 needs a CUDA GPU"):
        speed_from_settings({"PRECISION": "fp16"}, CPU)
    with pytest.raises(UserError, match="PRECISION='fp8': expected auto, fp32, fp32_strict, bf16 or fp16"):
        speed_from_settings({"PRECISION": "fp8"}, CPU)


def test_auto_follows_the_cpu_and_can_be_pinned(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(speed_module.AUTO_ENV, raising=False)
    simulate(monkeypatch, FAST)
    assert speed_from_settings({"PRECISION": "auto"}, CPU).precision == "bf16"
    simulate(monkeypatch, EMULATED)
    assert speed_from_settings({"PRECISION": "auto"}, CPU).precision == "fp32"  # emulated bf16 is ~100x slower
    monkeypatch.setenv(speed_module.AUTO_ENV, "bf16")
    assert speed_from_settings({"PRECISION": "auto"}, CPU).precision == "bf16"
    simulate(monkeypatch, NONE)  # a pin never asks for what cannot run
    assert speed_from_settings({"PRECISION": "auto"}, CPU).precision == "fp32"


def test_bf16_where_its_kernels_cannot_run_is_one_line_naming_what_the_cpu_lacks(monkeypatch: pytest.MonkeyPatch):
    simulate(monkeypatch, NONE)
    with pytest.raises(UserError, match=r"^PRECISION=bf16: this CPU lacks what oneDNN's bf16 kernels need: avx512bw"):
        speed_from_settings({"PRECISION": "bf16"}, CPU)
    simulate(monkeypatch, EMULATED)  # runs (slowly) where oneDNN accepts it: asked for, given
    assert speed_from_settings({"PRECISION": "bf16"}, CPU).precision == "bf16"
    monkeypatch.setenv(hardware.BF16_ENV, "off")  # CI's second pass: the switch wins over the hardware
    assert not hardware.cpu_bf16().runs and not bf16_is_fast(CPU)
    with pytest.raises(UserError, match="SR_CPU_BF16=off"):
        speed_from_settings({"PRECISION": "bf16"}, CPU)


def test_fp32_says_when_its_convolutions_run_in_tf32_and_fp32_strict_turns_it_off(monkeypatch: pytest.MonkeyPatch):
    gpu = torch.device("cuda", 0)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    fp32 = speed_from_settings({"PRECISION": "fp32"}, gpu)
    assert fp32.tf32 and fp32.describe()["precision"] == "fp32 (TF32 convolutions)"
    strict = speed_from_settings({"PRECISION": "fp32_strict"}, gpu)
    assert (strict.precision, strict.tf32, strict.describe()["precision"]) == ("fp32", False, "fp32")
    assert not speed_from_settings({"PRECISION": "fp32"}, CPU).tf32
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))  # a V100: no TF32
    assert not speed_from_settings({"PRECISION": "fp32"}, gpu).tf32
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    for speed in (fp32, strict):
        with speed_module.backend_flags(speed, CPU):
            assert torch.backends.cudnn.allow_tf32 is speed.tf32 and torch.backends.cuda.matmul.allow_tf32 is speed.tf32
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == saved


def test_deterministic_wins_over_the_fast_settings():
    speed = speed_from_settings({"PRECISION": "bf16", "COMPILE": True, "DETERMINISTIC": True}, CPU)
    assert speed == Speed(precision="fp32", channels_last=False, compile=False, deterministic=True)
    assert speed_from_settings({}, CPU) == Speed()  # scripts without the settings train fp32 eager
    with pytest.raises(UserError, match="CHANNELS_LAST='sometimes': expected auto, true or false"):
        speed_from_settings({"CHANNELS_LAST": "sometimes"}, CPU)


@pytest.mark.parametrize(("flags", "on"), [("fma avx2", False), ("avx2 avx512f avx512bw", True)])
def test_channels_last_auto_follows_what_was_measured_on_the_cpu(monkeypatch: pytest.MonkeyPatch, flags: str,
                                                                    on: bool):
    """auto: on with AVX-512 (measured 1.05-1.08x), off on AVX2-only CPUs (measured 0.89x); asked for, it is on."""
    monkeypatch.setattr(speed_module, "cpu_flags", lambda: frozenset(flags.split()))
    assert speed_from_settings({"PRECISION": "fp32", "CHANNELS_LAST": "auto"}, CPU).channels_last is on
    assert speed_from_settings({"PRECISION": "fp32", "CHANNELS_LAST": "true"}, CPU).channels_last
    assert speed_module.channels_last_is_fast(torch.device("cuda", 0))


def train_a_little(run_dir: Path, speed: Speed) -> tuple[nn.Module, float]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))

    def batches(step, _dist):
        x = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(step))
        return x, x.flip(3)

    def evaluate(model):
        x, y = batches(999, None)
        return {"val_psnr": -10 * torch.log10(((model(x) - y) ** 2).mean()).item()}

    stage = Stage("a", 40, lambda m: torch.optim.Adam(m.parameters(), lr=3e-3), Constant(3e-3))
    result = Trainer(net, [stage], batches, nn.functional.l1_loss, evaluate,
                     TrainConfig(run_dir=run_dir, eval_every=20, progress=False, speed=speed), CPU).fit()
    return net, result.best


@requires_bf16
def test_bf16_and_channels_last_train_to_an_fp32_checkpoint_close_to_fp32(tmp_path: Path):
    _, fp32_best = train_a_little(tmp_path / "fp32", Speed())
    net, bf16_best = train_a_little(tmp_path / "bf16", Speed(precision="bf16", channels_last=True))
    assert abs(bf16_best - fp32_best) < 0.5
    saved = load_checkpoint(tmp_path / "bf16" / "latest.pt")
    assert saved["speed"]["precision"] == "bf16"
    assert all(t.dtype == torch.float32 for t in saved["model"].values())
    fresh = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    fresh.load_state_dict(saved["model"])  # channels_last weights load into a plain NCHW model
    x = torch.rand(1, 3, 9, 7)
    assert torch.allclose(fresh(x), net(x), atol=1e-6)


@pytest.mark.parametrize(("capability", "fast"), [((7, 0), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_bf16_counts_as_fast_on_ampere_and_newer_only_and_asks_about_the_given_gpu(monkeypatch, capability, fast):
    asked = []
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: asked.append(device) or capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # emulation counts there: unused
    assert bf16_is_fast(torch.device("cuda", 3)) is fast  # PRECISION=auto: fp32 on a V100 or a T4
    assert asked == [torch.device("cuda", 3)]


def test_autotuning_is_off_inside_an_evaluation_and_restored_after(tmp_path: Path):
    seen = []

    def evaluate(model):
        seen.append(torch.backends.cudnn.benchmark)
        return {"val_psnr": 0.0}

    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    stage = Stage("a", 2, lambda m: torch.optim.SGD(m.parameters(), lr=0.1), Constant(0.1))
    trainer = Trainer(net, [stage], lambda step, _d: (torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)),
                      torch.nn.functional.l1_loss, evaluate, TrainConfig(run_dir=tmp_path, eval_every=1,
                                                                          progress=False), torch.device("cpu"))
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True  # as training on a GPU has it
    try:
        trainer.fit()
        assert seen == [False, False] and torch.backends.cudnn.benchmark is True
    finally:
        torch.backends.cudnn.benchmark = saved

