"""Weights in the formats other tools load, and reading weights written by other projects.

Written: a plain ``state_dict`` (``torch.save`` of name -> tensor, as most PyTorch projects publish), a
safetensors file whose metadata records the architecture (JSON under ``"architecture"``), and an ONNX
graph with dynamic batch, height and width (the architecture in its ``metadata_props``). Read: this
project's checkpoints, plain state dicts (also wrapped as ``state_dict``, ``params_ema`` or ``params``, the
BasicSR convention, and with DataParallel's ``module.`` prefix) and safetensors files.
safetensors, onnx and onnxscript are imported only when such a file is written or read.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from core.atomic import atomic_write
from core.errors import UserError

FORMATS = {"safetensors": ".safetensors", "onnx": ".onnx", "state_dict": ".pth"}
_WRAPPERS = ("model", "params_ema", "params", "state_dict")


def _require(module: str, package: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise UserError(f"this needs the {package} package: pip install {package}") from None


def _cpu_tensors(net: nn.Module) -> dict[str, Tensor]:
    return {key: value.detach().cpu().contiguous() for key, value in net.state_dict().items()}


def save_state_dict(net: nn.Module, path: Path) -> None:
    tensors = _cpu_tensors(net)
    atomic_write(path, lambda handle: torch.save(tensors, handle))


def save_safetensors(net: nn.Module, path: Path, architecture: dict[str, Any], notes: dict[str, str]) -> None:
    """``notes`` are extra human-readable metadata strings (input convention, layers)."""
    st = _require("safetensors.torch", "safetensors")
    metadata = {"format": "pt", "architecture": json.dumps(architecture), **notes}
    data = st.save(_cpu_tensors(net), metadata=metadata)
    atomic_write(path, lambda handle: handle.write(data))


def onnx_program(net: nn.Module, example: Tensor, input_name: str = "input", output_name: str = "output") -> Any:
    """``net`` exported by torch's exporter (torch.export + onnxscript), batch, height and width dynamic.
    ``example`` is one input; use sizes other than 1 so no dimension is specialised."""
    _require("onnxscript", "onnxscript")
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
    return torch.onnx.export(net.eval(), (example,), dynamo=True, verbose=False, input_names=[input_name],
                             output_names=[output_name], dynamic_shapes=(dims,))


def save_onnx(net: nn.Module, path: Path, example: Tensor, architecture: dict[str, Any], notes: dict[str, str],
              input_name: str = "input", output_name: str = "output") -> None:
    """``onnx_program`` with the architecture and ``notes`` in its metadata, checked by the ONNX checker."""
    onnx = _require("onnx", "onnx")
    program = onnx_program(net, example, input_name, output_name)
    for key, value in {"architecture": json.dumps(architecture), **notes}.items():
        program.model.metadata_props[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        program.save(tmp)
        onnx.checker.check_model(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_weights(net: nn.Module, path: Path, fmt: str, architecture: dict[str, Any], notes: dict[str, str],
                 example: Callable[[], Tensor]) -> None:
    """Write ``net`` as ``fmt`` (a key of FORMATS); ``example`` makes an input for the ONNX trace."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if fmt == "safetensors":
        save_safetensors(net, path, architecture, notes)
    elif fmt == "onnx":
        save_onnx(net, path, example(), architecture, notes)
    else:
        save_state_dict(net, path)


def read_weights(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(name -> tensor, recorded architecture) from a checkpoint of this project (its ``meta``), a
    safetensors file (its ``architecture`` metadata) or a plain state dict ({} when nothing is recorded)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise UserError(f"cannot read checkpoint {path} ({type(err).__name__}); it is damaged or not a "
                        "PyTorch weights file") from None
    architecture: dict[str, Any] = {}
    if isinstance(state, dict) and isinstance(state.get("meta"), dict):
        architecture = {key: value for key, value in state["meta"].items() if key != "settings"}
    for wrapper in _WRAPPERS:
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
            break
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"{path} holds no state dict (a mapping of names to tensors); pass a checkpoint or "
                        "weights file")
    return {key.removeprefix("module."): value for key, value in state.items()}, architecture


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    _require("safetensors", "safetensors")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not a dict)
            metadata = handle.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for a damaged file
        raise UserError(f"cannot read safetensors file {path} ({type(err).__name__}); it is damaged") from None
    try:
        architecture = json.loads(metadata.get("architecture", "{}"))
    except json.JSONDecodeError:
        architecture = {}
    return tensors, architecture
