"""The GPU check's dry run (the same steps at tiny sizes on the CPU) keeps the script working without a GPU."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scripts.helpers import run_script


@pytest.mark.slow
def test_gpu_check_dry_run_runs_every_step(tmp_path: Path):
    done = run_script("benchmarks/gpu_check.py", "--dry-run", "--out", str(tmp_path), timeout=900)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    failed = {name: step.get("error") or step for name, step in report["steps"].items() if not step.get("ok")}
    assert not failed and done.returncode == 0, failed or done.stderr[-2000:]
    assert set(report["steps"]) == {"phases", "devices", "block_step", "espcn_epoch", "espcn_fps", "banded",
                                    "precision", "eval_speed"}
    assert set(report["steps"]["eval_speed"]["score_over_network"]) == {"score_warm", "score_cold"}
    assert report["steps"]["devices"]["final_step"] == 12
    assert report["steps"]["phases"]["phases_in_results"] == ["phase1", "phase2", "phase3", "phase4"]
    assert "fp32 eager" in report["steps"]["block_step"]["variants"]
    assert "Targets" in (tmp_path / "gpu_check.md").read_text()


def test_gpu_check_without_a_gpu_says_so_in_one_line(tmp_path: Path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = run_script("benchmarks/gpu_check.py", "--out", str(tmp_path))
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: no CUDA GPU is visible; run with --dry-run for the CPU rehearsal"]
