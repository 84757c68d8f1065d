"""deploy/scale-out: two replicas on one PostgreSQL behind nginx, driven by boto3."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from service.testing.local_server import ROOT, free_port

SCRIPTS = ROOT / "deploy" / "scale-out"


def require_nginx_and_postgresql() -> None:
    """Skip where Debian's nginx or PostgreSQL server is missing (fail on CI, which has them)."""
    has_nginx = shutil.which("nginx") or Path("/usr/sbin/nginx").exists()
    if not has_nginx or not list(Path("/usr/lib/postgresql").glob("*/bin")):
        hint = "Debian's nginx and postgresql packages are needed (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(hint)
        pytest.skip(hint)


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    require_nginx_and_postgresql()
    state = reachable_state_dir()
    lb_port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "FACEBANK_DATABASE_URL"}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["LB_PORT"] = str(lb_port)  # the operator's choice of port is kept
    started = subprocess.run(
        ["bash", str(SCRIPTS / "up.sh"), str(state)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        endpoints = dict(
            line.split("=", 1) for line in (state / "endpoints.env").read_text().splitlines()
        )
        assert endpoints["LB_URL"] == f"http://127.0.0.1:{lb_port}"
        assert Path(endpoints["PG_DIR"]) == state / "postgres"  # all its state in STATE_DIR
        yield {**endpoints, "STATE_DIR": str(state)}
    finally:
        down = [str(SCRIPTS / "down.sh"), str(state), "--delete-data"]
        subprocess.run(["bash", *down], timeout=150)
        shutil.rmtree(state, ignore_errors=True)


def reachable_state_dir() -> Path:
    """A STATE_DIR that the postgres account can enter when the tests run as root (pytest's own
    temporary folders are closed to other users)."""
    state = Path(tempfile.mkdtemp(prefix="facebank-scale-out-", dir="/var/tmp"))
    state.chmod(0o711)
    return state


def client(url: str, attempts: int = 1) -> Any:
    config = Config(
        signature_version=UNSIGNED, retries={"max_attempts": attempts, "mode": "standard"}
    )
    return boto3.client("rekognition", endpoint_url=url, region_name="eu-west-1", config=config)


def photos(faces_dir: Path, count: int) -> list[bytes]:
    paths = sorted((faces_dir / "five-celebrities" / "train").rglob("*.jpg"))
    return [path.read_bytes() for path in paths[:count]]


def test_writes_on_one_replica_are_searched_and_paged_on_the_other(
    cluster: dict[str, str], faces_dir: Path
) -> None:
    a, b = client(cluster["REPLICA_A_URL"]), client(cluster["REPLICA_B_URL"])
    client(cluster["LB_URL"]).create_collection(CollectionId="replicated")
    ids = []
    for number, photo in enumerate(photos(faces_dir, 5)):
        indexed = a.index_faces(
            CollectionId="replicated",
            Image={"Bytes": photo},
            ExternalImageId=f"p{number}",
            QualityFilter="NONE",
            MaxFaces=1,
        )
        ids.append(indexed["FaceRecords"][0]["Face"]["FaceId"])
    hits = b.search_faces(CollectionId="replicated", FaceId=ids[0], FaceMatchThreshold=0)
    assert {hit["Face"]["FaceId"] for hit in hits["FaceMatches"]} == set(ids[1:])
    first = a.list_faces(CollectionId="replicated", MaxResults=2)
    rest = b.list_faces(CollectionId="replicated", NextToken=first["NextToken"], MaxResults=10)
    listed = [face["FaceId"] for face in first["Faces"] + rest["Faces"]]
    assert sorted(listed) == sorted(ids) and len(set(listed)) == len(listed)


def test_killing_a_replica_under_load_loses_nothing_acknowledged(
    cluster: dict[str, str], faces_dir: Path
) -> None:
    through_nginx = client(cluster["LB_URL"], attempts=6)  # boto3 retries a 502 by itself
    through_nginx.create_collection(CollectionId="under-load")
    acknowledged: list[str] = []
    failures: list[BaseException] = []

    def enrol(numbers: range, images: list[bytes]) -> None:
        for number in numbers:
            try:
                through_nginx.index_faces(
                    CollectionId="under-load",
                    Image={"Bytes": images[number % len(images)]},
                    ExternalImageId=f"photo-{number}",
                    QualityFilter="NONE",
                    MaxFaces=1,
                )
                acknowledged.append(f"photo-{number}")
            except BaseException as exc:
                failures.append(exc)

    images = photos(faces_dir, 12)
    workers = [
        threading.Thread(target=enrol, args=(range(start, 40, 4), images)) for start in range(4)
    ]
    for worker in workers:
        worker.start()
    while len(acknowledged) < 8 and any(worker.is_alive() for worker in workers):
        threading.Event().wait(0.1)
    os.kill(int(cluster["REPLICA_A_PID"]), signal.SIGKILL)
    for worker in workers:
        worker.join()
    assert failures == [] and len(acknowledged) == 40
    stored = {
        face["ExternalImageId"]
        for face in through_nginx.list_faces(CollectionId="under-load", MaxResults=4096)["Faces"]
    }
    assert stored == set(acknowledged)


def test_down_keeps_the_data_for_the_next_up(
    cluster: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """down.sh waits for the processes and keeps the database; up.sh on the same state
    directory starts on it again (the last test of the module: it restarts the cluster)."""
    state = Path(cluster["STATE_DIR"])
    client(cluster["LB_URL"], attempts=3).create_collection(CollectionId="kept")
    stopped = subprocess.run(
        ["bash", str(SCRIPTS / "down.sh"), str(state)], capture_output=True, text=True, timeout=150
    )
    assert "the database is kept" in stopped.stdout
    for pid in (cluster["REPLICA_A_PID"], cluster["REPLICA_B_PID"]):
        assert not Path(f"/proc/{pid}").exists()  # exited before down.sh returned
    again = subprocess.run(
        ["bash", str(SCRIPTS / "up.sh"), str(state)], capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    endpoints = dict(
        line.split("=", 1) for line in (state / "endpoints.env").read_text().splitlines()
    )
    ids = client(endpoints["LB_URL"], attempts=3).list_collections()["CollectionIds"]
    assert "kept" in ids


def test_a_missing_prerequisite_starts_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    started = subprocess.run(
        ["bash", str(SCRIPTS / "up.sh"), str(state)],
        env={**os.environ, "NGINX": str(tmp_path / "no-nginx")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "nothing was started" in started.stderr and "apt-get install nginx" in started.stderr
    assert not (state / "kept.env").exists() and not (state / "replica-a.pid").exists()


def test_a_failed_step_stops_what_was_started(tmp_path: Path) -> None:
    require_nginx_and_postgresql()  # the step that fails comes after PostgreSQL has started
    state = reachable_state_dir()
    env = {k: v for k, v in os.environ.items() if k != "FACEBANK_DATABASE_URL"}
    started = subprocess.run(  # the replicas cannot start without weights
        ["bash", str(SCRIPTS / "up.sh"), str(state)],
        env={**env, "FACEBANK_MODELS_DIR": str(tmp_path / "no-weights")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode != 0 and "stopping what was started" in started.stderr
    kept = dict(line.split("=", 1) for line in (state / "kept.env").read_text().splitlines())
    assert not (Path(kept["PG_DIR"]) / "data" / "postmaster.pid").exists()  # stopped
    subprocess.run(["bash", str(SCRIPTS / "down.sh"), str(state), "--delete-data"], timeout=60)
    assert not Path(kept["PG_DIR"]).exists()
    shutil.rmtree(state, ignore_errors=True)
