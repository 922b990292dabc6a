"""One writer per run folder, with real processes: a second one is refused naming the holder, and a killed
holder does not block --resume (the OS drops an flock with its process)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from core.checkpoint import load_checkpoint
from tests.scripts.helpers import REPO, run_script

ARGS = ["train", "--device", "cpu", "--set", "TRAIN_SET=skimage-train", "--set", "EVAL_SETS=skimage-test",
        "--set", "AUGMENT=false", "--set", "EPOCHS=3", "--set", "SCALE=3"]
ENV = {"OMP_NUM_THREADS": "1"}


def test_second_process_is_refused_and_a_killed_holder_does_not_block_resume(tmp_path: Path):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "espcn.py", *ARGS, "--out", str(out)], cwd=REPO,
                             env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (out / "latest.pt").exists():
            assert first.poll() is None, "training ended before its first checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first.send_signal(signal.SIGSTOP)  # alive and holding the folder for as long as the test needs
        before = {path: path.stat().st_mtime_ns for path in out.iterdir()}
        for extra in ([], ["--resume"]):
            second = run_script("espcn.py", *ARGS, "--out", str(out), *extra, env=ENV)
            assert second.returncode == 2, second.stderr
            assert second.stderr.strip().splitlines() == [
                f"error: run folder {out} is in use by process {first.pid} on {socket.gethostname()} (another run "
                "writes there); wait for it to end, or choose another --out"]
        assert {path: path.stat().st_mtime_ns for path in out.iterdir()} == before
    finally:
        first.kill()
        first.wait()
    assert (out / "run.lock").read_text().split()[0] == str(first.pid)  # the stale lock file stays ...
    resumed = run_script("espcn.py", *ARGS, "--out", str(out), "--resume", env=ENV)  # ... and blocks nothing
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    assert load_checkpoint(out / "latest.pt")["step"] > 0 and (out / "results.json").is_file()
