"""Collections, faces, users and their indexes on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service import errors
from service.index.vectors import IvfVectors
from service.operations.dispatch import Operations
from tests.storage.helpers import (
    face_count_in_db,
    insert_faces,
    make_operations,
    near,
    seed_faces,
    unit_vectors,
    wait_for,
)


@pytest.fixture
def ops(database_url: str, tmp_path: Path, search_backend: str) -> Operations:
    operations = make_operations(database_url, tmp_path, search=search_backend)
    operations.dispatch("CreateCollection", {"CollectionId": "c1"})
    return operations


def search(ops: Operations, face_id: str, **extra: object) -> list[str]:
    response = ops.dispatch("SearchFaces", {"CollectionId": "c1", "FaceId": face_id, **extra})
    return [match["Face"]["FaceId"] for match in response["FaceMatches"]]


def test_collection_lifecycle(ops: Operations) -> None:
    with pytest.raises(errors.ResourceAlreadyExistsError):
        ops.dispatch("CreateCollection", {"CollectionId": "c1"})
    described = ops.dispatch("DescribeCollection", {"CollectionId": "c1"})
    assert (described["FaceCount"], described["UserCount"]) == (0, 0)
    assert described["CollectionARN"].endswith(":collection/c1")
    ops.dispatch("DeleteCollection", {"CollectionId": "c1"})
    with pytest.raises(errors.ResourceNotFoundError):
        ops.dispatch("DescribeCollection", {"CollectionId": "c1"})
    with pytest.raises(errors.ResourceNotFoundError):
        ops.dispatch("DeleteCollection", {"CollectionId": "c1"})


def test_search_finds_neighbours_never_itself_and_respects_threshold(ops: Operations) -> None:
    anchor = unit_vectors(1, seed=1)[0]
    friends = np.stack([near(anchor, 0.02, seed) for seed in range(3)])
    strangers = unit_vectors(50, seed=2)
    ids = seed_faces(ops, "c1", np.vstack([anchor[None], friends, strangers]))
    found = search(ops, ids[0])
    assert ids[0] not in found
    assert set(found) == set(ids[1:4])  # random 128-d vectors are far below 80
    assert search(ops, ids[0], MaxFaces=2) == found[:2]
    assert search(ops, ids[0], FaceMatchThreshold=0.0, MaxFaces=4096)[:3] == found
    with pytest.raises(errors.InvalidParameterError):
        search(ops, "00000000-0000-0000-0000-000000000000")


def test_deletes_show_in_search_at_once(ops: Operations) -> None:
    anchor = unit_vectors(1, seed=3)[0]
    ids = seed_faces(ops, "c1", np.stack([anchor, near(anchor, 0.02, 1), near(anchor, 0.02, 2)]))
    assert len(search(ops, ids[0])) == 2
    response = ops.dispatch("DeleteFaces", {"CollectionId": "c1", "FaceIds": [ids[1], ids[1]]})
    assert response["DeletedFaces"] == [ids[1]]
    assert search(ops, ids[0]) == [ids[2]]
    missing = ops.dispatch("DeleteFaces", {"CollectionId": "c1", "FaceIds": [ids[1]]})
    assert missing["UnsuccessfulFaceDeletions"] == [
        {"FaceId": ids[1], "Reasons": ["FACE_NOT_FOUND"]}
    ]
    assert ops.dispatch("DescribeCollection", {"CollectionId": "c1"})["FaceCount"] == 2


def test_failed_write_leaves_no_trace(ops: Operations) -> None:
    class FaultError(Exception):
        pass

    anchor = unit_vectors(1, seed=4)[0]
    kept = seed_faces(ops, "c1", anchor[None])
    with pytest.raises(FaultError), ops.context.write() as session:
        insert_faces(session, "c1", np.stack([near(anchor, 0.02, 1), near(anchor, 0.02, 2)]))
        raise FaultError  # after the rows and their index events were written, before commit
    assert face_count_in_db(ops, "c1") == 1
    assert ops.dispatch("DescribeCollection", {"CollectionId": "c1"})["FaceCount"] == 1
    assert search(ops, kept[0], FaceMatchThreshold=0.0) == []
    assert [f["FaceId"] for f in ops.dispatch("ListFaces", {"CollectionId": "c1"})["Faces"]] == kept


def test_restart_catches_up_from_snapshot_and_rebuilds_a_corrupt_one(
    database_url: str, tmp_path: Path, search_backend: str
) -> None:
    first = make_operations(database_url, tmp_path, snapshot_every=5, search=search_backend)
    first.dispatch("CreateCollection", {"CollectionId": "c1"})
    anchor = unit_vectors(1, seed=5)[0]
    ids = seed_faces(first, "c1", np.vstack([anchor[None], unit_vectors(10, seed=6)]))
    search(first, ids[0])  # syncs, and asks for a snapshot (10 or more changes)
    snapshot = first.context.indexes.snapshot_path(1)
    assert wait_for(snapshot.exists)
    later = seed_faces(first, "c1", near(anchor, 0.02, 9)[None])  # after the snapshot
    restarted = make_operations(
        database_url, tmp_path, snapshot_every=10_000, search=search_backend
    )
    index = restarted.context.indexes._get(1)
    assert 0 < index.watermark < 12  # loaded from the snapshot, not from zero
    assert search(restarted, ids[0]) == later  # the face indexed after the snapshot is there
    snapshot.write_bytes(b"garbage")
    rebuilt = make_operations(database_url, tmp_path, search=search_backend)
    assert rebuilt.context.indexes._get(1).watermark == 0
    assert search(rebuilt, ids[0]) == later


def test_list_faces_pages_and_tokens_are_tamper_proof(ops: Operations) -> None:
    ids = seed_faces(ops, "c1", unit_vectors(25, seed=7))
    seen, token = [], None
    while True:
        request = {
            "CollectionId": "c1",
            "MaxResults": 10,
            **({"NextToken": token} if token else {}),
        }
        page = ops.dispatch("ListFaces", request)
        seen += [face["FaceId"] for face in page["Faces"]]
        token = page.get("NextToken")
        if token is None:
            break
    assert seen == ids
    first = ops.dispatch("ListFaces", {"CollectionId": "c1", "MaxResults": 10})["NextToken"]
    body, mac = first.split(".")
    forged = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + mac
    for bad in (forged, "not-a-token", first + "x"):
        with pytest.raises(errors.InvalidPaginationTokenError):
            ops.dispatch("ListFaces", {"CollectionId": "c1", "NextToken": bad})
    ops.dispatch("CreateCollection", {"CollectionId": "c2"})
    with pytest.raises(errors.InvalidPaginationTokenError):  # a token of another listing
        ops.dispatch("ListFaces", {"CollectionId": "c2", "NextToken": first})


def test_list_collections_pages(ops: Operations) -> None:
    for i in range(2, 6):
        ops.dispatch("CreateCollection", {"CollectionId": f"c{i}"})
    page = ops.dispatch("ListCollections", {"MaxResults": 3})
    rest = ops.dispatch("ListCollections", {"NextToken": page["NextToken"]})
    assert page["CollectionIds"] + rest["CollectionIds"] == ["c1", "c2", "c3", "c4", "c5"]
    assert "NextToken" not in rest
    assert rest["FaceModelVersions"] == ["1.0"] * 2


def test_ivf_option_switches_large_collections_and_survives_restart(
    database_url: str, tmp_path: Path, search_backend: str
) -> None:
    options = {"index_kind": "ivf", "ivf_min_vectors": 1000, "ivf_nprobe": 10_000}
    first = make_operations(
        database_url, tmp_path, snapshot_every=100, index=options, search=search_backend
    )
    first.dispatch("CreateCollection", {"CollectionId": "c1"})
    anchor = unit_vectors(1, seed=8)[0]
    ids = seed_faces(
        first,
        "c1",
        np.vstack([anchor[None], near(anchor, 0.02, 1)[None], unit_vectors(1500, seed=9)]),
    )
    assert search(first, ids[0]) == [ids[1]]
    assert isinstance(first.context.indexes._get(1).faces, IvfVectors)
    first.dispatch("DeleteFaces", {"CollectionId": "c1", "FaceIds": [ids[1]]})
    assert search(first, ids[0]) == []
    first.context.indexes.close()
    again = make_operations(database_url, tmp_path, index=options, search=search_backend)
    assert isinstance(again.context.indexes._get(1).faces, IvfVectors)
    assert search(again, ids[0], FaceMatchThreshold=0.0, MaxFaces=3)[0] in ids[2:]


def test_two_replicas_on_one_database_see_each_others_writes(
    database_url: str, tmp_path: Path, search_backend: str
) -> None:
    """Each replica keeps its own indexes (own data dir) and catches up from the database."""
    first = make_operations(database_url, tmp_path / "replica-a", search=search_backend)
    second = make_operations(database_url, tmp_path / "replica-b", search=search_backend)
    first.dispatch("CreateCollection", {"CollectionId": "c1"})
    anchor = unit_vectors(1, seed=12)[0]
    ids = seed_faces(first, "c1", np.stack([anchor, near(anchor, 0.02, 1)]))
    assert search(second, ids[0]) == [ids[1]]  # written through the first, found by the second
    second.dispatch("DeleteFaces", {"CollectionId": "c1", "FaceIds": [ids[1]]})
    assert search(first, ids[0]) == []  # deleted through the second, gone from the first
