"""Per-key permissions in IAM's terms through stock boto3, keys from a file that reloads without
a restart, per-key rates, and refusals an operator can see in the JSON log."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from service.operations.dispatch import HANDLERS
from service.operations.validation import FACEBANK_OPERATIONS
from service.testing.local_server import LiveServer, running_server
from tests.support.clients import rekognition_client
from tests.support.images import blank_jpeg
from tests.support.keys import write_keys

ARN = "arn:aws:rekognition:us-east-1:000000000000:collection/"
IMAGE = {"Bytes": blank_jpeg()}
FACE = "00000000-0000-0000-0000-000000000000"
VIDEO = {"S3Object": {"Bucket": "videos", "Name": "v.mp4"}}
VIDEO_STREAM = "arn:aws:kinesisvideo:us-east-1:000000000000:stream/door/1700000000000"
DATA_STREAM = "arn:aws:kinesis:us-east-1:000000000000:stream/door-events"
KEYS: list[dict[str, Any]] = [
    {"AccessKeyId": "ADMIN", "SecretAccessKey": "admin-secret-7Hq2xPw4"},
    {
        "AccessKeyId": "DOORCAM",
        "SecretAccessKey": "doorcam-secret-7Hq2xPw4",
        "Policy": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "rekognition:Search*", "Resource": ARN + "doors*"}
            ],
        },
    },
    {
        "AccessKeyId": "ENROL",
        "SecretAccessKey": "enrol-secret-7Hq2xPw4",
        "Policy": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "rekognition:*", "Resource": ARN + "doors"},
                {"Effect": "Allow", "Action": ["rekognition:DetectFaces"], "Resource": "*"},
                {"Effect": "Deny", "Action": "rekognition:Delete*", "Resource": "*"},
            ],
        },
    },
    {  # IAM's elements a policy may use: each must narrow access, never widen it
        "AccessKeyId": "TLSONLY",
        "SecretAccessKey": "tlsonly-secret-7Hq2xPw4",
        "Policy": {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "rekognition:*",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": "true"}},
                }
            ]
        },
    },
    {
        "AccessKeyId": "NOTSTAFF",
        "SecretAccessKey": "notstaff-secret-7Hq2xPw4",
        "Policy": {
            "Statement": [
                {"Effect": "Allow", "Action": "rekognition:*", "NotResource": ARN + "staff"},
                {
                    "Effect": "Deny",
                    "Action": "rekognition:*",
                    "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}},
                },
            ]
        },
    },
    # One call per 5 s: a burst is over it however slow the machine.
    {
        "AccessKeyId": "NOISY",
        "SecretAccessKey": "noisy-secret-7Hq2xPw4",
        "Rates": {"DetectFaces": 0.2},
    },
]


def request_for(operation: str, collection: str) -> dict[str, Any]:
    """A valid request of each operation served, on `collection` where it names one."""
    on = {"CollectionId": collection}
    arn = {"ResourceArn": ARN + collection}
    requests: dict[str, dict[str, Any]] = {
        "DetectFaces": {"Image": IMAGE},
        "CompareFaces": {"SourceImage": IMAGE, "TargetImage": IMAGE},
        "CreateCollection": on,
        "ListCollections": {},
        "DescribeCollection": on,
        "DeleteCollection": on,
        "IndexFaces": {**on, "Image": IMAGE},
        "ListFaces": on,
        "DeleteFaces": {**on, "FaceIds": [FACE]},
        "SearchFaces": {**on, "FaceId": FACE},
        "SearchFacesByImage": {**on, "Image": IMAGE},
        "CreateUser": {**on, "UserId": "u"},
        "ListUsers": on,
        "DeleteUser": {**on, "UserId": "u"},
        "AssociateFaces": {**on, "UserId": "u", "FaceIds": [FACE]},
        "DisassociateFaces": {**on, "UserId": "u", "FaceIds": [FACE]},
        "SearchUsers": {**on, "UserId": "u"},
        "SearchUsersByImage": {**on, "Image": IMAGE},
        "TagResource": {**arn, "Tags": {"a": "b"}},
        "UntagResource": {**arn, "TagKeys": ["a"]},
        "ListTagsForResource": arn,
        "StartFaceDetection": {"Video": VIDEO},
        "GetFaceDetection": {"JobId": "0" * 64},
        "StartFaceSearch": {**on, "Video": VIDEO},
        "GetFaceSearch": {"JobId": "0" * 64},
        "CreateStreamProcessor": {
            "Name": f"camera-{collection}",
            "Input": {"KinesisVideoStream": {"Arn": VIDEO_STREAM}},
            "Output": {"KinesisDataStream": {"Arn": DATA_STREAM}},
            "Settings": {"FaceSearch": {"CollectionId": collection}},
            "RoleArn": "arn:aws:iam::000000000000:role/rekognition",
        },
        "StartStreamProcessor": {"Name": f"camera-{collection}"},
        "StopStreamProcessor": {"Name": f"camera-{collection}"},
        "DescribeStreamProcessor": {"Name": f"camera-{collection}"},
        "ListStreamProcessors": {},
        "DeleteStreamProcessor": {"Name": f"camera-{collection}"},
        "UpdateStreamProcessor": {
            "Name": f"camera-{collection}",
            "ParametersToDelete": ["RegionsOfInterest"],
        },
    }
    return requests[operation]


def allowed(key: str, operation: str, collection: str) -> bool:
    if key == "ADMIN":
        return True
    if key == "DOORCAM":
        return operation.startswith("Search") and collection == "doors"
    takes_collection = any(
        name in request_for(operation, collection) for name in ("CollectionId", "ResourceArn")
    )
    if operation.startswith("Delete"):
        return False
    return collection == "doors" if takes_collection else operation == "DetectFaces"


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    write_keys(path, KEYS)
    return path


@pytest.fixture(scope="module")
def guarded(keys_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {
        "FACEBANK_ACCESS_KEYS_FILE": str(keys_file),
        "FACEBANK_ACCESS_KEYS": "PLAIN:plain-secret-7Hq2xPw4",
        "FACEBANK_LOG_FORMAT": "json",
    }
    with running_server(tmp_path_factory.mktemp("guarded"), env) as live:
        yield live


def client(server: LiveServer, key: str) -> Any:
    secret = {k["AccessKeyId"]: k["SecretAccessKey"] for k in KEYS}.get(
        key, "plain-secret-7Hq2xPw4"
    )
    return rekognition_client(server.url, key, secret)


def call(rekognition: Any, operation: str, request: dict[str, Any]) -> str:
    """The error code of a call, or "ok"."""
    method = {v: k for k, v in rekognition.meta.method_to_api_mapping.items()}[operation]
    try:
        getattr(rekognition, method)(**request)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


@pytest.mark.parametrize("key", ["ADMIN", "DOORCAM", "ENROL", "PLAIN"])
def test_every_operation_against_each_keys_policy(guarded: LiveServer, key: str) -> None:
    rekognition = client(guarded, key)
    wrong = []
    for operation in sorted(set(HANDLERS) - set(FACEBANK_OPERATIONS)):  # boto3's (ImportFace: REST)
        for collection in ("doors", "staff"):
            denied = call(rekognition, operation, request_for(operation, collection))
            expected = True if key == "PLAIN" else allowed(key, operation, collection)
            if (denied == "AccessDeniedException") == expected:
                wrong.append((operation, collection, denied))
    assert wrong == []


def test_a_refusal_says_who_may_not_do_what_and_is_logged(guarded: LiveServer) -> None:
    with pytest.raises(ClientError) as refused:
        client(guarded, "DOORCAM").delete_collection(CollectionId="doors")
    assert refused.value.response["Error"]["Message"] == (
        "User: arn:aws:iam::000000000000:user/DOORCAM is not authorized to perform: "
        "rekognition:DeleteCollection on resource: " + ARN + "doors"
    )
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    anonymous = httpx.get(f"{guarded.url}/metrics")
    assert anonymous.status_code in (401, 403)
    assert httpx.get(
        f"{guarded.url}/metrics", auth=("DOORCAM", "doorcam-secret-7Hq2xPw4")
    ).is_success
    wrong_secret = rekognition_client(guarded.url, "ENROL", "not-the-secret-7Hq2xPw4")
    with pytest.raises(ClientError, match="InvalidSignatureException"):
        wrong_secret.describe_collection(CollectionId="doors")
    time.sleep(0.5)
    lines = [json.loads(line) for line in guarded.log.read_text().splitlines() if line]
    refusals = [line for line in lines if line.get("reason") and line["level"] == "warning"]
    assert {
        (line["access_key_id"], line.get("operation"), line["outcome"]) for line in refusals
    } >= {
        ("DOORCAM", "DeleteCollection", "AccessDeniedException"),
        ("ENROL", "DescribeCollection", "InvalidSignatureException"),
    }
    assert any(line.get("route") == "/metrics" for line in refusals)
    assert all("not-the-secret-7Hq2xPw4" not in json.dumps(line) for line in lines)


def test_one_keys_burst_is_throttled_while_another_goes_on(guarded: LiveServer) -> None:
    noisy, admin = client(guarded, "NOISY"), client(guarded, "ADMIN")
    codes = [call(noisy, "DetectFaces", {"Image": IMAGE}) for _ in range(3)]
    assert codes == ["ok"] + ["ProvisionedThroughputExceededException"] * 2
    assert [call(admin, "DetectFaces", {"Image": IMAGE}) for _ in range(6)] == ["ok"] * 6


def test_keys_rotate_under_load_without_a_restart(guarded: LiveServer, keys_file: Path) -> None:
    stay = client(guarded, "ADMIN")
    refused: list[str] = []
    stop = threading.Event()

    def keep_calling() -> None:
        while not stop.is_set():
            code = call(stay, "ListCollections", {})
            if code != "ok":
                refused.append(code)

    callers = [threading.Thread(target=keep_calling) for _ in range(8)]
    for thread in callers:
        thread.start()
    try:
        for generation in range(4):
            new = {
                "AccessKeyId": f"ROT{generation}",
                "SecretAccessKey": f"rotated-secret-{generation:04d}",
            }
            write_keys(keys_file, [*KEYS, new])  # the old ROT key is gone, a new one added
            time.sleep(1.3)  # the file is looked at once a second
            fresh = rekognition_client(
                guarded.url, f"ROT{generation}", f"rotated-secret-{generation:04d}"
            )
            assert call(fresh, "ListCollections", {}) == "ok"
            if generation:
                gone = rekognition_client(
                    guarded.url, f"ROT{generation - 1}", f"rotated-secret-{generation - 1:04d}"
                )
                assert call(gone, "ListCollections", {}) == "UnrecognizedClientException"
    finally:
        stop.set()
        for thread in callers:
            thread.join()
        write_keys(keys_file, KEYS)
    assert refused == []


def test_sighup_reloads_and_a_broken_file_keeps_the_keys(
    guarded: LiveServer, keys_file: Path
) -> None:
    keys_file.write_text("{ broken")  # keeps its owner-only mode
    time.sleep(1.3)
    assert call(client(guarded, "ADMIN"), "ListCollections", {}) == "ok"  # never open, kept
    write_keys(keys_file, [*KEYS, {"AccessKeyId": "HUP", "SecretAccessKey": "hup-secret-7Hq2xPw4"}])
    guarded.process.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    assert (
        call(rekognition_client(guarded.url, "HUP", "hup-secret-7Hq2xPw4"), "ListCollections", {})
        == "ok"
    )
    write_keys(keys_file, KEYS)


def test_a_condition_or_not_resource_never_widens_a_policy(guarded: LiveServer) -> None:
    tls_only = client(guarded, "TLSONLY")
    assert call(tls_only, "ListCollections", {}) == "AccessDeniedException"  # plain HTTP

    def through_a_tls_proxy(request: Any, **_: Any) -> None:
        # What a TLS-terminating proxy on loopback (trusted by default) says of the client.
        request.headers["X-Forwarded-Proto"] = "https"
        request.headers["X-Forwarded-For"] = "127.0.0.9"

    tls_only.meta.events.register("before-sign.rekognition.*", through_a_tls_proxy)
    assert call(tls_only, "ListCollections", {}) == "ok"
    not_staff = client(guarded, "NOTSTAFF")
    assert call(not_staff, "CreateCollection", {"CollectionId": "staff"}) == (
        "AccessDeniedException"
    )
    assert call(not_staff, "DescribeCollection", {"CollectionId": "staff"}) == (
        "AccessDeniedException"
    )
    assert call(not_staff, "ListFaces", {"CollectionId": "doors"}) in (
        "ok",
        "ResourceNotFoundException",
    )

    def from_outside(request: Any, **_: Any) -> None:
        request.headers["X-Forwarded-For"] = "203.0.113.7"  # outside 127.0.0.0/8: denied

    not_staff.meta.events.register("before-sign.rekognition.*", from_outside)
    assert call(not_staff, "ListFaces", {"CollectionId": "doors"}) == "AccessDeniedException"


def run_shell(script: str, cwd: Path) -> None:
    subprocess.run(["bash", "-euc", script], cwd=cwd, check=True)


def test_the_documented_rotation_recipe_and_a_refused_copy(
    guarded: LiveServer, keys_file: Path
) -> None:
    rotated = [*KEYS, {"AccessKeyId": "RECIPE", "SecretAccessKey": "recipe-secret-7Hq2xPw4"}]
    body = json.dumps({"Keys": rotated})
    # docs/contract.md's recipe, as an operator types it (with the editor's part scripted)
    run_shell(
        f"install -m 600 /dev/null keys.json.new; echo '{body}' > keys.json.new; "
        "mv keys.json.new keys.json",
        keys_file.parent,
    )
    time.sleep(1.3)
    recipe = rekognition_client(guarded.url, "RECIPE", "recipe-secret-7Hq2xPw4")
    assert call(recipe, "ListCollections", {}) == "ok"
    assert "keys_file_refused_since" not in httpx.get(f"{guarded.url}/readyz").json()
    # The same without the recipe's mode: a copy the default umask leaves readable by others
    run_shell(
        f"umask 022; echo '{json.dumps({'Keys': KEYS})}' > k.new; mv k.new keys.json",
        keys_file.parent,
    )
    time.sleep(1.3)
    assert call(recipe, "ListCollections", {}) == "ok"  # the loaded keys stay
    ready = httpx.get(f"{guarded.url}/readyz")
    assert ready.status_code == 200 and "keys_file_refused_since" in ready.json()
    metrics = httpx.get(f"{guarded.url}/metrics", auth=("ADMIN", "admin-secret-7Hq2xPw4")).text
    assert "facebank_access_keys_file_refused_since_seconds 0.0" not in metrics
    keys_file.chmod(0o600)  # nothing else changes: the mode alone reloads it
    time.sleep(1.3)
    assert call(recipe, "ListCollections", {}) == "UnrecognizedClientException"
    assert "keys_file_refused_since" not in httpx.get(f"{guarded.url}/readyz").json()
    metrics = httpx.get(f"{guarded.url}/metrics", auth=("ADMIN", "admin-secret-7Hq2xPw4")).text
    assert "facebank_access_keys_file_refused_since_seconds 0.0" in metrics
