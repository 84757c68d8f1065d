"""ImportFace: store a face under the FaceId and ImageId another service gave it (facebank's own
operation, for `facebank migrate`; REST only, policy action facebank:ImportFace).

Rekognition never exports face vectors, so moving a collection means indexing each original
image again. The face is found again in its image as the detection that overlaps the given
BoundingBox best (IoU at least MIN_OVERLAP, and clearly better than any other detection), and
stored with the given FaceId, ImageId, ExternalImageId and BoundingBox, so an app that holds
those ids, or lists the collection, sees what it saw at the source."""

from __future__ import annotations

import hashlib
import time

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ml.decode import DecodedImage
from ml.tracking import iou
from ml.types import Box, FaceDescription
from service import errors
from service.operations import Params, Result
from service.operations.faces import FacesContext, add_faces, image_by_content
from service.operations.inputs import image_for_collection, model_collection
from service.operations.render import confidence, face_json
from service.storage.schema import CollectionRow, FaceRow, ImageRow

# The least IoU between the given box and a detection for it to be that face. Another
# service's detector frames faces differently (Rekognition's boxes take in more forehead and
# chin than MTCNN's), so this is well below the 0.5 that IndexFaces uses for "the same face".
MIN_OVERLAP = 0.3
# A second detection within this much IoU of the best makes the face ambiguous.
CLEAR_MARGIN = 0.1


def import_face(context: FacesContext, request: Params) -> Result:
    _refuse_used_id(context, request["FaceId"])
    image, collection = image_for_collection(context, request["Image"], request["CollectionId"])
    face = face_at(context.pipeline.describe(image), given_box(request["BoundingBox"], image))
    vector = context.pipeline.embed(image, [face], collection.face_model_version)[0]
    with context.write() as session:
        row = _store(context, session, request, face, vector)
    return {"Face": face_json(row, None), "FaceModelVersion": row.model_version}


def given_box(box: dict[str, float], image: DecodedImage) -> Box:
    for member in ("Left", "Top", "Width", "Height"):
        if member not in box:
            raise errors.InvalidParameterError(f"BoundingBox.{member} is required")
    if box["Width"] <= 0 or box["Height"] <= 0:
        raise errors.InvalidParameterError("BoundingBox.Width and Height must be above 0")
    left, top = box["Left"] * image.width, box["Top"] * image.height
    return Box(left, top, left + box["Width"] * image.width, top + box["Height"] * image.height)


def face_at(faces: list[FaceDescription], wanted: Box) -> FaceDescription:
    """The detected face that is the one at `wanted`, or InvalidParameterException saying why
    none is: no face there, or two that overlap it about as well."""
    ranked = sorted(faces, key=lambda face: iou(face.detection.box, wanted), reverse=True)
    overlaps = [iou(face.detection.box, wanted) for face in ranked[:2]]
    if not overlaps or overlaps[0] < MIN_OVERLAP:
        closest = f"{overlaps[0]:.2f}" if overlaps else "none: no face detected"
        raise errors.InvalidParameterError(
            f"No face was found at the BoundingBox (the closest detection's IoU with it: "
            f"{closest}; at least {MIN_OVERLAP} is needed)"
        )
    if (
        len(overlaps) > 1
        and overlaps[1] >= MIN_OVERLAP
        and overlaps[0] - overlaps[1] < CLEAR_MARGIN
    ):
        raise errors.InvalidParameterError(
            f"More than one face is at the BoundingBox (IoU {overlaps[0]:.2f} and "
            f"{overlaps[1]:.2f}): which one was meant is ambiguous"
        )
    return ranked[0]


def _refuse_used_id(context: FacesContext, face_id: str) -> None:
    with context.read() as session:
        if session.scalar(select(FaceRow.pk).where(FaceRow.face_id == face_id)) is not None:
            raise errors.ResourceAlreadyExistsError(f"The FaceId {face_id} is already in use")


def _store(
    context: FacesContext,
    session: Session,
    request: Params,
    face: FaceDescription,
    vector: np.ndarray,
) -> FaceRow:
    collection = model_collection(context, session, request["CollectionId"], lock=True)
    face_id = request["FaceId"]
    if session.scalar(select(FaceRow.pk).where(FaceRow.face_id == face_id)) is not None:
        raise errors.ResourceAlreadyExistsError(f"The FaceId {face_id} is already in use")
    if collection.face_count + 1 > context.max_faces_per_collection:
        raise errors.ServiceQuotaExceededError(
            f"Collection {collection.collection_id} would exceed "
            f"{context.max_faces_per_collection} faces"
        )
    image_row = _image_row(session, collection, request)
    box = request["BoundingBox"]
    row = FaceRow(
        face_id=face_id,
        collection_pk=collection.pk,
        image_pk=image_row.pk,
        image_id=image_row.image_id,
        external_image_id=request.get("ExternalImageId"),
        user_pk=None,
        left=box["Left"],
        top=box["Top"],
        width=box["Width"],
        height=box["Height"],
        confidence=request.get("Confidence", confidence(face)),
        model_version=collection.face_model_version,
        embedding=np.ascontiguousarray(vector, dtype=np.float32).tobytes(),
        created_at=time.time(),
    )
    try:
        add_faces(session, collection, [row])
    except IntegrityError:  # the same FaceId stored by a concurrent request
        raise errors.ResourceAlreadyExistsError(f"The FaceId {face_id} is already in use") from None
    return row


def _image_row(session: Session, collection: CollectionRow, request: Params) -> ImageRow:
    """The collection's row for the given ImageId (another face of the same image came
    before), or a new one under that id."""
    image_id = request["ImageId"]
    found = session.scalars(
        select(ImageRow).where(
            ImageRow.collection_pk == collection.pk, ImageRow.image_id == image_id
        )
    ).first()
    if found is not None:
        return found
    digest = hashlib.sha256(request["Image"]["Bytes"]).hexdigest()
    external = request.get("ExternalImageId") or ""
    clash = image_by_content(session, collection, digest, external)
    if clash is not None:
        raise errors.InvalidParameterError(
            f"This image, with this ExternalImageId, is already in the collection as ImageId "
            f"{clash.image_id}"
        )
    row = ImageRow(
        collection_pk=collection.pk, image_sha256=digest, external_key=external, image_id=image_id
    )
    session.add(row)
    session.flush()
    return row
