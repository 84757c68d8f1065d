"""SigV4 verification for requests signed by stock AWS SDKs, using botocore's own signer.

The server rebuilds the request the client signed (method, path, query, the headers it named in
SignedHeaders, the body) and lets botocore's SigV4Auth compute the signature for the claimed
key, date and scope; only the comparison is ours. Any region is accepted (clients pick one
freely); the service in the scope must be `rekognition`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from service.errors import (
    IncompleteSignatureError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
    UnrecognizedClientError,
)
from service.settings import AccessKey

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "rekognition"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
# Headers that select or shape the operation: a signature that leaves one out could be replayed
# as another request (a captured DescribeCollection re-sent as DeleteCollection).
ALWAYS_SIGNED = ("host", "x-amz-date")
SIGNED_WHEN_SENT = ("content-type", "x-amz-target")


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # lower-case names, one value each
    body: bytes


@dataclass(frozen=True)
class _Authorization:
    key_id: str
    date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str


def _parse_authorization(header: str) -> _Authorization:
    algorithm, _, rest = header.partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureError(f"Authorization header requires the {ALGORITHM} algorithm")
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(",") if "=" in part)
    try:
        key_id, date, region, service, terminator = fields["Credential"].split("/")
        signed_headers = fields["SignedHeaders"].split(";")
        signature = fields["Signature"]
    except (KeyError, ValueError):
        raise IncompleteSignatureError(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'"
        ) from None
    if terminator != "aws4_request":
        raise IncompleteSignatureError("Credential should be scoped with 'aws4_request'")
    return _Authorization(key_id, date, region, service, signed_headers, signature)


def _request_time(headers: Mapping[str, str]) -> tuple[str, datetime]:
    stamp = headers.get("x-amz-date", "")
    try:
        return stamp, datetime.strptime(stamp, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise IncompleteSignatureError(
            "Authorization requires a valid 'X-Amz-Date' header (yyyyMMddTHHmmssZ)"
        ) from None


def verify_sigv4(
    request: SignedRequest,
    keys: Mapping[str, AccessKey],
    max_skew_seconds: int,
    now: datetime | None = None,
) -> str:
    """The access key id of a correctly signed request; raises the error AWS would give."""
    header = request.headers.get("authorization")
    if not header:
        raise MissingAuthenticationTokenError("Missing Authentication Token")
    auth = _parse_authorization(header)
    key = keys.get(auth.key_id)
    if key is None:
        raise UnrecognizedClientError("The security token included in the request is invalid.")
    stamp, signed_at = _request_time(request.headers)
    _check_scope(auth, stamp)
    _check_signed_headers(auth, request.headers)
    _check_payload_hash(request)
    _check_freshness(stamp, signed_at, now or datetime.now(UTC), max_skew_seconds)
    expected = _expected_signature(request, auth, key, stamp)
    # Bytes, not str: a client may send any characters, and compare_digest takes only ASCII str.
    if not hmac.compare_digest(expected.encode(), auth.signature.encode("utf-8", "replace")):
        raise InvalidSignatureError(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return key.key_id


def _check_scope(auth: _Authorization, stamp: str) -> None:
    if auth.service != SERVICE:
        raise InvalidSignatureError(f"Credential should be scoped to correct service: '{SERVICE}'")
    if auth.date != stamp[:8]:
        raise InvalidSignatureError(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{auth.date}' != '{stamp[:8]}'"
        )


def _check_signed_headers(auth: _Authorization, headers: Mapping[str, str]) -> None:
    """Every header that selects or shapes the operation must be covered by the signature."""
    sent_amz = sorted(name for name in headers if name.startswith("x-amz-"))
    sent = [name for name in SIGNED_WHEN_SENT if name in headers]
    for name in dict.fromkeys([*ALWAYS_SIGNED, *sent, *sent_amz]):
        if name not in auth.signed_headers:
            shown = "-".join(part.capitalize() for part in name.split("-"))
            raise InvalidSignatureError(f"'{shown}' must be a signed header")


def _check_payload_hash(request: SignedRequest) -> None:
    """A client may state the payload hash in X-Amz-Content-SHA256; botocore's signer would
    take that claim as is (UNSIGNED-PAYLOAD included), leaving the body unbound to the
    signature. The claim must be the body's real hash."""
    claimed = request.headers.get("x-amz-content-sha256")
    if claimed is not None and claimed != hashlib.sha256(request.body).hexdigest():
        raise InvalidSignatureError(
            "The provided 'x-amz-content-sha256' header does not match the SHA-256 of the body: "
            "this server verifies every payload (UNSIGNED-PAYLOAD and streaming are refused)"
        )


def _check_freshness(stamp: str, signed_at: datetime, now: datetime, max_skew: int) -> None:
    skew = (now - signed_at).total_seconds()
    if abs(skew) <= max_skew:
        return
    now_stamp = now.strftime(AMZ_DATE_FORMAT)
    if skew > 0:
        raise InvalidSignatureError(
            f"Signature expired: {stamp} is now earlier than the allowed window "
            f"({now_stamp} - {max_skew // 60} min.)"
        )
    raise InvalidSignatureError(
        f"Signature not yet current: {stamp} is still later than the allowed window "
        f"({now_stamp} + {max_skew // 60} min.)"
    )


def _expected_signature(
    request: SignedRequest, auth: _Authorization, key: AccessKey, stamp: str
) -> str:
    # The body's hash is always computed here, never taken from the (already checked) header.
    headers = {
        name: request.headers.get(name, "")
        for name in auth.signed_headers
        if name != "x-amz-content-sha256"
    }
    url = f"http://{headers.get('host', 'localhost')}{request.path}"
    if request.query:
        url += f"?{request.query}"
    rebuilt = AWSRequest(method=request.method, url=url, headers=headers, data=request.body)
    rebuilt.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(key.key_id, key.secret), SERVICE, auth.region)
    canonical = signer.canonical_request(rebuilt)
    return str(signer.signature(signer.string_to_sign(rebuilt, canonical), rebuilt))


def verify_basic(header: str | None, keys: Mapping[str, AccessKey]) -> str | None:
    """The key id of a valid `Authorization: Basic base64(KEY:SECRET)` header, else None.
    The scheme name is case-insensitive (RFC 9110)."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, ValueError):  # ValueError: non-ASCII input, or not UTF-8
        raise UnrecognizedClientError("Malformed Basic credentials") from None
    key_id, _, secret = decoded.partition(":")
    key = keys.get(key_id)
    if key is None or not hmac.compare_digest(key.secret.encode(), secret.encode()):
        raise UnrecognizedClientError("The access key or secret is invalid.")
    return key.key_id
