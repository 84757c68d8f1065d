"""CreateUser, DeleteUser, ListUsers, AssociateFaces, DisassociateFaces."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service import errors
from service.index.collection_index import user_vector
from service.ops.context import (
    Request,
    Response,
    Services,
    find_collection,
    record_event,
)
from service.ops.idempotency import idempotent
from service.storage.schema import CollectionRow, FaceRow, UserRow

MAX_FACES_PER_USER = 100
DEFAULT_LIST_USERS = 500
DEFAULT_ASSOCIATE_THRESHOLD = 75.0


def find_user(session: Session, collection: CollectionRow, user_id: str) -> UserRow:
    user = session.scalars(
        select(UserRow).where(UserRow.collection_pk == collection.pk, UserRow.user_id == user_id)
    ).one_or_none()
    if user is None:
        raise errors.ResourceNotFoundError(
            f"User {user_id} does not exist in collection {collection.collection_id}"
        )
    return user


def user_faces(session: Session, user_pk: int) -> list[FaceRow]:
    return list(session.scalars(select(FaceRow).where(FaceRow.user_pk == user_pk)))


def status_of(face_count: int) -> str:
    # Updates apply synchronously, so a user is never seen UPDATING or CREATING.
    return "ACTIVE" if face_count else "CREATED"


def create_user(services: Services, request: Request) -> Response:
    def run(session: Session, collection: CollectionRow) -> Response:
        exists = session.scalar(
            select(func.count())
            .select_from(UserRow)
            .where(UserRow.collection_pk == collection.pk, UserRow.user_id == request["UserId"])
        )
        if exists:
            raise errors.ConflictError(f"User {request['UserId']} already exists")
        session.add(
            UserRow(collection_pk=collection.pk, user_id=request["UserId"], created_at=time.time())
        )
        collection.user_count += 1
        return {}

    return _in_collection(services, "CreateUser", request, run)


def delete_user(services: Services, request: Request) -> Response:
    def run(session: Session, collection: CollectionRow) -> Response:
        user = find_user(session, collection, request["UserId"])
        session.execute(update(FaceRow).where(FaceRow.user_pk == user.pk).values(user_pk=None))
        record_event(session, collection.pk, "user_update", user.pk)
        session.delete(user)
        collection.user_count -= 1
        return {}

    return _in_collection(services, "DeleteUser", request, run)


Run = Callable[[Session, CollectionRow], Response]


def _in_collection(services: Services, operation: str, request: Request, run: Run) -> Response:
    """Lock the collection, replay or run the operation once per token, then sync the index."""
    with services.write() as session:
        collection = find_collection(session, request["CollectionId"], lock=True)
        response = idempotent(session, operation, request, lambda: run(session, collection))
        collection_pk = collection.pk
    with services.read() as session:
        services.indexes.synced(session, collection_pk)
    return response


def list_users(services: Services, request: Request) -> Response:
    limit = request.get("MaxResults", DEFAULT_LIST_USERS)
    scope = f"ListUsers|{request['CollectionId']}"
    after = services.tokens.decode(request["NextToken"], scope) if "NextToken" in request else 0
    with services.read() as session:
        collection = find_collection(session, request["CollectionId"])
        counts = (
            select(FaceRow.user_pk, func.count().label("n")).group_by(FaceRow.user_pk).subquery()
        )
        rows = session.execute(
            select(UserRow.pk, UserRow.user_id, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.user_pk == UserRow.pk)
            .where(UserRow.collection_pk == collection.pk, UserRow.pk > after)
            .order_by(UserRow.pk)
            .limit(limit + 1)
        ).all()
    page = rows[:limit]
    response: Response = {
        "Users": [{"UserId": user_id, "UserStatus": status_of(int(n))} for _, user_id, n in page]
    }
    if len(rows) > limit and page:
        response["NextToken"] = services.tokens.encode(scope, page[-1][0])
    return response


def _match_confidence(
    services: Services, candidate: FaceRow, reference: np.ndarray | None
) -> float:
    if reference is None:
        return 100.0
    vector = np.frombuffer(candidate.embedding, dtype=np.float32)
    return float(services.pipeline.calibration.similarity(float(vector @ reference)))


def _reference(
    current: list[FaceRow], candidates: list[FaceRow], exclude: FaceRow
) -> np.ndarray | None:
    """What a candidate must resemble: the user's vector, or for a user with no faces yet the
    other candidates of the same request (a single first face is accepted as it is)."""
    pool = current or [face for face in candidates if face is not exclude]
    return user_vector([face.embedding for face in pool])


def _classify(
    requested: list[str], found: dict[str, tuple[FaceRow, str | None]], user: UserRow
) -> tuple[list[Response], list[Response], list[FaceRow]]:
    """(already associated, refused, candidates) for AssociateFaces."""
    associated: list[Response] = []
    refused: list[Response] = []
    candidates: list[FaceRow] = []
    for face_id in requested:
        face, owner = found.get(face_id, (None, None))
        if face is None:
            refused.append({"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]})
        elif face.user_pk == user.pk:
            associated.append({"FaceId": face_id})
        elif owner is not None:
            refused.append(
                {"FaceId": face_id, "UserId": owner, "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}
            )
        else:
            candidates.append(face)
    return associated, refused, candidates


def associate_faces(services: Services, request: Request) -> Response:
    threshold = request.get("UserMatchThreshold", DEFAULT_ASSOCIATE_THRESHOLD)

    def run(session: Session, collection: CollectionRow) -> Response:
        user = find_user(session, collection, request["UserId"])
        requested = list(dict.fromkeys(request["FaceIds"]))
        found = _faces_with_owners(session, collection, requested)
        current = user_faces(session, user.pk)
        associated, refused, candidates = _classify(requested, found, user)
        accepted = []
        for face in candidates:
            score = _match_confidence(services, face, _reference(current, candidates, face))
            if score >= threshold:
                accepted.append(face)
            else:
                refused.append(
                    {
                        "FaceId": face.face_id,
                        "Confidence": score,
                        "Reasons": ["LOW_MATCH_CONFIDENCE"],
                    }
                )
        if len(current) + len(accepted) > MAX_FACES_PER_USER:
            raise errors.ServiceQuotaExceededError(
                f"User {user.user_id} would hold more than {MAX_FACES_PER_USER} faces"
            )
        for face in accepted:
            face.user_pk = user.pk
            associated.append({"FaceId": face.face_id})
        if accepted:
            record_event(session, collection.pk, "user_update", user.pk)
        return {
            "AssociatedFaces": associated,
            "UnsuccessfulFaceAssociations": refused,
            "UserStatus": status_of(len(current) + len(accepted)),
        }

    return _in_collection(services, "AssociateFaces", request, run)


def disassociate_faces(services: Services, request: Request) -> Response:
    def run(session: Session, collection: CollectionRow) -> Response:
        user = find_user(session, collection, request["UserId"])
        requested = list(dict.fromkeys(request["FaceIds"]))
        found = _faces_with_owners(session, collection, requested)
        done, refused = [], []
        for face_id in requested:
            face, owner = found.get(face_id, (None, None))
            if face is None:
                refused.append({"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]})
            elif face.user_pk != user.pk:
                entry = {"FaceId": face_id, "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}
                refused.append({**entry, "UserId": owner} if owner else entry)
            else:
                face.user_pk = None
                done.append({"FaceId": face_id})
        if done:
            record_event(session, collection.pk, "user_update", user.pk)
        session.flush()
        remaining = len(user_faces(session, user.pk))
        return {
            "DisassociatedFaces": done,
            "UnsuccessfulFaceDisassociations": refused,
            "UserStatus": status_of(remaining),
        }

    return _in_collection(services, "DisassociateFaces", request, run)


def _faces_with_owners(
    session: Session, collection: CollectionRow, face_ids: list[str]
) -> dict[str, tuple[FaceRow, str | None]]:
    return {
        face.face_id: (face, owner)
        for face, owner in session.execute(
            select(FaceRow, UserRow.user_id)
            .outerjoin(UserRow, FaceRow.user_pk == UserRow.pk)
            .where(FaceRow.collection_pk == collection.pk, FaceRow.face_id.in_(face_ids))
        )
    }
