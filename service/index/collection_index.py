"""Per-collection face and user indexes that catch up from the database's event log.

The database is the source of truth. An index holds a watermark: the last `index_events` id it
has applied. `sync` applies newer events (reading embeddings from the faces table), so calling
it before every search makes search reflect every committed write, including writes committed
just before a crash, or by another replica sharing the database. Snapshots (index plus
watermark, written atomically) make a restart read only the events since the last snapshot; a
missing or unreadable snapshot is rebuilt by replaying the whole log.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.index.device_vectors import DeviceFlatVectors
from service.index.vectors import FlatVectors, IvfVectors, VectorSet, deserialize
from service.storage.schema import FaceRow, IndexEventRow

log = logging.getLogger("facebank.index")
EVENT_BATCH = 50_000
# SQLite binds at most 32,766 parameters per statement (PostgreSQL 65,535): fetch in chunks.
IN_CHUNK = 10_000


@dataclass(frozen=True)
class IndexOptions:
    """From Settings (FACEBANK_INDEX_KIND, FACEBANK_IVF_*, the search backend). `kind` "flat"
    is exact; "ivf" switches a collection's faces to IVF once it holds `ivf_min_vectors` faces
    (user vectors stay exact: there are far fewer of them). `search_device` names a torch
    device for exact searches ("" keeps them in FAISS on the host)."""

    kind: str
    ivf_min_vectors: int
    ivf_nprobe: int
    search_device: str

    def exact(self, dim: int, index: Any = None) -> FlatVectors:
        """An exact vector set, on the search device if there is one."""
        if self.search_device:
            return DeviceFlatVectors(dim, torch.device(self.search_device), index)
        return FlatVectors(dim, index)


def user_vector(embeddings: list[bytes]) -> np.ndarray | None:
    """The user's vector: the normalised mean of its faces' unit vectors."""
    if not embeddings:
        return None
    mean = np.mean([np.frombuffer(e, dtype=np.float32) for e in embeddings], axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm).astype(np.float32) if norm > 0 else None


class CollectionIndex:
    def __init__(self, collection_pk: int, dim: int, network: str, options: IndexOptions) -> None:
        self.collection_pk = collection_pk
        self.dim = dim
        self.network = network
        self.options = options
        self.faces: VectorSet = self.options.exact(dim)
        self.users: VectorSet = self.options.exact(dim)
        self.watermark = 0
        self.applied_since_snapshot = 0
        self.lock = threading.RLock()
        # Held while a snapshot file is written or removed: one writer of the file at a time,
        # and none after the collection is dropped. Searches never wait on it.
        self.snapshot_lock = threading.Lock()
        self.dropped = False

    # --- catching up --------------------------------------------------------------------
    def sync(self, session: Session) -> int:
        """Apply every committed event above the watermark; returns how many were applied."""
        applied = 0
        with self.lock:
            while True:
                events = session.execute(
                    select(IndexEventRow.pk, IndexEventRow.kind, IndexEventRow.target_pk)
                    .where(IndexEventRow.collection_pk == self.collection_pk)
                    .where(IndexEventRow.pk > self.watermark)
                    .order_by(IndexEventRow.pk)
                    .limit(EVENT_BATCH)
                ).all()
                if not events:
                    break
                self._apply(session, [(kind, target) for _, kind, target in events])
                self.watermark = int(events[-1][0])
                applied += len(events)
            self.applied_since_snapshot += applied
            self._maybe_switch_to_ivf()
        return applied

    def _maybe_switch_to_ivf(self) -> None:
        options = self.options
        if (
            options.kind == "ivf"
            and not isinstance(self.faces, IvfVectors)
            and len(self.faces) >= options.ivf_min_vectors
        ):
            log.info(
                "collection %s: training IVF over %d faces", self.collection_pk, len(self.faces)
            )
            self.faces = IvfVectors.train_from(self.faces, options.ivf_nprobe)
            self.applied_since_snapshot += 1  # make the next snapshot keep the trained index

    def _apply(self, session: Session, events: list[tuple[str, int]]) -> None:
        # Consecutive events of one kind are applied together; order across kinds is kept.
        run: list[int] = []
        kind_of_run = ""
        for kind, target in [*events, ("", 0)]:
            if kind != kind_of_run and run:
                self._apply_run(session, kind_of_run, run)
                run = []
            kind_of_run = kind
            run.append(target)

    def _apply_run(self, session: Session, kind: str, targets: list[int]) -> None:
        if kind == "face_add":
            for start in range(0, len(targets), IN_CHUNK):
                self._add_faces(session, targets[start : start + IN_CHUNK])
        elif kind == "face_remove":
            self.faces.remove(np.array(targets, dtype=np.int64))
        elif kind == "user_update":
            for user_pk in dict.fromkeys(targets):
                self._refresh_user(session, user_pk)

    def _add_faces(self, session: Session, face_pks: list[int]) -> None:
        rows = session.execute(
            select(FaceRow.pk, FaceRow.embedding).where(FaceRow.pk.in_(face_pks))
        ).all()  # faces deleted since are absent: their removal event follows
        if rows:
            ids = np.array([row[0] for row in rows], dtype=np.int64)
            vectors = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
            self.faces.upsert(ids, vectors.reshape(len(rows), self.dim))

    def _refresh_user(self, session: Session, user_pk: int) -> None:
        embeddings = session.scalars(
            select(FaceRow.embedding).where(FaceRow.user_pk == user_pk)
        ).all()
        vector = user_vector(list(embeddings))
        ids = np.array([user_pk], dtype=np.int64)
        if vector is None:
            self.users.remove(ids)
        else:
            self.users.upsert(ids, vector[None])

    # --- snapshots ----------------------------------------------------------------------
    def restore(self, data: np.ndarray) -> VectorSet:
        vectors = deserialize(self.dim, data, self.options.ivf_nprobe)
        if isinstance(vectors, IvfVectors):
            return vectors
        return self.options.exact(self.dim, vectors.index)

    def save(self, path: Path) -> None:
        """Write the snapshot atomically (a unique staging file, fsync, rename). Raises on
        failure, leaving the previous snapshot and the pending-change count as they were."""
        with self.snapshot_lock:
            if self.dropped:
                return
            with self.lock:
                meta = {
                    "watermark": self.watermark,
                    "dim": self.dim,
                    # the key snapshots have always had; it names the network
                    "model_version": self.network,
                    "collection_pk": self.collection_pk,
                }
                faces, users = self.faces.serialize(), self.users.serialize()
                captured = self.applied_since_snapshot
            _write_atomically(path, meta, faces, users)
            with self.lock:
                self.applied_since_snapshot -= captured

    def drop_snapshot(self, path: Path) -> None:
        """Remove the snapshot for good: a save racing with this one writes nothing."""
        with self.snapshot_lock:
            self.dropped = True
            path.unlink(missing_ok=True)

    @classmethod
    def load(
        cls,
        path: Path,
        collection_pk: int,
        dim: int,
        network: str,
        options: IndexOptions,
    ) -> CollectionIndex:
        """The snapshot at `path`, or an empty index (watermark 0) if it is missing or unusable."""
        index = cls(collection_pk, dim, network, options)
        if not path.exists():
            return index
        try:
            with np.load(path) as archive:
                meta = json.loads(archive["meta"].tobytes())
                if (meta["dim"], meta["model_version"], meta["collection_pk"]) != (
                    dim,
                    network,
                    collection_pk,
                ):
                    raise ValueError(f"snapshot describes another index: {meta}")
                index.faces = index.restore(archive["faces"])
                index.users = index.restore(archive["users"])
                index.watermark = int(meta["watermark"])
        except Exception as exc:  # any unreadable snapshot is rebuilt from the database
            log.warning("snapshot %s unusable (%s); rebuilding from the database", path, exc)
            return cls(collection_pk, dim, network, options)
        return index


def _write_atomically(
    path: Path, meta: dict[str, Any], faces: np.ndarray, users: np.ndarray
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(dir=path.parent, prefix=f"{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(
                handle,
                meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                faces=faces,
                users=users,
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
