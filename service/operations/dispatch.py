"""The one entry point both HTTP surfaces call: validate against the service model, then run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from sqlalchemy.exc import OperationalError

from service import errors
from service.access.keys import KeyEntry
from service.access.policy import RequestFacts
from service.batching import QueueFullError
from service.context import OperationContext
from service.operations import (
    Params,
    Result,
    collections,
    detect_compare,
    face_import,
    faces,
    search,
    stored_video,
    stream_processors,
    tags,
    user_search,
    users,
)
from service.operations.admission import PixelBudget, request_pixels
from service.operations.authorization import authorize
from service.operations.validation import conform_response, validate_request

Handler = Callable[[OperationContext, Params], Result]

HANDLERS: dict[str, Handler] = {
    "DetectFaces": detect_compare.detect_faces,
    "CompareFaces": detect_compare.compare_faces,
    "CreateCollection": collections.create_collection,
    "DescribeCollection": collections.describe_collection,
    "ListCollections": collections.list_collections,
    "DeleteCollection": collections.delete_collection,
    "IndexFaces": faces.index_faces,
    "ListFaces": faces.list_faces,
    "DeleteFaces": faces.delete_faces,
    "SearchFaces": search.search_faces,
    "SearchFacesByImage": search.search_faces_by_image,
    "CreateUser": users.create_user,
    "DeleteUser": users.delete_user,
    "ListUsers": users.list_users,
    "AssociateFaces": users.associate_faces,
    "DisassociateFaces": users.disassociate_faces,
    "SearchUsers": user_search.search_users,
    "SearchUsersByImage": user_search.search_users_by_image,
    "TagResource": tags.tag_resource,
    "UntagResource": tags.untag_resource,
    "ListTagsForResource": tags.list_tags_for_resource,
    "StartFaceDetection": stored_video.start_face_detection,
    "GetFaceDetection": stored_video.get_face_detection,
    "StartFaceSearch": stored_video.start_face_search,
    "GetFaceSearch": stored_video.get_face_search,
    "CreateStreamProcessor": stream_processors.create_stream_processor,
    "StartStreamProcessor": stream_processors.start_stream_processor,
    "StopStreamProcessor": stream_processors.stop_stream_processor,
    "DescribeStreamProcessor": stream_processors.describe_stream_processor,
    "ListStreamProcessors": stream_processors.list_stream_processors,
    "DeleteStreamProcessor": stream_processors.delete_stream_processor,
    "UpdateStreamProcessor": stream_processors.update_stream_processor,
    "ImportFace": face_import.import_face,  # facebank's own: REST only
}


# Operations that start, stop or read background work (video jobs, stream processors): they
# run no model for the caller, so they hold no background work back.
BACKGROUND_CONTROL = frozenset(
    {"StartFaceDetection", "GetFaceDetection", "StartFaceSearch", "GetFaceSearch"}
    | {name for name in HANDLERS if name.endswith(("StreamProcessor", "StreamProcessors"))}
)


class Operations:
    def __init__(
        self,
        context: OperationContext,
        max_inflight: int,
        max_inflight_pixels: int,
    ) -> None:
        self.context = context
        self._slots = threading.BoundedSemaphore(max_inflight)
        self.pixels = PixelBudget(max_inflight_pixels)

    def _activity(self, operation: str) -> AbstractContextManager[None]:
        """Interactive requests hold background work back while they run (starting or reading
        that work is not itself interactive work on the models)."""
        if operation in BACKGROUND_CONTROL:
            return nullcontext()
        return self.context.interactive.request()

    def dispatch(
        self,
        operation: str,
        body: object,
        caller: KeyEntry | None = None,
        facts: RequestFacts | None = None,
    ) -> Result:
        """Run one operation for `caller` (None: no keys configured), whose policy's
        conditions are judged on `facts` (None: a call that came over no network)."""
        handler = HANDLERS.get(operation)
        if handler is None:
            raise errors.UnknownOperationError(f"Operation {operation} is not supported")
        request = validate_request(operation, body)
        authorize(self.context, caller, operation, request, facts)
        # Admit at most max_inflight operations, and images of at most max_inflight_pixels;
        # refuse the rest at once so latency and memory stay bounded and clients back off
        # (botocore retries ThrottlingException by itself).
        if not self._slots.acquire(blocking=False):
            raise errors.ThrottlingError("Rate exceeded")
        try:
            request = self.context.s3.resolve(request)  # S3Object images become Bytes
            pixels = request_pixels(request, self.context.pipeline.limits.max_pixels)
            with self.pixels.admit(pixels), self._activity(operation):
                return conform_response(operation, handler(self.context, request))
        except QueueFullError:
            raise errors.ThrottlingError("Rate exceeded") from None
        except OperationalError as exc:  # the database is unreachable or busy: retryable
            raise errors.ServiceUnavailableError(
                f"The database cannot be reached ({type(exc.orig).__name__}); retry later"
            ) from exc
        finally:
            self._slots.release()
