"""What operations run against: the face pipeline, the database, the vector indexes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from ml import decode
from ml.decode import DecodedImage
from ml.pipeline import FacePipeline
from service import errors
from service.index.registry import IndexRegistry
from service.index.searcher import DirectSearch, Searcher
from service.pagination import PageTokens
from service.storage.health import StorageHealth
from service.storage.schema import CollectionRow, FaceRow, IndexEventRow, UserRow

Request = dict[str, Any]
Response = dict[str, Any]


@dataclass
class Services:
    pipeline: FacePipeline
    reader: sessionmaker[Session]
    writer: sessionmaker[Session]
    indexes: IndexRegistry
    tokens: PageTokens
    region: str = "us-east-1"
    account_id: str = "000000000000"
    max_faces_per_collection: int = 20_000_000
    searcher: Searcher = field(default_factory=DirectSearch)
    storage: StorageHealth = field(default_factory=StorageHealth)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any exception. A full
        disk is a retryable ServiceUnavailableException, and nothing of the write is kept."""
        try:
            with self.writer.begin() as session:
                yield session
        except DBAPIError as exc:
            if self.storage.write_failed(exc):
                raise errors.ServiceUnavailableError(
                    "Storage is full: nothing of this request was stored. Retry once space is "
                    "freed; searches keep working meanwhile."
                ) from exc
            raise
        self.storage.write_committed()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.reader() as session:
            yield session

    def collection_arn(self, collection_id: str) -> str:
        return f"aws:rekognition:{self.region}:{self.account_id}:collection/{collection_id}"

    def decode(self, image: Request) -> DecodedImage:
        try:
            return self.pipeline.decode(image["Bytes"])
        except decode.ImageTooLargeError as exc:
            raise errors.ImageTooLargeError(str(exc)) from exc
        except decode.UnsupportedImageError as exc:
            raise errors.InvalidImageFormatError(
                f"Request has invalid image format: {exc}"
            ) from exc
        except decode.ImageTooSmallError as exc:
            raise errors.InvalidParameterError(f"Request has invalid parameters: {exc}") from exc


def find_collection(session: Session, collection_id: str, lock: bool = False) -> CollectionRow:
    """The collection row; `lock` takes its row lock, which orders a collection's writes."""
    query = select(CollectionRow).where(CollectionRow.collection_id == collection_id)
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise errors.ResourceNotFoundError(f"The collection id: {collection_id} does not exist")
    return row


def require_model(services: Services, collection: CollectionRow) -> None:
    if collection.face_model_version != services.pipeline.spec.version:
        raise errors.InvalidParameterError(
            f"Collection {collection.collection_id} holds vectors of face model "
            f"{collection.face_model_version}; this server runs {services.pipeline.spec.version}. "
            "Vectors of different models are never compared."
        )


def faces_with_owners(collection_pk: int) -> Select[FaceRow, str]:
    """A collection's faces with the UserId each belongs to (None when unassociated: the
    outer join makes the owner nullable, which SQLAlchemy's types do not show)."""
    return (
        select(FaceRow, UserRow.user_id)
        .outerjoin(UserRow, FaceRow.user_pk == UserRow.pk)
        .where(FaceRow.collection_pk == collection_pk)
    )


def faces_by_id(
    session: Session, collection_pk: int, face_ids: list[str]
) -> dict[str, tuple[FaceRow, str | None]]:
    """FaceId -> (face, owner) for the requested faces that exist in the collection."""
    query = faces_with_owners(collection_pk).where(FaceRow.face_id.in_(face_ids))
    return {face.face_id: (face, owner) for face, owner in session.execute(query)}


def record_event(session: Session, collection_pk: int, kind: str, target_pk: int) -> None:
    session.add(IndexEventRow(collection_pk=collection_pk, kind=kind, target_pk=target_pk))


def face_json(face: FaceRow, user_id: str | None) -> Response:
    body: Response = {
        "FaceId": face.face_id,
        "BoundingBox": {
            "Width": face.width,
            "Height": face.height,
            "Left": face.left,
            "Top": face.top,
        },
        "ImageId": face.image_id,
        "Confidence": face.confidence,
        "IndexFacesModelVersion": face.model_version,
    }
    if face.external_image_id is not None:
        body["ExternalImageId"] = face.external_image_id
    if user_id is not None:
        body["UserId"] = user_id
    return body
