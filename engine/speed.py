"""The training speed settings (PRECISION, CHANNELS_LAST, COMPILE, DETERMINISTIC), resolved for one device.

``auto`` picks what was measured faster (docs/benchmarks.md): bf16 autocast on CUDA GPUs that support it and on
CPUs that compute bf16 in hardware (AMX or AVX512-BF16; elsewhere bf16 is emulated and about 100x slower, so fp32;
bf16 asked for where oneDNN's bf16 kernels cannot run is refused in one line), and the channels_last memory format
on GPUs and on AVX-512 CPUs (on the AMX Xeon bf16 + channels_last is 1.91x fp32 for the full-size block step, bf16
alone 1.82x, channels_last alone 1.05x; 1.06x in fp32 on the AVX-512 EPYCs) but not on AVX2-only CPUs, where fp32
channels_last measured 0.89x NCHW (``channels_last_is_fast``). COMPILE stays off unless asked: on the AMX Xeon it
made the bf16 block step only about 4% faster, for about 30 s of compiling per training stage, and its fused
kernels round bf16 differently from eager. fp16 is CUDA-only and runs with a gradient scaler. fp32 on a CUDA GPU
of compute capability 8.0 or newer runs its convolutions in TF32 (cuDNN's default, kept for speed) and says so
(``fp32 (TF32 convolutions)``); ``fp32_strict`` turns TF32 off. DETERMINISTIC turns on deterministic kernels and
turns off TF32 and cudnn.benchmark, for exact comparisons between runs.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.errors import UserError
from core.hardware import cpu_bf16, cpu_flags
from core.rules import one_of

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Speed:
    precision: str = "fp32"  # fp32 | bf16 | fp16, resolved
    channels_last: bool = False
    tf32: bool = False  # fp32 convolutions (and matmuls) in TF32 on an Ampere-or-newer GPU
    compile: bool = False
    deterministic: bool = False

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=DTYPES[self.precision])

    def grad_scaler(self, device: torch.device) -> torch.amp.GradScaler | None:
        return torch.amp.GradScaler(device.type) if self.precision == "fp16" else None

    def prepare_module(self, module: nn.Module) -> nn.Module:
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def compiled(self, module: nn.Module) -> nn.Module:
        """``module`` as the training step calls it: ``torch.compile``d when ``compile`` is on."""
        return torch.compile(module) if self.compile else module

    def prepare_batch(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.channels_last and tensor.dim() == 4:
            return tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    @property
    def label(self) -> str:
        """The precision as it runs, e.g. ``fp32 (TF32 convolutions)``: recorded and printed."""
        return f"{self.precision} (TF32 convolutions)" if self.tf32 else self.precision

    def describe(self) -> dict[str, Any]:
        return {"precision": self.label, "channels_last": self.channels_last, "compile": self.compile,
                "deterministic": self.deterministic, "tf32": self.tf32}


def bf16_is_fast(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware: a CUDA GPU of compute capability 8.0 or newer (Ampere;
    below it, bf16 is emulated and its convolutions are far slower than fp32's), a CPU with AMX or
    AVX512-BF16 whose oneDNN kernels run bf16 (``core.hardware.cpu_bf16``). ``torch.cuda.is_bf16_supported()``
    is not asked: by default it also counts emulation, and it answers for the current device, not ``device``."""
    if device.type == "cuda":
        if torch.version.hip:  # ROCm reports its own architectures; bf16 is native on the GPUs it supports
            return torch.cuda.is_bf16_supported()
        return torch.cuda.get_device_capability(device)[0] >= 8
    return cpu_bf16().fast


def channels_last_is_fast(device: torch.device) -> bool:
    """Whether ``CHANNELS_LAST=auto`` turns channels_last on: on CUDA GPUs and on CPUs with AVX-512, where oneDNN's
    channels_last convolutions measured faster (1.05-1.08x fp32, and in bf16); not on AVX2-only CPUs, where they
    measured 0.89x NCHW (docs/benchmarks.md)."""
    return device.type == "cuda" or "avx512f" in cpu_flags()


def check_bf16_runs(setting: str, device: torch.device) -> None:
    """One line, before any work, where bf16 is asked for on a CPU whose bf16 kernels cannot run (oneDNN
    refuses them there with a RuntimeError deep inside the first convolution)."""
    support = cpu_bf16()
    if device.type == "cpu" and not support.runs:
        raise UserError(f"{setting}=bf16: {support.lacks}; use {setting}=fp32 (or auto, which picks fp32 here)")


AUTO_ENV = "SR_AUTO_PRECISION"  # what PRECISION=auto means when set (the tests set fp32: same on every CPU)


def auto_precision(device: torch.device) -> str:
    """What PRECISION=auto means on ``device``: ``$SR_AUTO_PRECISION`` when set (but never bf16 where it cannot
    run), else bf16 where the device computes it in hardware (``bf16_is_fast``: where it measured faster),
    else fp32."""
    pinned = os.environ.get(AUTO_ENV, "").lower()
    if pinned == "bf16" and device.type == "cpu" and not cpu_bf16().runs:
        return "fp32"
    return pinned or ("bf16" if bf16_is_fast(device) else "fp32")


def resolve_precision(name: str, device: torch.device) -> str:
    name = str(name).lower()
    if name == "auto":
        name = auto_precision(device)
    if name not in ("fp32", "fp32_strict", "bf16", "fp16"):
        raise UserError(f"PRECISION={name!r}: expected auto, fp32, fp32_strict, bf16 or fp16")
    if name == "fp16" and device.type != "cuda":
        raise UserError("PRECISION=fp16 needs a CUDA GPU (--device cuda); on a CPU use bf16 or fp32")
    if name == "bf16":
        check_bf16_runs("PRECISION", device)
    return name


def tf32_runs(device: torch.device) -> bool:
    """Whether cuDNN runs fp32 convolutions in TF32 on ``device`` (compute capability 8.0 or newer)."""
    return device.type == "cuda" and not torch.version.hip and torch.cuda.get_device_capability(device)[0] >= 8


def resolve_flag(name: str, value: Any, auto: bool) -> bool:
    text = str(value).strip().lower()
    if text == "auto":
        return auto
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise UserError(f"{name}={value!r}: expected auto, true or false")


def speed_from_settings(settings: dict[str, Any], device: torch.device) -> Speed:
    """The speed settings of a training script's block (missing ones mean fp32 eager), for ``device``.
    DETERMINISTIC wins: it forces fp32 without compile (their kernels are not bit-reproducible)."""
    deterministic = resolve_flag("DETERMINISTIC", settings.get("DETERMINISTIC", False), auto=False)
    if deterministic:
        return Speed(deterministic=True,
                     channels_last=resolve_flag("CHANNELS_LAST", settings.get("CHANNELS_LAST", False), False))
    precision = resolve_precision(settings.get("PRECISION", "fp32"), device)
    strict = precision == "fp32_strict"
    return Speed(precision="fp32" if strict else precision, tf32=precision == "fp32" and tf32_runs(device),
                 channels_last=resolve_flag("CHANNELS_LAST", settings.get("CHANNELS_LAST", False),
                                            auto=channels_last_is_fast(device)),
                 compile=resolve_flag("COMPILE", settings.get("COMPILE", False), auto=False))


@contextlib.contextmanager
def backend_flags(speed: Speed, device: torch.device) -> Iterator[None]:
    """cudnn.benchmark for the fixed patch shapes of training, or the deterministic setup, and TF32 as
    ``speed`` says (on for fp32 where it runs, off for fp32_strict); restored after."""
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.are_deterministic_algorithms_enabled())
    try:
        if speed.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to be deterministic
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            torch.use_deterministic_algorithms(True)
        else:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = speed.tf32
            torch.backends.cudnn.benchmark = device.type == "cuda"
        yield
    finally:
        (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
         torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, enabled) = saved
        torch.use_deterministic_algorithms(enabled)


@contextlib.contextmanager
def without_autotuning() -> Iterator[None]:
    """cudnn.benchmark off inside (restored after): an evaluation runs whole images of many sizes once each,
    and training's autotuning would time every convolution algorithm again for each new size."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


# What the speed settings may be (core.rules), shared by every training script's checks
SPEED_RULES = {"PRECISION": one_of("auto", "fp32", "fp32_strict", "bf16", "fp16"),
               "CHANNELS_LAST": one_of("auto", "true", "false")}
