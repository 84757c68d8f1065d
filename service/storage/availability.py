"""Whether the storage takes writes: a full disk is a condition to report and recover from,
not an internal error.

A write that fails because the disk is full (SQLite's SQLITE_FULL, PostgreSQL's disk_full
53100, or ENOSPC) is answered as a retryable ServiceUnavailableException and marks storage
full. Readiness then probes the data directory (a small write, synced and removed): when it
succeeds the mark is cleared, as it is by the next write that commits.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

POSTGRES_DISK_FULL = "53100"
PROBE_BYTES = 1 << 20


def is_storage_full(exc: BaseException) -> bool:
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(cause, sqlite3.Error):
        return getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    if getattr(cause, "sqlstate", None) == POSTGRES_DISK_FULL:
        return True
    return isinstance(cause, OSError) and cause.errno == errno.ENOSPC


class StorageHealth:
    def __init__(self, probe_dir: Path | None = None) -> None:
        self.probe_dir = probe_dir
        self._full_since: float | None = None
        self._lock = threading.Lock()

    def write_failed(self, exc: BaseException) -> bool:
        """Record a failed write; True when it failed because storage is full."""
        if not is_storage_full(exc):
            return False
        with self._lock:
            self._full_since = self._full_since or time.time()
        return True

    def write_committed(self) -> None:
        self._full_since = None

    def full_since(self) -> float | None:
        """When storage was found full, or None when it takes writes (probed again here)."""
        if self._full_since is not None and self._probe():
            self.write_committed()
        return self._full_since

    def _probe(self) -> bool:
        if self.probe_dir is None:
            return False
        try:
            with tempfile.TemporaryFile(dir=self.probe_dir) as handle:
                handle.write(b"\0" * PROBE_BYTES)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:
            return False
        return True


def database_problem(reader: sessionmaker[Session]) -> str | None:
    """Why the database cannot be reached now (the error's name), or None when it answers."""
    try:
        with reader() as session:
            session.execute(select(1))
    except SQLAlchemyError as exc:
        return f"{type(exc.orig if isinstance(exc, DBAPIError) else exc).__name__}"
    return None
