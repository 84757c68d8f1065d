"""Opaque, tamper-proof NextToken values for keyset pagination.

A token carries the primary key of the last item returned and a hash of what was listed (the
operation, the collection, the filters), signed with HMAC-SHA256. Listing by ascending primary
key means rows inserted meanwhile land after the cursor: pages never repeat or skip an item.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from service.errors import InvalidPaginationTokenError

MAC_BYTES = 16
Row = TypeVar("Row")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_secret(path: Path) -> bytes:
    """A per-deployment signing key kept beside the data (set FACEBANK_TOKEN_SECRET to share
    one between replicas)."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    staging = path.with_suffix(".tmp")
    staging.write_bytes(secret)
    staging.replace(path)
    return secret


class PageTokens:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:MAC_BYTES]

    @staticmethod
    def _scope_hash(scope: str) -> str:
        return hashlib.sha256(scope.encode()).hexdigest()[:12]

    def encode(self, scope: str, after: int) -> str:
        payload = json.dumps({"s": self._scope_hash(scope), "a": after}, separators=(",", ":"))
        raw = payload.encode()
        return f"{_b64(raw)}.{_b64(self._mac(raw))}"

    def start(self, request: dict[str, Any], scope: str) -> int:
        """The primary key to list after: 0 without a NextToken, else the token's cursor."""
        token = request.get("NextToken")
        return 0 if token is None else self.decode(token, scope)

    def page(
        self, rows: Sequence[Row], limit: int, scope: str, key: Callable[[Row], int]
    ) -> tuple[Sequence[Row], str | None]:
        """The first `limit` of `limit + 1` fetched rows, and a NextToken if more remain."""
        page = rows[:limit]
        more = len(rows) > limit and len(page) > 0
        return page, self.encode(scope, key(page[-1])) if more else None

    def decode(self, token: str, scope: str) -> int:
        try:
            body, mac = token.split(".")
            raw = _unb64(body)
            valid = hmac.compare_digest(self._mac(raw), _unb64(mac))
            payload = json.loads(raw) if valid else None
        except (ValueError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict) or payload.get("s") != self._scope_hash(scope):
            raise InvalidPaginationTokenError("Invalid Token")
        after = payload.get("a")
        if not isinstance(after, int):
            raise InvalidPaginationTokenError("Invalid Token")
        return after
