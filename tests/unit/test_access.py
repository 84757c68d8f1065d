"""Access in IAM's terms: policies (explicit Deny wins, wildcards, nothing allowed by
default), the keys file (owner-only, a broken file keeps the keys loaded, changes reload) and
per-key rates."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from service import errors
from service.access.keys import KeyFileError, KeyRing
from service.access.policy import Policy, PolicyError
from service.access.rates import RateLimits
from service.client.local_server import ROOT
from service.settings import AccessKey
from tests.support.keys import write_keys

DOORS = "arn:aws:rekognition:us-east-1:000000000000:collection/doors"
STAFF = "arn:aws:rekognition:us-east-1:000000000000:collection/staff"


def policy(*statements: dict[str, Any]) -> Policy:
    return Policy.parse({"Version": "2012-10-17", "Statement": list(statements)})


def test_explicit_deny_wins_and_nothing_is_allowed_by_default() -> None:
    found = policy(
        {"Effect": "Allow", "Action": "rekognition:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "rekognition:Delete*", "Resource": DOORS},
    )
    assert found.decision("rekognition:SearchFacesByImage", DOORS) == "allow"
    assert found.decision("rekognition:DeleteCollection", DOORS) == "deny"
    assert found.decision("rekognition:DeleteCollection", STAFF) == "allow"
    assert policy().decision("rekognition:DetectFaces", "*") == "not allowed"


@pytest.mark.parametrize(
    ("action", "resource", "decision"),
    [
        ("rekognition:SearchFacesByImage", DOORS, "allow"),
        ("rekognition:searchfacesbyimage", DOORS, "allow"),  # actions ignore case, as IAM's
        ("rekognition:SearchUsers", DOORS, "allow"),
        ("rekognition:SearchFacesByImage", STAFF, "not allowed"),
        ("rekognition:SearchFacesByImage", DOORS.replace("doors", "doors-2"), "allow"),
        ("rekognition:IndexFaces", DOORS, "not allowed"),
    ],
)
def test_wildcards_in_actions_and_arns(action: str, resource: str, decision: str) -> None:
    found = policy(
        {
            "Effect": "Allow",
            "Action": ["rekognition:Search*"],
            "Resource": "arn:aws:rekognition:*:000000000000:collection/doors*",
        }
    )
    assert found.decision(action, resource) == decision


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"Statement": [{"Effect": "Maybe", "Action": "rekognition:*"}]},
        {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]},
        {"Statement": [{"Effect": "Allow", "Action": []}]},
    ],
)
def test_policies_that_do_not_parse_say_so(body: dict[str, Any]) -> None:
    with pytest.raises(PolicyError):
        Policy.parse(body)


def test_a_keys_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    write_keys(path, [{"AccessKeyId": "A", "SecretAccessKey": "a"}], mode=0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        KeyRing({}, path)


def test_changes_reload_and_a_broken_file_keeps_the_loaded_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.access.keys.CHECK_EVERY_S", 0.0)
    path = tmp_path / "keys.json"
    write_keys(path, [{"AccessKeyId": "OLD", "SecretAccessKey": "o"}])
    ring = KeyRing({"ENV": AccessKey("ENV", "e")}, path)
    assert set(ring.secrets()) == {"ENV", "OLD"}
    write_keys(path, [{"AccessKeyId": "NEW", "SecretAccessKey": "n"}])
    assert set(ring.secrets()) == {"ENV", "NEW"}  # OLD is refused from its next request
    path.write_text("{ not json")
    assert set(ring.secrets()) == {"ENV", "NEW"}  # never open, never empty
    write_keys(path, [{"AccessKeyId": "X", "SecretAccessKey": "x", "Policy": {"nope": 1}}])
    assert set(ring.secrets()) == {"ENV", "NEW"}  # a policy that does not parse: same
    write_keys(path, [{"AccessKeyId": "NEWER", "SecretAccessKey": "n2"}])
    ring.reload()  # SIGHUP
    assert set(ring.secrets()) == {"ENV", "NEWER"}


def test_a_burst_over_one_keys_rate_is_refused_while_another_key_goes_on() -> None:
    limits = RateLimits()
    rates = {"SearchFacesByImage": 5.0}
    for _ in range(5):
        limits.admit("noisy", "SearchFacesByImage", rates)
    with pytest.raises(errors.ProvisionedThroughputExceededError):
        limits.admit("noisy", "SearchFacesByImage", rates)
    limits.admit("noisy", "DetectFaces", rates)  # a limit names its operation
    for _ in range(5):
        limits.admit("quiet", "SearchFacesByImage", rates)  # every key has its own
    time.sleep(0.25)
    limits.admit("noisy", "SearchFacesByImage", rates)  # the bucket refills at the rate
    slow = {"*": 0.5}  # under one call a second: a bucket still holds one call
    limits.admit("slow", "ListFaces", slow)
    with pytest.raises(errors.ProvisionedThroughputExceededError):
        limits.admit("slow", "ListUsers", slow)


def test_keys_list_names_every_key_and_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    scoped = {
        "AccessKeyId": "DOORCAM",
        "SecretAccessKey": "door-secret",
        "Policy": {"Statement": [{"Effect": "Allow", "Action": "rekognition:Search*"}]},
        "Rates": {"SearchFacesByImage": 20},
    }
    write_keys(path, [scoped])
    env = {
        **os.environ,
        "FACEBANK_ACCESS_KEYS_FILE": str(path),
        "FACEBANK_ACCESS_KEYS": "OPS:ops-secret",
    }
    listed = subprocess.run(
        [sys.executable, "-m", "service.cli", "keys", "list"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        "DOORCAM" in listed and "1 statement(s)" in listed and "SearchFacesByImage 20/s" in listed
    )
    assert "OPS" in listed and "none (everything)" in listed
    assert "door-secret" not in listed and "ops-secret" not in listed
