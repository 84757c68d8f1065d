"""The routes that carry no operation: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from ml.pipeline import FaceModels
from service.http.observe import new_request_id
from service.http.rest import credentials_refused
from service.http.state import app_state
from service.storage.availability import StorageHealth, database_problem
from service.storage.calibration_record import mismatch, recorded_version

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: models loaded and warmed, indexes loaded, storage taking writes",
)
async def readyz(request: Request) -> JSONResponse:
    state = app_state(request)
    if not state.ready or state.operations is None:
        return JSONResponse({"ready": False, "reason": "starting"}, status_code=503)
    reason = await run_in_threadpool(not_ready_because, state.operations.context)
    if reason is not None:
        return JSONResponse({"ready": False, "reason": reason}, status_code=503)
    return JSONResponse({"ready": True, **keys_file_notice(request)}, status_code=200)


def keys_file_notice(request: Request) -> dict[str, str]:
    """Ready all the same (the keys loaded before stay in use), but an operator who rotated
    keys sees here that the new file was refused, and since when; the log says why."""
    refused = app_state(request).keyring.file_refused()
    if refused is None:
        return {}
    since = datetime.fromtimestamp(refused[1], UTC).isoformat()
    return {"keys_file_refused_since": since}


@router.get(
    "/metrics",
    summary="Prometheus metrics (credentials required when access keys are configured)",
)
async def metrics(request: Request) -> Response:
    # collection ids are not public information
    refusal = await credentials_refused(request, new_request_id())
    if refusal is not None:
        return refusal
    exposition = await run_in_threadpool(generate_latest, app_state(request).metrics)
    return Response(exposition, media_type=CONTENT_TYPE_LATEST)


class ReadinessContext(Protocol):
    """What readiness looks at: the database, the calibration served, the storage."""

    @property
    def reader(self) -> sessionmaker[Session]: ...

    @property
    def pipeline(self) -> FaceModels: ...

    @property
    def storage(self) -> StorageHealth: ...


def not_ready_because(context: ReadinessContext) -> str | None:
    """Why a started server should get no traffic now: the database does not answer, the
    storage is full (both recover by themselves), or the deployment's calibration was changed
    since this replica started (a restart with the new file mends it); None when ready."""
    trouble = database_problem(context.reader)
    if trouble is not None:
        return f"database unreachable ({trouble}): requests are refused until it answers"
    calibration = context.pipeline.calibration
    recorded = recorded_version(context.reader, calibration.model_version)
    if recorded is not None and recorded != calibration.calibration_version:
        return mismatch(calibration, recorded)
    full_since = context.storage.full_since()
    if full_since is not None:
        since = datetime.fromtimestamp(full_since, UTC).isoformat()
        return f"storage full since {since}: writes are refused, searches are answered"
    return None
