"""Per-request plumbing shared by both surfaces: body limits, request ids, authentication."""

from __future__ import annotations

import json
import uuid

from fastapi import Request

from service import errors
from service.auth import SignedRequest, verify_basic, verify_sigv4
from service.settings import Settings

# Two base64 images of 5 MiB each plus JSON framing; anything larger cannot be a valid request.
MAX_BODY_BYTES = 16 * 1024 * 1024


def new_request_id() -> str:
    return str(uuid.uuid4())


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise errors.ImageTooLargeError(f"Request body exceeds {MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise errors.ImageTooLargeError(f"Request body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_body(body: bytes) -> object:
    """The parsed body; an empty body is an empty request, as AWS treats it."""
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.SerializationError(f"Request body is not valid JSON: {exc}") from None


def authenticate(
    settings: Settings, request: Request, body: bytes, allow_basic: bool
) -> str | None:
    """The caller's key id; None when the server runs without keys (loopback only)."""
    keys = settings.keys
    if not keys:
        return None
    header = request.headers.get("authorization")
    if allow_basic:
        key_id = verify_basic(header, keys)
        if key_id is not None:
            return key_id
    signed = SignedRequest(
        method=request.method,
        path=request.url.path,
        query=request.url.query,
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body,
    )
    return verify_sigv4(signed, keys, settings.signature_max_skew_seconds)
