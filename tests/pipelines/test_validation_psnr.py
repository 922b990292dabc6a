"""The validation score that selects checkpoints, computed on the device in torch, equals the numpy oracle;
under torchrun each rank scores its share of the images and all get the one process's mean."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.dist import DistInfo
from core.settings import collect_settings
from data.io import to_float
from data.paired import Pair, PairedImages
from inference.banded import banded_forward
from models.espcn import ESPCN
from models.rcan import Block, orthogonal_init_
from pipelines.espcn.train import validation_psnr
from pipelines.multiblock.train import as_tensor, mean_psnr
from tests import gloo
from tests.inference import metrics_reference as reference
from tests.scripts.helpers import load_script


def test_validation_psnr_equals_the_numpy_reference_for_8_and_16_bit_inputs():
    rng = np.random.default_rng(0)
    hr = [rng.integers(0, 256, (37, 29 + 4 * i, 3), dtype=np.uint8) for i in range(3)]
    lr = [np.clip(h.astype(np.int32) * 257 + rng.integers(-900, 900, h.shape), 0, 65535).astype(np.uint16)
          for h in hr]
    images = PairedImages([Pair(str(i), Path("lr"), Path("hr")) for i in range(3)], lr, hr)
    torch.manual_seed(0)
    net = orthogonal_init_(Block(8, 2)).eval()
    cpu = torch.device("cpu")
    outputs = [banded_forward(net, as_tensor(low, cpu))[0].permute(1, 2, 0).numpy() for low in lr]
    expected = np.mean([reference.psnr(np.clip(out, 0, 1), to_float(high), space="rgb", shave=0)
                        for out, high in zip(outputs, hr, strict=True)])
    assert mean_psnr(net, images, torch.device("cpu")) == pytest.approx(expected, abs=1e-6)


def test_images_reach_the_device_scaled_by_their_own_peak():
    eight, sixteen = np.full((2, 3, 3), 255, np.uint8), np.full((2, 3, 3), 32768, np.uint16)
    assert torch.equal(as_tensor(eight, torch.device("cpu")), torch.ones(1, 3, 2, 3))
    assert torch.allclose(as_tensor(sixteen, torch.device("cpu")), torch.full((1, 3, 2, 3), 32768 / 65535))
    assert torch.allclose(as_tensor(sixteen, torch.device("cpu"))[0].permute(1, 2, 0), torch.from_numpy(
        to_float(sixteen)))


def validation_scores(info: DistInfo | None) -> dict[str, float]:
    """The phase scripts' and espcn.py's validation PSNR of 5 images (3 on rank 0 and 2 on rank 1 of two)."""
    rng = np.random.default_rng(0)
    hr = [rng.integers(0, 256, (30 + 3 * i, 27, 3), dtype=np.uint8) for i in range(5)]
    lr = [np.clip(h.astype(np.int32) + rng.integers(-20, 20, h.shape), 0, 255).astype(np.uint8) for h in hr]
    pairs = PairedImages([Pair(str(i), Path("lr"), Path("hr")) for i in range(5)], lr, hr)
    settings = {**collect_settings(vars(load_script("espcn.py"))), "EVAL_TILE": 16}
    torch.manual_seed(0)
    block, espcn = orthogonal_init_(Block(8, 2)).eval(), ESPCN(settings["SCALE"], 1, (8, 4)).eval()
    cpu = torch.device("cpu")
    with torch.no_grad():
        return {"phases": mean_psnr(block, pairs, cpu, info),
                "espcn": validation_psnr(espcn, [(str(i), h) for i, h in enumerate(hr)], settings, cpu, info)}


def two_rank_worker(rank: int, port: int, out: str) -> None:
    """This rank's scores, and the number of images it scored for each."""
    import pipelines.espcn.train as espcn_train
    import pipelines.multiblock.train as phases_train

    torch.set_num_threads(1)
    gloo.join(rank, port)
    scored = {"phases": 0, "espcn": 0}

    def counting(key: str, metric):
        def counted(*args, **kwargs):
            scored[key] += 1
            return metric(*args, **kwargs)
        return counted

    phases_train.psnr_per_image = counting("phases", phases_train.psnr_per_image)
    espcn_train.psnr = counting("espcn", espcn_train.psnr)
    scores = validation_scores(DistInfo(rank=rank, world_size=2, device=torch.device("cpu")))
    Path(out, f"rank{rank}.json").write_text(json.dumps({"scores": scores, "scored": scored}))
    gloo.leave()


@pytest.mark.slow
def test_two_gloo_ranks_each_score_their_share_and_get_the_one_process_validation_psnr(tmp_path: Path):
    gloo.run_two_ranks(two_rank_worker, str(tmp_path))
    alone = validation_scores(None)
    for rank, share in ((0, 3), (1, 2)):
        seen = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert seen["scored"] == {"phases": share, "espcn": share}
        assert seen["scores"] == pytest.approx(alone, rel=1e-6, abs=0)
