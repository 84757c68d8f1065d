"""Per-request plumbing shared by both surfaces: headers, body limits, request ids,
authentication."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping

from fastapi import Request
from starlette.types import Message

from service import errors
from service.access.policy import RequestFacts
from service.http.auth import SignedRequest, verify_basic, verify_sigv4
from service.http.state import app_state

# Two base64 images of 5 MiB each plus JSON framing; anything larger cannot be a valid request.
MAX_BODY_BYTES = 16 * 1024 * 1024

# Headers that the signature check and the dispatch both read. Were one repeated, the two could
# read different values (a signed ListFaces dispatched as DeleteCollection), so a request that
# repeats one is refused before either looks at it.
SINGLE_VALUED_HEADERS = frozenset(
    {
        "authorization",
        "content-length",
        "content-type",
        "host",
        "transfer-encoding",
        "x-amz-content-sha256",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-target",
    }
)


def request_headers(request: Request) -> dict[str, str]:
    """Lower-case header names to their one value: every reader of a request's headers (the
    signature check, the dispatch) reads this map, so all see the same value. Other repeated
    headers are joined with commas, as HTTP and SigV4 canonicalisation both combine them."""
    values: dict[str, list[str]] = {}
    for raw_name, raw_value in request.headers.raw:
        values.setdefault(raw_name.decode("latin-1").lower(), []).append(
            raw_value.decode("latin-1")
        )
    repeated = sorted(name for name in SINGLE_VALUED_HEADERS if len(values.get(name, ())) > 1)
    if repeated:
        raise errors.InvalidParameterError(
            f"Request repeats the {repeated[0]!r} header, which may appear only once"
        )
    return {name: ",".join(found) for name, found in values.items()}


async def read_body(request: Request, headers: Mapping[str, str]) -> bytes:
    """The whole body, refused as soon as it passes MAX_BODY_BYTES (declared or streamed)."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise errors.ImageTooLargeError(f"Request body exceeds {MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise errors.ImageTooLargeError(f"Request body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def replaying(request: Request, body: bytes) -> Request:
    """A request over the same scope whose stream yields `body`, already read and checked."""

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


def parse_json_body(body: bytes) -> object:
    """The parsed body; an empty body is an empty request, as AWS treats it."""
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.SerializationError(f"Request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise errors.SerializationError("Request body nests JSON too deeply") from None
    except ValueError as exc:  # integers past Python's digit limit
        raise errors.SerializationError(
            f"Request body has a number that cannot be read: {exc}"
        ) from None


def authenticate(
    request: Request,
    headers: Mapping[str, str],
    body: bytes,
    allow_basic: bool,
) -> str | None:
    """The caller's key id; None when the server runs without keys (loopback only)."""
    keyring = app_state(request).keyring
    if not keyring.configured:
        return None
    keys = keyring.secrets()
    if allow_basic:
        key_id = verify_basic(headers.get("authorization"), keys)
        if key_id is not None:
            return key_id
    signed = SignedRequest(
        method=request.method,
        path=request.url.path,
        query=request.url.query,
        headers=headers,
        body=body,
    )
    max_skew = app_state(request).settings.signature_max_skew_seconds
    return verify_sigv4(signed, keys, max_skew)


def claimed_key_id(headers: Mapping[str, str]) -> str | None:
    """The key id a request claims (SigV4's Credential, or Basic's user), before any check:
    what a refusal is logged under. Never the secret or the signature."""
    authorization = headers.get("authorization", "")
    credential = re.search(r"Credential=([^/,\s]+)/", authorization)
    if credential:
        return credential.group(1)
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(encoded, validate=True).decode().partition(":")[0] or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


async def caller(request: Request) -> str | None:
    """Authenticate a request that carries no operation (Basic or SigV4); the key id."""
    headers = request_headers(request)
    body = await read_body(request, headers)
    return authenticate(request, headers, body, allow_basic=True)


def request_facts(request: Request) -> RequestFacts:
    """What a policy's Condition may ask of this request. The client's address and scheme are
    uvicorn's, which takes X-Forwarded-For and X-Forwarded-Proto from the proxies it trusts
    (FORWARDED_ALLOW_IPS, loopback by default) and from nobody else."""
    return RequestFacts.of(request.client.host if request.client else None, request.url.scheme)
