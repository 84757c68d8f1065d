"""What the console shows that no Rekognition operation lists the way a person needs it: a
collection's faces filtered by ExternalImageId prefix (ListFaces filters by UserId and FaceIds
only), its users with their face counts, and the video jobs. Each read is authorized as the
operation it stands in for (ListFaces, ListUsers, GetFaceDetection / GetFaceSearch per job),
so a key sees here exactly what it could read through the API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from service import errors
from service.access.keys import KeyEntry
from service.access.policy import RequestFacts
from service.operations.authorization import AuthorizationContext, authorize
from service.operations.render import face_json
from service.storage.queries import faces_with_owners, find_collection
from service.storage.schema import FaceRow, UserRow, VideoJobRow


@dataclass(frozen=True)
class Caller:
    key: KeyEntry | None
    facts: RequestFacts | None


@dataclass(frozen=True)
class FacePage:
    faces: list[dict[str, Any]]  # ListFaces' Face, with IndexedAt (epoch seconds)
    next_after: int | None  # the cursor of the next page, None on the last


def faces_page(
    context: AuthorizationContext,
    caller: Caller,
    collection_id: str,
    after: int,
    limit: int,
    external_prefix: str = "",
    user_id: str = "",
) -> FacePage:
    authorize(context, caller.key, "ListFaces", {"CollectionId": collection_id}, caller.facts)
    with context.read() as session:
        collection = find_collection(session, collection_id)
        query = faces_with_owners(collection.pk).where(FaceRow.pk > after)
        if external_prefix:
            query = query.where(FaceRow.external_image_id.startswith(external_prefix))
        if user_id:
            query = query.where(UserRow.user_id == user_id)
        rows = session.execute(query.order_by(FaceRow.pk).limit(limit + 1)).all()
    page = rows[:limit]
    faces = [{**face_json(face, owner), "IndexedAt": face.created_at} for face, owner in page]
    more = len(rows) > limit
    return FacePage(faces, page[-1][0].pk if more and page else None)


def users_with_counts(
    context: AuthorizationContext, caller: Caller, collection_id: str, limit: int = 200
) -> list[tuple[str, int]]:
    authorize(context, caller.key, "ListUsers", {"CollectionId": collection_id}, caller.facts)
    with context.read() as session:
        collection = find_collection(session, collection_id)
        rows = session.execute(
            select(UserRow.user_id, func.count(FaceRow.pk))
            .outerjoin(FaceRow, FaceRow.user_pk == UserRow.pk)
            .where(UserRow.collection_pk == collection.pk)
            .group_by(UserRow.pk, UserRow.user_id)
            .order_by(UserRow.user_id)
            .limit(limit)
        ).all()
    return [(user, int(count)) for user, count in rows]


def video_jobs(
    context: AuthorizationContext, caller: Caller, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest jobs the caller may read with GetFaceDetection or GetFaceSearch."""
    with context.read() as session:
        rows = session.scalars(
            select(VideoJobRow).order_by(VideoJobRow.pk.desc()).limit(limit)
        ).all()
    found = []
    for row in rows:
        try:
            found.append(_readable_job(context, caller, row))
        except errors.AccessDeniedError:
            continue
    return found


def video_job(context: AuthorizationContext, caller: Caller, job_id: str) -> dict[str, Any]:
    """One job, however old, if the caller may read it; ResourceNotFoundError when no job has
    this id, AccessDeniedError when the caller may not read it."""
    with context.read() as session:
        row = session.scalar(select(VideoJobRow).where(VideoJobRow.job_id == job_id))
    if row is None:
        raise errors.ResourceNotFoundError(f"No job {job_id} to show")
    return _readable_job(context, caller, row)


def _readable_job(
    context: AuthorizationContext, caller: Caller, row: VideoJobRow
) -> dict[str, Any]:
    getter = "GetFaceSearch" if row.api == "StartFaceSearch" else "GetFaceDetection"
    authorize(context, caller.key, getter, {"JobId": row.job_id}, caller.facts)
    request = json.loads(row.request)
    return {
        "JobId": row.job_id,
        "Get": getter,
        "Status": row.status,
        "StatusMessage": row.status_message,
        "CollectionId": request.get("CollectionId"),
        "Video": request.get("Video", {}).get("S3Object", {}),
        "FramesDone": row.frames_done,
        "CreatedAt": row.created_at,
        "CompletedAt": row.completed_at,
        "Metadata": json.loads(row.video_metadata) if row.video_metadata else None,
    }
