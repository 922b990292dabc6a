"""Running the top-level scripts from tests: in-process through main(argv), or as a real subprocess."""
from __future__ import annotations

import os
import subprocess
import sys

from experiments.common import REPO, load_script

__all__ = ["REPO", "load_script", "run_script"]


def run_script(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python ARGS`` from the repository root, capturing text output."""
    full_env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"), **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=full_env,
                          timeout=timeout, check=False)
