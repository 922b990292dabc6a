import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.checkpoint import save_checkpoint
from core.errors import UserError
from models.rcan import Block, MultiBlockNet
from pipelines.multiblock.export import export, main
from tests.conftest import REPO

ARCH = {"n_feats": 8, "n_resblocks": 1, "reduction": 4, "end_conv": True, "resblock": "rcab"}


def combined_checkpoint(path: Path) -> MultiBlockNet:
    torch.manual_seed(0)
    net = MultiBlockNet([Block(**ARCH, clamp=True) for _ in range(3)])
    save_checkpoint(path, {"model": net.state_dict(), "meta": {"arch": "multiblock-net", "blocks": 3, **ARCH}})
    return net.eval()


def test_combined_net_onnx_matches_pytorch_on_an_odd_size(tmp_path: Path, capsys):
    ort = pytest.importorskip("onnxruntime")
    net = combined_checkpoint(tmp_path / "N.pt")
    main(["--weights", str(tmp_path / "N.pt"), "--format", "onnx"])
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'N.onnx'}"
    session = ort.InferenceSession(str(tmp_path / "N.onnx"), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 29, 41, generator=torch.Generator().manual_seed(1))
    [got] = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        want = net(x).numpy()
    assert got.shape == (1, 3, 29, 41) and np.abs(got - want).max() < 1e-4
    architecture = json.loads(session.get_modelmeta().custom_metadata_map["architecture"])
    assert architecture == {"arch": "multiblock-net", **ARCH, "clamp": True, "blocks": 3}


def test_block_safetensors_holds_the_clamped_block(tmp_path: Path):
    pytest.importorskip("safetensors")
    from safetensors import safe_open

    block = Block(**ARCH)
    save_checkpoint(tmp_path / "N1.pt", {"model": block.state_dict(), "meta": {"arch": "multiblock-block",
                                                                                "block": 1, **ARCH}})
    target = export(tmp_path / "N1.pt", "safetensors", tmp_path / "n1.safetensors")
    with safe_open(str(target), framework="pt") as handle:
        assert json.loads(handle.metadata()["architecture"]) == {"arch": "multiblock-block", **ARCH, "clamp": True}
        assert torch.equal(handle.get_tensor("tail.weight"), block.tail.weight)


def test_espcn_weights_are_refused(tmp_path: Path):
    with pytest.raises(UserError, match="is not a multiblock checkpoint"):
        export(REPO / "weights" / "espcn_x3_y.pt", "onnx", tmp_path / "x.onnx")


def test_a_checkpoint_from_before_resblock_exports_as_rcab_and_rb_blocks_say_so(tmp_path: Path):
    pytest.importorskip("safetensors")
    from safetensors import safe_open

    older = {key: value for key, value in ARCH.items() if key != "resblock"}
    save_checkpoint(tmp_path / "N1.pt", {"model": Block(**ARCH).state_dict(),
                                         "meta": {"arch": "multiblock-block", "block": 1, **older}})
    rb = {**ARCH, "resblock": "rb"}
    save_checkpoint(tmp_path / "N2.pt", {"model": Block(**rb).state_dict(),
                                         "meta": {"arch": "multiblock-block", "block": 2, **rb}})
    for name, resblock, words in (("N1", "rcab", "1 x RCAB (Residual channel-attention block"),
                                  ("N2", "rb", "1 x ResBlock (Residual block without attention")):
        target = export(tmp_path / f"{name}.pt", "safetensors", tmp_path / f"{name}.safetensors")
        with safe_open(str(target), framework="pt") as handle:
            metadata = handle.metadata()
        assert json.loads(metadata["architecture"])["resblock"] == resblock
        assert words in metadata["layers"], metadata["layers"]
