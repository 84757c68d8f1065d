from __future__ import annotations

import base64
from typing import Any

import pytest

from service.errors import ImageTooLargeError, InvalidParameterError
from service.operations.validation import validate_request

IMAGE = {"Bytes": base64.b64encode(b"\xff\xd8\xff" + b"0" * 10).decode()}


def test_blobs_are_decoded() -> None:
    request = validate_request("DetectFaces", {"Image": IMAGE, "Attributes": ["ALL"]})
    assert request["Image"]["Bytes"].startswith(b"\xff\xd8\xff")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "image"),
        ({"Image": IMAGE, "Attributes": ["WRINKLES"]}, "enum"),
        ({"Image": IMAGE, "Extra": 1}, "extra"),
        ({"Image": {"Bytes": "not base64!"}}, "base64"),
        ({"Image": {"Bytes": ""}}, "length greater than or equal to 1"),
        ({"Image": "x"}, "object"),
    ],
)
def test_detect_faces_rejections(body: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        validate_request("DetectFaces", body)
    assert fragment in caught.value.message.lower() or fragment in caught.value.message


@pytest.mark.parametrize(
    ("threshold", "ok"),
    [
        (0, True),
        (100, True),
        (80.5, True),
        (-0.1, False),
        (100.01, False),
        ("80", False),
        (True, False),
    ],
)
def test_similarity_threshold_range(threshold: object, ok: bool) -> None:
    body = {"SourceImage": IMAGE, "TargetImage": IMAGE, "SimilarityThreshold": threshold}
    if ok:
        assert validate_request("CompareFaces", body)["SimilarityThreshold"] == float(threshold)  # type: ignore[arg-type]
    else:
        with pytest.raises(InvalidParameterError, match="similarityThreshold"):
            validate_request("CompareFaces", body)


def test_quality_filter_enum() -> None:
    body = {"SourceImage": IMAGE, "TargetImage": IMAGE, "QualityFilter": "SUPER"}
    with pytest.raises(InvalidParameterError, match="enum"):
        validate_request("CompareFaces", body)


def test_patterns_and_max_lengths() -> None:
    with pytest.raises(InvalidParameterError, match="regular expression"):
        validate_request("CreateCollection", {"CollectionId": "has space"})
    with pytest.raises(InvalidParameterError, match="less than or equal to 255"):
        validate_request("CreateCollection", {"CollectionId": "a" * 256})
    assert validate_request("CreateCollection", {"CollectionId": "ok_.-1"})["CollectionId"]


def test_unicode_property_patterns_work() -> None:
    ok = {"CollectionId": "c", "Tags": {"Team": "Équipe 1"}}
    assert validate_request("CreateCollection", ok)["Tags"] == {"Team": "Équipe 1"}
    with pytest.raises(InvalidParameterError):
        validate_request("CreateCollection", {"CollectionId": "c", "Tags": {"aws:x": "y"}})


def test_image_over_five_mebibytes_is_image_too_large() -> None:
    big = base64.b64encode(b"\0" * (5 * 1024 * 1024 + 1)).decode()
    with pytest.raises(ImageTooLargeError):
        validate_request("DetectFaces", {"Image": {"Bytes": big}})


def test_an_image_is_bytes_or_an_s3_object_never_both_nor_neither() -> None:
    s3 = {"S3Object": {"Bucket": "photos", "Name": "n.jpg"}}
    assert validate_request("DetectFaces", {"Image": s3}) == {"Image": s3}
    for image in ({}, {**s3, "Bytes": "AAAA"}):
        with pytest.raises(InvalidParameterError, match="exactly one of Bytes and S3Object"):
            validate_request("DetectFaces", {"Image": image})


def _required_lists(shape: Any, seen: frozenset[str] = frozenset()) -> list[list[str]]:
    """Paths (member names) to every list of an output shape that must hold an item."""
    if shape.name in seen or shape.type_name != "structure":
        return []
    found = []
    for name, member in shape.members.items():
        if member.type_name == "list" and member.metadata.get("min", 0) >= 1:
            found.append([name])
        found += [[name, *rest] for rest in _required_lists(member, seen | {shape.name})]
    return found


def test_no_response_carries_an_empty_list_its_model_forbids() -> None:
    """Walks botocore's output shape of every operation served: each list with a `min` is
    left out of the answer when it would be empty (DeleteFaces' DeletedFaces, say)."""
    from service.operations.dispatch import HANDLERS
    from service.operations.validation import conform_response, operation_model

    walked = 0
    for operation in HANDLERS:
        for path in _required_lists(operation_model(operation).output_shape):
            response: dict[str, Any] = {}
            node = response
            for name in path[:-1]:
                node = node.setdefault(name, {})
            node[path[-1]] = []
            conformed = conform_response(operation, response)
            for name in path[:-1]:
                conformed = conformed[name]
            assert path[-1] not in conformed, (operation, path)
            walked += 1
    assert walked >= 1  # DeleteFaces.DeletedFaces at least
    kept = conform_response("DeleteFaces", {"DeletedFaces": ["f"], "UnsuccessfulFaceDeletions": []})
    assert kept == {"DeletedFaces": ["f"], "UnsuccessfulFaceDeletions": []}
