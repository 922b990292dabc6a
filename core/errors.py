"""User mistakes end a run with one clear line and exit code 2, never a traceback (``core.entry.cli_entry``
turns these errors into that line)."""
from __future__ import annotations

import sys
from typing import NoReturn

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem the user can fix (bad path, bad setting, missing input). The message says how."""


class StopRequested(Exception):
    """SIGTERM or Ctrl-C reached a training loop, which wrote its checkpoint first. The message says so."""


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)
