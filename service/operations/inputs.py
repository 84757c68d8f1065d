"""What operations read before any model runs: the request's image, decoded (its problems
answered in Rekognition's terms), and the collection, refused when its vectors come from
another face model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from ml import decode
from ml.decode import DecodedImage
from service import errors
from service.context import CollectionAccess, WithModels
from service.storage.queries import find_collection
from service.storage.schema import CollectionRow


def decoded_image(context: WithModels, image: Mapping[str, Any]) -> DecodedImage:
    try:
        return context.pipeline.decode(image["Bytes"])
    except decode.ImageTooLargeError as exc:
        raise errors.ImageTooLargeError(str(exc)) from exc
    except decode.UnsupportedImageError as exc:
        raise errors.InvalidImageFormatError(f"Request has invalid image format: {exc}") from exc
    except decode.ImageTooSmallError as exc:
        raise errors.InvalidParameterError(f"Request has invalid parameters: {exc}") from exc


def model_collection(
    context: WithModels, session: Session, collection_id: str, *, lock: bool = False
) -> CollectionRow:
    """The collection, refused when its vectors come from another face model: vectors of
    different models are never compared."""
    collection = find_collection(session, collection_id, lock=lock)
    spec = context.pipeline.spec
    if not context.pipeline.serves(collection.face_model_version):
        raise errors.InvalidParameterError(
            f"Collection {collection.collection_id} holds vectors of face model "
            f"{collection.face_model_version}; this server runs {spec.face_model_version} "
            f"({spec.version}). Vectors of different models are never compared."
        )
    return collection


def image_for_collection(
    context: CollectionAccess, image: Mapping[str, Any], collection_id: str
) -> tuple[DecodedImage, CollectionRow]:
    """The decoded image and its target collection, both checked before any model runs."""
    decoded = decoded_image(context, image)
    with context.read() as session:
        return decoded, model_collection(context, session, collection_id)
