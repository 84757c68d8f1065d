"""Authentication on both surfaces of a server started with FACEBANK_ACCESS_KEYS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.auth
import httpx
import pytest
from botocore.exceptions import ClientError

from tests.api.photos import multiface
from tests.conftest import ACCESS_KEY, SECRET_KEY, LiveServer, blank_jpeg, rekognition_client

pytestmark = pytest.mark.slow


def code_of(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def test_signed_client_works(signed_server: LiveServer, faces_dir: Path) -> None:
    client = rekognition_client(signed_server.url, ACCESS_KEY, SECRET_KEY)
    assert len(client.detect_faces(Image={"Bytes": multiface(faces_dir)})["FaceDetails"]) == 6


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
