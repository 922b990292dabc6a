"""`espcn.py upscale` of a photo tagged "rotate 90" gives the displayed orientation, scaled."""
from __future__ import annotations

from pathlib import Path

from data.io import read_image
from tests.data.test_exif import tagged_jpeg
from tests.scripts.helpers import REPO, load_script


def test_a_rotated_photo_is_upscaled_as_displayed(tmp_path: Path):
    tagged_jpeg(tmp_path / "photo.jpg", 6)  # stored 200x120, shown 120x200
    load_script("espcn.py").main(["upscale", "--weights", str(REPO / "weights" / "espcn_x3_y.pt"), "--device",
                                  "cpu", str(tmp_path / "photo.jpg"), "--out", str(tmp_path / "out")])
    assert read_image(tmp_path / "out" / "photo_x3.png").shape == (600, 360, 3)  # 360 wide, 600 high
