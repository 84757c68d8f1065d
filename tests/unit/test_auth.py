from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from service import errors
from service.http.auth import SignedRequest, verify_basic, verify_sigv4
from service.settings import AccessKey

KEYS = {"AKID": AccessKey("AKID", "secret")}
BODY = b'{"Image": {"Bytes": "AAAA"}}'


def signed(
    secret: str = "secret",
    key: str = "AKID",
    at: datetime | None = None,
    service: str = "rekognition",
) -> SignedRequest:
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:8080/",
        data=BODY,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "RekognitionService.DetectFaces",
        },
    )
    signer = SigV4Auth(Credentials(key, secret), service, "ap-south-1")
    if at is None:
        signer.add_auth(request)
    else:
        stamp = at.strftime("%Y%m%dT%H%M%SZ")
        request.context["timestamp"] = stamp
        request.headers["X-Amz-Date"] = stamp
        canonical = signer.canonical_request(request)
        signature = signer.signature(signer.string_to_sign(request, canonical), request)
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={key}/{stamp[:8]}/ap-south-1/{service}/aws4_request, "
            f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, "
            f"Signature={signature}"
        )
    headers = {name.lower(): value for name, value in request.headers.items()}
    headers.setdefault("host", "127.0.0.1:8080")
    return SignedRequest("POST", "/", "", headers, BODY)


def test_valid_signature_names_the_key() -> None:
    assert verify_sigv4(signed(), KEYS, 300) == "AKID"


def test_wrong_secret() -> None:
    with pytest.raises(errors.InvalidSignatureError, match="does not match"):
        verify_sigv4(signed(secret="wrong"), KEYS, 300)


def test_tampered_body() -> None:
    request = signed()
    tampered = SignedRequest(request.method, request.path, "", request.headers, BODY + b" ")
    with pytest.raises(errors.InvalidSignatureError):
        verify_sigv4(tampered, KEYS, 300)


def test_unknown_key() -> None:
    with pytest.raises(errors.UnrecognizedClientError):
        verify_sigv4(signed(key="NOPE"), KEYS, 300)


def test_stale_and_future_dates() -> None:
    old = datetime.now(UTC) - timedelta(minutes=16)
    with pytest.raises(errors.InvalidSignatureError, match="Signature expired"):
        verify_sigv4(signed(at=old), KEYS, 300)
    future = datetime.now(UTC) + timedelta(minutes=16)
    with pytest.raises(errors.InvalidSignatureError, match="not yet current"):
        verify_sigv4(signed(at=future), KEYS, 300)
    recent = datetime.now(UTC) - timedelta(minutes=2)
    assert verify_sigv4(signed(at=recent), KEYS, 300) == "AKID"


def test_wrong_service_scope() -> None:
    with pytest.raises(errors.InvalidSignatureError, match="service"):
        verify_sigv4(signed(service="s3"), KEYS, 300)


def test_missing_and_malformed_authorization() -> None:
    request = signed()
    bare = {k: v for k, v in request.headers.items() if k != "authorization"}
    with pytest.raises(errors.MissingAuthenticationTokenError):
        verify_sigv4(SignedRequest("POST", "/", "", bare, BODY), KEYS, 300)
    broken = {**bare, "authorization": "AWS4-HMAC-SHA256 Credential=AKID"}
    with pytest.raises(errors.IncompleteSignatureError):
        verify_sigv4(SignedRequest("POST", "/", "", broken, BODY), KEYS, 300)


def test_basic_credentials() -> None:
    good = "Basic " + base64.b64encode(b"AKID:secret").decode()
    bad = "Basic " + base64.b64encode(b"AKID:nope").decode()
    assert verify_basic(good, KEYS) == "AKID"
    assert verify_basic(None, KEYS) is None
    with pytest.raises(errors.UnrecognizedClientError):
        verify_basic(bad, KEYS)


def signed_without_target() -> SignedRequest:
    """A request signed with no X-Amz-Target, which the sender adds after signing."""
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:8080/",
        data=BODY,
        headers={"Content-Type": "application/x-amz-json-1.1"},
    )
    SigV4Auth(Credentials("AKID", "secret"), "rekognition", "eu-west-1").add_auth(request)
    headers = {name.lower(): value for name, value in request.headers.items()}
    headers.update({"host": "127.0.0.1:8080", "x-amz-target": "RekognitionService.DeleteFaces"})
    return SignedRequest("POST", "/", "", headers, BODY)


def test_target_and_content_type_must_be_signed() -> None:
    with pytest.raises(errors.InvalidSignatureError, match="'X-Amz-Target' must be a signed"):
        verify_sigv4(signed_without_target(), KEYS, 300)
    request = signed()
    auth = request.headers["authorization"].replace("content-type;", "")
    unsigned_type = SignedRequest("POST", "/", "", {**request.headers, "authorization": auth}, BODY)
    with pytest.raises(errors.InvalidSignatureError, match="'Content-Type' must be a signed"):
        verify_sigv4(unsigned_type, KEYS, 300)


def test_headers_not_sent_need_no_signature() -> None:
    request = AWSRequest(method="POST", url="http://127.0.0.1:8080/", data=BODY)
    SigV4Auth(Credentials("AKID", "secret"), "rekognition", "eu-west-1").add_auth(request)
    headers = {name.lower(): value for name, value in request.headers.items()}
    headers["host"] = "127.0.0.1:8080"
    assert "content-type" not in headers and "x-amz-target" not in headers
    assert verify_sigv4(SignedRequest("POST", "/", "", headers, BODY), KEYS, 300) == "AKID"


def test_payload_hash_claim_must_be_the_body_hash() -> None:
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:8080/v1/collections/c/faces/delete",
        data=BODY,
        headers={"Content-Type": "application/json", "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    )
    SigV4Auth(Credentials("AKID", "secret"), "rekognition", "eu-west-1").add_auth(request)
    headers = {name.lower(): value for name, value in request.headers.items()}
    headers["host"] = "127.0.0.1:8080"
    other_body = b'{"FaceIds": ["someone-else"]}'
    swapped = SignedRequest("POST", "/v1/collections/c/faces/delete", "", headers, other_body)
    with pytest.raises(errors.InvalidSignatureError, match="x-amz-content-sha256"):
        verify_sigv4(swapped, KEYS, 300)


def test_non_ascii_signature_is_a_signature_error() -> None:
    request = signed()
    forged = request.headers["authorization"].rsplit("=", 1)[0] + "=ß" * 32
    with pytest.raises(errors.InvalidSignatureError):
        verify_sigv4(
            SignedRequest("POST", "/", "", {**request.headers, "authorization": forged}, BODY),
            KEYS,
            300,
        )


def test_basic_scheme_is_case_insensitive_and_non_ascii_is_refused() -> None:
    token = base64.b64encode(b"AKID:secret").decode()
    assert verify_basic(f"basic {token}", KEYS) == "AKID"
    assert verify_basic(f"BASIC {token}", KEYS) == "AKID"
    with pytest.raises(errors.UnrecognizedClientError):
        verify_basic("Basic ßßßß", KEYS)
