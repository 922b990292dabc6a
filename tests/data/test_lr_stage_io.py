"""Regenerated LR_i images are stored losslessly: 16-bit PNG, read back within 1/65535 of the float output."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from data.io import read_image, to_float, write_image


def test_float_image_round_trips_through_16bit_png(tmp_path: Path):
    rng = np.random.default_rng(0)
    image = rng.random((23, 37, 3), dtype=np.float32)
    image[0, 0], image[0, 1] = 0.0, 1.0
    write_image(tmp_path / "lr.png", image, bits=16)
    back = read_image(tmp_path / "lr.png")
    assert back.dtype == np.uint16 and back.shape == image.shape
    assert np.abs(to_float(back) - image).max() <= 1 / 65535
    assert (tmp_path / "lr.png").read_bytes()[24] == 16  # IHDR bit depth


def test_channels_first_network_output_is_written_as_is(tmp_path: Path):
    """The pipeline writes ``tensor[0].numpy().transpose(1, 2, 0)``: a non-contiguous view."""
    chw = np.random.default_rng(1).random((3, 19, 29), dtype=np.float32)
    view = chw.transpose(1, 2, 0)
    assert not view.flags.c_contiguous
    write_image(tmp_path / "lr.png", view, bits=16)
    assert np.abs(to_float(read_image(tmp_path / "lr.png")) - view).max() <= 1 / 65535
