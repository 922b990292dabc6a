"""ONNX Runtime as a CPU backend: a network exported by this project's own ONNX exporter
(``inference.weight_files.onnx_program``), run by onnxruntime's CPU provider.

Exporting costs seconds (torch.export + onnxscript), so the graph is kept on disk under
``cache_folder()/onnx``, named by a hash of the network's class, architecture and weights: the first use
of a set of weights pays the export, later ones (another process, another day) only read the file.
``available()`` says whether onnxruntime can be imported; the callers decide what to do without it.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core.atomic import WriteError, atomic_write
from inference.c_kernels import cache_folder


def missing_packages(*packages: str) -> list[str]:
    """Those of ``packages`` that cannot be imported here (onnxruntime runs a graph; onnx and onnxscript make one)."""
    return [package for package in packages if importlib.util.find_spec(package) is None]


def available() -> bool:
    return not missing_packages("onnxruntime")


def weights_key(net: nn.Module, *extra: object) -> str:
    """A hash of ``net``'s class, its weights and ``extra`` (architecture values, the exporter's version)."""
    digest = hashlib.sha256(f"{type(net).__module__}.{type(net).__qualname__}|{extra}|{torch.__version__}".encode())
    for name, value in net.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def cached_path(key: str) -> Path:
    """Where the export of ``key`` is kept."""
    return cache_folder() / "onnx" / f"{key}.onnx"


def cached_model(key: str, export: Callable[[], bytes]) -> bytes:
    """The serialised ONNX model stored under ``key``, made by ``export()`` and stored on first use (a
    cache folder that cannot be written is skipped: the model is then exported on every use)."""
    path = cached_path(key)
    if path.is_file():
        return path.read_bytes()
    model = export()
    with contextlib.suppress(WriteError):
        atomic_write(path, lambda handle: handle.write(model))
    return model


class OrtNetwork:
    """``net(x)`` by ONNX Runtime on the CPU: a float tensor (as float32) or a ``uint8`` one in, the graph's
    output out.

    ``threads``: ONNX Runtime's intra-op threads; None follows PyTorch's thread count at each call, with one
    session per count, so a network first used inside single-threaded workers (``core.threads``: ``espcn.py
    eval`` scores one image per thread) does not stay single-threaded for the calls after them.
    ``memory_pattern=False`` for large images: from the second input of a shape on, ONNX Runtime otherwise
    allocates the planned pattern of that shape beside the arena's blocks (the multiblock network at 840x600:
    389 MB after two calls instead of 196 MB, within 3% of the speed)."""

    def __init__(self, model: bytes, threads: int | None = None, memory_pattern: bool = True) -> None:
        self.model, self.threads, self.memory_pattern = model, threads, memory_pattern
        self.sessions: dict[int, Any] = {}  # intra-op threads -> session
        self.input = self.session().get_inputs()[0].name

    def session(self) -> Any:
        """The session for the threads of this call (made on first use)."""
        threads = self.threads or torch.get_num_threads()
        if threads not in self.sessions:
            self.sessions[threads] = self._open(threads)
        return self.sessions[threads]

    def _open(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle workers sleep instead of spinning after a run: they would take the cores from PyTorch's work
        # around the call (reading, colour, writing) and from the pipeline's other threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.enable_mem_pattern = self.memory_pattern
        return ort.InferenceSession(self.model, options, providers=["CPUExecutionProvider"])

    def __call__(self, x: Tensor) -> Tensor:
        return torch.from_numpy(self.outputs(x)[0])

    def outputs(self, x: Tensor | np.ndarray) -> list[np.ndarray]:
        """Every output of the graph on ``x`` (a tensor, or an array passed as it is), as arrays."""
        if isinstance(x, Tensor):
            x = (x if x.dtype == torch.uint8 else x.to(torch.float32)).detach().contiguous().numpy()
        return self.session().run(None, {self.input: np.ascontiguousarray(x)})


def ort_network(net: nn.Module, example: Tensor, threads: int | None = None, graph: tuple[Any, ...] = (),
                memory_pattern: bool = True) -> OrtNetwork:
    """``net`` as an ``OrtNetwork``, its export cached by weights and ``graph`` (values that change the graph
    but not the weights, e.g. a clamp flag). ``example``: one input with no dimension of size 1."""
    from inference.weight_files import onnx_program

    def export() -> bytes:
        return onnx_program(net, example).model_proto.SerializeToString()

    return cached_network(net, export, threads, graph, memory_pattern)


def cached_network(net: nn.Module, build: Callable[[], bytes], threads: int | None = None,
                   graph: tuple[Any, ...] = (), memory_pattern: bool = True) -> OrtNetwork:
    """The ONNX model ``build()`` makes from ``net`` as an ``OrtNetwork``, cached on disk by ``net``'s weights
    and ``graph`` (which must name the builder and anything else that changes the graph)."""
    return OrtNetwork(cached_model(weights_key(net, *graph), build), threads, memory_pattern)
