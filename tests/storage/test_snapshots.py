"""Snapshots are written off the request path: never twice at once, never failing a search."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from service.operations.dispatch import Operations
from tests.storage.helpers import make_operations, near, seed_faces, unit_vectors, wait_for


def search_each(operations: Operations, face_id: str) -> list[str]:
    matches = operations.dispatch(
        "SearchFaces", {"CollectionId": "c1", "FaceId": face_id, "FaceMatchThreshold": 90.0}
    )["FaceMatches"]
    return [match["Face"]["FaceId"] for match in matches]


def test_concurrent_searches_with_a_snapshot_after_every_change(tmp_path: Path) -> None:
    operations = make_operations(f"sqlite:///{tmp_path / 'db'}", tmp_path, snapshot_every=1)
    operations.dispatch("CreateCollection", {"CollectionId": "c1"})
    anchor = unit_vectors(1, seed=3)[0]
    ids = seed_faces(operations, "c1", np.stack([anchor, near(anchor, 0.02, 1)]))
    failures: list[BaseException] = []
    stop = threading.Event()

    def index_more() -> None:
        for seed in range(60):
            seed_faces(operations, "c1", unit_vectors(5, seed=100 + seed))
        stop.set()

    def keep_searching() -> None:
        while not stop.is_set():
            try:
                assert search_each(operations, ids[0]) == [ids[1]]
            except BaseException as exc:
                failures.append(exc)
                return

    threads = [threading.Thread(target=index_more)]
    threads += [threading.Thread(target=keep_searching) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    indexes = operations.context.indexes
    assert wait_for(lambda: indexes.snapshot_path(1).exists())
    indexes.close()  # the writer has finished: no staging file is left behind
    assert indexes.snapshots.last_error is None
    assert list(indexes.directory.glob("*.tmp")) == []


def test_a_failing_snapshot_never_fails_a_search(tmp_path: Path) -> None:
    operations = make_operations(f"sqlite:///{tmp_path / 'db'}", tmp_path, snapshot_every=1)
    indexes = operations.context.indexes
    indexes.directory.parent.mkdir(parents=True, exist_ok=True)
    indexes.directory.write_text("a file where the snapshot folder should be")
    operations.dispatch("CreateCollection", {"CollectionId": "c1"})
    anchor = unit_vectors(1, seed=4)[0]
    ids = seed_faces(operations, "c1", np.stack([anchor, near(anchor, 0.02, 2)]))
    assert search_each(operations, ids[0]) == [ids[1]]
    assert wait_for(lambda: indexes.snapshots.last_error is not None)
    assert search_each(operations, ids[0]) == [ids[1]]
    indexes.directory.unlink()  # space (here: the folder) comes back: the next snapshot lands
    indexes.snapshots._not_before.clear()
    seed_faces(operations, "c1", unit_vectors(1, seed=5))
    assert search_each(operations, ids[0]) == [ids[1]]
    assert wait_for(lambda: indexes.snapshot_path(1).exists())
    indexes.close()
