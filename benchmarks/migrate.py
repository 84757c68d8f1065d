"""`facebank migrate`'s speed: faces moved per second from a folder and from S3.

    python -m benchmarks.migrate [--faces DIR] [--concurrency 4]

Starts two facebank servers (source and target, real weights, embedded SQLite) and moto's S3,
indexes every photo of five-celebrities (train and val) into a source collection (the largest
face of each, ExternalImageId the file's name), puts the photos in a bucket, then runs the
`facebank migrate` command twice into fresh target collections: images from the folder, then
from S3. Reports faces moved, seconds and faces per second for each, and the parity check's
share of the same top match. Writes benchmarks/results/migrate-cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config

from benchmarks import RESULTS, git_commit
from benchmarks.photos import default_faces
from ml.cpu import describe_cpu
from service.testing.local_server import ROOT, running_server, start_moto

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "benchmark", "AWS_SECRET_ACCESS_KEY": "benchmark"}


def enrol(url: str, folder: Path) -> int:
    config = Config(signature_version=UNSIGNED, retries={"max_attempts": 5})
    client = boto3.client("rekognition", endpoint_url=url, region_name="us-east-1", config=config)
    client.create_collection(CollectionId="source")
    faces = 0
    for photo in sorted(folder.iterdir()):
        answer = client.index_faces(
            CollectionId="source",
            Image={"Bytes": photo.read_bytes()},
            ExternalImageId=photo.name,
            MaxFaces=1,
        )
        faces += len(answer["FaceRecords"])
    return faces


def flat_copy(faces: Path, into: Path) -> Path:
    """Every five-celebrities photo in one folder, under a name unique across people."""
    into.mkdir()
    for photo in sorted((faces / "five-celebrities").rglob("*.jpg")):
        shutil.copy(photo, into / f"{photo.parent.parent.name}-{photo.parent.name}-{photo.name}")
    return into


def delete_collection(url: str, collection: str) -> str:
    config = Config(signature_version=UNSIGNED)
    client = boto3.client("rekognition", endpoint_url=url, region_name="us-east-1", config=config)
    client.delete_collection(CollectionId=collection)
    return collection


def migrate(
    source: str,
    target: str,
    images: str,
    collection: str,
    env: dict[str, str],
    concurrency: int,
    report: Path,
) -> dict[str, Any]:
    command = [sys.executable, "-m", "service.cli", "migrate", "--from", source]
    command += ["--collection", "source", "--images", images, "--to", target]
    command += ["--to-collection", collection, "--report", str(report)]
    command += ["--concurrency", str(concurrency)]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    moved = json.loads((report / "report.json").read_text())
    return {
        "faces_moved": moved["faces_moved"],
        "not_moved": len(moved["not_moved"]),
        "seconds": round(seconds, 1),
        "faces_per_s": round(moved["faces_moved"] / seconds, 2),
        "parity_same_top_match": moved["parity"]["share_same_top_match"],
        "first_not_moved": moved["not_moved"][0] if moved["not_moved"] else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=default_faces())
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        folder = flat_copy(args.faces, tmp / "photos")
        moto, moto_url = start_moto(tmp / "moto.log")
        env = {**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL_S3": moto_url}
        s3 = boto3.client(
            "s3",
            endpoint_url=moto_url,
            region_name="us-east-1",
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(Bucket="photos")
        for photo in folder.iterdir():
            s3.upload_file(str(photo), "photos", photo.name)
        try:
            with running_server(tmp) as source, running_server(tmp) as target:
                enrolled = enrol(source.url, folder)
                runs = {
                    "folder": migrate(
                        source.url,
                        target.url,
                        f"{folder}/{{ExternalImageId}}",
                        "from-folder",
                        env,
                        args.concurrency,
                        tmp / "r1",
                    ),
                    # FaceIds are unique across a deployment: the first copy goes first
                    "deleted": delete_collection(target.url, "from-folder"),
                    "s3": migrate(
                        source.url,
                        target.url,
                        "s3://photos/{ExternalImageId}",
                        "from-s3",
                        env,
                        args.concurrency,
                        tmp / "r2",
                    ),
                }
        finally:
            moto.terminate()
    runs.pop("deleted")
    result = {
        "commit": git_commit(),
        "cpu": describe_cpu(),
        "faces_at_source": enrolled,
        "concurrency": args.concurrency,
        "runs": runs,
    }
    print(json.dumps(result, indent=2))
    (RESULTS / "migrate-cpu.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
