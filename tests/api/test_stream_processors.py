"""Stream processors through stock boto3 on a real RTSP camera (GStreamer's RTSP server playing
an H.264 video of the provisioned photos, with a password), records read back from moto's
Kinesis: who is matched when, strangers with empty matches, nobody in empty stretches, capture
times that line up with the video, the camera killed and restarted, every error, and two
replicas on one PostgreSQL: each processor runs on one of them, Stop reaches it from the
other, and a SIGKILLed replica's processor moves to the other, and back to it once restarted,
without a new Start. One camera and one processor run serve the assertions (it runs in real
time)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest
from botocore.exceptions import ClientError

from ml.evaluation.videos import Appearance, Script, render
from service.testing.local_server import (
    SYSTEM_PYTHON,
    LiveServer,
    free_port,
    start_rtsp_camera,
    start_server,
    stop_server,
)
from tests.support.clients import rekognition_client
from tests.support.moto import CREDENTIALS, aws_client
from tests.support.postgres import fresh_database

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

ACCOUNT_REGION = "us-east-1:000000000000"
CAMERA_PASSWORD = "camera-pass-6Tq9"
OUTPUT = "door-events"
MARGIN_S = 0.45  # a sampled frame's offset against the video's cuts: 2 samples and a bit
# The camera's video: nobody, Ben, nobody, Elton (a stranger to the collection), nobody.
BEN, ELTON = (1.0, 3.0), (4.0, 6.0)
DURATION_S = 7.0


def need_rtsp_server() -> None:
    try:
        subprocess.run(
            [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError):
        hint = "GStreamer's RTSP server for python3 is needed (.ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(hint)
        pytest.skip(hint)


@dataclass
class Replica:
    env: dict[str, str]
    server: LiveServer


@dataclass
class Site:
    tmp: Path
    video: Path
    camera_port: int
    camera_log: Path
    camera: Any
    replicas: list[Replica]  # those up, in the order they started
    moto: str
    staff: dict[str, set[str]]  # person -> FaceIds enrolled

    def client(self, replica: int = 0) -> Any:
        return rekognition_client(self.replicas[replica].server.url)

    def start_camera(self) -> None:
        self.camera = start_rtsp_camera(
            self.video, self.camera_port, "/door", self.camera_log, ("camuser", CAMERA_PASSWORD)
        )

    def start_replica(self, env: dict[str, str]) -> Replica:
        replica = Replica(env, start_server(self.tmp, env))
        self.replicas.append(replica)
        return replica

    def kill(self, replica: Replica) -> None:
        replica.server.process.send_signal(signal.SIGKILL)
        replica.server.process.wait()
        self.replicas.remove(replica)

    def runner(self, name: str) -> Replica:
        """The one replica that runs processor `name` (its /metrics name it), once there is."""
        found = wait_until_value(
            lambda: [r for r in self.replicas if runs(r.server, name)], lambda f: len(f) == 1, 20
        )
        assert len(found) == 1, f"{name} runs on {len(found)} replicas"
        return cast(Replica, found[0])

    def logs(self) -> str:
        return "".join(log.read_text() for log in self.tmp.glob("server-*.log"))


def runs(server: LiveServer, name: str) -> bool:
    metrics = httpx.get(f"{server.url}/metrics").text
    return f'facebank_stream_connected{{processor="{name}"}}' in metrics


def kinesis_video_arn(name: str) -> str:
    return f"arn:aws:kinesisvideo:{ACCOUNT_REGION}:stream/{name}/1700000000000"


def kinesis_arn(name: str) -> str:
    return f"arn:aws:kinesis:{ACCOUNT_REGION}:stream/{name}"


def create_request(name: str, stream: str = "door", output: str = OUTPUT) -> dict[str, Any]:
    return {
        "Name": name,
        "Input": {"KinesisVideoStream": {"Arn": kinesis_video_arn(stream)}},
        "Output": {"KinesisDataStream": {"Arn": kinesis_arn(output)}},
        "Settings": {"FaceSearch": {"CollectionId": "door-staff", "FaceMatchThreshold": 85}},
        "RoleArn": "arn:aws:iam::000000000000:role/rekognition",
    }


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
    moto_endpoint: str,
    postgres_url: str,
    faces_dir: Path,
) -> Iterator[Site]:
    need_rtsp_server()
    tmp = tmp_path_factory.mktemp("streams")
    val = faces_dir / "five-celebrities/val"
    script = Script(
        (
            Appearance(
                "ben_afflek", sorted((val / "ben_afflek").iterdir())[0], 1000, 3000, 0.35, 0.4, 300
            ),
            Appearance(
                "elton_john", sorted((val / "elton_john").iterdir())[0], 4000, 6000, 0.35, 0.4, 300
            ),
        ),
        duration_ms=round(DURATION_S * 1000),
        width=960,
        height=540,
        fps=25,
    )
    video = tmp / "door.mp4"
    video.write_bytes(render(script))
    port = free_port()
    streams = tmp / "streams.json"
    url = f"rtsp://camuser:{CAMERA_PASSWORD}@127.0.0.1:{port}/door"
    streams.write_text(json.dumps({"VideoStreams": [{"Name": "door", "Url": url}]}))
    streams.chmod(0o600)
    aws_client("kinesis", moto_endpoint).create_stream(StreamName=OUTPUT, ShardCount=1)
    env = {
        "FACEBANK_DATABASE_URL": fresh_database(postgres_url),
        "FACEBANK_VIDEO_STREAMS_FILE": str(streams),
        "FACEBANK_KINESIS_ENDPOINT_URL": moto_endpoint,
        "FACEBANK_STREAM_LEASE_S": "3",
        "FACEBANK_STREAM_MAX_RUNNING": "2",
        "FACEBANK_LOG_FORMAT": "json",
        **CREDENTIALS,
    }
    found = Site(tmp, video, port, tmp / "camera.log", None, [], moto_endpoint, {})
    try:
        for letter in ("a", "b"):
            found.start_replica({**env, "FACEBANK_DATA_DIR": str(tmp / f"data-{letter}")})
        found.start_camera()
        found.staff = enrol(found.client(), faces_dir)
        yield found
    finally:
        for replica in found.replicas:
            stop_server(replica.server)
        if found.camera is not None:
            found.camera.kill()


def enrol(client: Any, faces_dir: Path) -> dict[str, set[str]]:
    client.create_collection(CollectionId="door-staff")
    staff: dict[str, set[str]] = {}
    for person in ("ben_afflek", "madonna"):
        for photo in sorted((faces_dir / "five-celebrities/train" / person).iterdir())[:4]:
            records = client.index_faces(
                CollectionId="door-staff",
                Image={"Bytes": photo.read_bytes()},
                ExternalImageId=person,
                MaxFaces=1,
            )["FaceRecords"]
            staff.setdefault(person, set()).update(r["Face"]["FaceId"] for r in records)
    return staff


class Records:
    """Everything written to the output stream, read as a Kinesis consumer reads it."""

    def __init__(self, moto: str) -> None:
        self.kinesis = aws_client("kinesis", moto)
        shard = self.kinesis.describe_stream(StreamName=OUTPUT)["StreamDescription"]["Shards"][0]
        self.iterator = self.kinesis.get_shard_iterator(
            StreamName=OUTPUT, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
        )["ShardIterator"]
        self.seen: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        answer = self.kinesis.get_records(ShardIterator=self.iterator, Limit=1000)
        self.iterator = answer["NextShardIterator"]
        self.seen += [json.loads(record["Data"]) for record in answer["Records"]]
        return self.seen

    def until(self, done: Callable[[list[dict[str, Any]]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done(self.read()):
                return True
            time.sleep(0.5)
        return False


def sessions(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Records by camera connection, in the order written: each connection plays the video
    from its start, so a connection ends where the offset falls back."""
    found: list[list[dict[str, Any]]] = []
    for record in records:
        if not found or offset(record) < offset(found[-1][-1]) - 1.0:
            found.append([])
        found[-1].append(record)
    return found


def whole_sessions(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Connections whose records reach past the video's last person."""
    return [
        found
        for found in sessions(records)
        if max(offset(r) for r in found) > ELTON[0] + 1.0
        and min(offset(r) for r in found) < BEN[0] + 1.0
    ]


def offset(record: dict[str, Any]) -> float:
    return float(record["InputInformation"]["KinesisVideo"]["FrameOffsetInSeconds"])


def wait_status(client: Any, name: str, wanted: str, timeout: float = 20.0) -> dict[str, Any]:
    return dict(
        wait_until_value(
            lambda: client.describe_stream_processor(Name=name),
            lambda described: described["Status"] == wanted,
            timeout,
        )
    )


@pytest.fixture(scope="module")
def door(site: Site) -> Iterator[Records]:
    """The processor 'door', created, started, and its first whole camera session read."""
    client = site.client()
    arn = client.create_stream_processor(**create_request("door"))["StreamProcessorArn"]
    assert arn == f"arn:aws:rekognition:{ACCOUNT_REGION}:streamprocessor/door"
    assert client.describe_stream_processor(Name="door")["Status"] == "STOPPED"
    records = Records(site.moto)
    client.start_stream_processor(Name="door")
    assert wait_status(client, "door", "RUNNING")["Status"] == "RUNNING"
    assert records.until(lambda seen: bool(whole_sessions(seen)), timeout=40)
    yield records


def test_records_say_who_was_at_the_door_and_when(site: Site, door: Records) -> None:
    session = whole_sessions(door.seen)[0]
    ben_ids = site.staff["ben_afflek"]
    people: dict[str, set[int]] = {"ben": set(), "elton": set()}
    for record in session:
        assert set(record) == {
            "InputInformation",
            "StreamProcessorInformation",
            "FaceSearchResponse",
        }
        assert record["StreamProcessorInformation"] == {"Status": "RUNNING"}
        video = record["InputInformation"]["KinesisVideo"]
        assert video["StreamArn"] == kinesis_video_arn("door")
        assert video["FragmentNumber"].isdigit()
        at = offset(record)
        (face,) = record["FaceSearchResponse"]
        assert set(face["DetectedFace"]) == {
            "BoundingBox",
            "Confidence",
            "Landmarks",
            "Pose",
            "Quality",
        }
        inside_ben = BEN[0] - MARGIN_S <= at <= BEN[1] + MARGIN_S
        inside_elton = ELTON[0] - MARGIN_S <= at <= ELTON[1] + MARGIN_S
        assert inside_ben or inside_elton, f"a face reported at {at:.2f} s, where nobody is"
        if inside_elton:
            assert face["MatchedFaces"] == []  # a stranger
            people["elton"].add(face["Person"]["Index"])
        else:
            assert face["MatchedFaces"], f"Ben unmatched at {at:.2f} s"
            top = face["MatchedFaces"][0]
            assert top["Face"]["FaceId"] in ben_ids and top["Similarity"] >= 85
            assert set(top["Face"]) == {
                "BoundingBox",
                "Confidence",
                "ExternalImageId",
                "FaceId",
                "ImageId",
            }
            people["ben"].add(face["Person"]["Index"])
    offsets = [offset(r) for r in session]
    # Ben's two seconds and Elton's two: sampled every 200 ms where the analysis keeps up, and
    # on two CPU cores it takes about half a second a frame (frames in between are skipped)
    assert sum(BEN[0] <= at <= BEN[1] for at in offsets) >= 3
    assert sum(ELTON[0] <= at <= ELTON[1] for at in offsets) >= 3
    assert len(people["ben"]) == 1 and len(people["elton"]) == 1
    assert people["ben"] != people["elton"]


def test_capture_times_line_up_with_the_video_and_arrive_live(door: Records) -> None:
    session = whole_sessions(door.seen)[0]
    producer = {r["InputInformation"]["KinesisVideo"]["ProducerTimestamp"] for r in session}
    assert max(producer) - min(producer) < 1.5  # one connection's start, settling
    for record in session:
        video = record["InputInformation"]["KinesisVideo"]
        captured = video["ProducerTimestamp"] + video["FrameOffsetInSeconds"]
        assert 0 <= video["FrameOffsetInSeconds"] <= DURATION_S + 0.5
        assert abs(video["ServerTimestamp"] - captured) < 3.0  # read live, not from a backlog
        assert abs(time.time() - captured) < 120


def test_no_password_in_answers_logs_or_metrics(site: Site, door: Records) -> None:
    described = site.client().describe_stream_processor(Name="door")
    assert CAMERA_PASSWORD not in json.dumps(described, default=str)
    runner = site.runner("door")
    for replica in site.replicas:
        assert CAMERA_PASSWORD not in httpx.get(f"{replica.server.url}/metrics").text
    logs = site.logs()
    assert CAMERA_PASSWORD not in logs
    assert "camera door: capture times from its sender reports" in runner.server.log.read_text()


def test_the_console_shows_the_processor_live(
    site: Site, door: Records, browser: WebDriver
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    runner = site.runner("door")
    browser.get(f"{runner.server.url}/console/cameras")  # no keys: open, on loopback
    row = browser.find_element(By.CSS_SELECTOR, "tr[data-name=door]")
    status = row.find_element(By.CSS_SELECTOR, "[data-testid=processor-status]")
    assert status.text.startswith("RUNNING")

    def analysed() -> int:
        camera = row.find_element(By.CSS_SELECTOR, "[data-field=camera]").text
        found = re.search(r"(\d+) frames analysed", camera)
        return int(found.group(1)) if found else -1

    first = analysed()
    assert first >= 0
    # the page is not reloaded: its script updates the row as the camera plays
    WebDriverWait(browser, 30).until(lambda _: analysed() > first + 3)
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(name.startswith(runner.server.url) for name in loaded)


def test_the_operations_answer_as_rekognition_does(site: Site, door: Records) -> None:
    client = site.client()
    calls: list[Callable[[], Any]] = [
        lambda: client.create_stream_processor(**create_request("door")),
        lambda: client.start_stream_processor(Name="door"),
        lambda: client.describe_stream_processor(Name="nobody"),
        lambda: client.delete_stream_processor(Name="nobody"),
        lambda: client.create_stream_processor(
            **{**create_request("home"), "Settings": {"ConnectedHome": {"Labels": ["PERSON"]}}}
        ),
        lambda: client.create_stream_processor(
            **{**create_request("gone"), "Settings": {"FaceSearch": {"CollectionId": "none"}}}
        ),
    ]
    codes = []
    for call in calls:
        with pytest.raises(ClientError) as refused:
            call()
        codes.append(refused.value.response["Error"]["Code"])
    assert codes == [
        "ResourceInUseException",
        "ResourceInUseException",
        "ResourceNotFoundException",
        "ResourceNotFoundException",
        "InvalidParameterException",
        "ResourceNotFoundException",
    ]
    low = client.create_stream_processor(
        **{
            **create_request("low"),
            "Settings": {"FaceSearch": {"CollectionId": "door-staff", "FaceMatchThreshold": 40}},
        }
    )
    assert low["StreamProcessorArn"].endswith("/low")
    settings = client.describe_stream_processor(Name="low")["Settings"]["FaceSearch"]
    assert settings["FaceMatchThreshold"] == 80  # lower values are set to 80, as documented
    with pytest.raises(ClientError, match="ResourceInUseException"):
        client.stop_stream_processor(Name="low")  # not running
    client.create_stream_processor(**create_request("nowhere", stream="backyard"))
    client.start_stream_processor(Name="nowhere")
    failed = wait_status(client, "nowhere", "FAILED")
    assert failed["Status"] == "FAILED" and "backyard is not configured" in failed["StatusMessage"]
    client.start_stream_processor(Name="low")  # door and low: the most that may run
    with pytest.raises(ClientError, match="LimitExceededException"):
        client.start_stream_processor(Name="nowhere")
    client.stop_stream_processor(Name="low")
    assert wait_status(client, "low", "STOPPED", timeout=10)["Status"] == "STOPPED"
    names = {
        p["Name"]: p["Status"]
        for page in client.get_paginator("list_stream_processors").paginate(
            PaginationConfig={"PageSize": 2}
        )
        for p in page["StreamProcessors"]
    }
    assert names == {"door": "RUNNING", "low": "STOPPED", "nowhere": "FAILED"}
    for name in ("low", "nowhere"):
        client.delete_stream_processor(Name=name)
    arn = f"arn:aws:rekognition:{ACCOUNT_REGION}:streamprocessor/door"
    client.tag_resource(ResourceArn=arn, Tags={"site": "hq"})
    assert client.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"site": "hq"}


class Receiver:
    """A site's webhook receiver on loopback, checking every record's signature."""

    def __init__(self, port: int, secret: str) -> None:
        self.records: list[dict[str, Any]] = []
        self.bad_signatures = 0
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                if self.headers.get("X-Facebank-Signature") != f"sha256={expected}":
                    received.bad_signatures += 1
                received.records.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_webhook_gets_signed_records_and_loses_none_while_down(site: Site, door: Records) -> None:
    port, secret = free_port(), "webhook-secret-3Xr8"
    streams = site.tmp / "streams.json"
    body = json.loads(streams.read_text())
    hook = {"StreamName": "door-hook", "Url": f"http://127.0.0.1:{port}/in", "Secret": secret}
    body["Webhooks"] = [hook]
    streams.write_text(json.dumps(body))  # reloaded: no restart
    client = site.client()
    client.create_stream_processor(**create_request("hook", output="door-hook"))
    client.start_stream_processor(Name="hook")
    time.sleep(9)  # a whole video plays while the receiver is down: records wait
    runner = site.runner("hook")
    receiver = Receiver(port, secret)
    try:
        assert wait_until(lambda: len(receiver.records) >= 6, 40), "the buffer was lost"
        metrics = httpx.get(f"{runner.server.url}/metrics").text
        client.stop_stream_processor(Name="hook")
        assert wait_status(client, "hook", "STOPPED", timeout=10)["Status"] == "STOPPED"
    finally:
        receiver.close()
    assert receiver.bad_signatures == 0
    offsets = [offset(record) for record in receiver.records]
    assert min(offsets) < ELTON[0]  # the first video's records, sent once the receiver came up
    assert all(record["FaceSearchResponse"] for record in receiver.records)
    assert 'facebank_stream_webhook_dropped_total{output="door-hook"} 0.0' in metrics
    assert secret not in metrics and secret not in site.logs()
    client.delete_stream_processor(Name="hook")


def test_a_camera_that_reboots_is_reconnected(site: Site, door: Records) -> None:
    client = site.client()
    site.camera.kill()
    site.camera.wait()
    try:
        described = wait_until_value(
            lambda: client.describe_stream_processor(Name="door"), camera_refuses, 20
        )
        assert camera_refuses(described), f"no word of the lost camera: {described}"
        assert described["Status"] == "RUNNING" and "since" in described["StatusMessage"]
        time.sleep(2)
        before = len(door.read())
    finally:  # the camera comes back whatever happened: the next tests need it
        site.start_camera()
    assert door.until(lambda seen: len(seen) > before + 3, timeout=40), (
        "no records after the camera came back"
    )
    assert "StatusMessage" not in wait_until_value(
        lambda: client.describe_stream_processor(Name="door"),
        lambda d: "StatusMessage" not in d,
        15,
    )


def camera_refuses(described: dict[str, Any]) -> bool:
    """Whether the processor says its camera cannot be reached: the test camera's video ends
    every few seconds, and the reconnection then ("the stream ended") is not the reboot."""
    message = described.get("StatusMessage") or ""
    return "Reconnecting" in message and "the stream ended" not in message


def test_replicas_run_each_processor_once_and_take_over_a_killed_one(
    site: Site, door: Records
) -> None:
    runner = site.runner("door")
    other = site.replicas[1 - site.replicas.index(runner)]
    other_client = rekognition_client(other.server.url)
    other_client.stop_stream_processor(Name="door")  # reaches the replica that runs it
    assert wait_status(other_client, "door", "STOPPED", timeout=10)["Status"] == "STOPPED"
    other_client.start_stream_processor(Name="door")
    runner = site.runner("door")
    site.kill(runner)
    (survivor,) = site.replicas
    assert site.runner("door") is survivor  # within the lease (3 s here) and a claim
    before = len(door.read())
    assert door.until(lambda seen: len(seen) > before + 3, timeout=60), "no records after the kill"
    # The killed replica restarted, and the survivor killed: it runs again, without a Start.
    restarted = site.start_replica(runner.env)
    site.kill(survivor)
    assert site.runner("door") is restarted
    before = len(door.read())
    assert door.until(lambda seen: len(seen) > before + 3, timeout=60), "no records after restart"
    client = site.client()
    assert client.describe_stream_processor(Name="door")["Status"] == "RUNNING"
    client.stop_stream_processor(Name="door")
    assert wait_status(client, "door", "STOPPED", timeout=10)["Status"] == "STOPPED"
    client.delete_stream_processor(Name="door")


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return False


def wait_until_value(get: Callable[[], Any], done: Callable[[Any], bool], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.3)
