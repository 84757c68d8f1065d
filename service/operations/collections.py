"""CreateCollection, DescribeCollection, ListCollections, DeleteCollection."""

from __future__ import annotations

import json
import time
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from service import errors
from service.context import CollectionAccess, WithAccount, WithSearch, WithTokens
from service.operations import Params, Result
from service.operations.tags import check_tag_quota
from service.storage.queries import find_collection
from service.storage.schema import (
    CollectionRow,
    FaceRow,
    ImageRow,
    IndexEventRow,
    UserRow,
)

DEFAULT_LIST_COLLECTIONS = 1000


class CollectionsContext(CollectionAccess, WithSearch, WithTokens, WithAccount, Protocol):
    """What the collection operations use."""


def create_collection(context: CollectionsContext, request: Params) -> Result:
    collection_id = request["CollectionId"]
    check_tag_quota(request.get("Tags", {}))
    row = CollectionRow(
        collection_id=collection_id,
        face_model_version=context.pipeline.spec.face_model_version,
        created_at=time.time(),
        face_count=0,
        user_count=0,
        tags=json.dumps(request.get("Tags", {})),
    )
    try:
        with context.write() as session:
            session.add(row)
    except IntegrityError:
        raise errors.ResourceAlreadyExistsError(
            f"The collection id: {collection_id} already exists"
        ) from None
    return {
        "StatusCode": 200,
        "CollectionArn": context.collection_arn(collection_id),
        "FaceModelVersion": row.face_model_version,
    }


def describe_collection(context: CollectionsContext, request: Params) -> Result:
    with context.read() as session:
        row = find_collection(session, request["CollectionId"])
    return {
        "FaceCount": row.face_count,
        "FaceModelVersion": row.face_model_version,
        "CollectionARN": context.collection_arn(row.collection_id),
        "CreationTimestamp": row.created_at,
        "UserCount": row.user_count,
    }


def list_collections(context: CollectionsContext, request: Params) -> Result:
    limit = request.get("MaxResults", DEFAULT_LIST_COLLECTIONS)
    after = context.tokens.start(request, "ListCollections")
    with context.read() as session:
        rows = session.execute(
            select(CollectionRow.pk, CollectionRow.collection_id, CollectionRow.face_model_version)
            .where(CollectionRow.pk > after)
            .order_by(CollectionRow.pk)
            .limit(limit + 1)
        ).all()
    page, token = context.tokens.page(rows, limit, "ListCollections", lambda row: row.pk)
    response: Result = {
        "CollectionIds": [row.collection_id for row in page],
        "FaceModelVersions": [row.face_model_version for row in page],
    }
    return {**response, "NextToken": token} if token else response


def delete_collection(context: CollectionsContext, request: Params) -> Result:
    with context.write() as session:
        row = find_collection(session, request["CollectionId"], lock=True)
        pk = row.pk
        # Children first, explicitly: SQLite and PostgreSQL then agree without relying on
        # cascade settings, and the event log of a deleted collection goes with it.
        for table in (FaceRow, ImageRow, UserRow):
            session.execute(delete(table).where(table.collection_pk == pk))
        session.execute(delete(IndexEventRow).where(IndexEventRow.collection_pk == pk))
        session.delete(row)
    context.indexes.drop(pk)
    return {"StatusCode": 200}
