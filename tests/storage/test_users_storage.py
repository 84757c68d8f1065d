"""Users: membership rules, user vectors, idempotency, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update

from service import errors
from service.operations.dispatch import Operations
from service.storage.schema import CollectionRow
from tests.storage.helpers import make_operations, near, seed_faces, unit_vectors

C = {"CollectionId": "c1"}


@pytest.fixture
def ops(database_url: str, tmp_path: Path, search_backend: str) -> Operations:
    operations = make_operations(database_url, tmp_path, search=search_backend)
    operations.dispatch("CreateCollection", C)
    return operations


def person(seed: int, count: int) -> np.ndarray:
    centre = unit_vectors(1, seed=seed)[0]
    return np.stack([near(centre, 0.03, seed * 100 + i) for i in range(count)])


def test_user_lifecycle_and_status(ops: Operations) -> None:
    ops.dispatch("CreateUser", {**C, "UserId": "alice"})
    with pytest.raises(errors.ConflictError):
        ops.dispatch("CreateUser", {**C, "UserId": "alice"})
    assert ops.dispatch("ListUsers", C)["Users"] == [{"UserId": "alice", "UserStatus": "CREATED"}]
    faces = seed_faces(ops, "c1", person(1, 3))
    response = ops.dispatch("AssociateFaces", {**C, "UserId": "alice", "FaceIds": faces})
    assert [f["FaceId"] for f in response["AssociatedFaces"]] == faces
    assert response["UserStatus"] == "ACTIVE"
    listed = ops.dispatch("ListFaces", {**C, "UserId": "alice"})["Faces"]
    assert {f["FaceId"] for f in listed} == set(faces) and listed[0]["UserId"] == "alice"
    assert ops.dispatch("DescribeCollection", C)["UserCount"] == 1
    ops.dispatch("DeleteUser", {**C, "UserId": "alice"})
    assert ops.dispatch("ListUsers", C)["Users"] == []
    assert all("UserId" not in f for f in ops.dispatch("ListFaces", C)["Faces"])
    with pytest.raises(errors.ResourceNotFoundError):
        ops.dispatch("DeleteUser", {**C, "UserId": "alice"})


def test_association_rules(ops: Operations) -> None:
    for user in ("alice", "bob"):
        ops.dispatch("CreateUser", {**C, "UserId": user})
    alice, bob = seed_faces(ops, "c1", person(1, 3)), seed_faces(ops, "c1", person(2, 2))
    ops.dispatch("AssociateFaces", {**C, "UserId": "alice", "FaceIds": alice[:2]})
    response = ops.dispatch(
        "AssociateFaces",
        {
            **C,
            "UserId": "alice",
            "FaceIds": [alice[0], alice[2], bob[0], "00000000-0000-0000-0000-000000000000"],
        },
    )
    # alice[0] is already alice's: ignored, neither associated again nor refused
    assert response["AssociatedFaces"] == [{"FaceId": alice[2]}]
    refused = {f["FaceId"]: f for f in response["UnsuccessfulFaceAssociations"]}
    assert set(refused) == {bob[0], "00000000-0000-0000-0000-000000000000"}
    assert refused[bob[0]]["Reasons"] == ["LOW_MATCH_CONFIDENCE"]
    assert refused[bob[0]]["Confidence"] < 75
    assert refused["00000000-0000-0000-0000-000000000000"]["Reasons"] == ["FACE_NOT_FOUND"]
    ops.dispatch("AssociateFaces", {**C, "UserId": "bob", "FaceIds": bob})
    taken = ops.dispatch("AssociateFaces", {**C, "UserId": "bob", "FaceIds": [alice[0]]})
    assert taken["UnsuccessfulFaceAssociations"] == [
        {"FaceId": alice[0], "UserId": "alice", "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}
    ]
    deletion = ops.dispatch("DeleteFaces", {**C, "FaceIds": [alice[0]]})
    assert "DeletedFaces" not in deletion  # botocore gives the list a min of 1: left out
    assert deletion["UnsuccessfulFaceDeletions"][0]["Reasons"] == ["ASSOCIATED_TO_AN_EXISTING_USER"]
    released = ops.dispatch(
        "DisassociateFaces", {**C, "UserId": "alice", "FaceIds": [alice[0], bob[1]]}
    )
    assert released["DisassociatedFaces"] == [{"FaceId": alice[0]}]
    assert released["UnsuccessfulFaceDisassociations"] == [
        {"FaceId": bob[1], "UserId": "bob", "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}
    ]
    again = ops.dispatch("DisassociateFaces", {**C, "UserId": "alice", "FaceIds": [alice[0]]})
    assert again["DisassociatedFaces"] == again["UnsuccessfulFaceDisassociations"] == []
    assert ops.dispatch("DeleteFaces", {**C, "FaceIds": [alice[0]]})["DeletedFaces"] == [alice[0]]


def test_user_holds_at_most_100_faces(ops: Operations) -> None:
    ops.dispatch("CreateUser", {**C, "UserId": "crowd"})
    faces = seed_faces(ops, "c1", person(3, 101))
    ops.dispatch("AssociateFaces", {**C, "UserId": "crowd", "FaceIds": faces[:100]})
    with pytest.raises(errors.ServiceQuotaExceededError):
        ops.dispatch("AssociateFaces", {**C, "UserId": "crowd", "FaceIds": faces[100:]})


def test_search_users_by_user_and_by_face(ops: Operations) -> None:
    for user in ("alice", "bob", "carol"):
        ops.dispatch("CreateUser", {**C, "UserId": user})
    alice = seed_faces(ops, "c1", person(1, 4))
    ops.dispatch("AssociateFaces", {**C, "UserId": "alice", "FaceIds": alice[:3]})
    ops.dispatch(
        "AssociateFaces", {**C, "UserId": "bob", "FaceIds": seed_faces(ops, "c1", person(2, 2))}
    )
    by_face = ops.dispatch("SearchUsers", {**C, "FaceId": alice[3]})
    assert [m["User"]["UserId"] for m in by_face["UserMatches"]] == ["alice"]
    assert by_face["UserMatches"][0]["User"]["UserStatus"] == "ACTIVE"
    assert by_face["SearchedFace"] == {"FaceId": alice[3]}
    by_user = ops.dispatch("SearchUsers", {**C, "UserId": "alice", "UserMatchThreshold": 0.0})
    assert "alice" not in [m["User"]["UserId"] for m in by_user["UserMatches"]]
    assert [m["User"]["UserId"] for m in by_user["UserMatches"]] == ["bob"]  # carol has no faces
    with pytest.raises(errors.InvalidParameterError):
        ops.dispatch("SearchUsers", C)
    ops.dispatch("DisassociateFaces", {**C, "UserId": "alice", "FaceIds": alice[:3]})
    assert ops.dispatch("SearchUsers", {**C, "FaceId": alice[3]})["UserMatches"] == []


def test_user_vector_scores_true_match_higher_than_single_faces(ops: Operations) -> None:
    ops.dispatch("CreateUser", {**C, "UserId": "alice"})
    centre = unit_vectors(1, seed=11)[0]
    members = np.stack([near(centre, 0.06, i) for i in range(6)])
    faces = seed_faces(ops, "c1", members)
    ops.dispatch(
        "AssociateFaces", {**C, "UserId": "alice", "FaceIds": faces, "UserMatchThreshold": 0.0}
    )
    probe = seed_faces(ops, "c1", near(centre, 0.06, 99)[None])[0]
    user_score = ops.dispatch("SearchUsers", {**C, "FaceId": probe, "UserMatchThreshold": 0.0})
    face_scores = ops.dispatch("SearchFaces", {**C, "FaceId": probe, "FaceMatchThreshold": 0.0})
    mean_face = np.mean([m["Similarity"] for m in face_scores["FaceMatches"]])
    assert user_score["UserMatches"][0]["Similarity"] > mean_face


def test_client_request_token_replays_and_detects_mismatch(ops: Operations) -> None:
    token = {"ClientRequestToken": "token-1"}
    assert ops.dispatch("CreateUser", {**C, "UserId": "alice", **token}) == {}
    assert (
        ops.dispatch("CreateUser", {**C, "UserId": "alice", **token}) == {}
    )  # replay, no Conflict
    with pytest.raises(errors.IdempotentParameterMismatchError):
        ops.dispatch("CreateUser", {**C, "UserId": "bob", **token})
    faces = seed_faces(ops, "c1", person(1, 2))
    once = ops.dispatch(
        "AssociateFaces",
        {**C, "UserId": "alice", "FaceIds": faces, "ClientRequestToken": "token-2"},
    )
    again = ops.dispatch(
        "AssociateFaces",
        {**C, "UserId": "alice", "FaceIds": faces, "ClientRequestToken": "token-2"},
    )
    assert once == again


def test_collection_of_another_model_is_not_searched(ops: Operations) -> None:
    faces = seed_faces(ops, "c1", unit_vectors(2, seed=1))
    with ops.context.write() as session:
        session.execute(update(CollectionRow).values(face_model_version="2.0"))
    with pytest.raises(errors.InvalidParameterError, match="never compared"):
        ops.dispatch("SearchFaces", {**C, "FaceId": faces[0]})
    assert ops.dispatch("DescribeCollection", C)["FaceModelVersion"] == "2.0"
