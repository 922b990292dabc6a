from pathlib import Path

import pytest
import torch

from core.checkpoint import check_meta, load_checkpoint, load_weights, save_checkpoint
from core.errors import UserError


def test_round_trip_and_no_temporary_files(tmp_path: Path):
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"model": model.state_dict(), "step": 7, "meta": {"arch": "x", "scale": 3}})
    state = load_checkpoint(path)
    assert state["step"] == 7
    assert torch.equal(state["model"]["weight"], model.weight)
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


def test_failed_write_keeps_the_previous_checkpoint(tmp_path: Path):
    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"model": {}, "step": 1})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_checkpoint(path, {"model": {}, "step": 2, "bad": Unpicklable()})
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


def test_damaged_and_foreign_files_are_user_errors(tmp_path: Path):
    truncated = tmp_path / "cut.pt"
    save_checkpoint(truncated, {"model": {"w": torch.zeros(1000)}})
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": 1}, foreign)
    with pytest.raises(UserError, match="no 'model' entry"):
        load_checkpoint(foreign)
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_meta_and_shape_mismatches_are_user_errors(tmp_path: Path):
    state = {"model": torch.nn.Linear(3, 2).state_dict(), "meta": {"arch": "espcn", "scale": 2}}
    with pytest.raises(UserError, match="scale=2 but this run needs scale=3"):
        check_meta(state, tmp_path / "w.pt", arch="espcn", scale=3)
    with pytest.raises(UserError, match="does not fit this model"):
        load_weights(torch.nn.Linear(4, 2), state, tmp_path / "w.pt")
