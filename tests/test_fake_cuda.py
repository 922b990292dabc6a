"""Device mix-ups on the CUDA path, caught on a CPU-only machine.

Under ``FakeTensorMode`` tensors live on a fake ``cuda`` device: shapes, dtypes and devices are tracked and
no kernel runs, and any operation that mixes a CUDA tensor with a CPU tensor (other than a 0-dim CPU scalar,
which real CUDA allows too) raises ``FakeTensorDeviceMismatchError``. The project's own code runs under it
here: the training networks built and moved by the trainer, one training step of a block (phase 1-1's trainer,
its patch sampler on the device) and of ESPCN (espcn.py train's trainer, its sub-images on the device) in
fp32, bf16 and fp16 with the gradient scaler, the EMA update, whole-image and banded inference, and the
metric.

What cannot run there, and how it is covered instead:
- ``loss.backward()``: the autograd engine asks the CUDA driver for the device's stream context before any
  kernel, which a machine without a GPU does not have ("hasPrimaryContext expects a valid device index").
  The test replaces ``Tensor.backward`` by one that gives every parameter a gradient on the parameter's own
  device (where autograd puts it) after checking that the loss lives on that device; gradients follow the
  devices of the forward pass, which runs for real under the fake mode, so a tensor moved to the CPU in the
  forward pass, the loss or the batch still fails here.
- ``Module.to(memory_format=channels_last)`` on parameters that are already fake tensors (``Module._apply``
  swaps tensors, which the fake mode's weak references forbid), so the steps run without channels_last; the
  memory format changes no device.
- reading a value on the host (``.item()``, ``float()``): fake tensors have no data, so the test stops before
  the trainer's host checks and calls the evaluation's parts (inference, metric) directly.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

fake_tensor = pytest.importorskip("torch._subclasses.fake_tensor")

from core.dist import DistInfo  # noqa: E402
from core.settings import RunContext, collect_settings  # noqa: E402
from data.paired import Pair, PairedImages  # noqa: E402
from engine.optimizers import adam, load_optimizer_state  # noqa: E402
from engine.speed import speed_from_settings  # noqa: E402
from engine.trainer import LossWatch  # noqa: E402
from inference.exact_forward import exact_forward  # noqa: E402
from inference.metrics import psnr_per_image, ssim_per_image  # noqa: E402
from models.rcan import Block, MultiBlockNet  # noqa: E402
from pipelines.espcn.train import make_trainer as espcn_trainer  # noqa: E402
from pipelines.espcn.training_data import training_sampler  # noqa: E402
from pipelines.multiblock.chain import FIRST  # noqa: E402
from pipelines.multiblock.phase_settings import PRESETS, catalogue  # noqa: E402
from pipelines.multiblock.rerun import Plan  # noqa: E402
from pipelines.multiblock.resolve import Run  # noqa: E402
from pipelines.multiblock.train import NetworkJob, PhaseImages, block_stages, initial_block, make_trainer  # noqa: E402
from tests.scripts.helpers import load_script  # noqa: E402

CUDA = torch.device("cuda")
GIB = 1 << 30


@pytest.fixture
def fake_cuda(monkeypatch):
    """A fake CUDA device with 40 GiB free (``free`` in the returned dict changes it), its backward, and the
    fake mode (``mode``), entered by a test once its networks are built on the CPU: ``Module.to`` converts
    real parameters to fake ones once, and cannot convert fake ones again."""
    memory = {"free": 40 * GIB}
    monkeypatch.setattr(torch.cuda.amp.common, "amp_definitely_not_available", lambda: False)  # GradScaler, autocast
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (memory["free"], 80 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 0)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)  # bf16 autocast's check

    def backward(loss: torch.Tensor, *args, **kwargs) -> None:  # see the module docstring
        for param in memory["params"]:
            assert loss.device == param.device, f"loss on {loss.device}, parameter on {param.device}"
            param.grad = torch.zeros_like(param)

    monkeypatch.setattr(torch.Tensor, "backward", backward)
    # One-element real tensors would be kept as constants whose operations run for real (on no GPU at all)
    monkeypatch.setattr(fake_tensor, "CONSTANT_NUMEL_LIMIT", 0)
    memory["mode"] = fake_tensor.FakeTensorMode(allow_non_fake_inputs=True)  # entered once the nets are built
    return memory


def tiny_pairs(count: int = 3, size: int = 40) -> PairedImages:
    rng = np.random.default_rng(0)
    lr = [rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8) for _ in range(count)]
    hr = [rng.integers(0, 65536, (size, size + 4, 3), dtype=np.uint16) for _ in range(count)]  # as LR_<i>
    return PairedImages([Pair(f"p{i}", Path(f"p{i}_lr.png"), Path(f"p{i}_hr.png")) for i in range(count)], lr, hr)


def phase_settings(**changes) -> dict:
    return {**catalogue(), **PRESETS["tiny"], "CHANNELS_LAST": "false", "EMA": 0.99, "TEST_CURVE": False,
            **changes}


def one_step(trainer, stage_index: int = 0) -> torch.Tensor:
    """One iteration of the trainer's own step (batch, step, loss watch, EMA) on the fake device."""
    stage = trainer.stages[stage_index]
    if stage.prepare is not None:
        stage.prepare(trainer.net)
    optimizer = stage.make_optimizer(trainer.net)
    watch = LossWatch(trainer.device)
    trainer._step(optimizer, trainer.speed.grad_scaler(trainer.device), 1e-3, 0, watch)
    return watch.total


def on_cuda(*tensors: torch.Tensor) -> bool:
    return all(t.device.type == "cuda" for t in tensors)


def cuda_run(settings: dict, out: Path) -> Run:
    """Phase 1-1 resolved for the (fake) GPU: its speed resolved there, as ``resolve_run`` does."""
    return Run(FIRST, settings, {}, 0, out, out, CUDA, DistInfo(device=CUDA), False, "", Plan("run"),
               speed=speed_from_settings(settings, CUDA))


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_a_block_trains_on_the_device_with_its_data_there(fake_cuda, tmp_path: Path, precision: str):
    s = phase_settings(PRECISION=precision)
    images = tiny_pairs()
    job = NetworkJob(initial_block(s, tmp_path, FIRST, 0), block_stages(s), {})
    with fake_cuda["mode"]:
        trainer = make_trainer(cuda_run(s, tmp_path), job, PhaseImages(images, images, images, images))
        fake_cuda["params"] = list(trainer.net.parameters())
        assert trainer.speed.precision == precision and (trainer.speed.grad_scaler(CUDA) is not None) == (
            precision == "fp16")
        assert trainer.batches.__self__._on_device is not None  # the patches are cropped on the device
        loss_sum = one_step(trainer)
        assert on_cuda(loss_sum, *trainer.net.parameters(), *trainer.average.module.parameters())
        assert on_cuda(*trainer.average._float64)
        one_step(trainer, stage_index=1)  # the clamped stage, with Adam (fused on the GPU)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_espcn_trains_on_the_device_with_its_sub_images_there(fake_cuda, tmp_path: Path, precision: str):
    from models.espcn import ESPCN

    settings = {**collect_settings(vars(load_script("espcn.py"))), "PRECISION": precision, "CHANNELS_LAST": "false",
                "EMA": 0.99, "EPOCHS": 1, "BATCH_SIZE": 4}
    ctx = RunContext(settings, tmp_path, tmp_path, CUDA, 0, False, None)
    rng = np.random.default_rng(0)
    images = [(f"i{i}", rng.integers(0, 256, (60, 63, 3), dtype=np.uint8)) for i in range(2)]
    sampler = training_sampler(images, settings, 0)
    net = ESPCN(settings["SCALE"], settings["CHANNELS"], tuple(settings["FEATURES"]))
    with fake_cuda["mode"]:
        trainer = espcn_trainer(ctx, net, sampler, images, DistInfo(device=CUDA), CUDA,
                                speed_from_settings(settings, CUDA))
        fake_cuda["params"] = list(trainer.net.parameters())
        assert on_cuda(sampler.inputs, sampler.targets)
        loss_sum = one_step(trainer)
        assert on_cuda(loss_sum, *trainer.net.parameters(), *trainer.average.module.parameters())


@pytest.mark.parametrize("free", [40 * GIB, 1 << 20], ids=["whole", "banded"])
def test_inference_and_the_metric_stay_on_the_device(fake_cuda, free: int):
    fake_cuda["free"] = free  # 1 MiB free: the whole-image pass does not fit, the bands run
    net = MultiBlockNet([Block(8, 2, clamp=True), Block(8, 2, clamp=True)]).eval()
    with fake_cuda["mode"]:
        net.to(CUDA)
        with torch.inference_mode():
            lr = torch.rand(1, 3, 70, 52, device=CUDA)
            out = exact_forward(net, lr).clamp_(0.0, 1.0)
            hr = torch.rand(1, 3, 70, 52, device=CUDA)
            assert out.shape == lr.shape and on_cuda(out, psnr_per_image(out, hr, space="y"),
                                                     ssim_per_image(out, hr, space="rgb"))


def test_a_tensor_moved_to_the_cpu_by_hand_is_caught(fake_cuda, tmp_path: Path, monkeypatch):
    """The test's own sensitivity: the training step with its targets moved to the CPU fails."""
    import engine.trainer as trainer_module

    s = phase_settings(PRECISION="fp32")
    images = tiny_pairs()
    job = NetworkJob(initial_block(s, tmp_path, FIRST, 0), block_stages(s), {})
    original = trainer_module.train_step
    monkeypatch.setattr(trainer_module, "train_step",
                        lambda module, inputs, targets, *rest: original(module, inputs, targets.cpu(), *rest))
    with fake_cuda["mode"]:
        trainer = make_trainer(cuda_run(s, tmp_path), job, PhaseImages(images, images, images, images))
        fake_cuda["params"] = list(trainer.net.parameters())
        with pytest.raises(fake_tensor.FakeTensorDeviceMismatchError):
            one_step(trainer)


def test_a_cpu_runs_optimizer_state_resumes_on_the_gpu_where_the_fused_kernel_wants_it(fake_cuda):
    """Adam saved by a CPU run (not fused, ``step`` a CPU tensor) loaded into the GPU run's fused Adam: every
    tensor of its state on the GPU, ``step`` included, and a step runs there."""
    net = torch.nn.Conv2d(3, 4, 3)
    cpu = adam(net.parameters(), torch.device("cpu"), lr=1e-3)
    for param in net.parameters():
        param.grad = torch.ones_like(param)
    cpu.step()
    saved = cpu.state_dict()
    with fake_cuda["mode"]:
        net.to(CUDA)
        gpu = adam(net.parameters(), CUDA, lr=1e-3)
        load_optimizer_state(gpu, saved)
        assert gpu.param_groups[0]["fused"] is True
        for param in net.parameters():
            assert on_cuda(*gpu.state[param].values())
            param.grad = torch.ones_like(param)
        gpu.step()
