"""The loaded collection indexes, their snapshot files, and when to write snapshots.

Snapshots are written by one background thread, never on a request's path: a search that
finds its index due for a snapshot only asks for one. So a slow, failing (full disk) or
concurrent snapshot can neither fail nor delay a search, and one collection's snapshot is
never written twice at once.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from sqlalchemy.orm import Session

from service.index.collection_index import CollectionIndex, IndexOptions

log = logging.getLogger("facebank.index")
# After a failed snapshot (a full disk, say) the collection is not tried again for this long.
SNAPSHOT_RETRY_SECONDS = 30.0


class SnapshotWriter:
    """A background thread that writes the snapshots asked for, one at a time."""

    def __init__(self, registry: IndexRegistry, retry_seconds: float = SNAPSHOT_RETRY_SECONDS):
        self._registry = registry
        self._retry_seconds = retry_seconds
        self._pending: dict[int, None] = {}  # insertion-ordered set of collection pks
        self._not_before: dict[int, float] = {}
        self._wake = threading.Condition()
        self._closed = False
        self.last_error: str | None = None
        self._thread: threading.Thread | None = None  # started by the first request

    def request(self, collection_pk: int) -> None:
        with self._wake:
            if self._closed or time.monotonic() < self._not_before.get(collection_pk, 0.0):
                return
            self._pending[collection_pk] = None
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="snapshot-writer", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _next(self) -> int | None:
        with self._wake:
            while not self._pending and not self._closed:
                self._wake.wait()
            if self._closed:
                return None
            collection_pk = next(iter(self._pending))
            del self._pending[collection_pk]
            return collection_pk

    def _run(self) -> None:
        while (collection_pk := self._next()) is not None:
            try:
                self._registry.save(collection_pk)
                self.last_error = None
            except Exception as exc:  # a failed snapshot costs only a longer replay at restart
                log.warning("snapshot of collection %s failed: %s", collection_pk, exc)
                self.last_error = f"{type(exc).__name__}: {exc}"
                with self._wake:
                    self._not_before[collection_pk] = time.monotonic() + self._retry_seconds


class IndexRegistry:
    def __init__(
        self,
        directory: Path,
        dim: int,
        network: str,
        snapshot_every: int,
        options: IndexOptions,
    ) -> None:
        self.directory = directory
        self.options = options
        self.dim = dim
        self.network = network
        self.snapshot_every = snapshot_every
        self._indexes: dict[int, CollectionIndex] = {}
        self._lock = threading.Lock()
        self.snapshots = SnapshotWriter(self)

    def snapshot_path(self, collection_pk: int) -> Path:
        return self.directory / f"collection-{collection_pk}.snapshot"

    def _get(self, collection_pk: int) -> CollectionIndex:
        with self._lock:
            index = self._indexes.get(collection_pk)
            if index is None:
                path = self.snapshot_path(collection_pk)
                index = CollectionIndex.load(
                    path, collection_pk, self.dim, self.network, self.options
                )
                self._indexes[collection_pk] = index
            return index

    def synced(self, session: Session, collection_pk: int) -> CollectionIndex:
        """The collection's index with every committed change applied."""
        index = self._get(collection_pk)
        index.sync(session)
        if index.applied_since_snapshot >= self.snapshot_every:
            self.snapshots.request(collection_pk)
        return index

    def save(self, collection_pk: int) -> None:
        """Write the collection's snapshot now, if it is loaded and has unsaved changes."""
        with self._lock:
            index = self._indexes.get(collection_pk)
        if index is not None and index.applied_since_snapshot:
            index.save(self.snapshot_path(collection_pk))

    def watermark(self, collection_pk: int) -> int:
        """The last index event the loaded index applied; 0 when it is not loaded."""
        with self._lock:
            index = self._indexes.get(collection_pk)
        return index.watermark if index is not None else 0

    def drop(self, collection_pk: int) -> None:
        with self._lock:
            index = self._indexes.pop(collection_pk, None)
        if index is None:
            self.snapshot_path(collection_pk).unlink(missing_ok=True)
        else:
            index.drop_snapshot(self.snapshot_path(collection_pk))

    def close(self) -> None:
        """Stop the snapshot thread, then save every index with unsaved changes (shutdown)."""
        self.snapshots.close()
        with self._lock:
            pks = list(self._indexes)
        for collection_pk in pks:
            try:
                self.save(collection_pk)
            except Exception as exc:
                log.warning("snapshot of collection %s at shutdown failed: %s", collection_pk, exc)
