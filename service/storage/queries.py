"""The queries several operation families share: collections, faces and their owners, index
events. Each takes the caller's session, so it runs inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from service import errors
from service.storage.schema import CollectionRow, FaceRow, IndexEventRow, UserRow


def find_collection(session: Session, collection_id: str, *, lock: bool = False) -> CollectionRow:
    """The collection row; `lock` takes its row lock, which orders a collection's writes."""
    query = select(CollectionRow).where(CollectionRow.collection_id == collection_id)
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise errors.ResourceNotFoundError(f"The collection id: {collection_id} does not exist")
    return row


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


def find_face(session: Session, collection: CollectionRow, face_id: str) -> FaceRow:
    """The collection's face with this FaceId; InvalidParameterException when there is none."""
    face = session.scalars(
        select(FaceRow).where(FaceRow.collection_pk == collection.pk, FaceRow.face_id == face_id)
    ).one_or_none()
    if face is None:
        raise errors.InvalidParameterError(
            f"Face {face_id} does not exist in collection {collection.collection_id}"
        )
    return face


def find_user(session: Session, collection: CollectionRow, user_id: str) -> UserRow:
    """The collection's user with this UserId; ResourceNotFoundException when there is none."""
    user = session.scalars(
        select(UserRow).where(UserRow.collection_pk == collection.pk, UserRow.user_id == user_id)
    ).one_or_none()
    if user is None:
        raise errors.ResourceNotFoundError(
            f"User {user_id} does not exist in collection {collection.collection_id}"
        )
    return user


def collection_stats(
    session: Session, watermark: Callable[[int], int]
) -> list[tuple[str, int, int]]:
    """(CollectionId, faces, index lag) of every collection, the lag being the committed
    changes its index has not applied yet (`watermark`: the last change an index applied)."""
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
        (collection_id, faces, max(0, latest.get(pk, 0) - watermark(pk)))
        for pk, collection_id, faces in rows
    ]
