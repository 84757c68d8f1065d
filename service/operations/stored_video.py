"""StartFaceDetection, StartFaceSearch, GetFaceDetection and GetFaceSearch: stored video as
durable jobs (`service.stored_video`). Start checks what it can without reading the video (the
object, its size, the collection, the notification channel, the job quota) and records the
job; a worker of any replica runs it; Get pages through its results."""

from __future__ import annotations

import json
import uuid
from typing import Any, Protocol

from sqlalchemy.orm import Session

from service import errors
from service.background.notify import Notifier
from service.context import CollectionAccess, WithTokens
from service.operations import Params, Result
from service.operations.idempotency import idempotent
from service.operations.inputs import model_collection
from service.s3_objects import S3Objects
from service.settings import VideoSettings
from service.storage import video_jobs as store
from service.storage.schema import VideoJobRow, VideoResultRow

MAX_RESULTS = 1000  # Rekognition returns at most 1,000 per page, whatever is asked


class VideoJobsContext(CollectionAccess, WithTokens, Protocol):
    """What starting and reading video jobs uses: the store the video is in, the SNS endpoint
    a NotificationChannel needs, the video settings."""

    @property
    def s3(self) -> S3Objects: ...

    @property
    def notifier(self) -> Notifier: ...

    @property
    def video(self) -> VideoSettings: ...


def start_face_detection(context: VideoJobsContext, request: Params) -> Result:
    return _start(context, "StartFaceDetection", request)


def start_face_search(context: VideoJobsContext, request: Params) -> Result:
    with context.read() as session:
        model_collection(context, session, request["CollectionId"])
    return _start(context, "StartFaceSearch", request)


def get_face_detection(context: VideoJobsContext, request: Params) -> Result:
    return _get(context, request, "StartFaceDetection", "Faces", "TIMESTAMP")


def get_face_search(context: VideoJobsContext, request: Params) -> Result:
    order = request.get("SortBy", "TIMESTAMP")
    return _get(context, request, "StartFaceSearch", "Persons", order)


def _start(context: VideoJobsContext, api: str, request: Params) -> Result:
    if "NotificationChannel" in request and not context.notifier.configured:
        raise errors.InvalidParameterError(
            "NotificationChannel needs an SNS-compatible endpoint, and this server has none: "
            "set FACEBANK_SNS_ENDPOINT_URL, or poll the Get operation instead"
        )
    location = request["Video"].get("S3Object")
    if location is None:
        raise errors.InvalidParameterError("Video needs an S3Object")
    size = context.s3.size(location)
    if size > context.video.max_bytes:
        raise errors.VideoTooLargeError(
            f"The video is {size} bytes; this server takes videos up to "
            f"{context.video.max_bytes} bytes (FACEBANK_VIDEO_MAX_BYTES)"
        )
    with context.write() as session:
        return idempotent(session, api, request, lambda: _new_job(context, session, api, request))


def _new_job(context: VideoJobsContext, session: Session, api: str, request: Params) -> Result:
    if store.jobs_in_progress(session) >= context.video.max_jobs:
        raise errors.LimitExceededError(
            f"{context.video.max_jobs} video jobs are in progress, the most this server runs "
            "at once (FACEBANK_VIDEO_MAX_JOBS); start this one when one has finished"
        )
    job_id = uuid.uuid4().hex + uuid.uuid4().hex  # 64 hex digits, as Rekognition's
    store.add_job(session, job_id, api, request)
    return {"JobId": job_id}


def _get(context: VideoJobsContext, request: Params, api: str, member: str, order: str) -> Result:
    limit = min(int(request.get("MaxResults", MAX_RESULTS)), MAX_RESULTS)
    scope = f"{api}:{request['JobId']}:{order}"
    with context.read() as session:
        job = store.find_job(session, request["JobId"], api)
        response = _job_fields(job)
        if job.status == store.SUCCEEDED:
            after = context.tokens.start(request, scope) - 1
            rows = store.result_page(session, job.pk, order, after, limit + 1)
            page, token = context.tokens.page(rows, limit, scope, lambda r: _rank(r, order) + 1)
            response[member] = [json.loads(row.body) for row in page]
            if token is not None:
                response["NextToken"] = token
    return response


def _rank(row: VideoResultRow, order: str) -> int:
    return row.by_index if order == "INDEX" else row.by_time


def _job_fields(job: VideoJobRow) -> dict[str, Any]:
    started = json.loads(job.request)
    fields: dict[str, Any] = {"JobStatus": job.status, "JobId": job.job_id}
    fields["Video"] = started["Video"]
    if job.status_message:
        fields["StatusMessage"] = job.status_message
    if job.video_metadata:
        fields["VideoMetadata"] = json.loads(job.video_metadata)
    if "JobTag" in started:
        fields["JobTag"] = started["JobTag"]
    return fields
