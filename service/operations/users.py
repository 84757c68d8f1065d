"""CreateUser, DeleteUser, ListUsers, AssociateFaces, DisassociateFaces."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service import errors
from service.context import CollectionAccess, WithTokens
from service.index.collection_index import user_vector
from service.operations import Params, Result
from service.operations.idempotency import idempotent
from service.storage.queries import faces_by_id, find_collection, find_user, record_event
from service.storage.schema import CollectionRow, FaceRow, UserRow

MAX_FACES_PER_USER = 100
DEFAULT_LIST_USERS = 500
DEFAULT_ASSOCIATE_THRESHOLD = 75.0


def user_faces(session: Session, user_pk: int) -> list[FaceRow]:
    return list(session.scalars(select(FaceRow).where(FaceRow.user_pk == user_pk)))


def status_of(face_count: int) -> str:
    # Updates apply synchronously, so a user is never seen UPDATING or CREATING.
    return "ACTIVE" if face_count else "CREATED"


class UsersContext(CollectionAccess, WithTokens, Protocol):
    """What the user operations use."""


def create_user(context: UsersContext, request: Params) -> Result:
    def run(session: Session, collection: CollectionRow) -> Result:
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

    return _in_collection(context, "CreateUser", request, run)


def delete_user(context: UsersContext, request: Params) -> Result:
    def run(session: Session, collection: CollectionRow) -> Result:
        user = find_user(session, collection, request["UserId"])
        session.execute(update(FaceRow).where(FaceRow.user_pk == user.pk).values(user_pk=None))
        record_event(session, collection.pk, "user_update", user.pk)
        session.delete(user)
        collection.user_count -= 1
        return {}

    return _in_collection(context, "DeleteUser", request, run)


Run = Callable[[Session, CollectionRow], Result]


def _in_collection(context: UsersContext, operation: str, request: Params, run: Run) -> Result:
    """Lock the collection, then replay or run the operation once per token."""
    with context.write() as session:
        collection = find_collection(session, request["CollectionId"], lock=True)
        return idempotent(session, operation, request, lambda: run(session, collection))


def list_users(context: UsersContext, request: Params) -> Result:
    limit = request.get("MaxResults", DEFAULT_LIST_USERS)
    scope = f"ListUsers|{request['CollectionId']}"
    after = context.tokens.start(request, scope)
    with context.read() as session:
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
    page, token = context.tokens.page(rows, limit, scope, lambda row: row[0])
    users = [{"UserId": user_id, "UserStatus": status_of(int(n))} for _, user_id, n in page]
    return {"Users": users, "NextToken": token} if token else {"Users": users}


def _match_confidence(
    context: UsersContext,
    collection: CollectionRow,
    candidate: FaceRow,
    reference: np.ndarray | None,
) -> float:
    if reference is None:
        return 100.0
    vector = np.frombuffer(candidate.embedding, dtype=np.float32)
    calibration = context.pipeline.model(collection.face_model_version).calibration
    return float(calibration.similarity(float(vector @ reference)))


def _reference(
    current: list[FaceRow], candidates: list[FaceRow], exclude: FaceRow
) -> np.ndarray | None:
    """What a candidate must resemble: the user's vector, or for a user with no faces yet the
    other candidates of the same request (a single first face is accepted as it is)."""
    pool = current or [face for face in candidates if face is not exclude]
    return user_vector([face.embedding for face in pool])


def _classify(
    requested: list[str], found: dict[str, tuple[FaceRow, str | None]], user: UserRow
) -> tuple[list[Result], list[FaceRow]]:
    """(refused, candidates) for AssociateFaces. A face already associated with this user is
    neither: Rekognition ignores it, and AssociatedFaces lists only new associations."""
    refused: list[Result] = []
    candidates: list[FaceRow] = []
    for face_id in requested:
        face, owner = found.get(face_id, (None, None))
        if face is None:
            refused.append({"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]})
        elif face.user_pk == user.pk:
            continue
        elif owner is not None:
            refused.append(
                {"FaceId": face_id, "UserId": owner, "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}
            )
        else:
            candidates.append(face)
    return refused, candidates


def associate_faces(context: UsersContext, request: Params) -> Result:
    threshold = request.get("UserMatchThreshold", DEFAULT_ASSOCIATE_THRESHOLD)

    def run(session: Session, collection: CollectionRow) -> Result:
        user = find_user(session, collection, request["UserId"])
        requested = list(dict.fromkeys(request["FaceIds"]))
        found = faces_by_id(session, collection.pk, requested)
        current = user_faces(session, user.pk)
        refused, candidates = _classify(requested, found, user)
        accepted: list[FaceRow] = []
        for face in candidates:
            reference = _reference(current, candidates, face)
            score = _match_confidence(context, collection, face, reference)
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
        if accepted:
            record_event(session, collection.pk, "user_update", user.pk)
        return {
            "AssociatedFaces": [{"FaceId": face.face_id} for face in accepted],
            "UnsuccessfulFaceAssociations": refused,
            "UserStatus": status_of(len(current) + len(accepted)),
        }

    return _in_collection(context, "AssociateFaces", request, run)


def disassociate_faces(context: UsersContext, request: Params) -> Result:
    def run(session: Session, collection: CollectionRow) -> Result:
        user = find_user(session, collection, request["UserId"])
        requested = list(dict.fromkeys(request["FaceIds"]))
        found = faces_by_id(session, collection.pk, requested)
        done, refused = [], []
        for face_id in requested:
            face, owner = found.get(face_id, (None, None))
            if face is None:
                refused.append({"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]})
            elif owner is None:
                continue  # associated with no user: nothing to undo, Rekognition ignores it
            elif face.user_pk != user.pk:
                refused.append(
                    {
                        "FaceId": face_id,
                        "UserId": owner,
                        "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"],
                    }
                )
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

    return _in_collection(context, "DisassociateFaces", request, run)
