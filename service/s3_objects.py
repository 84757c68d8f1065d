"""Images and videos named by `S3Object {Bucket, Name, Version}`, read from an S3-compatible
object store.

On-prem that is MinIO or Ceph at `FACEBANK_S3_ENDPOINT_URL` (AWS's own S3 too, named by its
regional endpoint); without one the server reads no S3 at all, so it never reaches out where
nobody configured it to. Credentials come the usual AWS way (environment, ~/.aws files, instance
roles), as botocore finds them. An S3 object resolves to the same `Bytes` an inline image
carries before anything else looks at the request, so the pixel budget, the decoder and
IndexFaces' duplicate check treat both alike. As Rekognition: up to 15 MB from S3 (inline images
stay at 5 MB), and a missing bucket, key or version, or no access, is InvalidS3ObjectException.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from service import errors

MAX_S3_IMAGE_BYTES = 15 * 1024 * 1024
IMAGE_MEMBERS = ("Image", "SourceImage", "TargetImage")
DOWNLOAD_CHUNK = 1 << 20


class S3Objects:
    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._client: Any = None
        self._lock = threading.Lock()

    def resolve(self, request: dict[str, Any]) -> dict[str, Any]:
        """The request with each S3Object image replaced by its bytes."""
        resolved = dict(request)
        for member in IMAGE_MEMBERS:
            image = request.get(member)
            if isinstance(image, dict) and "S3Object" in image:
                resolved[member] = {"Bytes": self.read(image["S3Object"])}
        return resolved

    def read(self, location: dict[str, Any]) -> bytes:
        where = _where(location)
        too_large = errors.ImageTooLargeError(
            f"{where} is over {MAX_S3_IMAGE_BYTES} bytes, the limit for images from S3"
        )
        address = self._address(location)  # refused before any client is made
        with self._answers(where):
            found = self._s3().get_object(**address)
            with found["Body"] as body:
                # The declared size first, so a huge object is never downloaded; then at most
                # one byte past the limit, in case it declared none.
                if int(found.get("ContentLength", 0)) > MAX_S3_IMAGE_BYTES:
                    raise too_large
                data = bytes(body.read(MAX_S3_IMAGE_BYTES + 1))
        if len(data) > MAX_S3_IMAGE_BYTES:
            raise too_large
        return data

    def size(self, location: dict[str, Any]) -> int:
        """The object's size in bytes (nothing downloaded): checks that it can be read."""
        address = self._address(location)
        with self._answers(_where(location)):
            return int(self._s3().head_object(**address)["ContentLength"])

    def download(self, location: dict[str, Any], target: Path, max_bytes: int) -> None:
        """The object streamed into `target` chunk by chunk (never whole in memory);
        VideoTooLargeException past `max_bytes`."""
        where = _where(location)
        written = 0
        address = self._address(location)
        with self._answers(where), target.open("wb") as sink:
            found = self._s3().get_object(**address)
            with found["Body"] as body:
                for chunk in iter(lambda: body.read(DOWNLOAD_CHUNK), b""):
                    written += len(chunk)
                    if written > max_bytes:
                        raise errors.VideoTooLargeError(f"{where} is over {max_bytes} bytes")
                    sink.write(chunk)

    def _address(self, location: dict[str, Any]) -> dict[str, str]:
        bucket, name = location.get("Bucket"), location.get("Name")
        if not bucket or not name:
            raise errors.InvalidS3ObjectError("S3Object needs a Bucket and a Name")
        if not self.endpoint_url:
            raise errors.InvalidS3ObjectError(
                "This server reads no S3 objects: FACEBANK_S3_ENDPOINT_URL is not set. Send the "
                "image as Image.Bytes, or configure an object store."
            )
        version = location.get("Version")
        return {"Bucket": bucket, "Key": name, **({"VersionId": version} if version else {})}

    @contextmanager
    def _answers(self, where: str) -> Iterator[None]:
        """The object store's failures in Rekognition's terms."""
        try:
            yield
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise errors.InvalidS3ObjectError(f"Unable to get object {where}: {code}") from None
        except BotoCoreError as exc:  # no credentials, endpoint unreachable, ...
            raise errors.InvalidS3ObjectError(f"Unable to get object {where}: {exc}") from None

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = botocore.session.get_session().create_client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=Config(retries={"max_attempts": 2}, s3={"addressing_style": "path"}),
                )
            return self._client


def _where(location: dict[str, Any]) -> str:
    version = location.get("Version")
    return f"s3://{location.get('Bucket')}/{location.get('Name')}" + (
        f" (version {version})" if version else ""
    )
