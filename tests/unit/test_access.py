"""Access in IAM's terms: policies (explicit Deny wins, wildcards, nothing allowed by
default), the keys file (owner-only, a broken file keeps the keys loaded, changes reload) and
per-key rates."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from service import errors
from service.access.keys import KeyFileError, KeyRing
from service.access.policy import Policy, PolicyError, RequestFacts
from service.access.rates import RateLimits
from service.http.observe import Exchange, Observer
from service.settings import AccessKey
from service.testing.local_server import ROOT
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


@pytest.mark.parametrize(
    ("secret", "mode", "refusal"),
    [
        ("a-secret-7Hq2xPw4", 0o644, "chmod 600"),
        ("CHANGE_ME_SECRET", 0o600, "key A: its SecretAccessKey is a placeholder"),
    ],
)
def test_a_keys_file_others_can_read_or_with_a_placeholder_is_refused(
    tmp_path: Path, secret: str, mode: int, refusal: str
) -> None:
    path = tmp_path / "keys.json"
    write_keys(path, [{"AccessKeyId": "A", "SecretAccessKey": secret}], mode=mode)
    with pytest.raises(KeyFileError, match=refusal):
        KeyRing({}, path)


def test_changes_reload_and_a_broken_file_keeps_the_loaded_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.access.keys.CHECK_EVERY_S", 0.0)
    path = tmp_path / "keys.json"
    write_keys(path, [{"AccessKeyId": "OLD", "SecretAccessKey": "o-secret-7Hq2xPw4"}])
    ring = KeyRing({"ENV": AccessKey("ENV", "e")}, path)
    assert set(ring.secrets()) == {"ENV", "OLD"}
    write_keys(path, [{"AccessKeyId": "NEW", "SecretAccessKey": "n-secret-7Hq2xPw4"}])
    assert set(ring.secrets()) == {"ENV", "NEW"}  # OLD is refused from its next request
    path.write_text("{ not json")
    assert set(ring.secrets()) == {"ENV", "NEW"}  # never open, never empty
    write_keys(
        path, [{"AccessKeyId": "X", "SecretAccessKey": "x-secret-7Hq2xPw4", "Policy": {"nope": 1}}]
    )
    assert set(ring.secrets()) == {"ENV", "NEW"}  # a policy that does not parse: same
    write_keys(path, [{"AccessKeyId": "NEWER", "SecretAccessKey": "n2-secret-7Hq2xPw4"}])
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
        "SecretAccessKey": "door-secret-7Hq2xPw4",
        "Policy": {"Statement": [{"Effect": "Allow", "Action": "rekognition:Search*"}]},
        "Rates": {"SearchFacesByImage": 20},
    }
    write_keys(path, [scoped])
    env = {
        **os.environ,
        "FACEBANK_ACCESS_KEYS_FILE": str(path),
        "FACEBANK_ACCESS_KEYS": "OPS:ops-secret-7Hq2xPw4",
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
    assert f"keys read from {path} and FACEBANK_ACCESS_KEYS" in listed
    assert "OPS" in listed and "none (everything)" in listed
    assert "door-secret-7Hq2xPw4" not in listed and "ops-secret-7Hq2xPw4" not in listed


def facts(source_ip: str | None = "10.1.2.3", tls: bool = False, at: str = "") -> RequestFacts:
    when = datetime.fromisoformat(at) if at else datetime(2026, 6, 1, tzinfo=UTC)
    return RequestFacts(ipaddress.ip_address(source_ip) if source_ip else None, tls, when)


ALL = {"Effect": "Allow", "Action": "rekognition:*", "Resource": "*"}


def test_not_resource_allows_everything_but_what_it_names() -> None:
    found = policy({"Effect": "Allow", "Action": "rekognition:*", "NotResource": STAFF})
    assert found.decision("rekognition:DeleteCollection", STAFF) == "not allowed"
    assert found.decision("rekognition:DeleteCollection", DOORS) == "allow"
    assert found.decision("rekognition:DetectFaces", "*") == "allow"
    denied = policy(ALL, {"Effect": "Deny", "Action": "rekognition:Delete*", "NotResource": DOORS})
    assert denied.decision("rekognition:DeleteCollection", STAFF) == "deny"
    assert denied.decision("rekognition:DeleteCollection", DOORS) == "allow"


def test_not_action_allows_every_other_action_and_deny_with_it_wins() -> None:
    found = policy({"Effect": "Allow", "NotAction": "rekognition:Delete*", "Resource": "*"})
    assert found.decision("rekognition:IndexFaces", DOORS) == "allow"
    assert found.decision("rekognition:DeleteFaces", DOORS) == "not allowed"
    only_search = policy(ALL, {"Effect": "Deny", "NotAction": "rekognition:Search*"})
    assert only_search.decision("rekognition:SearchFaces", DOORS) == "allow"
    assert only_search.decision("rekognition:IndexFaces", DOORS) == "deny"


@pytest.mark.parametrize(
    ("condition", "request_facts", "decision"),
    [
        ({"Bool": {"aws:SecureTransport": "true"}}, facts(tls=False), "not allowed"),
        ({"Bool": {"aws:SecureTransport": "true"}}, facts(tls=True), "allow"),
        ({"Bool": {"aws:SecureTransport": True}}, facts(tls=True), "allow"),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, facts("10.9.8.7"), "allow"),
        ({"IpAddress": {"aws:SourceIp": ["192.168.0.0/16", "10.1.2.3"]}}, facts(), "allow"),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, facts("172.16.0.1"), "not allowed"),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, facts(None), "not allowed"),
        ({"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}, facts(None), "allow"),
        ({"IpAddress": {"aws:sourceip": "2001:db8::/32"}}, facts("2001:db8::5"), "allow"),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, facts("10.0.0.1"), "not allowed"),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, facts("127.0.0.1"), "allow"),
        ({"DateLessThan": {"aws:CurrentTime": "2026-07-01T00:00:00Z"}}, facts(), "allow"),
        ({"DateLessThan": {"aws:CurrentTime": "2026-05-01T00:00:00Z"}}, facts(), "not allowed"),
        ({"DateGreaterThan": {"aws:CurrentTime": "2026-05-01"}}, facts(), "allow"),
        ({"DateGreaterThan": {"aws:CurrentTime": "1790000000"}}, facts(), "not allowed"),
        (
            {  # every operator and every key must hold
                "Bool": {"aws:SecureTransport": "true"},
                "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
            },
            facts(tls=False),
            "not allowed",
        ),
    ],
)
def test_conditions_are_evaluated_not_assumed(
    condition: dict[str, Any], request_facts: RequestFacts, decision: str
) -> None:
    found = policy({**ALL, "Condition": condition})
    assert found.decision("rekognition:DeleteCollection", DOORS, request_facts) == decision


def test_a_deny_applies_only_where_its_condition_holds() -> None:
    outside = {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    found = policy(ALL, {"Effect": "Deny", "Action": "rekognition:*", "Condition": outside})
    assert found.decision("rekognition:ListFaces", DOORS, facts("10.0.0.9")) == "allow"
    assert found.decision("rekognition:ListFaces", DOORS, facts("203.0.113.5")) == "deny"
    assert found.decision("rekognition:ListFaces", DOORS, facts(None)) == "deny"  # no address
    plain_http = {"Bool": {"aws:SecureTransport": "false"}}
    tls_only = policy(ALL, {"Effect": "Deny", "Action": "*", "Condition": plain_http})
    assert tls_only.decision("rekognition:ListFaces", DOORS, facts(tls=False)) == "deny"
    assert tls_only.decision("rekognition:ListFaces", DOORS, facts(tls=True)) == "allow"


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ({**ALL, "Condition": {"StringEquals": {"aws:username": "x"}}}, "'StringEquals'"),
        ({**ALL, "Condition": {"IpAddress": {"aws:SecureTransport": "true"}}}, "aws:SecureTr"),
        ({**ALL, "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}, "MultiFactor"),
        ({**ALL, "Condition": {"ForAnyValue:IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}, "ForAny"),
        ({**ALL, "Condition": {"IpAddress": {"aws:SourceIp": "not-an-address"}}}, "not-an-addr"),
        ({**ALL, "Condition": {"Bool": {"aws:SecureTransport": "yes"}}}, "'yes'"),
        ({**ALL, "Condition": {"DateLessThan": {"aws:CurrentTime": "soon"}}}, "'soon'"),
        ({**ALL, "Principal": "*"}, "'Principal'"),
        ({**ALL, "NotPrincipal": {"AWS": "x"}}, "'NotPrincipal'"),
        ({**ALL, "Sid": "s1", "Resources": "*"}, "Sid 's1'"),
        ({"Effect": "Allow", "Action": "rekognition:*", "NotAction": "rekognition:X"}, "not both"),
        ({"Effect": "Allow", "Resource": "*"}, "Action or NotAction"),
        ({**ALL, "NotResource": STAFF}, "Resource or NotResource, not both"),
    ],
)
def test_what_is_not_evaluated_refuses_the_policy_naming_it(
    statement: dict[str, Any], named: str
) -> None:
    with pytest.raises(PolicyError, match=re.escape(named)):
        policy(ALL, statement)


def test_a_keys_file_with_an_unevaluated_condition_is_refused_at_start_and_on_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.access.keys.CHECK_EVERY_S", 0.0)
    conditioned = {**ALL, "Condition": {"StringLike": {"aws:UserAgent": "door*"}}}
    hostile = {
        "AccessKeyId": "CAM",
        "SecretAccessKey": "cam-secret-7Hq2xPw4",
        "Policy": {"Statement": [conditioned]},
    }
    path = tmp_path / "keys.json"
    write_keys(path, [hostile])
    with pytest.raises(KeyFileError, match="key CAM's Policy, Statement 0: Condition operator"):
        KeyRing({}, path)
    write_keys(path, [{"AccessKeyId": "OK", "SecretAccessKey": "ok-secret-7Hq2xPw4"}])
    ring = KeyRing({}, path)
    write_keys(path, [hostile])
    assert set(ring.secrets()) == {"OK"}
    refused = ring.file_refused()
    assert refused is not None and "StringLike" in refused[0]


def test_a_refused_file_loads_once_chmod_makes_it_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.access.keys.CHECK_EVERY_S", 0.0)
    path = tmp_path / "keys.json"
    write_keys(path, [{"AccessKeyId": "OLD", "SecretAccessKey": "o-secret-7Hq2xPw4"}])
    ring = KeyRing({}, path)
    write_keys(path, [{"AccessKeyId": "NEW", "SecretAccessKey": "n-secret-7Hq2xPw4"}], mode=0o644)
    assert set(ring.secrets()) == {"OLD"}
    assert ring.file_refused() is not None
    path.chmod(0o600)  # the content is the same: only the mode changed
    assert set(ring.secrets()) == {"NEW"}
    assert ring.file_refused() is None


def test_keys_list_says_when_this_shell_configures_no_keys() -> None:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("FACEBANK_ACCESS_KEYS_FILE", "FACEBANK_ACCESS_KEYS")
    }
    listed = subprocess.run(
        [sys.executable, "-m", "service.cli", "keys", "list"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 1 and listed.stdout == ""
    assert "no keys configured in this shell's environment" in listed.stderr


def test_a_refusals_text_log_line_names_the_key_and_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    observer = Observer(CollectorRegistry())
    exchange = Exchange("wire", "DeleteCollection", "127.0.0.1:5000", key_id="DOORCAM")
    exchange.refusal = "User: arn:aws:iam::000000000000:user/DOORCAM is not authorized"
    with caplog.at_level(logging.INFO, logger="facebank.access"):
        observer.finish(exchange, "AccessDeniedException", 400)
    (line,) = [r.getMessage() for r in caplog.records if "DeleteCollection" in r.getMessage()]
    assert "key DOORCAM refused: User: arn:aws:iam::000000000000:user/DOORCAM" in line
