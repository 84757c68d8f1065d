"""Params validation against botocore's Rekognition service model.

botocore checks only required members, types and minimum lengths on the client; a server must
enforce the rest (maximum lengths, ranges, patterns, enums, blob sizes), and REST clients get no
client-side checks at all. Validating against the same model keeps both surfaces exact.
"""

from __future__ import annotations

import base64
import binascii
import math
import reprlib
from functools import cache
from typing import Any

import botocore.session
import regex  # AWS patterns use \p{L}-style classes that `re` lacks
from botocore.model import OperationModel, ServiceModel, Shape

from service.errors import (
    ImageTooLargeError,
    InvalidParameterError,
    ServiceError,
)

IMAGE_BLOB_SHAPE = "ImageBlob"
# Values quoted in messages are cut short: a client's value may be huge or nested 10,000 deep.
_QUOTE = reprlib.Repr()
_QUOTE.maxlevel, _QUOTE.maxstring, _QUOTE.maxother, _QUOTE.maxlong = 3, 80, 80, 40


@cache
def rekognition_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("rekognition")


@cache
def _compiled(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern)


# facebank's own operations (not Rekognition's, so only on the REST surface), described in
# botocore's terms over Rekognition's shapes so that validation, responses and the OpenAPI
# document treat them as they treat Rekognition's. Their policy actions are facebank:NAME.
FACEBANK_OPERATIONS = {
    "ImportFace": {
        "input": {
            "type": "structure",
            "required": ["CollectionId", "FaceId", "ImageId", "BoundingBox", "Image"],
            "members": {
                "CollectionId": {"shape": "CollectionId"},
                "FaceId": {"shape": "FaceId"},
                "ImageId": {"shape": "ImageId"},
                "ExternalImageId": {"shape": "ExternalImageId"},
                "BoundingBox": {"shape": "BoundingBox"},
                "Confidence": {"shape": "Percent"},
                "Image": {"shape": "Image"},
            },
        },
        "output": {
            "type": "structure",
            "members": {
                "Face": {"shape": "Face"},
                "FaceModelVersion": {"shape": "String"},
            },
        },
    },
}


@cache
def facebank_model() -> ServiceModel:
    loader = botocore.session.get_session().get_component("data_loader")
    rekognition = loader.load_service_model("rekognition", "service-2")
    shapes = dict(rekognition["shapes"])
    operations = {}
    for name, parts in FACEBANK_OPERATIONS.items():
        shapes[f"{name}Request"], shapes[f"{name}Response"] = parts["input"], parts["output"]
        operations[name] = {
            "name": name,
            "http": {"method": "POST", "requestUri": "/"},
            "input": {"shape": f"{name}Request"},
            "output": {"shape": f"{name}Response"},
        }
    metadata = {**rekognition["metadata"], "serviceId": "facebank", "targetPrefix": "Facebank"}
    return ServiceModel({"metadata": metadata, "operations": operations, "shapes": shapes})


def operation_model(name: str) -> OperationModel:
    if name in FACEBANK_OPERATIONS:
        return facebank_model().operation_model(name)
    return rekognition_model().operation_model(name)


def validate_request(operation: str, body: object) -> dict[str, Any]:
    """Check `body` (parsed JSON) against the operation's input shape.

    Returns the request with blobs base64-decoded to bytes. Raises InvalidParameterError (or
    ImageTooLargeError for an oversized image) naming the first offending member.
    """
    shape = operation_model(operation).input_shape
    if shape is None:
        return {}
    if body is None:
        body = {}
    result = _check(shape, body, "")
    assert isinstance(result, dict)  # a structure shape always yields a dict
    return result


def _join(path: str, member: str) -> str:
    """AWS names members in camelCase, dotted from the request root: 'sourceImage.bytes'."""
    name = member[:1].lower() + member[1:]
    return f"{path}.{name}" if path else name


def _fail(path: str, value: object, constraint: str) -> ServiceError:
    shown = "(value)" if isinstance(value, bytes | str) and len(value) >= 80 else _QUOTE.repr(value)
    return InvalidParameterError(
        f"1 validation error detected: Value {shown} at '{path}' failed to satisfy constraint: "
        f"{constraint}"
    )


def _check(shape: Shape, value: object, path: str) -> object:
    checker = _CHECKERS.get(shape.type_name)
    if checker is None:
        raise _fail(path, value, f"Member type {shape.type_name} is not supported")
    return checker(shape, value, path)


def _check_structure(shape: Shape, value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, value, "Member must be an object")
    unknown = sorted(set(value) - set(shape.members))
    if unknown:
        raise _fail(_join(path, unknown[0]), value[unknown[0]], "Member is not a known parameter")
    for required in shape.required_members:
        if value.get(required) is None:
            raise _fail(_join(path, required), None, "Member must not be null")
    checked = {}
    for name, member_value in value.items():
        if member_value is None:
            continue
        checked[name] = _check(shape.members[name], member_value, _join(path, name))
    if shape.name == "Image":
        _check_image_source(checked, path)
    return checked


def _check_image_source(image: dict[str, Any], path: str) -> None:
    if ("Bytes" in image) == ("S3Object" in image):
        raise InvalidParameterError(
            f"Request has invalid parameters: {path or 'image'} needs exactly one of Bytes and "
            "S3Object"
        )


def _check_bounds(shape: Shape, measured: float, value: object, path: str, what: str) -> None:
    """The model's min/max on a length or on a value ("length" or "value" in the message)."""
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and measured < low:
        raise _fail(path, value, f"Member must have {what} greater than or equal to {low}")
    if high is not None and measured > high:
        raise _fail(path, value, f"Member must have {what} less than or equal to {high}")


def _check_length(shape: Shape, length: int, value: object, path: str) -> None:
    _check_bounds(shape, length, value, path, "length")


def _check_string(shape: Shape, value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, value, "Member must be a string")
    _check_length(shape, len(value), value, path)
    if shape.enum and value not in shape.enum:
        raise _fail(path, value, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    pattern = shape.metadata.get("pattern")
    if pattern and _compiled(pattern).fullmatch(value) is None:
        raise _fail(path, value, f"Member must satisfy regular expression pattern: {pattern}")
    return value


def _check_blob(shape: Shape, value: object, path: str) -> bytes:
    if isinstance(value, bytes):  # the REST surface's multipart uploads arrive as raw bytes
        return _check_blob_size(shape, value, path)
    if not isinstance(value, str):
        raise _fail(path, "(blob)", "Member must be a base64-encoded string")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(path, "(blob)", "Member must be valid base64") from None
    return _check_blob_size(shape, data, path)


def _check_blob_size(shape: Shape, data: bytes, path: str) -> bytes:
    high = shape.metadata.get("max")
    if shape.name == IMAGE_BLOB_SHAPE and high is not None and len(data) > high:
        raise ImageTooLargeError(f"Image is {len(data)} bytes; the limit is {high} bytes")
    _check_length(shape, len(data), "(blob)", path)
    return data


def _check_integer(shape: Shape, value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, value, "Member must be an integer")
    _check_range(shape, value, path)
    return value


def _check_float(shape: Shape, value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, value, "Member must be a finite number")
    try:
        number = float(value)  # an integer of hundreds of digits overflows a float
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise _fail(path, value, "Member must be a finite number")
    _check_range(shape, number, path)
    return number


def _check_range(shape: Shape, value: float, path: str) -> None:
    _check_bounds(shape, value, value, path, "value")


def _check_boolean(shape: Shape, value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, value, "Member must be a boolean")
    return value


def _check_list(shape: Shape, value: object, path: str) -> list[object]:
    if not isinstance(value, list):
        raise _fail(path, value, "Member must be a list")
    _check_length(shape, len(value), value, path)
    return [_check(shape.member, item, f"{path}.{i + 1}.member") for i, item in enumerate(value)]


def _check_map(shape: Shape, value: object, path: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _fail(path, value, "Member must be a map")
    _check_length(shape, len(value), value, path)
    return {
        _check_string(shape.key, key, f"{path}.key"): _check(shape.value, item, f"{path}.{key}")
        for key, item in value.items()
    }


_CHECKERS = {
    "structure": _check_structure,
    "string": _check_string,
    "blob": _check_blob,
    "integer": _check_integer,
    "long": _check_integer,
    "float": _check_float,
    "double": _check_float,
    "boolean": _check_boolean,
    "list": _check_list,
    "map": _check_map,
}


def conform_response(operation: str, response: dict[str, Any]) -> dict[str, Any]:
    """The response without the empty lists botocore's model says must hold an item (its
    `min`): Rekognition omits such a member rather than send it empty (DeletedFaces, say)."""
    conformed: dict[str, Any] = _conform(operation_model(operation).output_shape, response)
    return conformed


def _conform(shape: Shape, value: Any) -> Any:
    if not _holds_required_list(shape):
        return value  # nothing to drop below: most shapes, and every big page of faces
    if shape.type_name == "structure" and isinstance(value, dict):
        members = shape.members
        return {
            key: _conform(members[key], item) if key in members else item
            for key, item in value.items()
            if not _empty_but_required(members.get(key), item)
        }
    if shape.type_name == "list" and isinstance(value, list):
        return [_conform(shape.member, item) for item in value]
    return value


@cache
def _holds_required_list(shape: Shape) -> bool:
    """Whether a list with a `min` lies anywhere below `shape` (shapes are cached by botocore,
    so this is answered once per shape)."""
    return _below(shape, frozenset())


def _below(shape: Shape, seen: frozenset[str]) -> bool:
    if shape.name in seen:
        return False
    seen = seen | {shape.name}
    if shape.type_name == "list":
        return shape.metadata.get("min", 0) >= 1 or _below(shape.member, seen)
    if shape.type_name == "structure":
        return any(_below(member, seen) for member in shape.members.values())
    return False


def _empty_but_required(shape: Shape | None, value: object) -> bool:
    return (
        shape is not None
        and shape.type_name == "list"
        and value == []
        and shape.metadata.get("min", 0) >= 1
    )
