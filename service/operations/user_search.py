"""SearchUsers and SearchUsersByImage: search over the collection's user vectors."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ml.decode import DecodedImage
from ml.types import FaceDescription
from service import errors
from service.index.collection_index import user_vector
from service.operations import Params, Result
from service.operations.inputs import image_for_collection, model_collection
from service.operations.quality_filter import rejection_reasons
from service.operations.render import face_detail
from service.operations.search import Hit, SearchContext, nearest
from service.operations.users import status_of, user_faces
from service.storage.queries import find_face, find_user
from service.storage.schema import CollectionRow, FaceRow, UserRow

DEFAULT_MAX_USERS = 500  # AWS documents no default; the API's own maximum
DEFAULT_USER_MATCH_THRESHOLD = 80.0


def user_matches(session: Session, collection: CollectionRow, hits: list[Hit]) -> list[Result]:
    counts = dict(
        session.execute(
            select(FaceRow.user_pk, func.count())
            .where(FaceRow.user_pk.in_([h.pk for h in hits]))
            .group_by(FaceRow.user_pk)
        ).all()
    )
    names = dict(
        session.execute(
            select(UserRow.pk, UserRow.user_id).where(
                UserRow.collection_pk == collection.pk, UserRow.pk.in_([h.pk for h in hits])
            )
        ).all()
    )
    return [
        {
            "Similarity": hit.similarity,
            "User": {"UserId": names[hit.pk], "UserStatus": status_of(counts.get(hit.pk, 0))},
        }
        for hit in hits
        if hit.pk in names
    ]


def _limits(request: Params) -> tuple[int, float]:
    return (
        request.get("MaxUsers", DEFAULT_MAX_USERS),
        request.get("UserMatchThreshold", DEFAULT_USER_MATCH_THRESHOLD),
    )


def _matching_users(
    context: SearchContext,
    session: Session,
    collection: CollectionRow,
    query: np.ndarray,
    request: Params,
    *,
    exclude: int | None = None,
) -> list[Result]:
    """UserMatches for a query vector, with the request's MaxUsers and UserMatchThreshold."""
    limit, threshold = _limits(request)
    hits = nearest(
        context,
        session,
        collection=collection,
        among="users",
        query=query,
        limit=limit,
        threshold=threshold,
        exclude=exclude,
    )
    return user_matches(session, collection, hits)


def search_users(context: SearchContext, request: Params) -> Result:
    if ("UserId" in request) == ("FaceId" in request):
        raise errors.InvalidParameterError("Specify exactly one of UserId and FaceId")
    with context.read() as session:
        collection = model_collection(context, session, request["CollectionId"])
        response: Result = {"FaceModelVersion": collection.face_model_version}
        query, exclude = _search_subject(session, collection, request, response)
        response["UserMatches"] = (
            []
            if query is None
            else _matching_users(context, session, collection, query, request, exclude=exclude)
        )
    return response


def _search_subject(
    session: Session, collection: CollectionRow, request: Params, response: Result
) -> tuple[np.ndarray | None, int | None]:
    """The query vector (and the user to leave out of the results) for SearchUsers."""
    if "UserId" in request:
        user = find_user(session, collection, request["UserId"])
        response["SearchedUser"] = {"UserId": user.user_id}
        return user_vector([face.embedding for face in user_faces(session, user.pk)]), user.pk
    face = find_face(session, collection, request["FaceId"])
    response["SearchedFace"] = {"FaceId": face.face_id}
    return np.frombuffer(face.embedding, dtype=np.float32), None


def _unsearched(faces: list[FaceDescription], image: DecodedImage, level: str) -> list[Result]:
    return [
        {
            "FaceDetails": face_detail(face, image),
            "Reasons": ["FACE_NOT_LARGEST", *rejection_reasons(face, level)],
        }
        for face in faces
    ]


def search_users_by_image(context: SearchContext, request: Params) -> Result:
    level = request.get("QualityFilter", "NONE")
    image, collection = image_for_collection(context, request["Image"], request["CollectionId"])
    faces = context.pipeline.describe(image)
    response: Result = {
        "UserMatches": [],
        "FaceModelVersion": collection.face_model_version,
        "UnsearchedFaces": _unsearched(faces[1:], image, level),
    }
    if not faces:
        return response
    largest, reasons = faces[0], rejection_reasons(faces[0], level)
    if reasons:
        response["UnsearchedFaces"].insert(
            0, {"FaceDetails": face_detail(largest, image), "Reasons": reasons}
        )
        return response
    response["SearchedFace"] = {"FaceDetail": face_detail(largest, image)}
    query = context.pipeline.embed(image, [largest], collection.face_model_version)[0]
    with context.read() as session:
        response["UserMatches"] = _matching_users(context, session, collection, query, request)
    return response
