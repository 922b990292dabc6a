"""A training run killed with SIGKILL and resumed ends exactly where an uninterrupted run ends."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.checkpoint import load_checkpoint
from tests.scripts.helpers import REPO, run_script

pytestmark = pytest.mark.slow  # a training subprocess killed and resumed

ARGS = ["train", "--device", "cpu", "--set", "TRAIN_SET=skimage-train", "--set", "EVAL_SETS=skimage-test",
        "--set", "AUGMENT=false", "--set", "EPOCHS=4", "--set", "SCALE=3"]
ENV = {"OMP_NUM_THREADS": "1"}


def kill_after_first_checkpoint(out: Path) -> None:
    process = subprocess.Popen([sys.executable, "espcn.py", *ARGS, "--out", str(out)], cwd=REPO,
                               env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (out / "latest.pt").exists():
        assert process.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path: Path):
    reference = run_script("espcn.py", *ARGS, "--out", str(tmp_path / "ref"), env=ENV)
    assert reference.returncode == 0, reference.stderr
    kill_after_first_checkpoint(tmp_path / "run")
    assert load_checkpoint(tmp_path / "run" / "latest.pt")["step"] < load_checkpoint(
        tmp_path / "ref" / "latest.pt")["step"]
    resumed = run_script("espcn.py", *ARGS, "--out", str(tmp_path / "run"), "--resume", env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    for name in ("latest.pt", "best.pt"):
        ref, run = load_checkpoint(tmp_path / "ref" / name), load_checkpoint(tmp_path / "run" / name)
        assert ref["step"] == run["step"]
        for key in ref["model"]:
            assert torch.equal(ref["model"][key], run["model"][key]), (name, key)
    ref_metrics = json.loads((tmp_path / "ref" / "results.json").read_text())["metrics"]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["metrics"] == ref_metrics
