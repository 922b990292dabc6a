import csv
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import UserError
from core.runs import prepare_run_dir, read_json, run_lock, update_results
from engine.csv_log import append_results_row


def test_update_results_merges_per_phase(tmp_path: Path):
    update_results(tmp_path, {"phase1": {"metrics": {"Set5": {"model": {"psnr_y": 30.0}}}}})
    update_results(tmp_path, {"phase2": {"metrics": {"Set5": {"model": {"psnr_y": 31.0}}}}})
    update_results(tmp_path, {"phase1": {"iterations": 5}})  # a rerun of phase 1 replaces its own entry only
    results = read_json(tmp_path / "results.json")
    assert results["phase1"] == {"iterations": 5}
    assert results["phase2"]["metrics"]["Set5"]["model"]["psnr_y"] == 31.0
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary files left


def test_results_csv_widens_its_header(tmp_path: Path):
    table = tmp_path / "results.csv"
    append_results_row(table, {"run": "a", "EPOCHS": 3})
    append_results_row(table, {"run": "b", "EPOCHS": 4, "Set5/model/psnr_y": 30.5})
    with table.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["run"] for row in rows] == ["a", "b"]
    assert rows[0]["Set5/model/psnr_y"] == "" and rows[1]["Set5/model/psnr_y"] == "30.5"


def test_corrupt_results_json_is_a_user_error(tmp_path: Path):
    (tmp_path / "results.json").write_text("{broken")
    with pytest.raises(UserError, match="not valid JSON"):
        update_results(tmp_path, {"x": 1})
    assert (tmp_path / "results.json").read_text() == "{broken"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_run_folder_is_a_user_error(tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(UserError, match="cannot write to run folder"):
            prepare_run_dir(locked / "run")
    finally:
        locked.chmod(0o700)


def test_run_folder_under_a_file_is_a_user_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot write to run folder"):
        prepare_run_dir(blocker / "run")


def test_run_lock_refuses_a_second_process_and_not_after_it_dies(tmp_path: Path):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from core.runs import run_lock\n"
         f"with run_lock(Path({str(run)!r})):\n    print('held', flush=True); time.sleep(600)"],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=rf"^run folder {run} is in use by process {holder.pid} "), \
                run_lock(run):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with run_lock(run), run_lock(run):  # a killed holder leaves no lock; one process may nest
        pid, host, token = (run / "run.lock").read_text().split()  # the token proves a rank sees this folder
        assert (pid, host, len(token)) == (str(os.getpid()), socket.gethostname(), 32)
