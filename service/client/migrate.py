"""`facebank migrate`: move a collection from any endpoint that speaks Rekognition's API (AWS's
Rekognition, or another facebank) into a facebank, keeping every identifier an app may hold.

Rekognition never exports face vectors, so each face's original image is read again (from S3,
a folder, or a manifest's locations), the face found in it at the source's BoundingBox, and
stored under the source's FaceId, ImageId, ExternalImageId and BoundingBox (facebank's
ImportFace). Users are created again with the same UserIds and face associations, and the
collection's tags come along. The source is only read (DescribeCollection, ListFaces,
ListUsers, ListTagsForResource, and SearchFaces for the parity check).

A run is resumable and idempotent: what the target already holds is left as it is, so a second
run adds only what is missing. Ctrl-C stops cleanly: running requests finish, the rest are
dropped, and the report says the run was interrupted.
"""

from __future__ import annotations

import base64
import csv
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
import requests
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from service.client.migration_report import write_html

FACES_PER_ASSOCIATION = 100
PARITY_SAMPLE = 20
PARITY_DEPTH = 10  # matches read per probe, to skip faces that did not move


@dataclass(frozen=True)
class Endpoint:
    """One side of the move: `aws` (Rekognition itself) or a URL, its credentials' profile."""

    url: str
    region: str
    profile: str | None

    def session(self) -> botocore.session.Session:
        return botocore.session.Session(profile=self.profile)

    def client(self) -> Any:
        session = self.session()
        config = Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=64)
        if session.get_credentials() is None:
            config = config.merge(Config(signature_version=UNSIGNED))  # a facebank without keys
        endpoint = None if self.url == "aws" else self.url
        return session.create_client(
            "rekognition", region_name=self.region, endpoint_url=endpoint, config=config
        )


@dataclass
class Moved:
    """What the report says."""

    source: str
    target: str
    collection: str
    target_collection: str
    faces_at_source: int = 0
    faces_moved: int = 0
    faces_already_there: int = 0
    not_moved: list[dict[str, Any]] = field(default_factory=list)
    users_at_source: int = 0
    users_created: int = 0
    faces_associated: int = 0
    unassociated: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    seconds: float = 0.0


class ImageLocations:
    """Where each face's original image is: a template over the face's fields (an s3:// URL
    or a path), or a manifest mapping FaceId or ImageId to a location."""

    def __init__(self, template: str | None, manifest: Path | None, s3: Any) -> None:
        self.template, self.s3 = template, s3
        self.by_id: dict[str, str] = {} if manifest is None else read_manifest(manifest)

    def location(self, face: dict[str, Any]) -> str:
        """KeyError (the reason in its message) when the face has no location."""
        for key in (face["FaceId"], face["ImageId"]):
            if key in self.by_id:
                return self.by_id[key]
        if self.template is None:
            raise KeyError("not in the manifest")
        try:
            return self.template.format_map(face)
        except KeyError as missing:
            raise KeyError(f"the face has no {missing.args[0]} for --images") from None

    def read(self, location: str) -> bytes:
        """OSError (image missing or unreadable) when it cannot be read."""
        if not location.startswith("s3://"):
            return Path(location).read_bytes()
        bucket, _, key = location.removeprefix("s3://").partition("/")
        try:
            answer = self.s3.get_object(Bucket=bucket, Key=key)
            return bytes(answer["Body"].read())
        except ClientError as exc:
            code = exc.response["Error"].get("Code", "")
            raise OSError(f"{location}: {code or exc}") from None
        except BotoCoreError as exc:
            raise OSError(f"{location}: {exc}") from None


def read_manifest(path: Path) -> dict[str, str]:
    """A CSV with a header: FaceId or ImageId, and Location."""
    found = {}
    with path.open(newline="") as rows:
        for row in csv.DictReader(rows):
            key = row.get("FaceId") or row.get("ImageId")
            if not key or not row.get("Location"):
                raise ValueError(f"{path}: each row needs a FaceId or ImageId and a Location")
            found[key] = row["Location"]
    return found


def pages(call: Callable[..., dict[str, Any]], member: str, **request: Any) -> Iterator[Any]:
    token = None
    while True:
        page = call(**request, **({"NextToken": token} if token else {}))
        yield from page[member]
        token = page.get("NextToken")
        if not token:
            return


class FaceImporter:
    """Stores faces in the target through ImportFace (REST, signed as boto3 signs)."""

    def __init__(self, target: Endpoint, collection: str) -> None:
        self.base = target.url.rstrip("/") + f"/v1/collections/{collection}/faces/"
        self.credentials = target.session().get_credentials()
        self.region = target.region
        self.http = requests.Session()

    def store(self, face: dict[str, Any], image: bytes) -> tuple[str, str] | None:
        """None once stored; else the error's code and message."""
        body: dict[str, Any] = {
            member: face[member]
            for member in ("ImageId", "ExternalImageId", "BoundingBox", "Confidence")
            if member in face
        }
        body["Image"] = {"Bytes": base64.b64encode(image).decode()}
        url = self.base + face["FaceId"]
        payload = json.dumps(body).encode()
        request = AWSRequest("PUT", url, data=payload, headers={"Content-Type": "application/json"})
        if self.credentials is not None:
            frozen = self.credentials.get_frozen_credentials()
            SigV4Auth(frozen, "rekognition", self.region).add_auth(request)
        answer = self.http.put(
            url, data=payload, headers=dict(request.headers.items()), timeout=120
        )
        if answer.status_code == 200:
            return None
        problem = answer.json() if answer.headers.get("content-type", "").endswith("json") else {}
        return str(problem.get("code", answer.status_code)), str(problem.get("detail", answer.text))

    def close(self) -> None:
        self.http.close()


# How each failure is reported: the reasons the issue names, from what went wrong.
def reason_for(code: str, message: str) -> str:
    if code == "InvalidParameterException" and message.startswith("No face"):
        return "no face where the source had one"
    if code == "InvalidParameterException" and message.startswith("More than one face"):
        return "ambiguous"
    if code in ("InvalidImageFormatException", "ImageTooLargeException"):
        return "image unreadable"
    if code == "ResourceAlreadyExistsException":
        return "FaceId in use in another collection"
    return code


class Migration:
    def __init__(
        self,
        source: Endpoint,
        target: Endpoint,
        collection: str,
        target_collection: str,
        locations: ImageLocations,
        concurrency: int,
    ) -> None:
        self.source, self.target = source.client(), target.client()
        self.collection, self.target_collection = collection, target_collection
        self.locations, self.concurrency = locations, concurrency
        self.importer = FaceImporter(target, target_collection)
        self.moved = Moved(source.url, target.url, collection, target_collection)
        self._lock = threading.Lock()

    def run(self) -> Moved:
        started = time.monotonic()
        try:
            faces = list(pages(self.source.list_faces, "Faces", CollectionId=self.collection))
            self.moved.faces_at_source = len(faces)
            self._prepare_target()
            stored = {f["FaceId"] for f in self._target_faces()}
            missing = [face for face in faces if face["FaceId"] not in stored]
            self.moved.faces_already_there = len(faces) - len(missing)
            self._move_faces(missing)
            # what the target holds once the faces moved: whose users to restore, what to probe
            owners = {face["FaceId"]: face.get("UserId") for face in self._target_faces()}
            self._move_users(faces, owners)
            self.moved.parity = self._parity(faces, set(owners))
        except KeyboardInterrupt:
            self.moved.interrupted = True
        finally:
            self.importer.close()
        self.moved.seconds = round(time.monotonic() - started, 1)
        return self.moved

    def _prepare_target(self) -> None:
        """The target collection, created when missing, with the source's tags."""
        described = self.source.describe_collection(CollectionId=self.collection)
        arn = described["CollectionARN"]
        tags = self.source.list_tags_for_resource(ResourceArn=arn).get("Tags", {})
        self.moved.tags = tags
        try:
            self.target.create_collection(CollectionId=self.target_collection)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
        target_arn = self.target.describe_collection(CollectionId=self.target_collection)[
            "CollectionARN"
        ]
        present = self.target.list_tags_for_resource(ResourceArn=target_arn).get("Tags", {})
        if tags and any(present.get(key) != value for key, value in tags.items()):
            self.target.tag_resource(ResourceArn=target_arn, Tags=tags)

    def _target_faces(self) -> list[dict[str, Any]]:
        return list(pages(self.target.list_faces, "Faces", CollectionId=self.target_collection))

    def _move_faces(self, faces: list[dict[str, Any]]) -> None:
        """One task per source image (its faces in turn: read once, one ImageId row)."""
        by_image: dict[str, list[dict[str, Any]]] = {}
        for face in faces:
            by_image.setdefault(face["ImageId"], []).append(face)
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        futures: list[Future[int]] = [
            pool.submit(self._move_image, group) for group in by_image.values()
        ]
        try:
            with tqdm(total=len(faces), unit="face", desc="moving faces") as progress:
                for future in as_completed(futures):
                    progress.update(future.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C: running ones finish

    def _move_image(self, faces: list[dict[str, Any]]) -> int:
        try:
            location = self.locations.location(faces[0])
            image = self.locations.read(location)
        except KeyError as exc:
            self._not_moved(faces, "image missing", str(exc.args[0]))
            return len(faces)
        except OSError as exc:
            self._not_moved(faces, "image missing", str(exc))
            return len(faces)
        for face in faces:
            refused = self.importer.store(face, image)
            if refused is None:
                with self._lock:
                    self.moved.faces_moved += 1
            else:
                self._not_moved([face], reason_for(*refused), refused[1], location)
        return len(faces)

    def _not_moved(
        self, faces: list[dict[str, Any]], reason: str, detail: str, location: str | None = None
    ) -> None:
        with self._lock:
            for face in faces:
                entry = {"FaceId": face["FaceId"], "ImageId": face["ImageId"], "reason": reason}
                if "ExternalImageId" in face:
                    entry["ExternalImageId"] = face["ExternalImageId"]
                self.moved.not_moved.append({**entry, "detail": detail, "location": location})

    def _move_users(self, faces: list[dict[str, Any]], on_target: dict[str, str | None]) -> None:
        """The source's users, with the associations of the faces that reached the target."""
        users = list(pages(self.source.list_users, "Users", CollectionId=self.collection))
        self.moved.users_at_source = len(users)
        present = {
            user["UserId"]
            for user in pages(self.target.list_users, "Users", CollectionId=self.target_collection)
        }
        for user in users:
            user_id = user["UserId"]
            if user_id not in present:
                self.target.create_user(CollectionId=self.target_collection, UserId=user_id)
                self.moved.users_created += 1
            wanted = [
                face["FaceId"]
                for face in faces
                if face.get("UserId") == user_id
                and face["FaceId"] in on_target
                and on_target[face["FaceId"]] != user_id
            ]
            self._associate(user_id, wanted)

    def _associate(self, user_id: str, face_ids: list[str]) -> None:
        for start in range(0, len(face_ids), FACES_PER_ASSOCIATION):
            answer = self.target.associate_faces(
                CollectionId=self.target_collection,
                UserId=user_id,
                FaceIds=face_ids[start : start + FACES_PER_ASSOCIATION],
            )
            self.moved.faces_associated += len(answer["AssociatedFaces"])
            self.moved.unassociated += [
                {"UserId": user_id, "FaceId": item["FaceId"], "Reasons": item["Reasons"]}
                for item in answer["UnsuccessfulFaceAssociations"]
            ]

    def _parity(self, faces: list[dict[str, Any]], on_target: set[str]) -> dict[str, Any]:
        """SearchFaces by the same probe faces on both sides: whose top match is the same."""
        probes = sorted(face["FaceId"] for face in faces if face["FaceId"] in on_target)
        step = max(1, len(probes) // PARITY_SAMPLE)
        rows = [self._compare(face_id, on_target) for face_id in probes[::step][:PARITY_SAMPLE]]
        same = sum(row["same_top_match"] for row in rows)
        return {
            "probes": len(rows),
            "same_top_match": same,
            "share_same_top_match": round(same / len(rows), 4) if rows else None,
            "rows": rows,
        }

    def _compare(self, face_id: str, on_target: set[str]) -> dict[str, Any]:
        # The source's best match among the faces that moved: one left behind (its image
        # missing) cannot be the target's answer.
        source = _top_match(self.source, self.collection, face_id, on_target)
        target = _top_match(self.target, self.target_collection, face_id, on_target)
        return {
            "FaceId": face_id,
            "source": source,
            "target": target,
            "same_top_match": source["FaceId"] == target["FaceId"],
        }


def _top_match(client: Any, collection: str, face_id: str, among: set[str]) -> dict[str, Any]:
    """The best match of a stored face among the other faces in `among` (any Similarity)."""
    answer = client.search_faces(
        CollectionId=collection, FaceId=face_id, MaxFaces=PARITY_DEPTH, FaceMatchThreshold=0
    )
    for match in answer.get("FaceMatches", []):
        if match["Face"]["FaceId"] in among:
            return {"FaceId": match["Face"]["FaceId"], "Similarity": match["Similarity"]}
    return {"FaceId": None, "Similarity": None}


def write_reports(moved: Moved, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    report = asdict(moved)
    json_path = folder / "report.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    html_path = folder / "report.html"
    html_path.write_text(write_html(report))
    return json_path, html_path
