"""Stored video through stock boto3: jobs on H.264 files in a real S3-compatible store (moto's
server), completion messages through its SNS to an SQS queue as AWS's own example waits for
them, people at known times in videos made from the provisioned photos."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest
from botocore.exceptions import ClientError

from ml.evaluation.videos import Appearance, Script, audio_only, blank_video, encode, render
from service.testing.local_server import LiveServer, running_server
from tests.support.browser import click_and_wait
from tests.support.clients import finished, rekognition_client
from tests.support.moto import CREDENTIALS, aws_client

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

BUCKET = "videos"
SAMPLE_MS = 200
MAX_BYTES = 2_000_000
ENROLLED = ("ben_afflek", "madonna")  # users of the collection; elton_john is not


@dataclass(frozen=True)
class Scenes:
    script: Script
    collection: str

    def shown(self, timestamp: int) -> list[Appearance]:
        return [a for a in self.script.appearances if a.shows(timestamp)]

    def who(self, timestamp: int, box: dict[str, float]) -> Appearance:
        """The appearance whose photo holds the centre of a face box at that time."""
        centre = (box["Left"] + box["Width"] / 2) * self.script.width
        for appearance in self.shown(timestamp):
            left = appearance.left_px(timestamp, self.script.width)
            if left <= centre <= left + appearance.height:  # photos are narrower than tall
                return appearance
        raise AssertionError(f"a face at {timestamp} ms where nobody is shown: {box}")


def script_of(photos: dict[str, Path]) -> Script:
    """Ben moves across; nobody; Ben again beside Madonna; Elton enters at the left edge."""
    return Script(
        appearances=(
            Appearance("ben_afflek", photos["ben_afflek"], 0, 1200, 0.05, 0.40, 220),
            Appearance("ben_afflek", photos["ben_afflek"], 2400, 3400, 0.08, 0.12, 200),
            Appearance("madonna", photos["madonna"], 2400, 3400, 0.62, 0.58, 200),
            Appearance("elton_john", photos["elton_john"], 3600, 4400, -0.10, 0.05, 220),
        ),
        duration_ms=4400,
    )


def s3_video(name: str) -> dict[str, Any]:
    return {"S3Object": {"Bucket": BUCKET, "Name": name}}


@pytest.fixture(scope="module")
def video_server(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    env = {
        "FACEBANK_S3_ENDPOINT_URL": moto_endpoint,
        "FACEBANK_SNS_ENDPOINT_URL": moto_endpoint,
        "FACEBANK_VIDEO_SAMPLE_MS": str(SAMPLE_MS),
        "FACEBANK_VIDEO_MAX_BYTES": str(MAX_BYTES),
        "FACEBANK_VIDEO_MAX_DURATION_S": "60",
        "FACEBANK_VIDEO_MAX_JOBS": "3",
        **CREDENTIALS,
    }
    with running_server(tmp_path_factory.mktemp("video-server"), env) as live:
        yield live


@pytest.fixture(scope="module")
def client(video_server: LiveServer) -> Any:
    return rekognition_client(video_server.url)


@pytest.fixture(scope="module")
def scenes(client: Any, moto_endpoint: str, faces_dir: Path) -> Scenes:
    """A collection with a user for each ENROLLED person (three photos each), and the scenes
    video made of photos the service recognises in a still image at 90 or more."""
    collection = "video-staff"
    client.create_collection(CollectionId=collection)
    photos: dict[str, Path] = {}
    for person in ENROLLED:
        client.create_user(CollectionId=collection, UserId=person)
        face_ids: list[str] = []
        for photo in sorted((faces_dir / "five-celebrities/train" / person).iterdir()):
            found = client.index_faces(
                CollectionId=collection, Image={"Bytes": photo.read_bytes()}, MaxFaces=1
            )["FaceRecords"]
            face_ids += [record["Face"]["FaceId"] for record in found]
            if len(face_ids) == 3:
                break
        client.associate_faces(CollectionId=collection, UserId=person, FaceIds=face_ids)
        photos[person] = _recognised_photo(client, collection, faces_dir, person)
    photos["elton_john"] = sorted((faces_dir / "five-celebrities/val/elton_john").iterdir())[0]
    script = script_of(photos)
    s3 = aws_client("s3", moto_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="scenes.mp4", Body=render(script))
    return Scenes(script, collection)


def _recognised_photo(client: Any, collection: str, faces_dir: Path, person: str) -> Path:
    for photo in sorted((faces_dir / "five-celebrities/val" / person).iterdir()):
        found = client.search_users_by_image(
            CollectionId=collection, Image={"Bytes": photo.read_bytes()}, UserMatchThreshold=90
        )["UserMatches"]
        if found and found[0]["User"]["UserId"] == person:
            return photo
    raise AssertionError(f"no val photo of {person} is recognised")


def all_pages(get: Callable[..., dict[str, Any]], member: str, **request: Any) -> list[Any]:
    """Every result, following NextToken as clients do (botocore has no paginator here)."""
    found, token = [], None
    while True:
        answer = get(**request, **({"NextToken": token} if token else {}))
        found += answer[member]
        token = answer.get("NextToken")
        if token is None:
            return found


def test_face_detection_finds_each_person_inside_their_time(client: Any, scenes: Scenes) -> None:
    job = client.start_face_detection(Video=s3_video("scenes.mp4"))["JobId"]
    answer = finished(client.get_face_detection, job)
    assert answer["JobStatus"] == "SUCCEEDED", answer.get("StatusMessage")
    metadata = answer["VideoMetadata"]
    assert (metadata["Codec"], metadata["Format"]) == ("h264", "QuickTime / MOV")
    assert (metadata["FrameWidth"], metadata["FrameHeight"], metadata["FrameRate"]) == (
        640,
        360,
        10.0,
    )
    assert metadata["DurationMillis"] == 4400
    assert answer["Video"] == s3_video("scenes.mp4") and "JobTag" not in answer
    faces = answer["Faces"]
    assert [f["Timestamp"] for f in faces] == sorted(f["Timestamp"] for f in faces)
    seen: dict[Appearance, set[int]] = {}
    for found in faces:
        appearance = scenes.who(found["Timestamp"], found["Face"]["BoundingBox"])
        seen.setdefault(appearance, set()).add(found["Timestamp"])
        assert {"Landmarks", "Pose", "Quality", "Confidence"} <= set(found["Face"])
        assert "AgeRange" not in found["Face"]  # DEFAULT attributes
    for appearance in scenes.script.appearances:
        samples = range(appearance.start_ms, appearance.end_ms, SAMPLE_MS)
        share = len(seen.get(appearance, ())) / len(samples)
        # The face entering at the edge is found once enough of it is in the frame.
        assert share >= (0.6 if appearance.left_from < 0 else 0.9), appearance.person


def test_all_attributes_leave_out_what_video_results_lack(client: Any, scenes: Scenes) -> None:
    job = client.start_face_detection(Video=s3_video("scenes.mp4"), FaceAttributes="ALL")
    answer = finished(client.get_face_detection, job["JobId"])
    detail = answer["Faces"][0]["Face"]
    assert {"AgeRange", "Gender", "Emotions", "Smile", "EyesOpen", "MouthOpen"} <= set(detail)
    assert "EyeDirection" not in detail


def test_face_search_as_aws_documents_it(client: Any, scenes: Scenes, moto_endpoint: str) -> None:
    """Start with a NotificationChannel, wait on an SQS queue subscribed to the topic, then
    page through GetFaceSearch with MaxResults smaller than the result."""
    sns, sqs = aws_client("sns", moto_endpoint), aws_client("sqs", moto_endpoint)
    topic = sns.create_topic(Name="AmazonRekognition-jobs")["TopicArn"]
    queue = sqs.create_queue(QueueName="rekognition-jobs")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    channel = {"SNSTopicArn": topic, "RoleArn": "arn:aws:iam::000000000000:role/rekognition"}
    request = {
        "Video": s3_video("scenes.mp4"),
        "CollectionId": scenes.collection,
        "NotificationChannel": channel,
        "JobTag": "nightly-run",
        "ClientRequestToken": "search-1",
    }
    job = client.start_face_search(**request)["JobId"]
    assert client.start_face_search(**request)["JobId"] == job  # the same request again
    with pytest.raises(ClientError, match="IdempotentParameterMismatch"):
        client.start_face_search(**request, FaceMatchThreshold=95)
    message = _completion(sqs, queue)
    assert message["JobId"] == job and message["Status"] == "SUCCEEDED"
    assert (message["API"], message["JobTag"]) == ("StartFaceSearch", "nightly-run")
    assert message["Video"] == {"S3ObjectName": "scenes.mp4", "S3Bucket": BUCKET}
    whole = client.get_face_search(JobId=job)
    assert whole["JobStatus"] == "SUCCEEDED" and whole["JobTag"] == "nightly-run"
    persons = whole["Persons"]
    assert all_pages(client.get_face_search, "Persons", JobId=job, MaxResults=3) == persons
    _assert_people(scenes, persons)
    by_index = all_pages(client.get_face_search, "Persons", JobId=job, SortBy="INDEX")
    keys = [(p["Person"]["Index"], p["Timestamp"]) for p in by_index]
    assert keys == sorted(keys) and len(by_index) == len(persons)


def test_the_console_shows_who_a_face_search_found_when(
    video_server: LiveServer, client: Any, scenes: Scenes, browser: WebDriver
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{video_server.url}/console/video")  # no keys: open, on loopback

    def searched() -> list[Any]:
        return [
            row
            for row in browser.find_elements(By.CSS_SELECTOR, "[data-testid=job-row]")
            if "face search" in row.text and "SUCCEEDED" in row.text
        ]

    if not searched():  # the face search test above did not run
        job = client.start_face_search(Video=s3_video("scenes.mp4"), CollectionId=scenes.collection)
        finished(client.get_face_search, job["JobId"])
        browser.refresh()
    row = searched()[0]
    assert scenes.collection in row.text
    lanes = click_and_wait(
        browser, row.find_element(By.TAG_NAME, "a"), "[data-testid=timeline-person]"
    )
    people = [lane.find_element(By.CLASS_NAME, "who").text for lane in lanes]
    assert set(ENROLLED) <= set(people)
    assert "elton_john" not in people  # not in the collection: an unknown person, if anyone
    missing = httpx.get(f"{video_server.url}/console/video/no-such-job")
    assert missing.status_code == 404 and "No job no-such-job" in missing.text


def _completion(sqs: Any, queue: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)
        for received in answer.get("Messages", []):
            envelope = json.loads(received["Body"])  # SNS's envelope around the message
            return dict(json.loads(envelope["Message"]))
    raise AssertionError("no completion message arrived")


def _assert_people(scenes: Scenes, persons: list[dict[str, Any]]) -> None:
    """Matches only to the right user's faces at 80 or more, one index per continuous
    appearance, nothing for the person who is not in the collection."""
    indexes: dict[Appearance, set[int]] = {}
    for person in persons:
        appearance = scenes.who(person["Timestamp"], person["Person"]["BoundingBox"])
        assert appearance.person in ENROLLED
        indexes.setdefault(appearance, set()).add(person["Person"]["Index"])
        assert person["FaceMatches"]
        for match in person["FaceMatches"]:
            assert match["Similarity"] >= 80
            assert match["Face"]["UserId"] == appearance.person
    enrolled = [a for a in scenes.script.appearances if a.person in ENROLLED]
    assert set(indexes) == set(enrolled)
    assert all(len(found) == 1 for found in indexes.values()), indexes
    assert len({next(iter(found)) for found in indexes.values()}) == len(enrolled)


def test_bad_video_gets_rekognitions_error(client: Any, scenes: Scenes, moto_endpoint: str) -> None:
    s3 = aws_client("s3", moto_endpoint)
    whole = (render(scenes.script),)[0]
    files = {
        "cut.mp4": whole[: len(whole) // 2],
        "text.mp4": b"not a video at all " * 100,
        "audio.m4a": audio_only(),
        "motion.avi": encode([np.full((64, 64, 3), 90, np.uint8)] * 5, 5, "mjpeg", "avi"),
        "long.mp4": blank_video(70),
        "huge.mp4": bytes(MAX_BYTES + 1),
    }
    for name, data in files.items():
        s3.put_object(Bucket=BUCKET, Key=name, Body=data)
    with pytest.raises(ClientError, match="InvalidS3ObjectException"):
        client.start_face_detection(Video=s3_video("missing.mp4"))
    with pytest.raises(ClientError, match="VideoTooLargeException"):
        client.start_face_detection(Video=s3_video("huge.mp4"))
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.start_face_search(Video=s3_video("scenes.mp4"), CollectionId="nobody-here")
    reasons = {
        "cut.mp4": "not a video FFmpeg can read",
        "text.mp4": "not a video FFmpeg can read",
        "audio.m4a": "no video stream",
        "motion.avi": "codec mjpeg is not decoded here",
        "long.mp4": "this server takes videos up to 60 s",
    }
    jobs: dict[str, str] = {}
    for name in reasons:
        if len(jobs) == 3:  # the server's quota of jobs in progress
            _wait_all(client, jobs)
        jobs[name] = client.start_face_detection(Video=s3_video(name))["JobId"]
    for name, answer in _wait_all(client, jobs).items():
        assert answer["JobStatus"] == "FAILED" and reasons[name] in answer["StatusMessage"]
        assert "Faces" not in answer


def _wait_all(client: Any, jobs: dict[str, str]) -> dict[str, Any]:
    return {name: finished(client.get_face_detection, job) for name, job in jobs.items()}


def test_job_quota_and_unknown_jobs(client: Any, scenes: Scenes, server: LiveServer) -> None:
    started = [client.start_face_detection(Video=s3_video("scenes.mp4"))["JobId"] for _ in range(3)]
    with pytest.raises(ClientError, match="LimitExceededException"):
        client.start_face_detection(Video=s3_video("scenes.mp4"))
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.get_face_detection(JobId="0" * 64)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.get_face_search(JobId=started[0])  # a detection job is no search job
    answer = finished(client.get_face_detection, started[0])
    assert answer["JobStatus"] == "SUCCEEDED"
    with pytest.raises(ClientError, match="InvalidPaginationTokenException"):
        client.get_face_detection(JobId=started[0], NextToken="not-a-token")
    for job in started[1:]:
        finished(client.get_face_detection, job)
    # A server without an SNS endpoint refuses a channel no message would ever reach.
    plain = rekognition_client(server.url)
    channel = {
        "SNSTopicArn": "arn:aws:sns:us-east-1:000000000000:t",
        "RoleArn": "arn:aws:iam::000000000000:role/r",
    }
    with pytest.raises(ClientError, match="FACEBANK_SNS_ENDPOINT_URL"):
        plain.start_face_detection(Video=s3_video("scenes.mp4"), NotificationChannel=channel)


def test_rest_routes_and_metrics_follow_the_jobs(video_server: LiveServer, scenes: Scenes) -> None:
    started = httpx.post(
        f"{video_server.url}/v1/video/face-search",
        json={"Video": s3_video("scenes.mp4"), "CollectionId": scenes.collection},
    )
    assert started.status_code == 200, started.text
    job = started.json()["JobId"]
    url = f"{video_server.url}/v1/video/face-search/{job}"
    deadline = time.monotonic() + 180
    while (answer := httpx.get(url).json())["JobStatus"] == "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert answer["JobStatus"] == "SUCCEEDED" and answer["Persons"]
    page = httpx.get(url, params={"max_results": 2, "sort_by": "INDEX"}).json()
    assert len(page["Persons"]) == 2 and "NextToken" in page
    missing = httpx.get(f"{video_server.url}/v1/video/face-detection/{job}")
    assert missing.status_code == 404 and missing.json()["code"] == "ResourceNotFoundException"
    exposition = httpx.get(f"{video_server.url}/metrics").text
    succeeded = re.search(r'^facebank_video_jobs\{status="SUCCEEDED"\} (\S+)$', exposition, re.M)
    frames = re.search(r"^facebank_video_frames_total (\S+)$", exposition, re.M)
    assert succeeded and float(succeeded.group(1)) >= 1
    assert frames and float(frames.group(1)) >= 22  # one job's sampled frames at least
    assert re.search(r"^facebank_video_oldest_waiting_seconds 0\.0$", exposition, re.M)


def test_the_docs_local_try_runs_as_written(
    video_server: LiveServer, moto_endpoint: str, faces_dir: Path, tmp_path: Path
) -> None:
    """docs/video.md's script, copied out of the page, against moto and a server."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "video.md").read_text()
    section = page.split("## A local try, from nothing", 1)[1]
    script = tmp_path / "try_video.py"
    script.write_text(section.split("```python\n", 1)[1].split("```", 1)[0])
    photo = sorted((faces_dir / "five-celebrities/val/madonna").iterdir())[0]
    env = {**os.environ, **CREDENTIALS, "STORE": moto_endpoint, "FACEBANK": video_server.url}
    ran = subprocess.run(
        [sys.executable, str(script), str(photo)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert ran.returncode == 0, ran.stderr
    status, faces, _ = ran.stdout.split()
    assert status == "SUCCEEDED" and int(faces) == 3000 // SAMPLE_MS
