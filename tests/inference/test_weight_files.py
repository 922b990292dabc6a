from pathlib import Path

import pytest
import torch

from core.errors import UserError
from inference.weight_files import read_weights, save_weights
from models.espcn import ESPCN


def test_wrapped_and_data_parallel_state_dicts_are_unwrapped(tmp_path: Path):
    weight = torch.ones(2, 2)
    torch.save({"params_ema": {"module.conv.weight": weight}, "iter": 5}, tmp_path / "basicsr.pth")
    tensors, architecture = read_weights(tmp_path / "basicsr.pth")
    assert list(tensors) == ["conv.weight"] and torch.equal(tensors["conv.weight"], weight)
    assert architecture == {}


def test_project_checkpoint_gives_its_meta_without_settings(tmp_path: Path):
    torch.save({"model": {"w": torch.zeros(1)}, "meta": {"arch": "espcn", "scale": 2, "settings": {"A": 1}}},
               tmp_path / "best.pt")
    assert read_weights(tmp_path / "best.pt")[1] == {"arch": "espcn", "scale": 2}


def test_safetensors_round_trip_keeps_architecture(tmp_path: Path):
    pytest.importorskip("safetensors")
    net = ESPCN(2, 1)
    save_weights(net, tmp_path / "w.safetensors", "safetensors", {"arch": "espcn", "scale": 2}, {"input": "Y"},
                 example=lambda: torch.rand(1, 1, 5, 5))
    tensors, architecture = read_weights(tmp_path / "w.safetensors")
    assert architecture == {"arch": "espcn", "scale": 2}
    assert torch.equal(tensors["conv3.weight"], net.conv3.weight)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("list.pth", None, "holds no state dict"),
    ("bad.safetensors", b"garbage", "cannot read safetensors file"),
])
def test_unreadable_files_are_user_errors(tmp_path: Path, name, content, message):
    path = tmp_path / name
    if content is None:
        torch.save([torch.zeros(1)], path)
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_weights(path)


def test_unknown_format_is_refused(tmp_path: Path):
    with pytest.raises(UserError, match="expected one of safetensors, onnx, state_dict"):
        save_weights(ESPCN(), tmp_path / "x", "tflite", {}, {}, example=lambda: torch.rand(1, 1, 4, 4))
