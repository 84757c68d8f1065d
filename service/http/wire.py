"""Surface 1: Rekognition's own wire protocol (AWS JSON 1.1 at POST /, X-Amz-Target dispatch)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from service import errors
from service.http.observe import Exchange, answer
from service.http.plumbing import (
    authenticate,
    claimed_key_id,
    parse_json_body,
    read_body,
    request_facts,
    request_headers,
)
from service.http.state import app_state
from service.operations.validation import FACEBANK_OPERATIONS

TARGET_PREFIX = "RekognitionService."
CONTENT_TYPE = "application/x-amz-json-1.1"

router = APIRouter(include_in_schema=False)


def error_response(error: errors.ServiceError, request_id: str) -> Response:
    return JSONResponse(
        # As Rekognition's own error bodies: botocore reads the name from __type (or Code) and
        # the text from Message; Logref names the request in the server's log.
        {"__type": error.code, "Code": error.code, "Message": error.message, "Logref": request_id},
        status_code=error.wire_status,
        media_type=CONTENT_TYPE,
        headers={"x-amzn-RequestId": request_id},
    )


def _operation_name(headers: Mapping[str, str]) -> str:
    target = headers.get("x-amz-target", "")
    operation = target[len(TARGET_PREFIX) :]
    if not target.startswith(TARGET_PREFIX) or operation in FACEBANK_OPERATIONS:
        raise errors.UnknownOperationError(f"Unknown target {target!r}")  # those are REST only
    return operation


@router.post("/")
async def rekognition_endpoint(request: Request) -> Response:
    exchange = Exchange.begin("wire", "unknown", request)
    return await answer(
        app_state(request).observer,
        exchange,
        lambda: _run(request, exchange),
        ok=lambda result: JSONResponse(
            result, media_type=CONTENT_TYPE, headers={"x-amzn-RequestId": exchange.request_id}
        ),
        failed=lambda error: error_response(error, exchange.request_id),
    )


async def _run(request: Request, exchange: Exchange) -> Any:
    state = app_state(request)
    headers = request_headers(request)
    target = headers.get("x-amz-target", "")
    if target.startswith(TARGET_PREFIX):  # named in the log even when the caller is refused
        exchange.operation = target[len(TARGET_PREFIX) :]
    exchange.claimed_key_id = claimed_key_id(headers)
    body = await read_body(request, headers)
    exchange.key_id = authenticate(request, headers, body, allow_basic=False)
    exchange.operation = _operation_name(headers)
    parsed = parse_json_body(body)
    caller = state.keyring.get(exchange.key_id) if exchange.key_id else None
    facts = request_facts(request)
    return await run_in_threadpool(
        state.running().dispatch, exchange.operation, parsed, caller, facts
    )
