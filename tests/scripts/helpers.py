"""Running the top-level scripts from tests: in-process through main(argv), or as a real subprocess."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def load_script(name: str) -> ModuleType:
    """Import a top-level script (e.g. 'espcn.py') as a module without running it."""
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py").replace(".", "_"), REPO / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python ARGS`` from the repository root, capturing text output."""
    full_env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"), **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=full_env,
                          timeout=timeout, check=False)
