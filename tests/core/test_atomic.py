"""Failed writes: one line naming the file and the reason, the previous file intact, no temporary left."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import core.atomic as atomic
from core.atomic import WriteError, atomic_write
from core.checkpoint import keeps_checkpoint, load_checkpoint, save_checkpoint
from core.errors import UserError
from core.runs import run_lock

REPO = Path(__file__).resolve().parents[2]


def test_disk_full_keeps_the_previous_file_and_no_temporary(tmp_path: Path):
    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"model": {}, "step": 1})

    def full(handle):
        handle.write(b"x" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(WriteError, match=rf"cannot write {path}: disk full \(No space left on device\)"):
        atomic_write(path, full)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


class FullDisk:
    """A file that takes ``room`` bytes, then fails every write with ENOSPC."""

    def __init__(self, raw, room: int) -> None:
        self.raw, self.room = raw, room

    def write(self, data) -> int:
        self.room -= len(data)
        if self.room < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.raw.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.raw.close()

    def __getattr__(self, name):
        return getattr(self.raw, name)


def test_torch_rewrapping_the_error_still_reports_the_reason(tmp_path: Path, monkeypatch):
    """torch.save turns a failed write into its own RuntimeError; the handle kept the reason."""
    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode), room=4096))
    with open(tmp_path / "plain.pt", "wb") as plain, pytest.raises(RuntimeError) as raw_error:
        torch.save({"w": torch.zeros(10_000)}, FullDisk(plain, room=4096))  # what torch raises on a full disk
    assert not isinstance(raw_error.value, OSError)
    (tmp_path / "plain.pt").unlink()
    with pytest.raises(WriteError, match=rf"cannot write {tmp_path / 'latest.pt'}: disk full"):
        save_checkpoint(tmp_path / "latest.pt", {"model": {"w": torch.zeros(10_000)}})
    assert list(tmp_path.iterdir()) == []


def test_a_run_folder_removed_under_its_run_is_not_made_again(tmp_path: Path):
    run = tmp_path / "run"
    atomic_write(tmp_path / "new" / "x.txt", lambda handle: handle.write(b"x"))  # other folders are made
    with run_lock(run):
        shutil.rmtree(run)
        with pytest.raises(WriteError, match=rf"cannot write {run / 'log.csv'}: its folder no longer exists"):
            atomic_write(run / "log.csv", lambda handle: handle.write(b"step\n"))
        assert not run.exists()
    atomic_write(run / "log.csv", lambda handle: handle.write(b"step\n"))  # no longer held: made again


def test_keeps_checkpoint_names_the_checkpoint_kept(tmp_path: Path):
    latest = tmp_path / "latest.pt"
    save_checkpoint(latest, {"model": {}, "step": 3})
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    with pytest.raises(UserError) as info, keeps_checkpoint(latest):
        atomic_write(blocker / "curves.png", lambda handle: handle.write(b"x"))
    assert f"the last good checkpoint {latest} is kept" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_file_size_limit_ends_a_real_process_with_one_line(tmp_path: Path):
    """A real limit (RLIMIT_FSIZE, as on a nearly full disk): the second, larger checkpoint does not fit."""
    script = textwrap.dedent(f"""
        import resource, sys, torch
        from pathlib import Path
        from core.checkpoint import keeps_checkpoint, save_checkpoint
        from core.entry import cli_entry

        def main(argv):
            latest = Path({str(tmp_path / 'latest.pt')!r})
            save_checkpoint(latest, {{"model": {{"w": torch.zeros(100)}}, "step": 1}})
            resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
            with keeps_checkpoint(latest):
                save_checkpoint(latest, {{"model": {{"w": torch.zeros(100_000)}}, "step": 2}})

        cli_entry(main, [])
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    latest = tmp_path / "latest.pt"
    assert lines[0].startswith(f"error: cannot write {latest}: file size limit (File too large)"), lines[0]
    assert f"the last good checkpoint {latest} is kept" in lines[0]
    assert load_checkpoint(latest)["step"] == 1 and [p.name for p in tmp_path.iterdir()] == ["latest.pt"]
