"""torchrun with 2 CPU processes (gloo) trains to the same weights as one process with the same global batch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.checkpoint import load_checkpoint
from data.datasets import bundled_photos
from data.synth import synthesise_realsr
from tests.scripts.helpers import REPO, run_script

pytestmark = pytest.mark.slow  # two-rank torchrun subprocesses

TORCHRUN = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node=2"]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "SR_AUTO_PRECISION": "fp32"}
    return subprocess.run([*TORCHRUN, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          check=False, env=env)


def assert_same_weights(a: Path, b: Path, atol: float) -> None:
    first, second = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    assert first.keys() == second.keys()
    for key in first:
        assert torch.allclose(first[key], second[key], atol=atol, rtol=0), key


def test_espcn_two_ranks_match_one_process(tmp_path: Path):
    args = ["train", "--device", "cpu", "--set", "TRAIN_SET=skimage-train", "--set", "EVAL_SETS=skimage-test",
            "--set", "AUGMENT=false", "--set", "EPOCHS=1", "--set", "BATCH_SIZE=16"]
    single = run_script("espcn.py", *args, "--out", str(tmp_path / "one"), env={"OMP_NUM_THREADS": "1"})
    assert single.returncode == 0, single.stderr
    double = torchrun("espcn.py", *args, "--out", str(tmp_path / "two"))
    assert double.returncode == 0, double.stderr[-2000:]
    assert_same_weights(tmp_path / "one" / "latest.pt", tmp_path / "two" / "latest.pt", atol=1e-5)
    assert load_checkpoint(tmp_path / "two" / "latest.pt")["step"] == load_checkpoint(
        tmp_path / "one" / "latest.pt")["step"]


@pytest.fixture(scope="module")
def realsr(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("realsr")
    synthesise_realsr(root, bundled_photos("train"), bundled_photos("test"), max_size=64)
    return root


def test_phase1_1_two_ranks_match_one_process(tmp_path: Path, realsr: Path):
    sets = ["N_FEATS=8", "N_RESBLOCKS=1", "PATCH_SIZE=16", "BATCH_SIZE=4", "ITERS_WARMUP=3",
            "WARMUP_OPTIMIZER=adam", "LR_WARMUP=0.001", "ITERS_CLAMP_HIGH=3", "ITERS_CLAMP_LOW=2",
            "EVAL_EVERY=4", "TEST_CURVE=false", "VAL_FRACTION=0.2"]
    args = ["--data", str(realsr), "--device", "cpu", *[a for s in sets for a in ("--set", s)]]
    single = run_script("phase1_1.py", *args, "--out", str(tmp_path / "one"), env={"OMP_NUM_THREADS": "1"})
    assert single.returncode == 0, single.stderr
    double = torchrun("phase1_1.py", *args, "--out", str(tmp_path / "two"))
    assert double.returncode == 0, double.stderr[-2000:]
    assert_same_weights(tmp_path / "one" / "N1.pt", tmp_path / "two" / "N1.pt", atol=1e-5)
    assert_same_weights(tmp_path / "one" / "N1_latest.pt", tmp_path / "two" / "N1_latest.pt", atol=1e-5)


def test_lr_regeneration_split_across_two_ranks(tmp_path: Path, realsr: Path):
    sets = ["N_FEATS=8", "N_RESBLOCKS=1", "PATCH_SIZE=16", "BATCH_SIZE=4", "ITERS_WARMUP=2",
            "WARMUP_OPTIMIZER=adam", "LR_WARMUP=0.001", "ITERS_CLAMP_HIGH=0", "ITERS_CLAMP_LOW=0",
            "EVAL_EVERY=2", "TEST_CURVE=false", "VAL_FRACTION=0.2"]
    common = ["--data", str(realsr), "--device", "cpu", "--out", str(tmp_path / "run")]
    trained = run_script("phase1_1.py", *common, *[a for s in sets for a in ("--set", s)],
                         env={"OMP_NUM_THREADS": "1"})
    assert trained.returncode == 0, trained.stderr
    regenerated = torchrun("phase1_2.py", *common)
    assert regenerated.returncode == 0, regenerated.stderr[-2000:]
    manifest = json.loads((tmp_path / "run" / "LR_1" / "manifest.json").read_text())
    written = sorted(p.name for p in (tmp_path / "run" / "LR_1").glob("*/*.png"))
    assert manifest["complete"] and manifest["images"] == len(written) == 8  # 6 train + 2 test photos


COUNTING = """
import json, os, runpy, sys
import torch.distributed as dist

calls = {"init_process_group": 0, "destroy_process_group": 0}
for name in calls:
    def counted(*args, _name=name, _original=getattr(dist, name), **kwargs):
        calls[_name] += 1
        return _original(*args, **kwargs)
    setattr(dist, name, counted)
real_exit, folder = os._exit, sys.argv[1]

def exit_after_writing(code):  # a torchrun rank ends with os._exit (core.entry.end_torchrun_process)
    with open(os.path.join(folder, f"calls{os.environ['RANK']}.json"), "w") as handle:
        json.dump({**calls, "code": code}, handle)
    real_exit(code)

os._exit = exit_after_writing
script = sys.argv[2]
sys.argv = [script, *sys.argv[3:]]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
runpy.run_path(script, run_name="__main__")
"""


def test_phase3_joins_one_process_group_per_rank(tmp_path: Path, realsr: Path):
    """phase3.py trains N_3, then writes LR_3, in one process: one process group, created and destroyed once."""
    common = ["--data", str(realsr), "--device", "cpu", "--out", str(tmp_path / "run"), "--set", "PRESET=tiny",
              "--set", "TEST_CURVE=false"]
    for script in ("phase1_1.py", "phase1_2.py", "phase2_1.py", "phase2_2.py"):
        done = run_script(script, *common, env={"OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, done.stderr
    wrapper = tmp_path / "count_groups.py"
    wrapper.write_text(COUNTING)
    done = torchrun(str(wrapper), str(tmp_path), str(REPO / "phase3.py"), *common)
    assert done.returncode == 0, done.stderr[-2000:]
    for rank in (0, 1):
        assert json.loads((tmp_path / f"calls{rank}.json").read_text()) == {
            "init_process_group": 1, "destroy_process_group": 1, "code": 0}
    manifest = json.loads((tmp_path / "run" / "LR_3" / "manifest.json").read_text())
    assert manifest["complete"] and (tmp_path / "run" / "N3.pt").exists()
