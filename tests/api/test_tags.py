"""Collection tags through stock boto3 and the REST routes, with Rekognition's rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from service.testing.local_server import LiveServer


def test_tags_live_with_the_collection(rekognition: Any) -> None:
    arn = rekognition.create_collection(CollectionId="tagged", Tags={"team": "doors"})[
        "CollectionArn"
    ]
    assert arn.startswith("aws:rekognition:")
    iam_form = "arn:" + arn
    assert rekognition.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "doors"}
    rekognition.tag_resource(ResourceArn=iam_form, Tags={"site": "Zürich HQ", "empty": ""})
    rekognition.tag_resource(ResourceArn=arn, Tags={"team": "lobby"})  # a key is replaced
    expected = {"team": "lobby", "site": "Zürich HQ", "empty": ""}
    assert rekognition.list_tags_for_resource(ResourceArn=iam_form)["Tags"] == expected
    rekognition.untag_resource(ResourceArn=arn, TagKeys=["empty", "never-there"])
    assert set(rekognition.list_tags_for_resource(ResourceArn=arn)["Tags"]) == {"team", "site"}
    rekognition.delete_collection(CollectionId="tagged")
    rekognition.create_collection(CollectionId="tagged")
    assert rekognition.list_tags_for_resource(ResourceArn=arn)["Tags"] == {}  # gone with it
    rekognition.delete_collection(CollectionId="tagged")


@pytest.mark.parametrize(
    ("arn", "error"),
    [
        ("aws:rekognition:us-east-1:000000000000:collection/nobody", "ResourceNotFoundException"),
        ("arn:aws:rekognition:eu-west-1:000000000000:collection/rules", "ResourceNotFound"),
        ("arn:aws:rekognition:us-east-1:123456789012:collection/rules", "ResourceNotFound"),
        ("arn:aws:rekognition:us-east-1:000000000000:project/rules/1", "ResourceNotFound"),
        ("arn:aws:s3:::a-bucket-of-something", "InvalidParameterException"),
        ("not an arn at all, but long enough", "InvalidParameterException"),
    ],
)
def test_arns_that_name_no_collection_here(rekognition: Any, arn: str, error: str) -> None:
    rekognition.create_collection(CollectionId="rules")
    try:
        with pytest.raises(ClientError, match=error):
            rekognition.list_tags_for_resource(ResourceArn=arn)
        with pytest.raises(ClientError, match=error):
            rekognition.tag_resource(ResourceArn=arn, Tags={"a": "b"})
    finally:
        rekognition.delete_collection(CollectionId="rules")


def test_tag_rules(rekognition: Any) -> None:
    arn = rekognition.create_collection(CollectionId="quota")["CollectionArn"]
    try:
        for bad in ({"aws:reserved": "x"}, {"k" * 129: "x"}, {"key": "v" * 257}):
            with pytest.raises(ClientError, match="InvalidParameterException"):
                rekognition.tag_resource(ResourceArn=arn, Tags=bad)
        rekognition.tag_resource(ResourceArn=arn, Tags={f"k{i}": "v" for i in range(50)})
        with pytest.raises(ClientError, match="ServiceQuotaExceededException"):
            rekognition.tag_resource(ResourceArn=arn, Tags={"one-more": "v"})
        assert len(rekognition.list_tags_for_resource(ResourceArn=arn)["Tags"]) == 50
        with pytest.raises(ClientError, match="ServiceQuotaExceededException"):
            rekognition.create_collection(
                CollectionId="too-many", Tags={f"k{i}": "v" for i in range(51)}
            )
    finally:
        rekognition.delete_collection(CollectionId="quota")


def test_rest_routes_mirror_the_tag_operations(server: LiveServer, rekognition: Any) -> None:
    arn = rekognition.create_collection(CollectionId="rest-tags")["CollectionArn"]
    try:
        tagged = httpx.post(f"{server.url}/v1/tags", json={"ResourceArn": arn, "Tags": {"a": "1"}})
        assert tagged.status_code == 200, tagged.text
        removed = httpx.post(
            f"{server.url}/v1/tags/remove", json={"ResourceArn": arn, "TagKeys": ["nope"]}
        )
        assert removed.status_code == 200
        listed = httpx.get(f"{server.url}/v1/tags", params={"resource_arn": arn})
        assert listed.json() == {"Tags": {"a": "1"}}
    finally:
        rekognition.delete_collection(CollectionId="rest-tags")


def test_the_aws_cli_tags_and_lists_unchanged(server: LiveServer, rekognition: Any) -> None:
    arn = rekognition.create_collection(CollectionId="cli-tags")["CollectionArn"]
    aws = [str(Path(sys.executable).parent / "aws"), "rekognition", "--endpoint-url", server.url]
    aws += ["--region", "us-east-1", "--no-sign-request", "--output", "json"]
    env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
    try:
        subprocess.run(
            [*aws, "tag-resource", "--resource-arn", arn, "--tags", "team=doors,site=Zürich"],
            env=env,
            check=True,
            capture_output=True,
        )
        listed = subprocess.run(
            [*aws, "list-tags-for-resource", "--resource-arn", "arn:" + arn],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        assert json.loads(listed.stdout) == {"Tags": {"team": "doors", "site": "Zürich"}}
    finally:
        rekognition.delete_collection(CollectionId="cli-tags")
