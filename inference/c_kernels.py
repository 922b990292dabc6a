"""The project's small C kernels (``inference/*.c``), compiled on first use and loaded with ctypes.

Each is built with the system's C compiler (``$CC``, else ``cc``) at ``-O3 -march=native`` into
``$SR_KERNEL_CACHE`` (default ``~/.cache/sr-multiblock-espcn``), under a name that hashes the source, the
compiler and the CPU, so a cache shared by different machines never loads a library built for another CPU.
Where there is no compiler, or the kernel's switch is set to ``torch``, or the build fails, ``compiled``
returns None and the reason; the callers then run the same arithmetic in PyTorch (same numbers, slower).
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from core.hardware import cpuinfo

FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-shared", "-fPIC")  # no FMA: the arithmetic as written


def cache_folder() -> Path:
    """``$SR_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/sr-multiblock-espcn``, else ``~/.cache/sr-multiblock-espcn``."""
    if "SR_KERNEL_CACHE" in os.environ:
        return Path(os.environ["SR_KERNEL_CACHE"])
    try:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home directory to be found
        cache = Path(tempfile.gettempdir())
    return cache / "sr-multiblock-espcn"


def compiled(source: Path, switch: str) -> tuple[ctypes.CDLL | None, str]:
    """The library built from ``source`` (compiled once per cache folder; the caller keeps it), or None and
    why not; ``$<switch>=torch`` turns it off."""
    if os.environ.get(switch, "c") == "torch":
        return None, f"{switch}=torch"
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        return None, f"no C compiler ({os.environ.get('CC', 'cc')}) found"
    try:
        return ctypes.CDLL(str(_build(compiler, source))), ""
    except subprocess.CalledProcessError as err:
        first_line = next(iter((err.stderr or "").strip().splitlines()), f"exit status {err.returncode}")
        return None, f"the C kernel did not compile: {first_line}"
    except (OSError, subprocess.SubprocessError) as err:
        return None, f"the C kernel could not be built or loaded: {err}"


def _build(compiler: str, source: Path) -> Path:
    """The shared library for this source, compiler and CPU, compiled once per cache folder."""
    text = source.read_bytes()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    info = cpuinfo()
    machine = [platform.machine(), info.get("model name", ""), info.get("flags", info.get("Features", ""))]
    digest = hashlib.sha256(b"\0".join([text, version.encode(), " ".join(FLAGS).encode(),
                                        "\0".join(machine).encode()])).hexdigest()[:16]
    folder = cache_folder()
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        folder = Path(tempfile.mkdtemp(prefix="sr-kernel-"))  # a read-only home: build for this process only
    library = folder / f"{source.stem}-{digest}.so"
    if library.is_file():
        return library
    scratch = folder / f".{library.name}.{os.getpid()}.tmp"
    try:
        subprocess.run([compiler, *FLAGS, "-o", str(scratch), str(source)], check=True, capture_output=True,
                       text=True, timeout=120)
        os.replace(scratch, library)  # atomic: ranks building at once never load a half-written file
    finally:
        scratch.unlink(missing_ok=True)
    return library
