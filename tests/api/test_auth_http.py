"""Authentication on both surfaces of a server started with FACEBANK_ACCESS_KEYS."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.auth
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from service.testing.local_server import LiveServer
from tests.support.clients import ACCESS_KEY, SECRET_KEY, rekognition_client
from tests.support.images import blank_jpeg
from tests.support.photos import GROUP_PEOPLE, group_photo


def code_of(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def test_signed_client_works(signed_server: LiveServer, faces_dir: Path) -> None:
    client = rekognition_client(signed_server.url, ACCESS_KEY, SECRET_KEY)
    assert len(client.detect_faces(Image={"Bytes": group_photo(faces_dir)})["FaceDetails"]) == len(
        GROUP_PEOPLE
    )


def test_wrong_secret(signed_server: LiveServer) -> None:
    client = rekognition_client(signed_server.url, ACCESS_KEY, "not-the-secret")
    assert (
        code_of(client.detect_faces, Image={"Bytes": blank_jpeg()}) == "InvalidSignatureException"
    )


def test_unknown_key(signed_server: LiveServer) -> None:
    client = rekognition_client(signed_server.url, "AKIDUNKNOWN", SECRET_KEY)
    assert code_of(client.detect_faces, Image={"Bytes": blank_jpeg()}) == (
        "UnrecognizedClientException"
    )


def test_unsigned_request(signed_server: LiveServer) -> None:
    client = rekognition_client(signed_server.url)
    assert code_of(client.detect_faces, Image={"Bytes": blank_jpeg()}) == (
        "MissingAuthenticationTokenException"
    )


def test_stale_date(signed_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: stale)
    client = rekognition_client(signed_server.url, ACCESS_KEY, SECRET_KEY)
    with pytest.raises(ClientError) as caught:
        client.detect_faces(Image={"Bytes": blank_jpeg()})
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidSignatureException"
    assert "Signature expired" in error["Message"]


def test_rest_requires_credentials(signed_server: LiveServer) -> None:
    url = f"{signed_server.url}/v1/faces/detect"
    files = {"image": ("a.jpg", blank_jpeg())}
    assert httpx.post(url, files=files).status_code == 401
    assert httpx.post(url, files=files, auth=(ACCESS_KEY, "wrong")).status_code == 401
    ok = httpx.post(url, files=files, auth=(ACCESS_KEY, SECRET_KEY))
    assert ok.status_code == 200 and ok.json()["FaceDetails"] == []


def test_health_needs_no_credentials(signed_server: LiveServer) -> None:
    assert httpx.get(f"{signed_server.url}/healthz").status_code == 200


def sign(url: str, body: bytes, headers: dict[str, str]) -> list[tuple[str, str]]:
    """The headers a stock SDK sends for this request, signed with the test key."""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "rekognition", "eu-west-1").add_auth(request)
    return list(request.headers.items())


def wire_headers(url: str, operation: str, body: bytes) -> list[tuple[str, str]]:
    return sign(
        url,
        body,
        {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"RekognitionService.{operation}",
        },
    )


def test_signed_request_cannot_be_turned_into_another_operation(
    signed_server: LiveServer,
) -> None:
    client = rekognition_client(signed_server.url, ACCESS_KEY, SECRET_KEY)
    client.create_collection(CollectionId="replayed")
    body = b'{"CollectionId": "replayed"}'
    captured = wire_headers(f"{signed_server.url}/", "ListFaces", body)
    assert httpx.post(f"{signed_server.url}/", content=body, headers=captured).status_code == 200
    for extra in ("first", "last"):
        delete = ("X-Amz-Target", "RekognitionService.DeleteCollection")
        headers = [delete, *captured] if extra == "first" else [*captured, delete]
        answer = httpx.post(f"{signed_server.url}/", content=body, headers=headers)
        assert answer.status_code == 400
        assert answer.json()["__type"] == "InvalidParameterException"
        assert "x-amz-target" in answer.json()["Message"]
    assert client.describe_collection(CollectionId="replayed")["FaceCount"] == 0


def test_target_left_out_of_the_signature_is_refused(signed_server: LiveServer) -> None:
    client = rekognition_client(signed_server.url, ACCESS_KEY, SECRET_KEY)
    client.create_collection(CollectionId="unsigned-target")
    body = b'{"CollectionId": "unsigned-target"}'
    headers = sign(f"{signed_server.url}/", body, {"Content-Type": "application/x-amz-json-1.1"})
    headers.append(("X-Amz-Target", "RekognitionService.DeleteCollection"))
    answer = httpx.post(f"{signed_server.url}/", content=body, headers=headers)
    assert answer.status_code == 403
    assert answer.json()["__type"] == "InvalidSignatureException"
    assert client.describe_collection(CollectionId="unsigned-target")["FaceCount"] == 0


def test_rest_sigv4_binds_the_multipart_payload(signed_server: LiveServer, faces_dir: Path) -> None:
    url = f"{signed_server.url}/v1/faces/detect"
    signed_upload = httpx.Request("POST", url, files={"image": ("a.jpg", group_photo(faces_dir))})
    body = signed_upload.read()
    headers = sign(url, body, {"Content-Type": signed_upload.headers["content-type"]})
    accepted = httpx.post(url, content=body, headers=headers)
    assert accepted.status_code == 200 and len(accepted.json()["FaceDetails"]) == len(GROUP_PEOPLE)
    swapped = body.replace(b"a.jpg", b"b.jpg")
    refused = httpx.post(url, content=swapped, headers=headers)
    assert refused.status_code == 401 and refused.json()["code"] == "InvalidSignatureException"


def test_odd_credentials_are_typed_errors(signed_server: LiveServer) -> None:
    body = b"{}"
    headers = dict(wire_headers(f"{signed_server.url}/", "ListCollections", body))
    headers["Authorization"] = headers["Authorization"].rsplit("=", 1)[0] + "=" + "ß" * 64
    answer = httpx.post(
        f"{signed_server.url}/",
        content=body,
        headers={k.encode(): v.encode("utf-8") for k, v in headers.items()},
    )
    assert answer.status_code == 403 and answer.json()["__type"] == "InvalidSignatureException"
    url = f"{signed_server.url}/v1/collections"
    token = base64.b64encode(f"{ACCESS_KEY}:{SECRET_KEY}".encode()).decode()
    assert httpx.get(url, headers={"Authorization": f"basic {token}"}).status_code == 200


PUBLIC_PATHS = {"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}


def test_only_health_and_docs_are_public(signed_server: LiveServer) -> None:
    """With keys configured, every route but liveness, readiness and the API description
    refuses a caller without credentials."""
    routes = httpx.get(f"{signed_server.url}/openapi.json").json()["paths"]
    assert len(routes) >= 15
    for path, methods in routes.items():
        concrete = path.replace("{CollectionId}", "c").replace("{UserId}", "u")
        concrete = concrete.replace("{FaceId}", "11111111-1111-1111-1111-111111111111")
        for method in methods:
            answer = httpx.request(method.upper(), f"{signed_server.url}{concrete}")
            expected = 200 if path in PUBLIC_PATHS else 401
            assert answer.status_code == expected, (method, path, answer.text)
    wire = httpx.post(f"{signed_server.url}/", content=b"{}")
    assert wire.status_code == 403
    for path in PUBLIC_PATHS - {"/docs/oauth2-redirect"}:
        assert httpx.get(f"{signed_server.url}{path}").status_code == 200
