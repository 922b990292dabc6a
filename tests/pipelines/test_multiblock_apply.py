"""Applying trained blocks to one's own images: ``python -m pipelines.multiblock.apply`` and ``api.sharpen``.

Small random blocks saved as the phase scripts save them (N1.pt, N2.pt, and N.pt holding both) stand in
for trained ones: what is checked is the path (exact inference, chaining, EXIF, bits, sizes, errors).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.checkpoint import save_checkpoint
from core.entry import cli_entry
from data.io import read_image, to_float
from data.resize import imresize
from inference.multiblock_forward import PATH_ENV
from inference.self_ensemble import self_ensemble
from inference.whole_image import image_to_tensor, tensor_to_image
from models.rcan import Block, MultiBlockNet
from pipelines.multiblock.api import sharpen
from pipelines.multiblock.apply import load_chain, main, sharpen_array
from pipelines.multiblock.export import NET_ARCH
from pipelines.multiblock.run_folder import ARCH
from tests.data.test_exif import tagged_jpeg
from tests.inference.test_multiblock_forward import needs_ort
from tests.scripts.helpers import REPO, run_script

KWARGS = {"n_feats": 8, "n_resblocks": 1, "reduction": 4, "end_conv": True}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A folder with N1.pt, N2.pt (two random clamped blocks, tails scaled up so they change the image) and
    N.pt holding both."""
    folder = tmp_path_factory.mktemp("weights")
    blocks = []
    for index in (1, 2):
        torch.manual_seed(index)
        block = Block(**KWARGS, clamp=True)
        with torch.no_grad():
            block.tail.weight.mul_(4.0)
        save_checkpoint(folder / f"N{index}.pt", {"model": block.state_dict(),
                                                  "meta": {"arch": ARCH, "block": index, **KWARGS}})
        blocks.append(block)
    save_checkpoint(folder / "N.pt", {"model": MultiBlockNet(blocks).state_dict(),
                                      "meta": {"arch": NET_ARCH, "blocks": 2, **KWARGS}})
    return folder


def photo(path: Path, height: int = 30, width: int = 44, seed: int = 0) -> np.ndarray:
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(image).save(path)
    return image


def whole_pass(net: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return tensor_to_image(net(image_to_tensor(to_float(image))).clamp(0, 1))


def run(argv: list[str], capsys) -> tuple[int, list[str], list[str]]:
    """(exit code, stdout lines, stderr lines) of the command in-process."""
    capsys.readouterr()  # what direct calls printed before (their CPU path) is not the command's
    code = 0
    try:
        cli_entry(main, argv)
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out.strip().splitlines(), captured.err.strip().splitlines()


def test_chained_blocks_equal_n_and_the_whole_image_pass(weights: Path, tmp_path: Path):
    image = photo(tmp_path / "a.png")
    chained, summary = load_chain(f"{weights / 'N1.pt'},{weights / 'N2.pt'}")
    combined, _ = load_chain(weights / "N.pt")
    assert summary == "N1.pt -> N2.pt: 2 blocks of 8 features, 1 rcab residual block"
    out = sharpen_array(chained, image, CPU)  # on a CPU: banded, exact
    assert np.array_equal(out, sharpen_array(combined, image, CPU))
    assert np.abs(out - whole_pass(combined, image)).max() < 1e-5
    assert np.abs(out - to_float(image)).max() > 0.05  # the blocks do change the image
    single, _ = load_chain([weights / "N1.pt"])
    assert isinstance(single, Block)


def test_command_writes_8_and_16_bit_pngs_upright_from_exif(weights: Path, tmp_path: Path, capsys):
    (tmp_path / "in").mkdir()
    tagged_jpeg(tmp_path / "in" / "turned.jpg", 6, width=40, height=24)
    photo(tmp_path / "in" / "plain.png")
    net, _ = load_chain(weights / "N.pt")
    for bits in (8, 16):
        out = tmp_path / f"out{bits}"
        code, lines, err = run(["--weights", str(weights / "N.pt"), str(tmp_path / "in"), "--out", str(out),
                                "--bits", str(bits), "--device", "cpu"], capsys)
        assert code == 0 and not err, err
        assert lines[0].startswith("N.pt: 2 blocks of 8 features") and len(lines) == 5
        assert lines[1] == "CPU path: bands (SR_MULTIBLOCK_CPU=bands)"  # as tests/conftest.py pins it
        assert lines[2].startswith(f"[1/2] {tmp_path / 'in' / 'plain.png'} 44x30 -> {out / 'plain.png'} 44x30 in ")
        turned = read_image(out / "turned.png")
        assert turned.shape == (40, 24, 3) and turned.dtype == (np.uint8 if bits == 8 else np.uint16)
        expected = sharpen_array(net, read_image(tmp_path / "in" / "turned.jpg"), CPU)
        assert np.abs(to_float(turned) - expected).max() <= 0.5 / (2**bits - 1) + 1e-6
        assert Image.open(out / "turned.png").getexif().get(0x0112) is None  # upright pixels, no tag


def test_upscale_first_is_matlab_bicubic_then_the_network(weights: Path, tmp_path: Path, capsys):
    image = photo(tmp_path / "small.png", 15, 22)
    code, lines, _err = run(["--weights", str(weights / "N1.pt"), str(tmp_path / "small.png"), "--out",
                             str(tmp_path / "out"), "--upscale-first", "1.5", "--device", "cpu"], capsys)
    assert code == 0 and "22x15 -> " in lines[2] and " 33x23 in " in lines[2]  # MATLAB's ceil(1.5 * size)
    net, _ = load_chain(weights / "N1.pt")
    bicubic = np.clip(imresize(to_float(image), scale=1.5), 0, 1)
    expected = whole_pass(net, bicubic)
    assert np.abs(to_float(read_image(tmp_path / "out" / "small.png")) - expected).max() <= 0.5 / 255 + 1e-5


def test_self_ensemble_is_the_exact_banded_pass_averaged_over_the_8_transforms(weights: Path, tmp_path: Path,
                                                                                capsys):
    image = photo(tmp_path / "a.png", 23, 31)
    net, _ = load_chain(weights / "N.pt")
    x = image_to_tensor(to_float(image))
    with torch.inference_mode():
        expected = tensor_to_image(self_ensemble(net, x).clamp(0, 1))  # whole-image passes
    banded = sharpen_array(net, image, CPU, ensemble=True)  # on a CPU: each pass banded
    assert np.abs(banded - expected).max() < 1e-5
    assert np.abs(banded - sharpen_array(net, image, CPU)).max() > 1e-3
    code, lines, err = run(["--weights", str(weights / "N.pt"), str(tmp_path / "a.png"), "--out",
                            str(tmp_path / "out"), "--device", "cpu", "--self-ensemble", "--bits", "16"], capsys)
    assert code == 0 and not err and "x8 self-ensemble" in lines[0]
    assert np.abs(to_float(read_image(tmp_path / "out" / "a.png")) - banded).max() <= 0.5 / 65535 + 1e-6
    from_python = sharpen(to_float(image), weights / "N.pt", device="cpu", self_ensemble=True)
    assert np.array_equal(from_python, banded)


@needs_ort
def test_on_a_cpu_onnx_runtime_runs_the_whole_image_as_the_bands_would(weights: Path, tmp_path: Path, capsys,
                                                                       monkeypatch):
    image = photo(tmp_path / "in.png", 26, 35)
    net, _ = load_chain(weights / "N.pt")
    banded = sharpen_array(net, image, CPU)
    monkeypatch.setenv("SR_KERNEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(PATH_ENV, "auto")
    code, lines, err = run(["--weights", str(weights / "N.pt"), str(tmp_path / "in.png"), "--out",
                            str(tmp_path / "out"), "--bits", "16", "--device", "cpu"], capsys)
    assert code == 0 and not err, err
    assert lines[1].startswith("CPU path: ONNX Runtime, whole image (est. ")
    assert lines[2].startswith("exporting the network to ONNX") and str(tmp_path / "cache") in lines[2]
    assert np.abs(to_float(read_image(tmp_path / "out" / "in.png")) - banded).max() <= 0.5 / 65535 + 1e-5
    assert np.abs(sharpen(image, weights / "N.pt", device="cpu") - (banded * 255).round()).max() <= 1  # cached


def test_sharpen_from_python_keeps_the_type_and_reads_exif(weights: Path, tmp_path: Path):
    stored = tagged_jpeg(tmp_path / "turned.jpg", 8, width=36, height=20)
    with Image.open(tmp_path / "turned.jpg") as img:
        result = sharpen(img, weights / "N.pt", device="cpu")
    assert isinstance(result, Image.Image) and result.size == (20, 36)
    net, _ = load_chain(weights / "N.pt")
    upright = np.rot90(stored, 1)
    assert np.abs(to_float(np.asarray(result)) - sharpen_array(net, upright, CPU)).max() <= 0.5 / 255 + 1e-6
    deep = (upright.astype(np.uint16) * 257)
    out16 = sharpen(deep, [weights / "N1.pt", weights / "N2.pt"], device="cpu")
    assert out16.dtype == np.uint16 and out16.shape == deep.shape
    out_float = sharpen(to_float(upright), f"{weights / 'N.pt'}", device="cpu", upscale_first=2)
    assert out_float.dtype == np.float32 and out_float.shape == (72, 40, 3)


def test_each_mistake_is_one_line_and_nothing_is_written(weights: Path, tmp_path: Path, capsys):
    photo(tmp_path / "a.png")
    (tmp_path / "other").mkdir()
    photo(tmp_path / "other" / "a.jpg")
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    (tmp_path / "notes.txt").write_text("hello")
    out = tmp_path / "out"
    good = ["--weights", str(weights / "N.pt"), "--device", "cpu", "--out", str(out)]
    cases = {
        "checkpoint not found": ["--weights", str(tmp_path / "missing.pt"), str(tmp_path / "a.png")],
        "is not a multiblock checkpoint": ["--weights", str(REPO / "weights" / "espcn_x3_y.pt"),
                                           str(tmp_path / "a.png")],
        "cannot read image": [str(tmp_path / "a.png"), str(tmp_path / "broken.png")],
        "is not an image file": [str(tmp_path / "notes.txt")],
        "input not found": [str(tmp_path / "nowhere.png")],
        "would both be written to": [str(tmp_path / "a.png"), str(tmp_path / "other" / "a.jpg")],
        "the factor must be more than 1": [str(tmp_path / "a.png"), "--upscale-first", "0.5"],
        "ONNX graph": ["--weights", str(tmp_path / "N.onnx"), str(tmp_path / "a.png")],
    }
    for expected, argv in cases.items():
        code, _lines, err = run([*good, *argv], capsys)
        assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and expected in err[0], (expected, err)
        assert not out.exists(), expected
    code, _lines, err = run([*good, str(tmp_path / "a.png"), "--out", str(tmp_path)], capsys)
    assert code == 2 and "would replace the input" in err[0]


def test_existing_outputs_are_kept_and_a_failure_midway_keeps_the_finished_ones(weights: Path, tmp_path: Path,
                                                                                capsys):
    (tmp_path / "in").mkdir()
    photo(tmp_path / "in" / "a.png")
    photo(tmp_path / "in" / "b.png", seed=1)
    whole = (tmp_path / "in" / "b.png").read_bytes()
    (tmp_path / "in" / "b.png").write_bytes(whole[: len(whole) // 2])  # a valid header, a truncated body
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"earlier result")
    argv = ["--weights", str(weights / "N.pt"), str(tmp_path / "in"), "--out", str(out), "--device", "cpu"]
    code, _lines, err = run(argv, capsys)
    assert code == 2 and len(err) == 1 and f"{out / 'a.png'} already exists; pass --overwrite" in err[0]
    assert (out / "a.png").read_bytes() == b"earlier result"
    code, lines, err = run([*argv, "--overwrite"], capsys)
    assert code == 2 and len(err) == 1 and "b.png" in err[0], err
    assert lines[-1].startswith("[1/2]") and read_image(out / "a.png").shape == (30, 44, 3)
    assert sorted(path.name for path in out.iterdir()) == ["a.png"]  # no partial b.png


@pytest.mark.slow
def test_the_command_as_a_process(weights: Path, tmp_path: Path):
    photo(tmp_path / "a.png")
    done = run_script("-m", "pipelines.multiblock.apply", "--weights", str(weights / "N.pt"), str(tmp_path / "a.png"),
                      "--out", str(tmp_path / "out"), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert read_image(tmp_path / "out" / "a.png").shape == (30, 44, 3)
    done = run_script("-m", "pipelines.multiblock.apply", "--weights", str(tmp_path / "none.pt"),
                      str(tmp_path / "a.png"))
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: checkpoint not found: {tmp_path / 'none.pt'}"]
