"""The site's cameras: FACEBANK_VIDEO_STREAMS_FILE names a JSON file

    {"VideoStreams": [{"Name": "door", "Url": "rtsp://user:pass@10.0.0.5/stream1"}]}

that only the server's user can read (its URLs hold camera passwords). A processor's Input
names a camera by the name in its Kinesis Video stream ARN. The file is read again when it
changes (looked at once a second, when a processor asks); a file that cannot be used keeps the
cameras already loaded, and the reason is logged. A URL's credentials never appear in a log
line, an error, Describe or /metrics: `redact` takes them out of any text."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import regex

from service.access.private_files import PrivateFileError, read_private

log = logging.getLogger("facebank.streaming")
CHECK_EVERY_S = 1.0
# scheme://user:password@ (or scheme://user@): what a camera URL's credentials look like
CREDENTIALS = regex.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/@\s]+@")


class StreamsFileError(ValueError):
    """The streams file cannot be used; the message says why (never a password)."""


def redact(text: str) -> str:
    """`text` with every URL's user and password replaced by ***."""
    return CREDENTIALS.sub(lambda found: f"{found['scheme']}***@", text)


def read_streams_file(path: Path) -> dict[str, str]:
    """Camera URLs by name, after checking that only the file's owner can read it."""
    try:
        text = read_private(path, "camera passwords")
    except PrivateFileError as exc:
        raise StreamsFileError(str(exc)) from None
    try:
        return _streams(json.loads(text))
    except ValueError as exc:
        raise StreamsFileError(f"{path}: {redact(str(exc))}") from None


def _streams(body: Any) -> dict[str, str]:
    if not isinstance(body, dict) or not isinstance(body.get("VideoStreams"), list):
        raise ValueError('the file must be {"VideoStreams": [{"Name": ..., "Url": ...}]}')
    found: dict[str, str] = {}
    for index, item in enumerate(body["VideoStreams"]):
        name = item.get("Name") if isinstance(item, dict) else None
        url = item.get("Url") if isinstance(item, dict) else None
        if not (isinstance(name, str) and name and isinstance(url, str) and url):
            raise ValueError(f"VideoStreams[{index}] needs a Name and a Url")
        if name in found:
            raise ValueError(f"the stream name {name} is given twice")
        found[name] = url
    return found


class Cameras:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._urls: dict[str, str] = {}
        self._seen: tuple[int, ...] | None = None
        self._next_check = 0.0
        self._lock = threading.Lock()
        if path is not None:
            self._urls = read_streams_file(path)  # at start a bad file stops the server
            self._seen = _identity(path)

    def url(self, name: str) -> str | None:
        self._maybe_reload()
        return self._urls.get(name)

    def _maybe_reload(self) -> None:
        with self._lock:
            now = time.monotonic()
            if self.path is None or now < self._next_check:
                return
            self._next_check = now + CHECK_EVERY_S
            seen = _identity(self.path)
            if seen == self._seen:
                return
            self._seen = seen
            try:
                self._urls = read_streams_file(self.path)
            except StreamsFileError as exc:
                log.warning("cameras not reloaded, the %d loaded stay: %s", len(self._urls), exc)


def _identity(path: Path) -> tuple[int, ...] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino, status.st_mode)
