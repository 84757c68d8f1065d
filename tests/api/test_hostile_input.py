"""Inputs no client library would send: every one gets a typed 4xx, never a 500."""

from __future__ import annotations

import httpx
import pytest

from service.testing.local_server import LiveServer

DEEP = 10_000
HOSTILE_BODIES = {
    "deep array": b"[" * DEEP + b"]" * DEEP,
    "deep object": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "deep member": b'{"CollectionId": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "shallow deep member": b'{"MaxResults": ' + b"[" * 500 + b"]" * 500 + b"}",
    "huge integer": b'{"MaxResults": ' + b"9" * 5000 + b"}",
    "long integer": b'{"MaxResults": ' + b"9" * 4000 + b"}",
    "huge float member": b'{"CollectionId": "c", "FaceId": "11111111-1111-1111-1111-111111111111", '
    b'"FaceMatchThreshold": 1' + b"0" * 400 + b"}",
}


def wire(server: LiveServer, operation: str, body: bytes) -> httpx.Response:
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"RekognitionService.{operation}",
    }
    return httpx.post(f"{server.url}/", content=body, headers=headers, timeout=30)


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_json_is_a_typed_client_error(server: LiveServer, name: str) -> None:
    body = HOSTILE_BODIES[name]
    operation = "SearchFaces" if "float" in name else "ListCollections"
    answer = wire(server, operation, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["__type"] in {"SerializationException", "InvalidParameterException"}
    rest = httpx.post(
        f"{server.url}/v1/collections/c/faces/search"
        if "float" in name
        else f"{server.url}/v1/collections",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert rest.status_code == 400, rest.text
    assert rest.json()["code"] in {"SerializationException", "InvalidParameterException"}


def test_form_field_with_thousands_of_digits(server: LiveServer) -> None:
    answer = httpx.get(f"{server.url}/v1/collections", params={"max_results": "9" * 5000})
    assert answer.status_code == 400 and answer.json()["code"] == "InvalidParameterException"
