"""`facebank import` enrols a folder through a live server, and a re-run adds only what is
missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.testing.local_server import ROOT, LiveServer
from tests.support.clients import rekognition_client
from tests.support.images import blank_jpeg

PEOPLE = ("ben_afflek", "madonna", "mindy_kaling")


@pytest.fixture
def folder(tmp_path: Path, faces_dir: Path) -> Path:
    root = tmp_path / "people"
    for person in PEOPLE:
        (root / person).mkdir(parents=True)
        for photo in sorted((faces_dir / "five-celebrities/train" / person).iterdir())[:3]:
            (root / person / photo.name).write_bytes(photo.read_bytes())
    (root / "ben_afflek" / "notes.txt").write_text("not a photo: not sent")
    (root / "nobody").mkdir()
    (root / "nobody" / "blank.jpg").write_bytes(blank_jpeg())
    (root / "nobody" / "broken.jpg").write_bytes(b"GIF89a" + bytes(100))
    return root


def run_import(server: LiveServer, folder: Path, report: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(report.parent / "no-credentials"),
        "AWS_CONFIG_FILE": str(report.parent / "no-config"),
        "AWS_EC2_METADATA_DISABLED": "true",  # no cloud metadata lookups from a test
    }
    command = [sys.executable, "-m", "service.cli", "import", str(folder), "--users"]
    command += ["--collection", "bulk", "--endpoint", server.url, "--report", str(report)]
    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "photos indexed" in finished.stderr
    return dict(json.loads(report.read_text()))


def test_import_enrols_people_and_a_rerun_adds_only_what_is_missing(
    server: LiveServer, folder: Path, tmp_path: Path
) -> None:
    first = run_import(server, folder, tmp_path / "first.json")
    indexed = first["indexed_photos"]
    # 9 photos of people: each indexed with its one largest face, or unindexed with
    # Rekognition's reasons (QualityFilter AUTO refuses a small face); a blank photo has no face
    unindexed = {Path(u["photo"]).name: u["reasons"] for u in first["unindexed"]}
    assert first["photos"] == 11 and indexed >= 7 and first["faces_indexed"] == indexed
    assert indexed + len(unindexed) == 10 and unindexed["blank.jpg"] == ["NO_FACE_DETECTED"]
    assert [(Path(f["photo"]).name, f["error"]) for f in first["failed"]] == [
        ("broken.jpg", "InvalidImageFormatException")
    ]
    assert sorted(first["users_created"]) == list(PEOPLE)
    assert first["faces_associated"] + len(first["unassociated"]) == indexed
    client = rekognition_client(server.url)
    users = client.list_users(CollectionId="bulk")["Users"]
    assert {user["UserId"]: user["UserStatus"] for user in users} == dict.fromkeys(PEOPLE, "ACTIVE")

    again = run_import(server, folder, tmp_path / "again.json")
    assert (again["skipped_already_indexed"], again["indexed_photos"]) == (indexed, 0)
    assert again["users_created"] == [] and again["faces_associated"] == 0

    madonna = client.list_faces(CollectionId="bulk", UserId="madonna")["Faces"]
    one = madonna[0]["FaceId"]
    client.disassociate_faces(CollectionId="bulk", UserId="madonna", FaceIds=[one])
    client.delete_faces(CollectionId="bulk", FaceIds=[one])
    third = run_import(server, folder, tmp_path / "third.json")
    assert (third["skipped_already_indexed"], third["indexed_photos"]) == (indexed - 1, 1)
    assert third["faces_associated"] == 1
    assert len(client.list_faces(CollectionId="bulk", UserId="madonna")["Faces"]) == len(madonna)
    client.delete_collection(CollectionId="bulk")
