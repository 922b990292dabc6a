"""User mistakes end a run with one clear line and exit code 2, never a traceback."""
from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

EXIT_USER_ERROR = 2
EXIT_STOPPED = 130


class UserError(Exception):
    """A problem the user can fix (bad path, bad setting, missing input). The message says how."""


class StopRequested(Exception):
    """SIGTERM or Ctrl-C reached a training loop, which wrote its checkpoint first. The message says so."""


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)


def cli_entry(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """Run ``main(argv)``: a UserError becomes one line on stderr and exit 2; a stop request or Ctrl-C
    exits 130 after saying where the checkpoint is. A file-size limit (``ulimit -f``) fails the write that
    reaches it (EFBIG, reported as one line) instead of killing the process with SIGXFSZ."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        main(argv)
    except UserError as err:
        fail(str(err))
    except StopRequested as stop:
        print(str(stop), file=sys.stderr, flush=True)
        sys.exit(EXIT_STOPPED)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
