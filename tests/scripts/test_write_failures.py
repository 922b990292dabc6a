"""A phase whose disk fills up (a checkpoint, or a plot at the end) stops with one line naming the file and
the checkpoint kept, and leaves no temporary file."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch
from matplotlib.figure import Figure

from core.checkpoint import load_checkpoint
from core.entry import cli_entry
from tests.scripts.helpers import load_script
from tests.scripts.test_multiblock_phases import make_pairs, sets

TINY = ["PRESET=tiny", "ITERS_WARMUP=60", "ITERS_CLAMP_HIGH=0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pairs")
    make_pairs(root)
    return root


def run_phase1(data: Path, out: Path, capsys) -> list[str]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(SystemExit) as stop:
            cli_entry(load_script("phase1_1.py").main,
                      ["--data", str(data), "--out", str(out), "--device", "cpu", *sets(TINY)])
    finally:
        torch.set_num_threads(threads)
    assert stop.value.code == 2
    assert not list(out.glob(".*.tmp"))
    return capsys.readouterr().err.strip().splitlines()


def test_disk_full_at_the_second_checkpoint(data, tmp_path, capsys, monkeypatch):
    real_save, calls = torch.save, []

    def save(obj, handle, *args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "run"
    err = run_phase1(data, out, capsys)
    latest = out / "N1_latest.pt"
    assert len(err) == 1 and err[0].startswith("error: cannot write ") and "disk full" in err[0], err
    assert f"the last good checkpoint {latest} is kept" in err[0]
    assert load_checkpoint(latest)["step"] == 30


def test_disk_full_when_plotting(data, tmp_path, capsys, monkeypatch):
    def no_space(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", no_space)
    out = tmp_path / "run"
    err = run_phase1(data, out, capsys)
    assert len(err) == 1 and err[0].startswith(f"error: cannot write {out / 'curves_N1.png'}: disk full"), err
    assert f"the last good checkpoint {out / 'N1_latest.pt'} is kept" in err[0]
    assert not (out / "curves_N1.png").exists()
