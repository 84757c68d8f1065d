"""SearchFaces and SearchFacesByImage: exact search over the collection's face vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ml.decode import DecodedImage
from ml.types import FaceDescription
from service import errors
from service.index.searcher import SearchRequest
from service.ops.context import (
    Request,
    Response,
    Services,
    face_json,
    faces_with_owners,
    find_collection,
    require_model,
)
from service.quality_filter import passes
from service.shapes import bounding_box, confidence
from service.storage.schema import CollectionRow, FaceRow

DEFAULT_MAX_FACES = 80  # AWS documents no default; 80 keeps responses small
DEFAULT_FACE_MATCH_THRESHOLD = 80.0


@dataclass(frozen=True)
class Hit:
    similarity: float
    pk: int


def nearest(
    services: Services,
    session: Session,
    collection_pk: int,
    users: bool,
    query: np.ndarray,
    limit: int,
    threshold: float,
    exclude: int | None,
) -> list[Hit]:
    """Hits by descending Similarity >= threshold, from a freshly synced index."""
    index = services.indexes.synced(session, collection_pk)
    request = SearchRequest(index, users, query.astype(np.float32), limit + 1)
    scores, ids = services.searcher.search(request)
    similarities = services.pipeline.calibration.similarity(scores)
    hits = [
        Hit(float(s), int(i))
        for s, i in zip(similarities, ids, strict=True)
        if i >= 0 and i != exclude and s >= threshold
    ]
    return hits[:limit]


def face_matches(session: Session, collection: CollectionRow, hits: list[Hit]) -> list[Response]:
    """FaceMatches for hits whose faces still exist (a face deleted meanwhile is left out)."""
    query = faces_with_owners(collection.pk).where(FaceRow.pk.in_([hit.pk for hit in hits]))
    rows = {face.pk: (face, owner) for face, owner in session.execute(query)}
    return [
        {"Similarity": hit.similarity, "Face": face_json(*rows[hit.pk])}
        for hit in hits
        if hit.pk in rows
    ]


def largest_query_face(
    services: Services, image: DecodedImage, level: str
) -> FaceDescription | None:
    faces = services.pipeline.describe(image)
    return faces[0] if faces and passes(faces[0], level) else None


def search_faces(services: Services, request: Request) -> Response:
    limit = request.get("MaxFaces", DEFAULT_MAX_FACES)
    threshold = request.get("FaceMatchThreshold", DEFAULT_FACE_MATCH_THRESHOLD)
    with services.read() as session:
        collection = find_collection(session, request["CollectionId"])
        require_model(services, collection)
        face = session.scalars(
            select(FaceRow).where(
                FaceRow.collection_pk == collection.pk, FaceRow.face_id == request["FaceId"]
            )
        ).one_or_none()
        if face is None:
            raise errors.InvalidParameterError(
                f"Face {request['FaceId']} does not exist in collection {collection.collection_id}"
            )
        query = np.frombuffer(face.embedding, dtype=np.float32)
        hits = nearest(services, session, collection.pk, False, query, limit, threshold, face.pk)
        matches = face_matches(session, collection, hits)
    return {
        "SearchedFaceId": face.face_id,
        "FaceMatches": matches,
        "FaceModelVersion": collection.face_model_version,
    }


def search_faces_by_image(services: Services, request: Request) -> Response:
    limit = request.get("MaxFaces", DEFAULT_MAX_FACES)
    threshold = request.get("FaceMatchThreshold", DEFAULT_FACE_MATCH_THRESHOLD)
    image = services.decode(request["Image"])
    with services.read() as session:
        require_model(services, find_collection(session, request["CollectionId"]))
    face = largest_query_face(services, image, request.get("QualityFilter", "NONE"))
    if face is None:
        raise errors.InvalidParameterError("There are no faces in the image. Should be at least 1.")
    query = services.pipeline.embed(image, [face])[0]
    with services.read() as session:
        collection = find_collection(session, request["CollectionId"])
        hits = nearest(services, session, collection.pk, False, query, limit, threshold, None)
        matches = face_matches(session, collection, hits)
    return {
        "SearchedFaceBoundingBox": bounding_box(face.detection.box, image),
        "SearchedFaceConfidence": confidence(face),
        "FaceMatches": matches,
        "FaceModelVersion": collection.face_model_version,
    }
