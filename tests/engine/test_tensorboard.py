import subprocess
import sys
import textwrap

import numpy as np
import pytest

from core.errors import UserError
from engine.tensorboard import fixed_crop, open_tensorboard
from tests.conftest import REPO


def test_off_imports_no_tensorboard(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from engine.tensorboard import open_tensorboard
        assert open_tensorboard(False, {str(tmp_path)!r}) is None
        loaded = [name for name in sys.modules if name.split(".")[0] in ("tensorboard", "torchvision")
                  or name.startswith("torch.utils.tensorboard")]
        assert not loaded, loaded
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.iterdir())


def test_missing_package_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now raises ImportError
    with pytest.raises(UserError, match="pip install tensorboard"):
        open_tensorboard(True, tmp_path)


def test_on_writes_scalars_and_an_image(tmp_path):
    pytest.importorskip("tensorboard")  # listed in requirements.txt; skipped only in a trimmed environment
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = open_tensorboard(True, tmp_path / "tb")
    log.scalars(100, {"step": 100, "stage": "high", "lr": 1e-4, "loss": 0.02, "val_psnr": 30.5, "seconds": 2.0})
    log.scalars(200, {"step": 200, "stage": "high", "lr": 1e-4, "loss": 0.01, "val_psnr": 31.0})
    rng = np.random.default_rng(0)
    log.images(200, "val/crop", rng.random((8, 10, 1)), rng.random((24, 30, 1)), rng.random((24, 30, 1)))
    log.close()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["metrics/val_psnr", "train/loss", "train/lr"]
    assert [(e.step, round(e.value, 4)) for e in events.Scalars("metrics/val_psnr")] == [(100, 30.5), (200, 31.0)]
    [image] = events.Images("val/crop")
    assert image.step == 200 and image.height == 24 + 2 * 4 and image.width == 3 * 30 + 4 * 4


def test_fixed_crop_takes_the_centre_and_its_hr_region():
    lr = np.arange(10 * 12).reshape(10, 12, 1).astype(np.float32)
    hr = np.repeat(np.repeat(lr, 3, axis=0), 3, axis=1)
    crop_lr, crop_hr = fixed_crop(lr, hr, scale=3, size=4)
    assert crop_lr[..., 0].tolist() == lr[3:7, 4:8, 0].tolist()
    assert crop_hr.shape == (12, 12, 1) and np.array_equal(crop_hr[::3, ::3], crop_lr)
    small_lr, small_hr = fixed_crop(lr, hr, scale=3, size=64)
    assert small_lr.shape == lr.shape and small_hr.shape == hr.shape
