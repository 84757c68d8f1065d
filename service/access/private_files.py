"""Files that hold secrets (access keys, camera passwords) and must be readable by the server's
user alone: read only after that is checked."""

from __future__ import annotations

import stat
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
