"""The site's cameras: FACEBANK_VIDEO_STREAMS_FILE names a JSON file

    {"VideoStreams": [{"Name": "door", "Url": "rtsp://user:pass@10.0.0.5/stream1"}],
     "Webhooks": [{"StreamName": "door-events", "Url": "https://alerts.example/in",
                   "Secret": "..."}]}                                            (optional)

that only the server's user can read (its URLs hold camera passwords, its webhooks secrets). A
processor's Input names a camera by the name in its Kinesis Video stream ARN; an output stream
named in Webhooks is POSTed to instead of written to Kinesis. The file is read again when it
changes (looked at once a second, when a processor asks); a file that cannot be used keeps the
cameras already loaded, and the reason is logged. A URL's credentials never appear in a log
line, an error, Describe or /metrics: `redact` takes them out of any text."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from service.access.private_files import FileWatch, PrivateFileError, read_private

log = logging.getLogger("facebank.streaming")
CHECK_EVERY_S = 1.0
# scheme://user:password@ (or scheme://user@): what a camera URL's credentials look like
CREDENTIALS = regex.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/@\s]+@")
LOOPBACK_URL = regex.compile(r"^http://(127\.\d+\.\d+\.\d+|localhost|\[::1\])[:/]")
WEBHOOK_KEYS = ("StreamName", "Url", "Secret")


class StreamsFileError(ValueError):
    """The streams file cannot be used; the message says why (never a password)."""


def redact(text: str) -> str:
    """`text` with every URL's user and password replaced by ***."""
    return CREDENTIALS.sub(lambda found: f"{found['scheme']}***@", text)


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str


@dataclass(frozen=True)
class StreamsFile:
    cameras: dict[str, str]  # camera URL by stream name
    webhooks: dict[str, Webhook]  # by output stream name


def read_streams_file(path: Path) -> StreamsFile:
    """The cameras and webhooks, after checking that only the file's owner can read it."""
    try:
        text = read_private(path, "camera passwords")
    except PrivateFileError as exc:
        raise StreamsFileError(str(exc)) from None
    try:
        body = json.loads(text)
        return StreamsFile(_streams(body), _webhooks(body))
    except ValueError as exc:
        raise StreamsFileError(f"{path}: {redact(str(exc))}") from None


def _webhooks(body: dict[str, Any]) -> dict[str, Webhook]:
    found: dict[str, Webhook] = {}
    for index, item in enumerate(body.get("Webhooks", [])):
        given = [item.get(key) if isinstance(item, dict) else None for key in WEBHOOK_KEYS]
        fields = [value for value in given if isinstance(value, str) and value]
        if len(fields) != len(WEBHOOK_KEYS):
            raise ValueError(f"Webhooks[{index}] needs a StreamName, a Url and a Secret")
        name, url, secret = fields
        if not (url.startswith("https://") or LOOPBACK_URL.match(url)):
            raise ValueError(f"Webhooks[{index}]: the Url must be https:// (or loopback http)")
        found[name] = Webhook(url, secret)
    return found


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
        self._file = StreamsFile({}, {})
        self._lock = threading.Lock()
        self._watch = None if path is None else FileWatch(path)
        if path is not None:
            self._file = read_streams_file(path)  # at start a bad file stops the server

    def url(self, name: str) -> str | None:
        self._maybe_reload()
        return self._file.cameras.get(name)

    def webhook(self, output_stream: str) -> Webhook | None:
        self._maybe_reload()
        return self._file.webhooks.get(output_stream)

    def _maybe_reload(self) -> None:
        with self._lock:
            if self._watch is None or not self._watch.changed(CHECK_EVERY_S):
                return
            try:
                self._file = read_streams_file(self._watch.path)
            except StreamsFileError as exc:
                kept = len(self._file.cameras)
                log.warning("cameras not reloaded, the %d loaded stay: %s", kept, exc)
