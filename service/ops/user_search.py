"""SearchUsers and SearchUsersByImage: search over the collection's user vectors."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ml.decode import DecodedImage
from ml.types import FaceDescription
from service import errors
from service.index.collection_index import user_vector
from service.ops.context import Request, Response, Services, find_collection, require_model
from service.ops.search import Hit, nearest
from service.ops.users import find_user, status_of, user_faces
from service.quality_filter import rejection_reasons
from service.shapes import face_detail
from service.storage.schema import CollectionRow, FaceRow, UserRow

DEFAULT_MAX_USERS = 500  # AWS documents no default; the API's own maximum
DEFAULT_USER_MATCH_THRESHOLD = 80.0


def user_matches(session: Session, collection: CollectionRow, hits: list[Hit]) -> list[Response]:
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


def _limits(request: Request) -> tuple[int, float]:
    return (
        request.get("MaxUsers", DEFAULT_MAX_USERS),
        request.get("UserMatchThreshold", DEFAULT_USER_MATCH_THRESHOLD),
    )


def search_users(services: Services, request: Request) -> Response:
    if ("UserId" in request) == ("FaceId" in request):
        raise errors.InvalidParameterError("Specify exactly one of UserId and FaceId")
    limit, threshold = _limits(request)
    with services.read() as session:
        collection = find_collection(session, request["CollectionId"])
        require_model(services, collection)
        response: Response = {"FaceModelVersion": collection.face_model_version}
        query, exclude = _search_subject(session, collection, request, response)
        hits = (
            []
            if query is None
            else nearest(services, session, collection.pk, True, query, limit, threshold, exclude)
        )
        response["UserMatches"] = user_matches(session, collection, hits)
    return response


def _search_subject(
    session: Session, collection: CollectionRow, request: Request, response: Response
) -> tuple[np.ndarray | None, int | None]:
    """The query vector (and the user to leave out of the results) for SearchUsers."""
    if "UserId" in request:
        user = find_user(session, collection, request["UserId"])
        response["SearchedUser"] = {"UserId": user.user_id}
        return user_vector([face.embedding for face in user_faces(session, user.pk)]), user.pk
    face = session.scalars(
        select(FaceRow).where(
            FaceRow.collection_pk == collection.pk, FaceRow.face_id == request["FaceId"]
        )
    ).one_or_none()
    if face is None:
        raise errors.InvalidParameterError(f"Face {request['FaceId']} does not exist")
    response["SearchedFace"] = {"FaceId": face.face_id}
    return np.frombuffer(face.embedding, dtype=np.float32), None


def _unsearched(faces: list[FaceDescription], image: DecodedImage, level: str) -> list[Response]:
    return [
        {
            "FaceDetails": face_detail(face, image),
            "Reasons": ["FACE_NOT_LARGEST", *rejection_reasons(face, level)],
        }
        for face in faces
    ]


def search_users_by_image(services: Services, request: Request) -> Response:
    limit, threshold = _limits(request)
    level = request.get("QualityFilter", "NONE")
    image = services.decode(request["Image"])
    with services.read() as session:
        collection = find_collection(session, request["CollectionId"])
        require_model(services, collection)
    faces = services.pipeline.describe(image)
    response: Response = {
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
    query = services.pipeline.embed(image, [largest])[0]
    with services.read() as session:
        hits = nearest(services, session, collection.pk, True, query, limit, threshold, None)
        response["UserMatches"] = user_matches(session, collection, hits)
    return response
