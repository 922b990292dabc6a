"""INIT_WEIGHTS: a training that starts from a trained ESPCN instead of a random initialisation, and the
record of where it started."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.errors import UserError
from core.runs import read_json, sha256
from pipelines.espcn.common import espcn_architecture, load_espcn


def initial_weights(settings: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    """INIT_WEIGHTS as a state dict for the network the settings describe (None: random initialisation).
    A file holding another architecture is refused here, before the run folder is touched."""
    if not settings["INIT_WEIGHTS"]:
        return None
    path = Path(settings["INIT_WEIGHTS"]).expanduser()
    if not path.is_file():
        raise UserError(f"INIT_WEIGHTS={settings['INIT_WEIGHTS']}: no such file")
    net = load_espcn(path, torch.device("cpu"), settings)
    wanted = {"scale": settings["SCALE"], "channels": settings["CHANNELS"], "features": list(settings["FEATURES"])}
    found = {key: value for key, value in espcn_architecture(net).items() if key in wanted}
    if found != wanted:
        raise UserError(f"INIT_WEIGHTS={path} holds an ESPCN with {found}; the settings ask for {wanted}")
    return net.state_dict()


def starting_point(settings: dict[str, Any]) -> dict[str, Any]:
    """What a fine-tuning run started from, for its settings.json: the file's SHA-256 and the command and seed
    that made it, read from its run folder's settings.json or, for weights exported by
    ``pipelines.espcn.publish``, from the .json beside them (a chain of fine-tunes nests)."""
    if not settings["INIT_WEIGHTS"]:
        return {}
    path = Path(settings["INIT_WEIGHTS"]).expanduser()
    run_file = path.name in ("best.pt", "latest.pt")  # else shipped weights, with their record beside them
    previous = read_json(path.parent / "settings.json" if run_file else path.with_suffix(".json"))
    origin = {key: previous[key] for key in ("command", "seed", "init_weights") if key in previous}
    return {"init_weights": {"path": str(path), "sha256": sha256(path), **origin}}


def recorded_starting_point(run_dir: Path) -> dict[str, Any]:
    """The starting point a run recorded when it began: what a resumed run keeps, so that its record does
    not follow a file changed or removed since."""
    recorded = read_json(run_dir / "settings.json")
    return {"init_weights": recorded["init_weights"]} if "init_weights" in recorded else {}
