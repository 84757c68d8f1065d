"""Rekognition's stream processors for face search: CreateStreamProcessor and its siblings. A
processor's Input names a camera of the site's streams file by the name in its Kinesis Video
ARN, its Output a Kinesis data stream; the processors are rows in the database, and running
ones are run by the replicas' stream workers (service/streaming/). Only face search is served:
a connected-home (label detection) processor is refused."""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

import regex

from service import errors
from service.context import Transactions, WithAccount, WithTokens
from service.operations import Params, Result
from service.operations.tags import check_tag_quota
from service.settings import StreamSettings
from service.storage import stream_processors as store
from service.storage.queries import find_collection

DEFAULT_FACE_MATCH_THRESHOLD = 80.0  # Rekognition's default, and its floor
DEFAULT_LIST = 1000
# Kinesis Video and Kinesis data stream ARNs, any partition, region and account (not matched).
VIDEO_STREAM_ARN = regex.compile(
    r"^arn:aws[a-z-]*:kinesisvideo:[a-z0-9-]+:\d{12}:stream/(?P<name>[a-zA-Z0-9_.\-]+)(?:/\d+)?$"
)
DATA_STREAM_ARN = regex.compile(
    r"^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream/(?P<name>[a-zA-Z0-9_.\-]+)$"
)
DESCRIBED = (
    "Input",
    "Output",
    "RoleArn",
    "Settings",
    "NotificationChannel",
    "KmsKeyId",
    "RegionsOfInterest",
    "DataSharingPreference",
)


class StreamProcessorsContext(Transactions, WithAccount, WithTokens, Protocol):
    """What the stream processor operations use: sessions, the ARNs, and how many may run."""

    @property
    def streams(self) -> StreamSettings: ...


def processor_arn(context: WithAccount, name: str) -> str:
    return f"arn:aws:rekognition:{context.region}:{context.account_id}:streamprocessor/{name}"


def video_stream_name(arn: str) -> str | None:
    """The camera a Kinesis Video stream ARN names (the streams file's Name), or None."""
    found = VIDEO_STREAM_ARN.match(arn)
    return found["name"] if found else None


def data_stream_name(arn: str) -> str | None:
    found = DATA_STREAM_ARN.match(arn)
    return found["name"] if found else None


def create_stream_processor(context: StreamProcessorsContext, request: Params) -> Result:
    settings = _face_search(request.get("Settings", {}))
    _check_input_and_output(request)
    stored = {key: request[key] for key in DESCRIBED if key in request}
    threshold = settings.get("FaceMatchThreshold", DEFAULT_FACE_MATCH_THRESHOLD)
    # Rekognition's documentation: values lower than 80 are set to 80.
    settings = {**settings, "FaceMatchThreshold": max(threshold, DEFAULT_FACE_MATCH_THRESHOLD)}
    stored["Settings"] = {"FaceSearch": settings}
    tags = request.get("Tags", {})
    check_tag_quota(tags)
    with context.write() as session:
        find_collection(session, settings["CollectionId"])
        store.add(session, request["Name"], stored, tags)
    return {"StreamProcessorArn": processor_arn(context, request["Name"])}


def _face_search(settings: dict[str, Any]) -> dict[str, Any]:
    if "ConnectedHome" in settings:
        raise errors.InvalidParameterError(
            "Only face search stream processors are served here (Settings.FaceSearch); "
            "connected-home label detection is not"
        )
    face_search = settings.get("FaceSearch")
    if not face_search or "CollectionId" not in face_search:
        raise errors.InvalidParameterError("Settings.FaceSearch.CollectionId is required")
    return dict(face_search)


def _check_input_and_output(request: Params) -> None:
    stream = request["Input"].get("KinesisVideoStream", {}).get("Arn", "")
    if video_stream_name(stream) is None:
        raise errors.InvalidParameterError(
            "Input.KinesisVideoStream.Arn must be a Kinesis Video stream ARN "
            "(arn:aws:kinesisvideo:REGION:ACCOUNT:stream/NAME/CREATION): NAME names a camera "
            "of FACEBANK_VIDEO_STREAMS_FILE"
        )
    output = request["Output"]
    if "S3Destination" in output or "KinesisDataStream" not in output:
        raise errors.InvalidParameterError(
            "Output.KinesisDataStream.Arn is required: face search writes to a Kinesis data "
            "stream (an S3 destination is for connected-home processors)"
        )
    if data_stream_name(output["KinesisDataStream"].get("Arn", "")) is None:
        raise errors.InvalidParameterError(
            "Output.KinesisDataStream.Arn must be a Kinesis data stream ARN "
            "(arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)"
        )


def start_stream_processor(context: StreamProcessorsContext, request: Params) -> Result:
    if "StartSelector" in request or "StopSelector" in request:
        raise errors.InvalidParameterError(
            "StartSelector and StopSelector pick Kinesis Video fragments and stop connected-home "
            "processors; a face search processor reads its camera live, from now until Stop"
        )
    with context.write() as session:
        row = store.find(session, request["Name"], lock=True)
        if row.status in (*store.ACTIVE, store.STOPPING):
            raise errors.ResourceInUseError(
                f"The stream processor {row.name} is {row.status}: stop it before starting it"
            )
        limit = context.streams.max_running
        if store.active_count(session) >= limit:
            raise errors.LimitExceededError(
                f"{limit} stream processors are running, the most this deployment runs at once "
                "(FACEBANK_STREAM_MAX_RUNNING)"
            )
        return {"SessionId": store.start(row)}


def stop_stream_processor(context: StreamProcessorsContext, request: Params) -> Result:
    with context.write() as session:
        row = store.find(session, request["Name"], lock=True)
        if row.status not in store.ACTIVE:
            raise errors.ResourceInUseError(
                f"The stream processor {row.name} is {row.status}, not running"
            )
        store.stop(row)
    return {}


def delete_stream_processor(context: StreamProcessorsContext, request: Params) -> Result:
    """Deletes at once, running or not: a running processor's worker finds it gone at its next
    heartbeat and stops (docs/contract.md)."""
    with context.write() as session:
        session.delete(store.find(session, request["Name"], lock=True))
    return {}


def describe_stream_processor(context: StreamProcessorsContext, request: Params) -> Result:
    with context.read() as session:
        row = store.find(session, request["Name"])
        stored = json.loads(row.request)
        described = {
            "Name": row.name,
            "StreamProcessorArn": processor_arn(context, row.name),
            "Status": row.status,
            "CreationTimestamp": row.created_at,
            "LastUpdateTimestamp": row.updated_at,
            **stored,
        }
        if row.status_message:
            described["StatusMessage"] = row.status_message
        return described


def list_stream_processors(context: StreamProcessorsContext, request: Params) -> Result:
    limit = request.get("MaxResults", DEFAULT_LIST)
    scope = "ListStreamProcessors"
    after = context.tokens.start(request, scope)
    with context.read() as session:
        rows = store.page(session, after, limit + 1)
        page, token = context.tokens.page(rows, limit, scope, lambda row: row.pk)
        found = [{"Name": row.name, "Status": row.status} for row in page]
    return {"StreamProcessors": found, "NextToken": token} if token else {"StreamProcessors": found}


def update_stream_processor(context: StreamProcessorsContext, request: Params) -> Result:
    """Regions of interest and data sharing change at once (a running processor takes them at
    its next heartbeat); connected-home settings are refused, as at Create."""
    if "ConnectedHomeForUpdate" in request.get("SettingsForUpdate", {}):
        raise errors.InvalidParameterError(
            "Only face search stream processors are served here: there are no connected-home "
            "settings to update"
        )
    with context.write() as session:
        row = store.find(session, request["Name"], lock=True)
        row.request = json.dumps(_updated(json.loads(row.request), request))
        row.generation += 1
        row.updated_at = time.time()
    return {}


def _updated(stored: dict[str, Any], request: Params) -> dict[str, Any]:
    if "RegionsOfInterest" in request.get("ParametersToDelete", []):
        stored.pop("RegionsOfInterest", None)
    if "RegionsOfInterestForUpdate" in request:
        stored["RegionsOfInterest"] = request["RegionsOfInterestForUpdate"]
    if "DataSharingPreferenceForUpdate" in request:
        stored["DataSharingPreference"] = request["DataSharingPreferenceForUpdate"]
    return stored
