"""Who is signed in to the console, and whether a form came from the console's own page.

A sign-in checks an access key and its secret against the keys the server loaded, and gives a
session cookie signed with the deployment's secret (itsdangerous): the key id, a digest of its
secret (so a rotated or removed key signs its sessions out) and the session's CSRF token.
Cookies are HttpOnly, SameSite=Strict, Secure behind TLS, and expire after SESSION_S. Every
form and script call carries the CSRF token, compared with the session's (or, before sign-in,
with a cookie of its own). Failed sign-ins are logged as API refusals are, and a client
address that fails MAX_FAILURES times within FAILURE_WINDOW_S is refused until the window
passes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from service.access.keys import KeyEntry, KeyRing

SESSION_COOKIE = "facebank_console"
CSRF_COOKIE = "facebank_console_csrf"  # before sign-in, and on a server without keys
SESSION_S = 8 * 3600
MAX_FAILURES = 5
FAILURE_WINDOW_S = 60.0


@dataclass(frozen=True)
class ConsoleSession:
    key: KeyEntry | None  # None: the server has no keys (loopback only), anyone may act
    csrf: str


def _secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


class Sessions:
    def __init__(self, signing_secret: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(signing_secret, salt="facebank-console")

    def issue(self, key: KeyEntry) -> tuple[str, str]:
        """A session cookie's value for `key`, and its CSRF token."""
        csrf = secrets.token_urlsafe(24)
        value = self._serializer.dumps(
            {"k": key.key_id, "d": _secret_digest(key.secret), "c": csrf}
        )
        return value, csrf

    def read(self, cookie: str | None, keyring: KeyRing) -> ConsoleSession | None:
        """The session the cookie carries, while it is fresh and its key still holds."""
        if not cookie:
            return None
        try:
            payload = self._serializer.loads(cookie, max_age=SESSION_S)
        except BadSignature:  # SignatureExpired is one
            return None
        if not isinstance(payload, dict):
            return None
        key = keyring.get(str(payload.get("k")))
        if key is None or not hmac.compare_digest(
            _secret_digest(key.secret), str(payload.get("d"))
        ):
            return None
        return ConsoleSession(key, str(payload.get("c")))


def same_token(sent: str | None, expected: str | None) -> bool:
    return bool(sent and expected) and hmac.compare_digest(str(sent), str(expected))


class SignInLimiter:
    """Failed sign-ins per client address within a sliding window."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def refused_for(self, client: str) -> float:
        """Seconds until `client` may try again; 0 when it may now."""
        with self._lock:
            recent = self._recent(client, time.monotonic())
            if len(recent) < MAX_FAILURES:
                return 0.0
            return max(0.0, recent[0] + FAILURE_WINDOW_S - time.monotonic())

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client, time.monotonic()).append(time.monotonic())

    def _recent(self, client: str, now: float) -> deque[float]:
        recent = self._failures.setdefault(client, deque())
        while recent and recent[0] < now - FAILURE_WINDOW_S:
            recent.popleft()
        return recent


def check_secret(keyring: KeyRing, key_id: str, secret: str) -> KeyEntry | None:
    key = keyring.get(key_id)
    if key is None or not hmac.compare_digest(key.secret.encode(), secret.encode()):
        return None
    return key
