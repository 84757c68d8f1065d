"""SearchFaces and SearchFacesByImage: exact search over the collection's face vectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sqlalchemy.orm import Session

from ml.decode import DecodedImage
from ml.types import FaceDescription
from service import errors
from service.context import CollectionAccess, WithSearch
from service.index.searcher import Among, SearchRequest
from service.operations import Params, Result
from service.operations.inputs import image_for_collection, model_collection
from service.operations.quality_filter import passes
from service.operations.render import bounding_box, confidence, face_json
from service.storage.queries import faces_with_owners, find_face
from service.storage.schema import CollectionRow, FaceRow

DEFAULT_MAX_FACES = 80  # AWS documents no default; 80 keeps responses small
DEFAULT_FACE_MATCH_THRESHOLD = 80.0


@dataclass(frozen=True)
class Hit:
    similarity: float
    pk: int


class SearchContext(CollectionAccess, WithSearch, Protocol):
    """What a search needs: the collection, its index and the searcher."""


def nearest(
    context: SearchContext,
    session: Session,
    *,
    collection: CollectionRow,
    among: Among,
    query: np.ndarray,
    limit: int,
    threshold: float,
    exclude: int | None = None,
) -> list[Hit]:
    """Hits by descending Similarity >= threshold among the collection's face or user
    vectors, from a freshly synced index; `exclude` leaves one row out (the query itself)."""
    index = context.indexes.synced(session, collection.pk)
    request = SearchRequest(index, among, query.astype(np.float32), limit + 1)
    scores, ids = context.searcher.search(request)
    calibration = context.pipeline.model(collection.face_model_version).calibration
    similarities = calibration.similarity(scores)
    hits = [
        Hit(float(s), int(i))
        for s, i in zip(similarities, ids, strict=True)
        if i >= 0 and i != exclude and s >= threshold
    ]
    return hits[:limit]


def search_collection(
    context: SearchContext, collection_id: str, query: np.ndarray, limit: int, threshold: float
) -> list[Result]:
    """FaceMatches of one face vector in the collection (read afresh: it may have changed)."""
    with context.read() as session:
        collection = model_collection(context, session, collection_id)
        hits = nearest(
            context,
            session,
            collection=collection,
            among="faces",
            query=query,
            limit=limit,
            threshold=threshold,
        )
        return face_matches(session, collection, hits)


def face_matches(session: Session, collection: CollectionRow, hits: list[Hit]) -> list[Result]:
    """FaceMatches for hits whose faces still exist (a face deleted meanwhile is left out)."""
    query = faces_with_owners(collection.pk).where(FaceRow.pk.in_([hit.pk for hit in hits]))
    rows = {face.pk: (face, owner) for face, owner in session.execute(query)}
    return [
        {"Similarity": hit.similarity, "Face": face_json(*rows[hit.pk])}
        for hit in hits
        if hit.pk in rows
    ]


def largest_query_face(
    context: SearchContext, image: DecodedImage, level: str
) -> FaceDescription | None:
    faces = context.pipeline.describe(image)
    return faces[0] if faces and passes(faces[0], level) else None


def search_faces(context: SearchContext, request: Params) -> Result:
    limit = request.get("MaxFaces", DEFAULT_MAX_FACES)
    threshold = request.get("FaceMatchThreshold", DEFAULT_FACE_MATCH_THRESHOLD)
    with context.read() as session:
        collection = model_collection(context, session, request["CollectionId"])
        face = find_face(session, collection, request["FaceId"])
        hits = nearest(
            context,
            session,
            collection=collection,
            among="faces",
            query=np.frombuffer(face.embedding, dtype=np.float32),
            limit=limit,
            threshold=threshold,
            exclude=face.pk,
        )
        matches = face_matches(session, collection, hits)
    return {
        "SearchedFaceId": face.face_id,
        "FaceMatches": matches,
        "FaceModelVersion": collection.face_model_version,
    }


def search_faces_by_image(context: SearchContext, request: Params) -> Result:
    limit = request.get("MaxFaces", DEFAULT_MAX_FACES)
    threshold = request.get("FaceMatchThreshold", DEFAULT_FACE_MATCH_THRESHOLD)
    image, collection = image_for_collection(context, request["Image"], request["CollectionId"])
    face = largest_query_face(context, image, request.get("QualityFilter", "NONE"))
    if face is None:
        raise errors.InvalidParameterError("There are no faces in the image. Should be at least 1.")
    query = context.pipeline.embed(image, [face], collection.face_model_version)[0]
    matches = search_collection(context, request["CollectionId"], query, limit, threshold)
    return {
        "SearchedFaceBoundingBox": bounding_box(face.detection.box, image),
        "SearchedFaceConfidence": confidence(face),
        "FaceMatches": matches,
        "FaceModelVersion": collection.face_model_version,
    }
