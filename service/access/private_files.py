"""Files that hold secrets (access keys, camera passwords) and must be readable by the server's
user alone: read only after that is checked."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path


class PrivateFileError(ValueError):
    """The file cannot be read, or others can read it; the message says which."""


def read_private(path: Path, holds: str) -> str:
    """The file's text, once its mode shows that only its owner can read it."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise PrivateFileError(f"cannot read {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PrivateFileError(f"{path} can be read by others: chmod 600 it (it holds {holds})")
    return text


class FileWatch:
    """Whether a file was rewritten, replaced or chmod-ed since it was last looked at (its
    mtime, size, inode and mode), looked at no more than once per `every_s`. A file that cannot
    be looked at counts as unchanged until it can."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = _identity(path)
        self._next_check = 0.0

    def changed(self, every_s: float) -> bool:
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + every_s
        seen = _identity(self.path)
        if seen is None or seen == self._seen:
            return False
        self._seen = seen  # a broken file is reported once, not at every look
        return True


def _identity(path: Path) -> tuple[int, ...] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino, status.st_mode)
