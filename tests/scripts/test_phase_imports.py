"""A phase script's --help is light: few of the project's modules, none of ESPCN's or the upscalers'."""
from __future__ import annotations

import pytest

from tests.scripts.helpers import run_script

PACKAGES = ("core", "data", "engine", "inference", "models", "pipelines", "experiments", "benchmarks")
COUNT = f"""
import runpy, sys
sys.argv = [sys.argv[1], "--help"]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit:
    pass
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in {PACKAGES!r})))
"""


@pytest.mark.parametrize("script", ["phase1_1.py", "phase2_1.py", "phase4.py"])
def test_a_phase_scripts_help_imports_at_most_35_modules_and_no_espcn(script: str):
    done = run_script("-c", COUNT, script)
    assert done.returncode == 0, done.stderr
    ours = done.stdout.strip().splitlines()[-1].split()  # after the --help text: our modules
    assert "pipelines.multiblock.resolve" in ours  # the count is of a real --help
    assert len(ours) <= 35, ours
    assert not [name for name in ours if "espcn" in name or name.startswith("inference")], ours
