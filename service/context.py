"""What operations run against: the face pipeline, the database, the vector indexes, the page
tokens, the storage's health and the S3 images, with the write transaction every write
shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from ml.pipeline import FaceModels
from service import errors
from service.access.rates import RateLimits
from service.background.notify import Notifier
from service.background.priority import InteractiveActivity
from service.index.registry import IndexRegistry
from service.index.searcher import Searcher
from service.s3_objects import S3Objects
from service.settings import StreamSettings, VideoSettings
from service.storage.availability import StorageHealth
from service.storage.pagination import PageTokens


class Transactions(Protocol):
    """Sessions that read, and write transactions that a full disk turns into a retryable
    refusal (nothing of the write kept)."""

    def read(self) -> AbstractContextManager[Session]: ...

    def write(self) -> AbstractContextManager[Session]: ...


class WithModels(Protocol):
    @property
    def pipeline(self) -> FaceModels: ...


class CollectionAccess(Transactions, WithModels, Protocol):
    """What reading a collection needs: sessions, and the models that serve its version."""


class WithTokens(Protocol):
    @property
    def tokens(self) -> PageTokens: ...


class WithSearch(Protocol):
    @property
    def indexes(self) -> IndexRegistry: ...

    @property
    def searcher(self) -> Searcher: ...


class WithInteractive(Protocol):
    """The activity of image requests, which background frames let go first."""

    @property
    def interactive(self) -> InteractiveActivity: ...


class WithAccount(Protocol):
    @property
    def region(self) -> str: ...

    @property
    def account_id(self) -> str: ...

    def collection_arn(self, collection_id: str) -> str: ...


# Each operation is typed by the parts of the context it uses (a Protocol of these building
# blocks, declared beside it); OperationContext is the one object that has them all.
@dataclass
class OperationContext:
    """Built by `service.build.build_context` from Settings, which holds every default."""

    pipeline: FaceModels
    reader: sessionmaker[Session]
    writer: sessionmaker[Session]
    indexes: IndexRegistry
    tokens: PageTokens
    region: str
    account_id: str
    max_faces_per_collection: int
    searcher: Searcher
    storage: StorageHealth
    s3: S3Objects
    video: VideoSettings
    streams: StreamSettings
    notifier: Notifier
    interactive: InteractiveActivity
    rates: RateLimits

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
