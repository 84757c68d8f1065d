"""Video jobs are durable: a job whose server is SIGKILLed is taken over after a restart and
ends with the results of an uninterrupted run; replicas on one PostgreSQL share the queue and
run each job exactly once."""

from __future__ import annotations

import re
import signal
import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from ml.evaluation.videos import Appearance, Script, render
from service.testing.local_server import LiveServer, stop_server
from tests.support.clients import finished, rekognition_client
from tests.support.deployments import Deployment, deployment_for
from tests.support.moto import CREDENTIALS, aws_client

BUCKET = "durable-videos"


@pytest.fixture(scope="module")
def videos(moto_endpoint: str, faces_dir: Path) -> str:
    """Two people crossing the frame; `long.mp4` plays it three times (13 s)."""
    photos = {
        person: sorted((faces_dir / "five-celebrities/val" / person).iterdir())[0]
        for person in ("jerry_seinfeld", "mindy_kaling")
    }
    script = Script(
        appearances=(
            Appearance("jerry_seinfeld", photos["jerry_seinfeld"], 0, 4400, 0.0, 0.5, 220),
            Appearance("mindy_kaling", photos["mindy_kaling"], 1000, 4400, 0.7, 0.2, 200),
        ),
        duration_ms=4400,
    )
    s3 = aws_client("s3", moto_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="short.mp4", Body=render(script))
    s3.put_object(Bucket=BUCKET, Key="long.mp4", Body=render(script, repeat=3))
    return moto_endpoint  # where they are


def settings(moto_endpoint: str) -> dict[str, str]:
    return {
        "FACEBANK_S3_ENDPOINT_URL": moto_endpoint,
        "FACEBANK_VIDEO_LEASE_S": "3",
        **CREDENTIALS,
    }


def video(name: str) -> dict[str, Any]:
    return {"S3Object": {"Bucket": BUCKET, "Name": name}}


def frames_done(server: LiveServer) -> float:
    exposition = httpx.get(f"{server.url}/metrics", timeout=10).text
    found = re.search(r"^facebank_video_frames_total (\S+)$", exposition, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_a_killed_server_finishes_the_job_after_restart_with_the_same_results(
    videos: str, tmp_path: Path
) -> None:
    deployment = Deployment(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'facebank.db'}")
    env = settings(videos)
    server = deployment.start(env)
    job = rekognition_client(server.url).start_face_detection(Video=video("long.mp4"))["JobId"]
    deadline = time.monotonic() + 120
    while frames_done(server) < 8:  # the job is under way
        assert time.monotonic() < deadline and server.process.poll() is None
        time.sleep(0.2)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    restarted = deployment.start(env)
    try:
        client = rekognition_client(restarted.url)
        taken_over = finished(client.get_face_detection, job)
        assert taken_over["JobStatus"] == "SUCCEEDED", taken_over.get("StatusMessage")
        again = client.start_face_detection(Video=video("long.mp4"))["JobId"]
        uninterrupted = finished(client.get_face_detection, again)
    finally:
        stop_server(restarted)
    with sqlite3.connect(tmp_path / "data" / "facebank.db") as database:
        attempts = dict(database.execute("SELECT job_id, attempts FROM video_jobs").fetchall())
    assert attempts == {job: 2, again: 1}  # the first job ran twice: killed, then taken over
    assert taken_over["Faces"] == uninterrupted["Faces"] and len(taken_over["Faces"]) > 60
    assert taken_over["VideoMetadata"] == uninterrupted["VideoMetadata"]


def test_replicas_on_one_postgresql_run_each_job_once(
    videos: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    first = deployment_for("postgresql", request, tmp_path / "a")
    second = replace(first, data_dir=tmp_path / "b" / "data")
    env = settings(videos)
    replicas = [first.start(env), second.start(env)]
    try:
        starter, reader = (rekognition_client(r.url) for r in replicas)
        jobs = [starter.start_face_detection(Video=video("short.mp4"))["JobId"] for _ in range(4)]
        answers = [finished(reader.get_face_detection, job) for job in jobs]
    finally:
        for replica in replicas:
            stop_server(replica)
    assert all(answer["JobStatus"] == "SUCCEEDED" for answer in answers)
    assert all(answer["Faces"] == answers[0]["Faces"] for answer in answers)
    engine = create_engine(first.database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT job_id, attempts FROM video_jobs")).all()
    engine.dispose()
    assert {job_id: attempts for job_id, attempts in rows} == dict.fromkeys(jobs, 1)
    ran = [_jobs_run(replica) for replica in replicas]
    assert ran[0] | ran[1] == set(jobs) and not ran[0] & ran[1]


def _jobs_run(replica: LiveServer) -> set[str]:
    """The jobs a replica's log says it claimed."""
    return set(
        re.findall(r"video job (\w+) \(StartFaceDetection\): attempt", replica.log.read_text())
    )
