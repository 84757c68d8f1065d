"""ClientRequestToken: same token and parameters replay the stored response; other parameters
with a used token are IdempotentParameterMismatchException."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from service import errors
from service.operations import Params, Result
from service.storage.schema import IdempotencyRow


def _request_hash(request: Params) -> str:
    params = {key: value for key, value in request.items() if key != "ClientRequestToken"}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def idempotent(
    session: Session, operation: str, request: Params, run: Callable[[], Result]
) -> Result:
    """Run once per token, inside the caller's write transaction."""
    token = request.get("ClientRequestToken")
    if token is None:
        return run()
    digest = _request_hash(request)
    stored = session.scalars(
        select(IdempotencyRow).where(
            IdempotencyRow.operation == operation, IdempotencyRow.token == token
        )
    ).one_or_none()
    if stored is not None:
        if stored.request_hash != digest:
            raise errors.IdempotentParameterMismatchError(
                f"ClientRequestToken {token} was already used with other parameters"
            )
        response: Result = json.loads(stored.response)
        return response
    response = run()
    session.add(
        IdempotencyRow(
            operation=operation,
            token=token,
            request_hash=digest,
            response=json.dumps(response),
            created_at=time.time(),
        )
    )
    return response
