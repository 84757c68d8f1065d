"""`facebank migrate` between two real facebank servers, the images in moto's S3: every
identifier an app holds survives (FaceIds, ImageIds, ExternalImageIds, BoundingBoxes, users
and their faces, tags), a face whose image is missing is reported with its reason and not
invented, SearchFaces by every old FaceId works on the target, and a second run changes
nothing. And the ImportFace operation it stores faces with: its own policy action, an id in
use refused, a bad image refused."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from service.testing.local_server import ROOT, LiveServer
from tests.support.clients import rekognition_client
from tests.support.keys import MIGRATOR, READER
from tests.support.moto import CREDENTIALS, aws_client
from tests.support.photos import group_photo

SOURCE = "migrate-source"
BUCKET = "originals"
MISSING = "madonna-2.jpg"  # indexed at the source, never uploaded


@dataclass
class Move:
    source: Any
    target: Any
    target_server: LiveServer
    run: Any  # (report folder) -> (report dict, completed process)
    deleted_face: str
    first: tuple[dict[str, Any], Any]  # the first run's report and process
    first_report: Path


def photos(faces_dir: Path) -> dict[str, bytes]:
    """ExternalImageId (the file's name) -> the photo."""
    found = {}
    for person in ("ben_afflek", "madonna", "jerry_seinfeld"):
        folder = sorted((faces_dir / "five-celebrities/train" / person).iterdir())
        for number, path in enumerate(folder[:2], start=1):
            found[f"{person.split('_')[0]}-{number}.jpg"] = path.read_bytes()
    found["group.jpg"] = group_photo(faces_dir)
    return found


def enrol_source(source: Any, images: dict[str, bytes]) -> str:
    """The source collection; returns the FaceId deleted there."""
    source.create_collection(CollectionId=SOURCE, Tags={"team": "doors", "site": "hq"})
    by_name: dict[str, list[str]] = {}
    for name, image in images.items():
        records = source.index_faces(
            CollectionId=SOURCE,
            Image={"Bytes": image},
            ExternalImageId=name,
            MaxFaces=2 if name == "group.jpg" else 1,
        )["FaceRecords"]
        by_name[name] = [record["Face"]["FaceId"] for record in records]
    assert len(by_name["group.jpg"]) == 2
    for user, names in (("ben", ["ben-1.jpg", "ben-2.jpg"]), ("madonna", ["madonna-1.jpg"])):
        source.create_user(CollectionId=SOURCE, UserId=user)
        face_ids = [face for name in names for face in by_name[name]]
        source.associate_faces(CollectionId=SOURCE, UserId=user, FaceIds=face_ids)
    deleted = by_name["jerry-2.jpg"][0]
    source.delete_faces(CollectionId=SOURCE, FaceIds=[deleted])
    return deleted


@pytest.fixture(scope="module")
def move(
    server: LiveServer,
    policy_server: LiveServer,
    moto_endpoint: str,
    faces_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Move]:
    tmp = tmp_path_factory.mktemp("migrate")
    images = photos(faces_dir)
    source = rekognition_client(server.url)
    deleted = enrol_source(source, images)
    s3 = aws_client("s3", moto_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    for name, image in images.items():
        if name != MISSING:
            s3.put_object(Bucket=BUCKET, Key=f"faces/{name}", Body=image)
    profiles = tmp / "credentials"
    profiles.write_text(
        f"[target]\naws_access_key_id = {MIGRATOR[0]}\naws_secret_access_key = {MIGRATOR[1]}\n"
    )
    target_server = policy_server

    def run(report: Path) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
        command = [sys.executable, "-m", "service.cli", "migrate", "--from", server.url]
        command += [
            "--collection",
            SOURCE,
            "--images",
            "s3://originals/faces/{ExternalImageId}",
        ]
        command += ["--to", target_server.url, "--to-profile", "target"]
        command += ["--report", str(report)]
        done = subprocess.run(
            command,
            cwd=ROOT,
            env={
                **os.environ,
                **CREDENTIALS,  # the default credentials: moto's S3 (and the open source)
                "AWS_ENDPOINT_URL_S3": moto_endpoint,
                "AWS_SHARED_CREDENTIALS_FILE": str(profiles),
                "AWS_CONFIG_FILE": str(tmp / "no-config"),
            },
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads((report / "report.json").read_text()), done

    target = rekognition_client(target_server.url, *MIGRATOR)
    first = run(tmp / "first")
    yield Move(source, target, target_server, run, deleted, first, tmp / "first")


def listed(client: Any, collection: str) -> dict[str, dict[str, Any]]:
    faces = client.get_paginator("list_faces").paginate(CollectionId=collection)
    return {face["FaceId"]: face for page in faces for face in page["Faces"]}


KEPT = ("FaceId", "ImageId", "ExternalImageId", "UserId", "Confidence")


def test_every_identifier_survives_the_move(move: Move) -> None:
    report, done = move.first
    before, after = listed(move.source, SOURCE), listed(move.target, SOURCE)
    missing = {face_id for face_id, face in before.items() if face["ExternalImageId"] == MISSING}
    assert len(missing) == 1 and move.deleted_face not in before
    assert set(after) == set(before) - missing  # the deleted face stays deleted
    for face_id, face in after.items():
        assert {k: face.get(k) for k in KEPT} == {k: before[face_id].get(k) for k in KEPT}
        for side in ("Left", "Top", "Width", "Height"):
            assert face["BoundingBox"][side] == pytest.approx(before[face_id]["BoundingBox"][side])
    group = [face for face in after.values() if face["ExternalImageId"] == "group.jpg"]
    assert len(group) == 2 and len({face["ImageId"] for face in group}) == 1
    users = move.target.list_users(CollectionId=SOURCE)["Users"]
    assert sorted(user["UserId"] for user in users) == ["ben", "madonna"]
    arn = move.target.describe_collection(CollectionId=SOURCE)["CollectionARN"]
    assert move.target.list_tags_for_resource(ResourceArn=arn)["Tags"] == {
        "team": "doors",
        "site": "hq",
    }
    (not_moved,) = report["not_moved"]
    assert not_moved["FaceId"] in missing and not_moved["reason"] == "image missing"
    assert report["faces_moved"] == len(after) and report["users_created"] == 2
    assert report["parity"]["probes"] >= 5
    assert report["parity"]["share_same_top_match"] == 1.0  # facebank to facebank: same model
    assert "moving faces" in done.stderr  # the progress bar
    html = (move.first_report / "report.html").read_text()
    assert MISSING in html and "image missing" in html and "<script" not in html
    for face_id in after:  # an app's stored FaceIds still search
        move.target.search_faces(CollectionId=SOURCE, FaceId=face_id)


def test_a_second_run_changes_nothing(move: Move, tmp_path: Path) -> None:
    first = listed(move.target, SOURCE)
    users = move.target.list_users(CollectionId=SOURCE)["Users"]
    report, _ = move.run(tmp_path / "again")
    assert listed(move.target, SOURCE) == first
    assert move.target.list_users(CollectionId=SOURCE)["Users"] == users
    assert (report["faces_moved"], report["users_created"], report["faces_associated"]) == (0, 0, 0)
    assert report["faces_already_there"] == len(first)
    assert len(report["not_moved"]) == 1  # still missing, still said


def import_face(
    server: LiveServer, key: tuple[str, str], face_id: str, body: dict[str, Any]
) -> httpx.Response:
    url = f"{server.url}/v1/collections/{SOURCE}/faces/{face_id}"
    payload = json.dumps(body).encode()
    request = AWSRequest("PUT", url, data=payload, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(*key), "rekognition", "us-east-1").add_auth(request)
    return httpx.put(url, content=payload, headers=dict(request.headers.items()), timeout=60)


def test_import_face_needs_its_own_action_a_free_id_and_an_image(
    move: Move, faces_dir: Path
) -> None:
    photo = sorted((faces_dir / "five-celebrities/val/elton_john").iterdir())[0].read_bytes()
    detected = move.target.detect_faces(Image={"Bytes": photo})["FaceDetails"]
    box = detected[0]["BoundingBox"]
    body = {"ImageId": "0" * 8 + "-0000-4000-8000-" + "0" * 12, "BoundingBox": box}
    face_id = "1" * 8 + "-1111-4111-8111-" + "1" * 12
    encoded = {"Bytes": base64.b64encode(photo).decode()}
    refused = import_face(move.target_server, READER, face_id, {**body, "Image": encoded})
    assert refused.status_code == 403 and refused.json()["code"] == "AccessDeniedException"
    assert "facebank:ImportFace" in refused.json()["detail"]
    used = next(iter(listed(move.target, SOURCE)))
    taken = import_face(move.target_server, MIGRATOR, used, {**body, "Image": encoded})
    assert taken.status_code == 409 and taken.json()["code"] == "ResourceAlreadyExistsException"
    garbage = {"Bytes": base64.b64encode(b"not an image at all").decode()}
    bad = import_face(move.target_server, MIGRATOR, face_id, {**body, "Image": garbage})
    assert bad.status_code == 415 and bad.json()["code"] == "InvalidImageFormatException"
    corner = {**body, "BoundingBox": {"Left": 0.0, "Top": 0.0, "Width": 0.05, "Height": 0.05}}
    nobody = import_face(move.target_server, MIGRATOR, face_id, {**corner, "Image": encoded})
    assert nobody.status_code == 400 and nobody.json()["detail"].startswith("No face")
    stored = import_face(move.target_server, MIGRATOR, face_id, {**body, "Image": encoded})
    assert stored.status_code == 200, stored.text
    face = stored.json()["Face"]
    assert (face["FaceId"], face["ImageId"], face["BoundingBox"]) == (
        face_id,
        body["ImageId"],
        box,
    )
    move.target.delete_faces(CollectionId=SOURCE, FaceIds=[face_id])
