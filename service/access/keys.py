"""The access keys a server accepts: from FACEBANK_ACCESS_KEYS (no policy, as before) and from
the JSON file FACEBANK_ACCESS_KEYS_FILE names, in this shape:

    {"Keys": [{"AccessKeyId": "...", "SecretAccessKey": "...",
               "Policy": {"Version": "2012-10-17", "Statement": [...]},   (optional)
               "Rates": {"*": 50, "SearchFacesByImage": 10}}]}            (optional, per second)

The file must be readable by the server's user alone. It is read again on SIGHUP and when it
changes (looked at once a second, on the next request): a new key works at once, a removed one
is refused on its next request, requests in flight finish. A file that does not parse keeps the
keys already loaded, and the reason is logged and shown in /metrics and /readyz; the server never
falls back to open access. A chmod counts as a change (a refused 644 file loads once it is 600).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.access.policy import Policy, PolicyError
from service.access.private_files import FileWatch, PrivateFileError, read_private
from service.settings import AccessKey, weak_secret

log = logging.getLogger("facebank.access")
CHECK_EVERY_S = 1.0


class KeyFileError(ValueError):
    """The keys file cannot be used; the message says why."""


@dataclass(frozen=True)
class KeyEntry:
    key_id: str
    secret: str
    source: str  # "environment" or the file's path
    policy: Policy | None = None  # None: every operation on every resource
    rates: Mapping[str, float] = field(default_factory=dict)  # operation or "*" -> per second


def read_key_file(path: Path) -> dict[str, KeyEntry]:
    """The file's keys, after checking that only its owner can read it."""
    try:
        text = read_private(path, "secrets")
    except PrivateFileError as exc:
        raise KeyFileError(str(exc)) from None
    try:
        body = json.loads(text)
        return {entry.key_id: entry for entry in _entries(body, str(path))}
    except (ValueError, PolicyError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{path}: {exc}") from None


def _entries(body: Any, source: str) -> list[KeyEntry]:
    if not isinstance(body, dict) or not isinstance(body.get("Keys"), list):
        raise ValueError('the file must be {"Keys": [...]}')
    found = []
    for index, item in enumerate(body["Keys"]):
        key_id, secret = item["AccessKeyId"], item["SecretAccessKey"]
        if not (isinstance(key_id, str) and key_id and isinstance(secret, str) and secret):
            raise ValueError(f"key {index} needs an AccessKeyId and a SecretAccessKey")
        problem = weak_secret(secret)
        if problem:
            raise ValueError(f"key {key_id}: its SecretAccessKey {problem}")
        policy = _policy(item["Policy"], key_id) if "Policy" in item else None
        rates = {str(name): float(rate) for name, rate in item.get("Rates", {}).items()}
        if any(rate <= 0 for rate in rates.values()):
            raise ValueError(f"key {key_id}: rates must be positive")
        found.append(KeyEntry(key_id, secret, source, policy, rates))
    return found


def _policy(body: Any, key_id: str) -> Policy:
    try:
        return Policy.parse(body)
    except PolicyError as exc:
        raise PolicyError(f"key {key_id}'s Policy, {exc}") from None


class KeyRing:
    def __init__(self, environment: Mapping[str, AccessKey], path: Path | None) -> None:
        self.path = path
        self._environment = {
            key_id: KeyEntry(key_id, key.secret, "environment")
            for key_id, key in environment.items()
        }
        self._entries = dict(self._environment)
        self._secrets = _secrets(self._entries)
        self._lock = threading.Lock()
        # Why the file on disk was last refused, and since when (epoch seconds); None while
        # the keys in use are the file's.
        self._refused: tuple[str, float] | None = None
        self._watch = None if path is None else FileWatch(path)
        if path is not None:
            self._load()  # at start a file that cannot be used stops the server

    @property
    def configured(self) -> bool:
        """Whether requests must be signed: any key loaded, or a keys file named."""
        return bool(self._entries) or self.path is not None

    def get(self, key_id: str) -> KeyEntry | None:
        self._maybe_reload()
        return self._entries.get(key_id)

    def secrets(self) -> dict[str, AccessKey]:
        """Every key's secret, as the signature checks read them (built once per load)."""
        self._maybe_reload()
        return self._secrets

    def file_refused(self) -> tuple[str, float] | None:
        """Why the keys file on disk is not the one in use, and since when (epoch seconds);
        None while it is (or no file is configured)."""
        self._maybe_reload()
        return self._refused

    def entries(self) -> list[KeyEntry]:
        return list(self._entries.values())

    def reload(self) -> None:
        """Read the file again (SIGHUP); a file that cannot be used keeps the loaded keys."""
        if self.path is None:
            return
        try:
            self._load()
        except KeyFileError as exc:
            log.warning("keys not reloaded, the %d loaded stay: %s", len(self._entries), exc)
            if self._refused is None or self._refused[0] != str(exc):
                self._refused = (str(exc), time.time())
        else:
            self._refused = None

    def _load(self) -> None:
        assert self.path is not None
        from_file = read_key_file(self.path)
        entries = {**self._environment, **from_file}
        with self._lock:
            self._entries, self._secrets = entries, _secrets(entries)
        log.info("loaded %d access keys from %s", len(from_file), self.path)

    def _maybe_reload(self) -> None:
        if self._watch is not None and self._watch.changed(CHECK_EVERY_S):
            self.reload()


def _secrets(entries: Mapping[str, KeyEntry]) -> dict[str, AccessKey]:
    return {key_id: AccessKey(key_id, entry.secret) for key_id, entry in entries.items()}
