"""The one atomic write: a half-written file never replaces a good one, and a failed write is one line.

A write that fails for a reason outside the program (disk full, a file-size limit, no permission, the
folder removed under a running job) raises ``WriteError``, a ``UserError`` naming the file and the reason;
the temporary file is removed and the previous version of the file, if any, is untouched. Libraries that
write through the handle (``torch.save``, Pillow, matplotlib) may turn the ``OSError`` into their own
exception; the handle remembers the original, so the reason is still reported.
"""
from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from core.errors import UserError

_HINTS = {errno.ENOSPC: "disk full", errno.EFBIG: "file size limit", errno.EDQUOT: "disk quota exceeded",
          errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EROFS: "read-only file system",
          errno.ENOENT: "its folder no longer exists"}


_guarded: set[Path] = set()  # run folders held by this process (core.runs.run_lock): never made again


def guard_folder(folder: Path, guarded: bool) -> None:
    """While a run holds ``folder``, a write below it fails if the folder was removed, instead of silently
    making it again, empty, and carrying on."""
    key = Path(os.path.abspath(folder))
    if guarded:
        _guarded.add(key)
    else:
        _guarded.discard(key)


def _check_guarded(parent: Path) -> None:
    parent = Path(os.path.abspath(parent))
    for folder in _guarded:
        if (folder == parent or folder in parent.parents) and not folder.is_dir():
            raise OSError(errno.ENOENT, f"the run folder {folder} was removed", str(folder))


class WriteError(UserError):
    """A file could not be written; the message names it and says why. Nothing was replaced."""


class _RecordingHandle:
    """A file handle that remembers the OSError of a failed write before a library rewraps it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._raw.write(data)
        except OSError as err:
            self.error = err
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def describe(err: OSError) -> str:
    """'disk full (No space left on device)' and the like."""
    reason = err.strerror or str(err)
    hint = _HINTS.get(err.errno or 0)
    return f"{hint} ({reason})" if hint and hint.lower() != reason.lower() else reason


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` on a temporary file beside ``path``, flush it to disk, then rename it over ``path``.
    Missing folders are made, except a held run folder that was removed (``guard_folder``)."""
    path = Path(path)
    tmp: str | None = None
    handle: _RecordingHandle | None = None
    try:
        _check_guarded(path.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as raw:
            handle = _RecordingHandle(raw)
            write(handle)  # type: ignore[arg-type]
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        cause = handle.error if handle is not None and handle.error is not None else err
        if isinstance(cause, OSError) and not isinstance(err, WriteError):
            raise WriteError(f"cannot write {path}: {describe(cause)}; the file was not changed") from None
        raise
