"""How ``cli_entry`` ends a process: one error line and exit 2; a torchrun rank without finalization."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.scripts.helpers import REPO

SCRIPT = textwrap.dedent("""
    import atexit, sys, torch
    from core.entry import cli_entry
    from core.errors import UserError

    def main(argv):
        atexit.register(lambda: print("finalized", flush=True))
        print("done", end="")  # no newline: still buffered when the process ends
        if argv:
            raise UserError("bad input")

    cli_entry(main, sys.argv[1:])
""")


def run(*args: str, world_size: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", **({"RANK": "0", "WORLD_SIZE": world_size} if world_size else {})}
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False, env=env)


def test_a_torchrun_rank_ends_without_finalization_and_keeps_its_output():
    done = run(world_size="2")
    assert (done.returncode, done.stdout, done.stderr) == (0, "done", "")  # flushed; atexit never ran


def test_a_plain_run_finalizes_and_a_user_error_is_one_line():
    assert run().stdout == "donefinalized\n"
    failed = run("x", world_size="2")  # a torchrun rank's error also ends without finalization
    assert (failed.returncode, failed.stdout, failed.stderr) == (2, "done", "error: bad input\n")
