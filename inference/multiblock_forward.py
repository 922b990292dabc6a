"""The fastest exact inference of a multiblock network (``Block``, ``MultiBlockNet``) on its device: what
``pipelines.multiblock.apply`` and its API, LR regeneration and final scoring run. Training-time validation
keeps ``inference.exact_forward``: its weights change at every evaluation, and an export costs seconds.

On a CPU, ONNX Runtime on the project's own ONNX export (``inference.onnx_runtime``: exported once per set of
weights, kept on disk) runs the whole image where its memory fits, about twice as fast as the bands
(docs/benchmarks.md); elsewhere the bands of ``inference.banded`` (one feature map of memory, any size). Both
are exact (the channel attention's global means see the whole image either way) and agree within float
rounding. The memory estimate is ``ORT_LIVE_MAPS`` feature maps as wide as the widest layer: ONNX Runtime's
CPU provider added 6.1-6.3 such maps to the process on its first call at 0.1 to 4.5 megapixels with 16 to 64
features, and 6.5-6.9 over repeated calls (its memory pattern off: ``inference.onnx_runtime.OrtNetwork``).
It must fit in ``MEMORY_SHARE`` of the memory available (``core.hardware.host_memory_available``) plus what
this network's session already holds from an earlier image (its arena keeps it). Without onnxruntime, or
with ``SR_MULTIBLOCK_CPU=bands``, bands. The choice is printed when it changes (one line).

On a GPU, and for a network without a banded form, ``inference.exact_forward`` decides (today's path).
"""
from __future__ import annotations

import os
import weakref
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from core.errors import UserError
from core.hardware import host_memory_available
from inference import onnx_runtime
from inference.banded import banded_forward, blocks_of, has_banded_form
from inference.exact_forward import exact_forward, whole_image_bytes

ORT_LIVE_MAPS = 8  # feature maps of memory a whole-image ONNX Runtime pass takes (6.1-6.9 measured, a margin)
MEMORY_SHARE = 0.8  # of the memory available, the most a whole-image pass may take
PATH_ENV = "SR_MULTIBLOCK_CPU"  # "bands": bands on a CPU whatever the memory; "auto" (default): the choice


@dataclass(frozen=True)
class CpuChoice:
    """``onnx``: ONNX Runtime on the whole image (else bands); ``line``: the choice and its reason, printed."""

    onnx: bool
    line: str


def memory_size(nbytes: float) -> str:
    """1.2 GB, or 40 MB under a gigabyte."""
    return f"{nbytes / 1e9:.1f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.0f} MB"


def choose_cpu_path(model: nn.Module, x: Tensor, available: int | None, held: int = 0) -> CpuChoice:
    """ONNX Runtime on the whole image where onnxruntime is installed and the estimate fits ``MEMORY_SHARE``
    of ``available`` bytes plus ``held`` (what the network's session keeps from an earlier image); else bands."""
    wanted = os.environ.get(PATH_ENV, "auto").strip().lower() or "auto"
    if wanted not in ("auto", "bands"):
        raise UserError(f"{PATH_ENV}={wanted}: expected auto (ONNX Runtime on the whole image where it fits, "
                        "else bands) or bands")
    if wanted == "bands":
        return CpuChoice(False, f"CPU path: bands ({PATH_ENV}=bands)")
    runner = [] if onnx_runtime.available() else ["onnxruntime"]
    missing = runner + onnx_runtime.missing_packages("onnx", "onnxscript")  # the export
    if missing:
        return CpuChoice(False, f"CPU path: bands ({' and '.join(missing)} not installed; pip install "
                                f"{' '.join(missing)} for the faster whole-image path)")
    if x.dtype != torch.float32:
        return CpuChoice(False, f"CPU path: bands (a {x.dtype} input; ONNX Runtime runs the float32 export)")
    need = whole_image_bytes(model, x, ORT_LIVE_MAPS)
    if available is None:
        return CpuChoice(False, f"CPU path: bands (the memory available cannot be read here; the whole image "
                                f"would need ~{memory_size(need)})")
    room = available + held
    if need > MEMORY_SHARE * room:
        return CpuChoice(False, f"CPU path: bands (the whole image would need ~{memory_size(need)}, "
                                f"{memory_size(room)} available)")
    return CpuChoice(True, f"CPU path: ONNX Runtime, whole image (est. {memory_size(need)}, "
                           f"{memory_size(room)} available)")


@dataclass
class _State:
    """Per network: its ONNX Runtime session (for the weights hashed as ``key``), the memory it holds, and
    the path last announced."""

    key: str = ""
    session: onnx_runtime.OrtNetwork | None = None
    held: int = 0
    announced: bool | None = None


_states: weakref.WeakKeyDictionary[nn.Module, _State] = weakref.WeakKeyDictionary()


@torch.inference_mode()
def multiblock_forward(model: nn.Module, x: Tensor) -> Tensor:
    """``model(x)`` for an NCHW batch on ``model``'s device, exactly, by the fastest path that fits."""
    if x.device.type != "cpu" or not has_banded_form(model):
        return exact_forward(model, x)
    state = _states.setdefault(model, _State())
    choice = choose_cpu_path(model, x, host_memory_available(), state.held)
    if choice.onnx != state.announced:
        print(choice.line, flush=True)
        state.announced = choice.onnx
    if not choice.onnx:
        return banded_forward(model, x)
    session = _session(model, state)
    if session is None:  # these weights did not export: said once, bands from then on
        return banded_forward(model, x)
    state.held = max(state.held, whole_image_bytes(model, x, ORT_LIVE_MAPS))
    return session(x)


def onnx_graph(model: nn.Module) -> tuple[str, tuple[bool, ...]]:
    """What makes ``model``'s export besides its weights: its modules, and each block's clamp (no weight)."""
    return repr(model), tuple(block.clamp for block in blocks_of(model))


def onnx_example(model: nn.Module) -> Tensor:
    """An input to trace ``model`` with (no dimension of size 1, so that none is specialised)."""
    return torch.rand(2, blocks_of(model)[0].head.in_channels, 24, 26)


def _session(model: nn.Module, state: _State) -> onnx_runtime.OrtNetwork | None:
    """The network's session, made again when its weights or clamps changed since the last image; None when
    the export failed (a block whose operators the exporter cannot write, say): the bands need no export."""
    graph = onnx_graph(model)
    key = onnx_runtime.weights_key(model, *graph)
    if state.key != key:
        path = onnx_runtime.cached_path(key)
        if not path.is_file():
            print(f"exporting the network to ONNX for ONNX Runtime (once for these weights: kept as {path})",
                  flush=True)
        try:
            with torch.inference_mode(False):  # torch.export traces outside inference mode, on a normal tensor
                state.session = onnx_runtime.ort_network(model, onnx_example(model), graph=graph,
                                                         memory_pattern=False)
        except Exception as err:  # any failure of the exporter or the runtime: the bands are exact
            reason = (str(err).strip().splitlines() or [""])[0][:200]
            print(f"CPU path: bands (the ONNX export failed: {type(err).__name__}: {reason})", flush=True)
            state.session = None
        state.key, state.held = key, 0
    return state.session
