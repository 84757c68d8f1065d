"""Whether the calling key's policy allows an operation on its resource, in IAM's terms, and
its rates. The resource follows Rekognition's resource types: the collection's ARN for
operations on a collection (a face search job's Get included: it is checked against the
collection it searched), the stream processor's ARN for the operations that name one
(Create included), the ARN a tagging operation names, `*` for DetectFaces, CompareFaces,
ListCollections, ListStreamProcessors and face detection jobs."""

from __future__ import annotations

import json
from typing import Protocol

from sqlalchemy import select

from service import errors
from service.access.keys import KeyEntry
from service.access.policy import RequestFacts
from service.access.rates import RateLimits
from service.context import Transactions, WithAccount
from service.operations import Params
from service.operations.stream_processors import processor_arn
from service.operations.validation import FACEBANK_OPERATIONS
from service.storage.schema import VideoJobRow


class AuthorizationContext(Transactions, WithAccount, Protocol):
    """What judging a caller uses: the ARNs a policy names, the job a Get reads, the rates."""

    @property
    def rates(self) -> RateLimits: ...


def authorize(
    context: AuthorizationContext,
    caller: KeyEntry | None,
    operation: str,
    request: Params,
    facts: RequestFacts | None = None,
) -> None:
    """AccessDeniedException unless the caller may; keys without a policy may do everything
    (the default an upgrade keeps: docs/contract.md#authentication)."""
    if caller is None:
        return
    if caller.policy is not None:
        resource = resource_of(context, operation, request)
        _check(context, caller, operation, resource, facts)
        if operation == "CreateCollection" and request.get("Tags"):
            _check(context, caller, "TagResource", resource, facts)  # as Rekognition asks
    if caller.rates:
        context.rates.admit(caller.key_id, operation, caller.rates)


def _check(
    context: AuthorizationContext,
    caller: KeyEntry,
    operation: str,
    resource: str,
    facts: RequestFacts | None,
) -> None:
    assert caller.policy is not None
    action = policy_action(operation)
    decision = caller.policy.decision(action, resource, facts)
    if decision != "allow":
        user = f"arn:aws:iam::{context.account_id}:user/{caller.key_id}"
        explicitly = " with an explicit deny" if decision == "deny" else ""
        raise errors.AccessDeniedError(
            f"User: {user} is not authorized to perform: {action} on "
            f"resource: {resource}{explicitly}"
        )


def policy_action(operation: str) -> str:
    """rekognition:NAME, or facebank:NAME for facebank's own operations, which a policy must
    name (rekognition:* does not grant them)."""
    service = "facebank" if operation in FACEBANK_OPERATIONS else "rekognition"
    return f"{service}:{operation}"


def resource_of(context: AuthorizationContext, operation: str, request: Params) -> str:
    if operation.endswith("StreamProcessor"):  # by name, Create included
        return processor_arn(context, request["Name"])
    if "CollectionId" in request:
        return collection_arn(context, request["CollectionId"])
    if "ResourceArn" in request:
        arn = str(request["ResourceArn"])
        return arn if arn.startswith("arn:") else f"arn:{arn}"
    if operation == "GetFaceSearch":
        return _searched_collection(context, request["JobId"])
    return "*"


def collection_arn(context: AuthorizationContext, collection_id: str) -> str:
    """In IAM's form, as policies name it."""
    return f"arn:{context.collection_arn(collection_id)}"


def _searched_collection(context: AuthorizationContext, job_id: str) -> str:
    with context.read() as session:
        started = session.scalar(select(VideoJobRow.request).where(VideoJobRow.job_id == job_id))
    if started is None:
        return "*"  # no such job: the operation answers ResourceNotFoundException
    return collection_arn(context, json.loads(started)["CollectionId"])
