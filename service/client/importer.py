"""`facebank import`: enrol a folder of photos through a running server's API.

Talking to the API (not the database) means it works against any replica, behind a load
balancer, with the server's authentication, and that it enrols exactly as IndexFaces does. It
creates the collection when missing, indexes photos with bounded concurrency, and with
`--users` makes one user per sub-folder (`<person>/<photos>`: each photo's largest face,
associated with that person's user). A re-run skips photos whose ExternalImageId the collection
already holds, so after an interruption it adds only what is missing. Ctrl-C stops at once:
running requests finish, the rest are dropped, and the report says the run was interrupted.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from tqdm import tqdm

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
ID_CHARACTERS = re.compile(r"[^a-zA-Z0-9_.\-]")
MAX_EXTERNAL_ID, MAX_USER_ID, FACES_PER_ASSOCIATION = 255, 128, 100


@dataclass(frozen=True)
class Photo:
    path: Path
    external_id: str  # the ExternalImageId: the path below the folder, made valid
    person: str | None  # the UserId with --users


@dataclass
class Report:
    collection: str
    endpoint: str
    photos: int = 0
    indexed_photos: int = 0
    faces_indexed: int = 0
    skipped_already_indexed: int = 0
    unindexed: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    users_created: list[str] = field(default_factory=list)
    faces_associated: int = 0
    unassociated: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0


def valid_id(text: str, limit: int) -> str:
    """`text` in the characters Rekognition allows in ids; too long ones end in a hash."""
    cleaned = ID_CHARACTERS.sub("_", text)
    if len(cleaned) <= limit:
        return cleaned
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    return f"{cleaned[: limit - 13]}-{digest}"


def find_photos(folder: Path, users: bool) -> list[Photo]:
    photos = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in PHOTO_SUFFIXES:
            continue
        relative = path.relative_to(folder)
        person = relative.parts[0] if users and len(relative.parts) > 1 else None
        external = ":".join(valid_id(part, MAX_EXTERNAL_ID) for part in relative.parts)
        photos.append(Photo(path, valid_id(external, MAX_EXTERNAL_ID), person))
    return photos


def rekognition_client(endpoint: str) -> Any:
    """A Rekognition client for `endpoint`, signed with the usual AWS credentials when there
    are any (environment, ~/.aws), unsigned otherwise (a server without keys)."""
    session = botocore.session.get_session()
    config = Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=64)
    if session.get_credentials() is None:
        config = config.merge(Config(signature_version=UNSIGNED))
    region = session.get_config_variable("region") or "us-east-1"
    return session.create_client(
        "rekognition", endpoint_url=endpoint, region_name=region, config=config
    )


def stored_faces(client: Any, collection: str) -> dict[str, list[str]]:
    """ExternalImageId -> FaceIds already in the collection (creating it when missing)."""
    try:
        client.create_collection(CollectionId=collection)
        return {}
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    stored: dict[str, list[str]] = {}
    for face in _all_faces(client, collection):
        stored.setdefault(face.get("ExternalImageId", ""), []).append(face["FaceId"])
    return stored


def _all_faces(client: Any, collection: str) -> Iterator[dict[str, Any]]:
    token = None
    while True:
        page = client.list_faces(
            CollectionId=collection, MaxResults=4096, **({"NextToken": token} if token else {})
        )
        yield from page["Faces"]
        token = page.get("NextToken")
        if not token:
            return


class Importer:
    def __init__(self, client: Any, collection: str, report: Report) -> None:
        self.client = client
        self.collection = collection
        self.report = report
        self.faces_of: dict[str, list[str]] = {}  # person -> FaceIds to associate
        self._lock = threading.Lock()

    def index(self, photo: Photo) -> None:
        options: dict[str, Any] = {"MaxFaces": 1} if photo.person else {}
        try:
            answer = self.client.index_faces(
                CollectionId=self.collection,
                Image={"Bytes": photo.path.read_bytes()},
                ExternalImageId=photo.external_id,
                **options,
            )
        except ClientError as exc:
            error = exc.response["Error"]
            self._record_failure(photo, error.get("Code", "error"), error.get("Message", ""))
            return
        except OSError as exc:
            self._record_failure(photo, type(exc).__name__, str(exc))
            return
        self._record_answer(photo, answer)

    def _record_failure(self, photo: Photo, code: str, message: str) -> None:
        with self._lock:
            self.report.failed.append({"photo": str(photo.path), "error": code, "message": message})

    def _record_answer(self, photo: Photo, answer: dict[str, Any]) -> None:
        face_ids = [record["Face"]["FaceId"] for record in answer["FaceRecords"]]
        with self._lock:
            if face_ids:
                self.report.indexed_photos += 1
                self.report.faces_indexed += len(face_ids)
                if photo.person:
                    self.faces_of.setdefault(photo.person, []).extend(face_ids)
            else:
                reasons = sorted({r for u in answer["UnindexedFaces"] for r in u["Reasons"]})
                self.report.unindexed.append(
                    {"photo": str(photo.path), "reasons": reasons or ["NO_FACE_DETECTED"]}
                )

    def associate(self, person: str, face_ids: list[str]) -> None:
        user_id = valid_id(person, MAX_USER_ID)
        try:
            self.client.create_user(CollectionId=self.collection, UserId=user_id)
            self.report.users_created.append(user_id)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConflictException":  # it exists: a re-run
                raise
        for start in range(0, len(face_ids), FACES_PER_ASSOCIATION):
            answer = self.client.associate_faces(
                CollectionId=self.collection,
                UserId=user_id,
                FaceIds=face_ids[start : start + FACES_PER_ASSOCIATION],
            )
            self.report.faces_associated += len(answer["AssociatedFaces"])
            self.report.unassociated += [
                {"user": user_id, "face_id": item["FaceId"], "reasons": item["Reasons"]}
                for item in answer["UnsuccessfulFaceAssociations"]
            ]


def run_import(
    folder: Path, collection: str, endpoint: str, *, users: bool, concurrency: int
) -> Report:
    started = time.monotonic()
    report = Report(collection=collection, endpoint=endpoint)
    client = rekognition_client(endpoint)
    photos = find_photos(folder, users)
    report.photos = len(photos)
    stored = stored_faces(client, collection)
    importer = Importer(client, collection, report)
    pending = []
    for photo in photos:
        if photo.external_id in stored:
            report.skipped_already_indexed += 1
            if photo.person:
                importer.faces_of.setdefault(photo.person, []).extend(stored[photo.external_id])
        else:
            pending.append(photo)
    try:
        _index_all(importer, pending, concurrency)
        for person, face_ids in sorted(importer.faces_of.items()):
            importer.associate(person, face_ids)
    except KeyboardInterrupt:
        report.interrupted = True
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _index_all(importer: Importer, photos: list[Photo], concurrency: int) -> None:
    pool = ThreadPoolExecutor(max_workers=concurrency)
    futures: list[Future[None]] = [pool.submit(importer.index, photo) for photo in photos]
    try:
        with tqdm(total=len(photos), unit="photo", desc="indexing") as progress:
            for future in as_completed(futures):
                future.result()
                progress.update()
    finally:
        # On Ctrl-C: drop what has not started, let running requests finish.
        pool.shutdown(wait=True, cancel_futures=True)


def write_report(report: Report, path: Path | None) -> str:
    text = json.dumps(asdict(report), indent=2) + "\n"
    if path is not None:
        path.write_text(text)
    return text
