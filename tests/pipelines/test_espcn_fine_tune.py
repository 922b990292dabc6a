"""Where a fine-tuning started: the record INIT_WEIGHTS leaves in settings.json."""
from __future__ import annotations

from pathlib import Path

from core.runs import sha256, write_json
from pipelines.espcn.fine_tune import starting_point


def test_exported_weights_name_the_command_in_their_record(tmp_path: Path) -> None:
    weights = tmp_path / "espcn_x3_y.pt"
    weights.write_bytes(b"weights")
    write_json(tmp_path / "espcn_x3_y.json", {"command": "python espcn.py train --set EPOCHS=9", "seed": 3,
                                             "metrics": {}})
    assert starting_point({"INIT_WEIGHTS": str(weights)}) == {"init_weights": {
        "path": str(weights), "sha256": sha256(weights), "command": "python espcn.py train --set EPOCHS=9",
        "seed": 3}}


def test_no_init_weights_no_record_and_a_file_without_one_gives_its_digest(tmp_path: Path) -> None:
    assert starting_point({"INIT_WEIGHTS": ""}) == {}
    weights = tmp_path / "other.pt"
    weights.write_bytes(b"x")
    assert starting_point({"INIT_WEIGHTS": str(weights)}) == {"init_weights": {"path": str(weights),
                                                                               "sha256": sha256(weights)}}
