"""The relational schema. The database is the source of truth; vector indexes are caches of it.

Every change that a vector index must see (a face added or removed, a user's membership
changed) writes an `index_events` row in the same transaction. Indexes replay events above
their watermark, so a crash between commit and index update loses nothing, and a restart reads
only what changed since the last snapshot. Writers lock their collection row first, so within a
collection event ids are committed in increasing order and a watermark never skips one.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
Id = BigInteger().with_variant(Integer(), "sqlite")


# SQLite reuses the highest rowid after a delete unless AUTOINCREMENT is set; a reused
# collection or event id could make a stale snapshot or watermark look current.
NO_REUSE = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    pass


class CollectionRow(Base):
    __tablename__ = "collections"
    __table_args__ = NO_REUSE

    pk: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(String(255), unique=True)
    face_model_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    face_count: Mapped[int] = mapped_column(BigInteger, default=0)
    user_count: Mapped[int] = mapped_column(BigInteger, default=0)
    tags: Mapped[str] = mapped_column(Text, default="{}")


class ImageRow(Base):
    """One indexed image per (collection, content hash, ExternalImageId): re-indexing is a no-op."""

    __tablename__ = "indexed_images"
    __table_args__ = (UniqueConstraint("collection_pk", "image_sha256", "external_key"), NO_REUSE)

    pk: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    collection_pk: Mapped[int] = mapped_column(ForeignKey("collections.pk", ondelete="CASCADE"))
    image_sha256: Mapped[str] = mapped_column(String(64))
    external_key: Mapped[str] = mapped_column(String(255))  # '' when no ExternalImageId
    image_id: Mapped[str] = mapped_column(String(36))


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("collection_pk", "user_id"), NO_REUSE)

    pk: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    collection_pk: Mapped[int] = mapped_column(ForeignKey("collections.pk", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[float] = mapped_column(Float)


class FaceRow(Base):
    __tablename__ = "faces"
    __table_args__ = (
        Index("ix_faces_collection_pk_pk", "collection_pk", "pk"),
        Index("ix_faces_user_pk", "user_pk"),
        Index("ix_faces_image_pk", "image_pk"),
        NO_REUSE,
    )

    pk: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    face_id: Mapped[str] = mapped_column(String(36), unique=True)
    collection_pk: Mapped[int] = mapped_column(ForeignKey("collections.pk", ondelete="CASCADE"))
    image_pk: Mapped[int] = mapped_column(ForeignKey("indexed_images.pk", ondelete="CASCADE"))
    image_id: Mapped[str] = mapped_column(String(36))
    external_image_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    user_pk: Mapped[int | None] = mapped_column(
        ForeignKey("users.pk", ondelete="SET NULL"), nullable=True
    )
    left: Mapped[float] = mapped_column(Float)
    top: Mapped[float] = mapped_column(Float)
    width: Mapped[float] = mapped_column(Float)
    height: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(64))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)


class IndexEventRow(Base):
    __tablename__ = "index_events"
    __table_args__ = (Index("ix_index_events_collection_pk_pk", "collection_pk", "pk"), NO_REUSE)

    pk: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    collection_pk: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # face_add, face_remove, user_update
    target_pk: Mapped[int] = mapped_column(BigInteger)


class IdempotencyRow(Base):
    """Responses of token-carrying operations, replayed for a repeated ClientRequestToken."""

    __tablename__ = "idempotency_tokens"
    __table_args__ = (UniqueConstraint("operation", "token"), NO_REUSE)

    pk: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    operation: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class LeasedRow(Base):
    """Long-running work that one worker at a time runs under a lease it renews while it runs
    (service/storage/leases.py); a row whose lease lapses (its server died) is claimed again."""

    __abstract__ = True

    pk: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class VideoJobRow(LeasedRow):
    """A stored-video job (StartFaceDetection, StartFaceSearch). Any replica's worker claims one
    whose lease is free, renews the lease while it runs, and writes every result in the same
    transaction that marks the job done: a job whose worker dies is run again from the start
    by whoever claims it next, and its results are never half written."""

    __tablename__ = "video_jobs"
    __table_args__ = (Index("ix_video_jobs_status_pk", "status", "pk"), NO_REUSE)

    job_id: Mapped[str] = mapped_column(String(64), unique=True)
    api: Mapped[str] = mapped_column(String(32))  # StartFaceDetection, StartFaceSearch
    status: Mapped[str] = mapped_column(String(16))  # IN_PROGRESS, SUCCEEDED, FAILED
    status_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    request: Mapped[str] = mapped_column(Text)  # the validated Start request, JSON
    created_at: Mapped[float] = mapped_column(Float)
    frames_done: Mapped[int] = mapped_column(BigInteger, default=0)
    video_metadata: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON
    completed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The completion message is owed while this is False and the request names a channel.
    notified: Mapped[bool] = mapped_column(default=False)


class StreamProcessorRow(LeasedRow):
    """A stream processor (CreateStreamProcessor). While STARTING or RUNNING, one replica's
    worker holds it under a lease and reads its camera; Stop, Update and Delete change the row,
    and the holder sees the change at its next heartbeat."""

    __tablename__ = "stream_processors"
    __table_args__ = (NO_REUSE,)

    name: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # STOPPED, STARTING, RUNNING, STOPPING...
    status_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    request: Mapped[str] = mapped_column(Text)  # the validated Create request, JSON
    tags: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)  # bumped by Update and Stop


class VideoResultRow(Base):
    """One entry of a job's results (a face at a timestamp, or a person's match), in both
    orders GetFaceSearch sorts by."""

    __tablename__ = "video_results"
    __table_args__ = (
        Index("ix_video_results_job_by_time", "job_pk", "by_time"),
        Index("ix_video_results_job_by_index", "job_pk", "by_index"),
    )

    pk: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    job_pk: Mapped[int] = mapped_column(ForeignKey("video_jobs.pk", ondelete="CASCADE"))
    by_time: Mapped[int] = mapped_column(Integer)  # rank by (Timestamp, person index)
    by_index: Mapped[int] = mapped_column(Integer)  # rank by (person index, Timestamp)
    body: Mapped[str] = mapped_column(Text)  # the entry's JSON


class CalibrationRow(Base):
    """The Similarity calibration every replica must serve for a model version: recorded by
    the first replica to start (or by `facebank calibrate --yes`), checked by all others."""

    __tablename__ = "calibrations"

    model_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    calibration_version: Mapped[str] = mapped_column(String(128))
    knots: Mapped[str] = mapped_column(Text)  # JSON [[cosine, similarity], ...]
    recorded_at: Mapped[float] = mapped_column(Float)
