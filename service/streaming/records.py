"""One record per analysed frame with a face, in Rekognition's schema for face search stream
processors (what its Kinesis data stream consumers parse), with a person index per face as
an extra member (`Person.Index`, as GetFaceSearch gives it) that stock consumers ignore."""

from __future__ import annotations

from typing import Any

from service.streaming.capture import Frame

MATCHED_FACE_MEMBERS = ("BoundingBox", "Confidence", "ExternalImageId", "FaceId", "ImageId")
DETECTED_FACE_MEMBERS = ("BoundingBox", "Confidence", "Landmarks", "Pose", "Quality")


def face_search_record(
    stream_arn: str, frame: Frame, faces: list[tuple[dict[str, Any], list[dict[str, Any]], int]]
) -> dict[str, Any]:
    """`faces`: (FaceDetail, FaceMatches as SearchFaces gives them, person index) per face."""
    return {
        "InputInformation": {
            "KinesisVideo": {
                "StreamArn": stream_arn,
                "FragmentNumber": fragment_number(frame),
                "ServerTimestamp": frame.server_time,
                "ProducerTimestamp": frame.producer_time,
                "FrameOffsetInSeconds": frame.offset_s,
            }
        },
        "StreamProcessorInformation": {"Status": "RUNNING"},
        "FaceSearchResponse": [
            {
                "DetectedFace": {key: detail[key] for key in DETECTED_FACE_MEMBERS},
                "MatchedFaces": [_matched(match) for match in matches],
                "Person": {"Index": person},
            }
            for detail, matches, person in faces
        ],
    }


def fragment_number(frame: Frame) -> str:
    """A decimal string, as Kinesis Video's: the connection's start in milliseconds and the
    second of the connection the frame falls in (a camera has no fragments of its own)."""
    return f"{round(frame.producer_time * 1000)}{int(frame.offset_s):08d}"


def _matched(match: dict[str, Any]) -> dict[str, Any]:
    face = match["Face"]
    return {
        "Similarity": match["Similarity"],
        "Face": {key: face[key] for key in MATCHED_FACE_MEMBERS if key in face},
    }
