"""What this machine's processor can do, read from /proc/cpuinfo (empty elsewhere) and from PyTorch's own kernel
checks: used to pick defaults such as bf16 where the CPU computes it in hardware, to refuse bf16 where its
kernels cannot run, and printed beside every benchmark figure."""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch

BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # AMX tiles (Intel Sapphire Rapids+), AVX512-BF16 (Intel, AMD Zen 4+)
# What oneDNN's bf16 convolution itself checks (PyTorch's mkldnn_bf16_device_check): either set will do
ONEDNN_BF16_NEEDS = (("avx512bw", "avx512vl", "avx512dq"), ("avx_ne_convert",))
BF16_ENV = "SR_CPU_BF16"  # "off": answer as a CPU without bf16 would (CI proves the suite on such a CPU)


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


@dataclass(frozen=True)
class Bf16Support:
    """What this CPU does with bf16: ``runs`` (oneDNN's bf16 kernels accept it), ``fast`` (and computes it in
    hardware, AMX or AVX512-BF16: elsewhere it is emulated, about 100x slower), ``lacks`` (in words, what is
    missing for ``runs``; empty when it runs)."""

    runs: bool
    fast: bool
    lacks: str = ""


def cpu_bf16() -> Bf16Support:
    """The one answer every bf16 path asks (training's PRECISION, UPSCALE_PRECISION, the strip backend, the
    tests' skips). ``$SR_CPU_BF16=off`` answers as a CPU without bf16; tests simulate hardware by replacing
    ``_hardware_bf16``, the one reader of the hardware."""
    if os.environ.get(BF16_ENV, "").strip().lower() in ("off", "0", "false", "no"):
        return Bf16Support(runs=False, fast=False, lacks=f"bf16 is switched off ({BF16_ENV}=off)")
    return _hardware_bf16()


@functools.cache
def _hardware_bf16() -> Bf16Support:
    flags = cpu_flags()
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None) if torch.backends.mkldnn.is_available() \
        else None
    runs = bool(check()) if check is not None else any(all(f in flags for f in need) for need in ONEDNN_BF16_NEEDS)
    if not runs:
        lacks = ("PyTorch without oneDNN" if not torch.backends.mkldnn.is_available() else
                 "this CPU lacks what oneDNN's bf16 kernels need: "
                 + " or ".join("+".join(need) for need in ONEDNN_BF16_NEEDS))
        return Bf16Support(runs=False, fast=False, lacks=lacks)
    return Bf16Support(runs=True, fast=any(flag in flags for flag in BF16_FLAGS))


def cpu_description() -> str:
    """E.g. 'AMD EPYC (family 26 model 2; avx512f, avx512_bf16)': enough to tell the seen machines apart."""
    info = cpuinfo()
    simd = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in cpu_flags()]
    name = info.get("model name", "unknown CPU")
    family, model = info.get("cpu family", "?"), info.get("model", "?")
    return f"{name} (family {family} model {model}; {', '.join(simd) or 'no AVX'})"


def host_memory_available() -> int | None:
    """Bytes of RAM a new allocation can take without swapping: /proc/meminfo's MemAvailable, less where a
    cgroup v2 memory limit (a container's) leaves less; None where neither can be read (not Linux)."""
    try:
        meminfo = Path("/proc/meminfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in meminfo.splitlines() if ":" in line)
    if "MemAvailable" not in fields:
        return None
    available = int(fields["MemAvailable"].split()[0]) * 1024  # kB
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text(encoding="ascii").strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text(encoding="ascii"))
    except (OSError, ValueError):
        return available
    return min(available, max(0, int(limit) - used)) if limit.isdigit() else available


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
