"""The Makefile's set-up: creates .venv on a fresh clone, never deletes or fills an environment it did not
create, and with PY=... uses that interpreter as it is. Run with a fake interpreter (no downloads)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")

# "python -m venv DIR" makes DIR/bin/python, which records every command line it is given in calls.log.
FAKE_PYTHON = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  printf '#!/bin/sh\\necho "$*" >> calls.log\\n' > "$3/bin/python"
  chmod +x "$3/bin/python"
fi
"""


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    shutil.copy(REPO / "Makefile", tmp_path)
    shutil.copy(REPO / "requirements.txt", tmp_path)
    (tmp_path / "fake-python").write_text(FAKE_PYTHON)
    (tmp_path / "fake-python").chmod(0o755)
    return tmp_path


def make(clone: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args, f"PYTHON={clone / 'fake-python'}"], cwd=clone,
                          capture_output=True, text=True, check=False)


def calls(clone: Path) -> list[str]:
    log = clone / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_fresh_clone_gets_a_venv_and_requirements_then_reinstalls_in_place(clone: Path):
    assert make(clone, "demo").returncode == 0
    assert calls(clone) == ["-m pip install --quiet --upgrade pip", "-m pip install --quiet -r requirements.txt",
                            "demo.py"]
    (clone / ".venv" / "mine.txt").write_text("kept")
    later = (clone / ".venv" / ".installed").stat().st_mtime + 60
    os.utime(clone / "requirements.txt", (later, later))
    assert make(clone, "demo").returncode == 0
    assert calls(clone)[3:] == ["-m pip install --quiet --upgrade pip", "-m pip install --quiet -r requirements.txt",
                                "demo.py"]
    assert (clone / ".venv" / "mine.txt").read_text() == "kept"


def test_a_venv_make_did_not_create_is_used_as_it_is_and_never_deleted(clone: Path):
    subprocess.run([str(clone / "fake-python"), "-m", "venv", ".venv"], cwd=clone, check=True)
    (clone / ".venv" / "mine.txt").write_text("kept")
    result = make(clone, "demo")
    assert result.returncode == 0 and "was not created by make" in result.stdout
    assert calls(clone) == ["demo.py"]
    assert make(clone, "clean-venv").stdout.strip() == "make: .venv was not created by make; left alone"
    assert (clone / ".venv" / "mine.txt").read_text() == "kept"


def test_py_given_builds_nothing(clone: Path):
    result = make(clone, "demo", f"PY={clone / 'fake-python'}")
    assert result.returncode == 0, result.stderr
    assert f"{clone / 'fake-python'} demo.py" in result.stdout
    assert not (clone / ".venv").exists()
