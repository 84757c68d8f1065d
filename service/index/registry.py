"""The loaded collection indexes, their snapshot files, and when to write snapshots."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sqlalchemy.orm import Session

from service.index.collection_index import CollectionIndex, IndexOptions

log = logging.getLogger("facebank.index")


class IndexRegistry:
    def __init__(
        self,
        directory: Path,
        dim: int,
        model_version: str,
        snapshot_every: int,
        options: IndexOptions | None = None,
    ) -> None:
        self.directory = directory
        self.options = options or IndexOptions()
        self.dim = dim
        self.model_version = model_version
        self.snapshot_every = snapshot_every
        self._indexes: dict[int, CollectionIndex] = {}
        self._lock = threading.Lock()

    def snapshot_path(self, collection_pk: int) -> Path:
        return self.directory / f"collection-{collection_pk}.snapshot"

    def _get(self, collection_pk: int) -> CollectionIndex:
        with self._lock:
            index = self._indexes.get(collection_pk)
            if index is None:
                path = self.snapshot_path(collection_pk)
                index = CollectionIndex.load(
                    path, collection_pk, self.dim, self.model_version, self.options
                )
                self._indexes[collection_pk] = index
            return index

    def synced(self, session: Session, collection_pk: int) -> CollectionIndex:
        """The collection's index with every committed change applied."""
        index = self._get(collection_pk)
        index.sync(session)
        if index.applied_since_snapshot >= self.snapshot_every:
            index.save(self.snapshot_path(collection_pk))
        return index

    def drop(self, collection_pk: int) -> None:
        with self._lock:
            self._indexes.pop(collection_pk, None)
        self.snapshot_path(collection_pk).unlink(missing_ok=True)

    def save_all(self) -> None:
        with self._lock:
            indexes = list(self._indexes.values())
        for index in indexes:
            if index.applied_since_snapshot:
                index.save(self.snapshot_path(index.collection_pk))
