"""Full-state checkpoints: written atomically, loadable on a CPU-only machine, checked before use."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from core.atomic import WriteError, atomic_write
from core.errors import UserError


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` through a temporary file in the same folder, renamed over ``path`` when complete."""
    atomic_write(path, lambda handle: torch.save(state, handle))


@contextlib.contextmanager
def keeps_checkpoint(latest: Path, rerun: str = "rerun with --resume") -> Iterator[None]:
    """A failed write inside (checkpoint, log, plot, results) ends the run with one line that names the file
    and says which checkpoint is kept, instead of a library's traceback."""
    try:
        yield
    except WriteError as err:
        kept = (f"the last good checkpoint {latest} is kept" if Path(latest).is_file() else
                "no checkpoint had been written yet")
        raise UserError(f"{err}; {kept}; free space or fix the folder, then {rerun}") from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint onto the CPU; a missing or unreadable file is a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise UserError(f"cannot read checkpoint {path} ({type(err).__name__}); it is damaged or not a "
                        "checkpoint of this project") from None
    if not isinstance(state, dict) or "model" not in state:
        raise UserError(f"{path} is not a checkpoint of this project (no 'model' entry)")
    return state


def check_meta(state: dict[str, Any], path: Path, **expected: Any) -> None:
    """Refuse a checkpoint whose recorded architecture facts (e.g. arch, scale) differ from this run's."""
    meta = state.get("meta", {})
    for key, want in expected.items():
        have = meta.get(key)
        if have is not None and have != want:
            raise UserError(f"checkpoint {path} has {key}={have!r} but this run needs {key}={want!r}; "
                            "pass a matching checkpoint or change the settings")


def load_weights(model: torch.nn.Module, state: dict[str, Any], path: Path) -> None:
    """Load ``state['model']`` into ``model``; a shape or key mismatch is a UserError, not a traceback."""
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "mismatch"
        raise UserError(f"checkpoint {path} does not fit this model ({first}); check the architecture "
                        "settings") from None
