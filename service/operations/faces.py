"""IndexFaces, ListFaces, DeleteFaces."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ml.decode import DecodedImage
from ml.tracking import iou
from ml.types import Box, FaceDescription
from service import errors
from service.context import CollectionAccess, WithTokens
from service.operations import Params, Result
from service.operations.inputs import image_for_collection, model_collection
from service.operations.quality_filter import rejection_reasons
from service.operations.render import bounding_box, confidence, face_details, face_json
from service.operations.requested_attributes import estimate_attributes, wanted_attributes
from service.storage.queries import faces_by_id, faces_with_owners, find_collection, record_event
from service.storage.schema import CollectionRow, FaceRow, ImageRow, UserRow

DEFAULT_LIST_FACES = 1000
SAME_FACE_IOU = 0.5


class FacesContext(CollectionAccess, WithTokens, Protocol):
    """What the face operations use, and the most faces a collection holds."""

    @property
    def max_faces_per_collection(self) -> int: ...


@dataclass
class Selection:
    indexed: list[FaceDescription]
    unindexed: list[tuple[FaceDescription, list[str]]]


def select_faces(faces: list[FaceDescription], max_faces: int | None, level: str) -> Selection:
    """QualityFilter first; above MaxFaces the faces with the largest bounding boxes (as
    returned: a face cut by the frame counts whole) are kept."""
    reasons = [rejection_reasons(face, level) for face in faces]
    passing = [i for i, why in enumerate(reasons) if not why]
    unindexed = [(faces[i], why) for i, why in enumerate(reasons) if why]
    if max_faces is not None and len(passing) > max_faces:
        ranked = sorted(passing, key=lambda i: faces[i].detection.box.area, reverse=True)
        unindexed += [(faces[i], ["EXCEEDS_MAX_FACES"]) for i in ranked[max_faces:]]
        passing = ranked[:max_faces]
    kept = sorted((faces[i] for i in passing), key=lambda f: f.detection.box.area, reverse=True)
    return Selection(kept, unindexed)


def _stored_box(row: FaceRow, image: DecodedImage) -> Box:
    left, top = row.left * image.width, row.top * image.height
    return Box(left, top, left + row.width * image.width, top + row.height * image.height)


def image_by_content(
    session: Session, collection: CollectionRow, digest: str, external: str
) -> ImageRow | None:
    """The collection's row for an image's content and ExternalImageId ('' when none)."""
    return session.scalars(
        select(ImageRow).where(
            ImageRow.collection_pk == collection.pk,
            ImageRow.image_sha256 == digest,
            ImageRow.external_key == external,
        )
    ).one_or_none()


def _image_row(session: Session, collection: CollectionRow, digest: str, external: str) -> ImageRow:
    row = image_by_content(session, collection, digest, external)
    if row is None:
        row = ImageRow(
            collection_pk=collection.pk,
            image_sha256=digest,
            external_key=external,
            image_id=str(uuid.uuid4()),
        )
        session.add(row)
        session.flush()
    return row


def _new_face(
    collection: CollectionRow,
    image_row: ImageRow,
    external: str | None,
    face: FaceDescription,
    vector: np.ndarray,
    image: DecodedImage,
) -> FaceRow:
    box = bounding_box(face.detection.box, image)
    return FaceRow(
        face_id=str(uuid.uuid4()),
        collection_pk=collection.pk,
        image_pk=image_row.pk,
        image_id=image_row.image_id,
        external_image_id=external,
        user_pk=None,
        left=box["Left"],
        top=box["Top"],
        width=box["Width"],
        height=box["Height"],
        confidence=confidence(face),
        model_version=collection.face_model_version,
        embedding=np.ascontiguousarray(vector, dtype=np.float32).tobytes(),
        created_at=time.time(),
    )


def _store_faces(
    context: FacesContext,
    session: Session,
    request: Params,
    image: DecodedImage,
    faces: list[FaceDescription],
    vectors: np.ndarray,
) -> list[FaceRow]:
    """Rows for `faces`: existing ones when this image was indexed before, new ones otherwise."""
    collection = model_collection(context, session, request["CollectionId"], lock=True)
    external = request.get("ExternalImageId")
    digest = hashlib.sha256(request["Image"]["Bytes"]).hexdigest()
    image_row = _image_row(session, collection, digest, external or "")
    existing = list(session.scalars(select(FaceRow).where(FaceRow.image_pk == image_row.pk)))
    rows, new = [], []
    for face, vector in zip(faces, vectors, strict=True):
        match = next(
            (
                r
                for r in existing
                if iou(_stored_box(r, image), face.detection.box) >= SAME_FACE_IOU
            ),
            None,
        )
        if match is None:
            match = _new_face(collection, image_row, external, face, vector, image)
            new.append(match)
        rows.append(match)
    if collection.face_count + len(new) > context.max_faces_per_collection:
        raise errors.ServiceQuotaExceededError(
            f"Collection {collection.collection_id} would exceed "
            f"{context.max_faces_per_collection} faces"
        )
    add_faces(session, collection, new)
    return rows


def add_faces(session: Session, collection: CollectionRow, rows: list[FaceRow]) -> None:
    """Insert new face rows with their index events and count, in the caller's transaction
    (which holds the collection's row lock): the one way faces enter a collection."""
    session.add_all(rows)
    session.flush()
    for row in rows:
        record_event(session, collection.pk, "face_add", row.pk)
    collection.face_count += len(rows)


def index_faces(context: FacesContext, request: Params) -> Result:
    image, collection = image_for_collection(context, request["Image"], request["CollectionId"])
    described = context.pipeline.describe(image)
    selection = select_faces(
        described, request.get("MaxFaces"), request.get("QualityFilter", "AUTO")
    )
    vectors = context.pipeline.embed(image, selection.indexed, collection.face_model_version)
    # The index is not touched here: every search applies the committed events first.
    with context.write() as session:
        rows = _store_faces(context, session, request, image, selection.indexed, vectors)
    unindexed = [face for face, _ in selection.unindexed]
    wanted = wanted_attributes(request.get("DetectionAttributes"))
    estimated = estimate_attributes(context, image, selection.indexed + unindexed, wanted)
    details = face_details(selection.indexed + unindexed, image, estimated, wanted)
    indexed_details, unindexed_details = details[: len(rows)], details[len(rows) :]
    return {
        "FaceRecords": [
            {"Face": face_json(row, None), "FaceDetail": detail}
            for row, detail in zip(rows, indexed_details, strict=True)
        ],
        "UnindexedFaces": [
            {"Reasons": reasons, "FaceDetail": detail}
            for (_, reasons), detail in zip(selection.unindexed, unindexed_details, strict=True)
        ],
        "FaceModelVersion": collection.face_model_version,
    }


def list_faces(context: FacesContext, request: Params) -> Result:
    limit = request.get("MaxResults", DEFAULT_LIST_FACES)
    user_id, face_ids = request.get("UserId"), sorted(request.get("FaceIds", []))
    scope = f"ListFaces|{request['CollectionId']}|{user_id}|{','.join(face_ids)}"
    after = context.tokens.start(request, scope)
    with context.read() as session:
        collection = find_collection(session, request["CollectionId"])
        query = (
            faces_with_owners(collection.pk)
            .where(FaceRow.pk > after)
            .order_by(FaceRow.pk)
            .limit(limit + 1)
        )
        if user_id is not None:
            query = query.where(UserRow.user_id == user_id)
        if face_ids:
            query = query.where(FaceRow.face_id.in_(face_ids))
        rows = session.execute(query).all()
    page, token = context.tokens.page(rows, limit, scope, lambda row: row[0].pk)
    response: Result = {
        "Faces": [face_json(face, owner) for face, owner in page],
        "FaceModelVersion": collection.face_model_version,
    }
    return {**response, "NextToken": token} if token else response


def delete_faces(context: FacesContext, request: Params) -> Result:
    requested = list(dict.fromkeys(request["FaceIds"]))
    deleted, refused = [], []
    with context.write() as session:
        collection = find_collection(session, request["CollectionId"], lock=True)
        found = faces_by_id(session, collection.pk, requested)
        for face_id in requested:
            face, owner = found.get(face_id, (None, None))
            if face is None:
                refused.append({"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]})
            elif owner is not None:
                refused.append(
                    {
                        "FaceId": face_id,
                        "UserId": owner,
                        "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"],
                    }
                )
            else:
                record_event(session, collection.pk, "face_remove", face.pk)
                session.delete(face)
                deleted.append(face_id)
        collection.face_count -= len(deleted)
    return {"DeletedFaces": deleted, "UnsuccessfulFaceDeletions": refused}
