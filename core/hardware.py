"""What this machine's processor can do, read from /proc/cpuinfo (empty elsewhere): used to pick defaults
such as bf16 training where the CPU computes bf16 in hardware, and printed beside every benchmark figure."""
from __future__ import annotations

import functools
from pathlib import Path

import torch

BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # AMX tiles (Intel Sapphire Rapids+), AVX512-BF16 (Intel, AMD Zen 4+)


@functools.cache
def cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return fields
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if fields:
                break  # end of the first processor's block
            continue
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_flags() -> frozenset[str]:
    return frozenset(cpuinfo().get("flags", "").split())


def cpu_bf16_hardware() -> tuple[str, ...]:
    """The bf16 instruction sets this CPU has (``()`` when it has none and bf16 is emulated, ~100x slower)."""
    return tuple(flag for flag in BF16_FLAGS if flag in cpu_flags())


def cpu_description() -> str:
    """E.g. 'AMD EPYC (family 26 model 2; avx512f, avx512_bf16)': enough to tell the seen machines apart."""
    info = cpuinfo()
    simd = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in cpu_flags()]
    name = info.get("model name", "unknown CPU")
    family, model = info.get("cpu family", "?"), info.get("model", "?")
    return f"{name} (family {family} model {model}; {', '.join(simd) or 'no AVX'})"


def device_has_room(device: torch.device, nbytes: int, share: float = 0.5) -> bool:
    """True on a GPU with at least ``nbytes / share`` available (data kept there leaves the rest to training).

    Available = free on the device + what PyTorch's allocator holds cached but unused: after one large
    whole-image pass the cache keeps that memory, and the driver's figure alone would send every later image
    to the slower bands though the allocator could serve it."""
    if device.type != "cuda":
        return False
    free, _total = torch.cuda.mem_get_info(device)
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return nbytes <= share * (free + cached)
