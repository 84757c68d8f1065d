"""TagResource, UntagResource and ListTagsForResource on collection and stream processor ARNs,
with Rekognition's rules: keys of 1-128 characters not starting with `aws:` and values of 0-256
(both checked against botocore's model), at most MAX_TAGS per resource. Tags are stored with
the resource and deleted with it."""

from __future__ import annotations

import json
from typing import Protocol

import regex
from sqlalchemy.orm import Session

from service import errors
from service.context import Transactions, WithAccount
from service.operations import Params, Result
from service.storage import stream_processors
from service.storage.queries import find_collection
from service.storage.schema import CollectionRow, StreamProcessorRow

# AWS's tagging rules allow 50 user tags per resource; Rekognition's tag maps can carry up to
# 200 entries in one request, so the quota is what refuses more.
MAX_TAGS = 50
# A resource's ARN as Create returns it (aws:rekognition:... for a collection,
# arn:aws:rekognition:... for a stream processor), either form accepted for both.
RESOURCE_ARN = regex.compile(
    r"^(?:arn:)?aws:rekognition:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(?P<kind>[a-zA-Z]+)/(?P<name>[^/]+?)(?:/\d+)?$"
)


class TagsContext(Transactions, WithAccount, Protocol):
    """What the tag operations use: sessions, and the region and account ARNs name."""


def tag_resource(context: TagsContext, request: Params) -> Result:
    with context.write() as session:
        resource = _tagged(context, session, request["ResourceArn"], lock=True)
        tags = {**json.loads(resource.tags), **request["Tags"]}
        check_tag_quota(tags)
        resource.tags = json.dumps(tags)
    return {}


def untag_resource(context: TagsContext, request: Params) -> Result:
    with context.write() as session:
        resource = _tagged(context, session, request["ResourceArn"], lock=True)
        tags = json.loads(resource.tags)
        for key in request["TagKeys"]:
            tags.pop(key, None)  # a key the resource does not have is no error, as AWS
        resource.tags = json.dumps(tags)
    return {}


def list_tags_for_resource(context: TagsContext, request: Params) -> Result:
    with context.read() as session:
        return {"Tags": json.loads(_tagged(context, session, request["ResourceArn"]).tags)}


def check_tag_quota(tags: dict[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise errors.ServiceQuotaExceededError(
            f"A resource can carry at most {MAX_TAGS} tags; this would give it {len(tags)}"
        )


def _tagged(
    context: TagsContext, session: Session, arn: str, *, lock: bool = False
) -> CollectionRow | StreamProcessorRow:
    """The collection or stream processor an ARN names: InvalidParameterException for what is
    no ARN of Rekognition's, ResourceNotFoundException for one naming nothing here (another
    region, account or resource type included)."""
    found = RESOURCE_ARN.match(arn)
    if found is None:
        raise errors.InvalidParameterError(f"{arn} is not a Rekognition resource ARN")
    here = (found["region"], found["account"]) == (context.region, context.account_id)
    if not here or found["kind"] not in ("collection", "streamprocessor"):
        raise errors.ResourceNotFoundError(f"The resource {arn} does not exist")
    try:
        if found["kind"] == "streamprocessor":
            return stream_processors.find(session, found["name"], lock=lock)
        return find_collection(session, found["name"], lock=lock)
    except errors.ResourceNotFoundError:
        raise errors.ResourceNotFoundError(f"The resource {arn} does not exist") from None
