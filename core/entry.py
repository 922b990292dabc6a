"""A script's entry: its ``main`` run so that a user mistake is one line, a stop says where the checkpoint
is, and a torchrun rank ends without Python's finalization."""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

from core.dist import finish_distributed, launched_by_torchrun
from core.errors import StopRequested, UserError, fail

EXIT_STOPPED = 130


def cli_entry(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """Run ``main(argv)``: a UserError becomes one line on stderr and exit 2; a stop request or Ctrl-C
    exits 130 after saying where the checkpoint is. A file-size limit (``ulimit -f``) fails the write that
    reaches it (EFBIG, reported as one line) instead of killing the process with SIGXFSZ. A torchrun rank
    ends through ``end_torchrun_process`` whichever way it ends; after a normal end it first leaves its
    process group (``core.dist.finish_distributed``): once per process, at the end of the script."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    torchrun = launched_by_torchrun()
    try:
        _run(main, argv)
    except SystemExit as ended:
        if torchrun:
            end_torchrun_process(ended.code)
        raise
    if torchrun:
        finish_distributed()  # the script's one process group, left together once its work is done
        end_torchrun_process(0)


def _run(main: Callable[[list[str] | None], object], argv: list[str] | None) -> None:
    try:
        main(argv)
    except UserError as err:
        fail(str(err))
    except StopRequested as stop:
        print(str(stop), file=sys.stderr, flush=True)
        sys.exit(EXIT_STOPPED)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        sys.exit(EXIT_STOPPED)


def end_torchrun_process(code: int | str | None) -> NoReturn:
    """End a torchrun rank with ``code`` (as ``sys.exit`` takes it) without Python's finalization. A gloo
    worker thread may release its last finished collective (which holds tensors that Python objects point
    to) after finalization has begun; it then needs the GIL, cannot take it, and the process aborts: exit
    -6, "terminate called without an active exception" (seen in 1 of 5 to 25 two-rank runs on a busy 2-core
    machine; gdb: ProcessGroupGloo::runLoop -> ~AsyncBarrierWork -> decref_pyobject -> take_gil ->
    pthread_exit). Every file this project writes is closed by then; only the standard streams need a flush."""
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
