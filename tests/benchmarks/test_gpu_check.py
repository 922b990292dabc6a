"""The GPU check's dry run (the same steps at tiny sizes on the CPU) keeps the script working without a GPU,
and its verdicts come from what it measured: a step that raises or misses a target fails, with its reason,
while the other steps still run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import gpu_check
from tests.scripts.helpers import run_script


@pytest.mark.slow
def test_gpu_check_dry_run_runs_every_step(tmp_path: Path):
    done = run_script("benchmarks/gpu_check.py", "--dry-run", "--out", str(tmp_path), timeout=900)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    failed = {name: step.get("why") for name, step in report["steps"].items() if not step.get("ok")}
    assert not failed and done.returncode == 0, failed or done.stderr[-2000:]
    assert set(report["steps"]) == set(gpu_check.STEPS)
    assert report["summary"] == f"{len(gpu_check.STEPS)} of {len(gpu_check.STEPS)} steps ok"
    steps = report["steps"]
    assert steps["devices"]["resumed_from_step"] == 8 and steps["devices"]["final_step"] == 12
    assert steps["ddp"]["seen"]["backend"] == "gloo" and steps["ddp"]["seen"]["ddp"] == "DistributedDataParallel"
    assert steps["ddp"]["phase3"]["returncode"] == 0
    assert steps["phases"]["targets"][1]["value"] == ["phase1", "phase2", "phase3", "phase4"]
    assert "fp32 eager" in steps["block_step"]["variants"]
    for step in steps.values():  # every step judged something it measured
        assert step["targets"] and all(isinstance(t["met"], bool) for t in step["targets"])


def test_a_step_that_raises_or_misses_a_target_fails_with_its_reason_and_the_others_run(tmp_path: Path,
                                                                                        monkeypatch):
    def broken(_check):
        raise ValueError("made to fail")

    def missed(_check):
        return {"targets": [gpu_check.target("two plus two is five", 4, 4 == 5)]}

    def slow_but_dry(_check):  # a speed target is not judged on a dry run; its correctness target is
        return {"targets": [gpu_check.target("fast", 1.0, False, speed=True), gpu_check.target("right", 1, True)]}

    monkeypatch.setitem(gpu_check.STEPS, "banded", broken)
    monkeypatch.setitem(gpu_check.STEPS, "precision", missed)
    monkeypatch.setitem(gpu_check.STEPS, "eval_speed", slow_but_dry)
    code = gpu_check.main(["--dry-run", "--out", str(tmp_path), "--steps", "banded,precision,eval_speed"])
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = report["steps"]
    assert code == 1 and list(steps) == ["banded", "precision", "eval_speed"]
    assert not steps["banded"]["ok"] and steps["banded"]["why"] == "ValueError: made to fail"
    assert not steps["precision"]["ok"] and steps["precision"]["why"] == "two plus two is five: got 4"
    assert steps["eval_speed"]["ok"]
    assert report["summary"] == "2 of 3 steps failed: banded, precision"
    text = (tmp_path / "gpu_check.md").read_text()
    assert "**2 of 3 steps failed: banded, precision**" in text
    assert "| banded | NO |" in text and "ValueError: made to fail" in text
    assert "| precision | NO |" in text and "two plus two is five: got 4" in text


def test_a_step_without_targets_is_not_ok(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(gpu_check.STEPS, "banded", lambda _check: {"targets": []})
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path), "--steps", "banded"]) == 1
    assert json.loads((tmp_path / "gpu_check.json").read_text())["steps"]["banded"]["why"] == \
        "the step judged no target"


def test_gpu_check_without_a_gpu_says_so_in_one_line(tmp_path: Path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = run_script("benchmarks/gpu_check.py", "--out", str(tmp_path))
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: no CUDA GPU is visible; run with --dry-run for the CPU rehearsal"]
