"""What operations run against: the face pipeline, the database, the vector indexes, the page
tokens and the storage's health, with the few steps every operation family shares."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ml import decode
from ml.decode import DecodedImage
from ml.pipeline import FacePipeline
from service import errors
from service.index.registry import IndexRegistry
from service.index.searcher import DirectSearch, Searcher
from service.s3_images import S3Images
from service.storage.health import StorageHealth
from service.storage.pagination import PageTokens
from service.storage.queries import find_collection
from service.storage.schema import CollectionRow, IndexEventRow


@dataclass
class Backend:
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
    s3: S3Images = field(default_factory=S3Images)

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

    def decode(self, image: Mapping[str, Any]) -> DecodedImage:
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

    def model_collection(
        self, session: Session, collection_id: str, *, lock: bool = False
    ) -> CollectionRow:
        """The collection, refused when its vectors come from another face model: vectors of
        different models are never compared."""
        collection = find_collection(session, collection_id, lock=lock)
        spec = self.pipeline.spec
        if not self.pipeline.serves(collection.face_model_version):
            raise errors.InvalidParameterError(
                f"Collection {collection.collection_id} holds vectors of face model "
                f"{collection.face_model_version}; this server runs {spec.face_model_version} "
                f"({spec.version}). Vectors of different models are never compared."
            )
        return collection

    def database_problem(self) -> str | None:
        """Why the database cannot be reached now, or None when it answers."""
        try:
            with self.read() as session:
                session.execute(select(1))
        except SQLAlchemyError as exc:
            return f"{type(exc.orig if isinstance(exc, DBAPIError) else exc).__name__}"
        return None

    def collection_stats(self) -> list[tuple[str, int, int]]:
        """(CollectionId, faces, index lag) of every collection, the lag being the committed
        changes its index has not applied yet (all of them for an index not loaded)."""
        with self.read() as session:
            rows = session.execute(
                select(CollectionRow.pk, CollectionRow.collection_id, CollectionRow.face_count)
            ).all()
            latest = dict(
                session.execute(
                    select(IndexEventRow.collection_pk, func.max(IndexEventRow.pk)).group_by(
                        IndexEventRow.collection_pk
                    )
                ).all()
            )
        return [
            (collection_id, faces, max(0, latest.get(pk, 0) - self.indexes.watermark(pk)))
            for pk, collection_id, faces in rows
        ]

    def image_for_collection(
        self, image: Mapping[str, Any], collection_id: str
    ) -> tuple[DecodedImage, CollectionRow]:
        """The decoded image and its target collection, both checked before any model runs."""
        decoded = self.decode(image)
        with self.read() as session:
            return decoded, self.model_collection(session, collection_id)
