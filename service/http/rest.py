"""Surface 2: a plain REST API under /v1 with OpenAPI docs and problem+json errors.

Each route names one Rekognition operation. A request body is either the operation's JSON
request (images as base64 in `Bytes`), or multipart/form-data with one file part per image
member (`image`, `source_image`, `target_image`) and form fields named after the remaining
members in snake_case (`similarity_threshold=90`, `attributes=ALL`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from botocore.model import Shape
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from ml.networks.table import ATTRIBUTE_NETWORKS, attribute_role
from ml.pipeline import FaceModels
from service import errors
from service.http.observe import Exchange, answer, log_refusal, new_request_id
from service.http.openapi import shape_schema
from service.http.plumbing import (
    MAX_BODY_BYTES,
    authenticate,
    caller,
    claimed_key_id,
    parse_json_body,
    read_body,
    replaying,
    request_facts,
    request_headers,
)
from service.http.state import app_state
from service.operations.validation import FACEBANK_OPERATIONS, operation_model

PROBLEM_TYPE = "application/problem+json"


@dataclass(frozen=True)
class RestRoute:
    operation: str
    method: str
    path: str
    summary: str
    image_members: tuple[str, ...] = field(default=())


C = "/v1/collections/{CollectionId}"
SP = "/v1/stream-processors"
ROUTES = (
    RestRoute("DetectFaces", "POST", "/v1/faces/detect", "Detect faces", ("Image",)),
    RestRoute(
        "CompareFaces", "POST", "/v1/faces/compare", "Compare faces", ("SourceImage", "TargetImage")
    ),
    RestRoute("CreateCollection", "POST", "/v1/collections", "Create a collection"),
    RestRoute("ListCollections", "GET", "/v1/collections", "List collections"),
    RestRoute("DescribeCollection", "GET", C, "Describe a collection"),
    RestRoute("DeleteCollection", "DELETE", C, "Delete a collection and everything in it"),
    RestRoute("IndexFaces", "POST", f"{C}/faces", "Index the faces of an image", ("Image",)),
    RestRoute("ListFaces", "GET", f"{C}/faces", "List faces"),
    RestRoute("DeleteFaces", "POST", f"{C}/faces/delete", "Delete faces"),
    RestRoute(
        "ImportFace",
        "PUT",
        f"{C}/faces/{{FaceId}}",
        "Store a face under a FaceId another service gave it (facebank's own: facebank migrate)",
        ("Image",),
    ),
    RestRoute("SearchFaces", "POST", f"{C}/faces/{{FaceId}}/search", "Search by a stored face"),
    RestRoute(
        "SearchFacesByImage", "POST", f"{C}/faces/search", "Search faces by image", ("Image",)
    ),
    RestRoute("CreateUser", "POST", f"{C}/users", "Create a user"),
    RestRoute("ListUsers", "GET", f"{C}/users", "List users"),
    RestRoute("DeleteUser", "DELETE", f"{C}/users/{{UserId}}", "Delete a user"),
    RestRoute("AssociateFaces", "POST", f"{C}/users/{{UserId}}/faces", "Associate faces"),
    RestRoute(
        "DisassociateFaces",
        "POST",
        f"{C}/users/{{UserId}}/faces/disassociate",
        "Disassociate faces",
    ),
    RestRoute("SearchUsers", "POST", f"{C}/users/search", "Search users by user or face"),
    RestRoute(
        "SearchUsersByImage",
        "POST",
        f"{C}/users/search-by-image",
        "Search users by image",
        ("Image",),
    ),
    RestRoute("TagResource", "POST", "/v1/tags", "Tag a collection (by its ARN)"),
    RestRoute("UntagResource", "POST", "/v1/tags/remove", "Remove tags from a collection"),
    RestRoute("ListTagsForResource", "GET", "/v1/tags", "A collection's tags (by its ARN)"),
    RestRoute(
        "StartFaceDetection", "POST", "/v1/video/face-detection", "Start a face detection job"
    ),
    RestRoute(
        "GetFaceDetection", "GET", "/v1/video/face-detection/{JobId}", "A face detection job"
    ),
    RestRoute("StartFaceSearch", "POST", "/v1/video/face-search", "Start a face search job"),
    RestRoute("GetFaceSearch", "GET", "/v1/video/face-search/{JobId}", "A face search job"),
    RestRoute("CreateStreamProcessor", "POST", SP, "Create a face search stream processor"),
    RestRoute("ListStreamProcessors", "GET", SP, "List stream processors"),
    RestRoute("DescribeStreamProcessor", "GET", f"{SP}/{{Name}}", "Describe a stream processor"),
    RestRoute("DeleteStreamProcessor", "DELETE", f"{SP}/{{Name}}", "Delete a stream processor"),
    RestRoute("StartStreamProcessor", "POST", f"{SP}/{{Name}}/start", "Start a stream processor"),
    RestRoute("StopStreamProcessor", "POST", f"{SP}/{{Name}}/stop", "Stop a stream processor"),
    RestRoute(
        "UpdateStreamProcessor", "POST", f"{SP}/{{Name}}/update", "Update a stream processor"
    ),
)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def problem(error: errors.ServiceError, request_id: str) -> Response:
    body = {
        "type": f"urn:facebank:error:{error.code}",
        "title": error.code,
        "status": error.rest_status,
        "detail": error.message,
        "code": error.code,
        "request_id": request_id,
    }
    return JSONResponse(
        body,
        status_code=error.rest_status,
        media_type=PROBLEM_TYPE,
        headers={"x-request-id": request_id},
    )


def _form_value(shape: Shape, raw: str, name: str) -> object:
    try:
        if shape.type_name in ("integer", "long"):
            return int(raw)
        if shape.type_name in ("float", "double"):
            return float(raw)
        if shape.type_name == "boolean":
            return {"true": True, "false": False}[raw.lower()]
        if shape.type_name == "list":
            return [item.strip() for item in raw.split(",") if item.strip()]
    except (ValueError, KeyError):
        raise errors.InvalidParameterError(f"Form field {name!r} has an invalid value") from None
    return raw


def _from_fields(route: RestRoute, fields: list[tuple[str, str]]) -> dict[str, Any]:
    """Form fields or query parameters (snake_case, strings) as typed request members."""
    members = operation_model(route.operation).input_shape.members
    by_field = {snake(name): name for name in members}
    request: dict[str, Any] = {}
    for key, value in fields:
        member = by_field.get(key)
        if member is None or member in route.image_members:
            raise errors.InvalidParameterError(f"Unknown parameter {key!r}")
        parsed = _form_value(members[member], value, key)
        if isinstance(parsed, list) and member in request:
            parsed = [*request[member], *parsed]  # a list may come as repeated fields
        request[member] = parsed
    return request


async def _from_form(route: RestRoute, form: FormData) -> dict[str, Any]:
    members = operation_model(route.operation).input_shape.members
    by_field = {snake(name): name for name in members}
    images: dict[str, Any] = {}
    fields: list[tuple[str, str]] = []
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            member = by_field.get(key)
            if member not in route.image_members:
                raise errors.InvalidParameterError(f"Form field {key!r} is not an image")
            images[member] = {"Bytes": await value.read()}
        else:
            fields.append((key, value))
    return {**_from_fields(route, fields), **images}


async def _authenticated_body(route: RestRoute, request: Request, exchange: Exchange) -> object:
    """Read the whole body (bounded), authenticate over it, then parse it. SigV4 therefore
    binds JSON and multipart payloads alike; Basic credentials need no payload."""
    headers = request_headers(request)
    exchange.claimed_key_id = claimed_key_id(headers)
    body = await read_body(request, headers)
    exchange.key_id = authenticate(request, headers, body, allow_basic=True)
    if not headers.get("content-type", "").startswith("multipart/form-data"):
        return parse_json_body(body)
    try:
        async with replaying(request, body).form(max_part_size=MAX_BODY_BYTES) as form:
            return await _from_form(route, form)
    except errors.ServiceError:
        raise
    except Exception as exc:  # the multipart parsers raise several types for bad input
        raise errors.SerializationError(f"Malformed multipart body: {exc!r}") from None


async def _parameters(route: RestRoute, request: Request, exchange: Exchange) -> object:
    """The operation's request: path parameters, query parameters and body, merged."""
    parsed = await _authenticated_body(route, request, exchange)
    if not isinstance(parsed, dict):
        return parsed  # validation reports the wrong type
    query = _from_fields(route, list(request.query_params.multi_items()))
    return {**query, **parsed, **request.path_params}


def _endpoint(route: RestRoute) -> Any:
    async def endpoint(request: Request) -> Response:
        exchange = Exchange.begin("rest", route.operation, request)

        async def run() -> Any:
            payload = await _parameters(route, request, exchange)
            state = app_state(request)
            caller = state.keyring.get(exchange.key_id) if exchange.key_id else None
            facts = request_facts(request)
            return await run_in_threadpool(
                state.running().dispatch, route.operation, payload, caller, facts
            )

        return await answer(
            app_state(request).observer,
            exchange,
            run,
            ok=lambda result: JSONResponse(result, headers={"x-request-id": exchange.request_id}),
            failed=lambda error: problem(error, exchange.request_id),
        )

    endpoint.__name__ = snake(route.operation)
    return endpoint


def _openapi_extra(route: RestRoute) -> dict[str, Any]:
    model = operation_model(route.operation)
    schema = shape_schema(model.input_shape)
    path_members = set(re.findall(r"{(\w+)}", route.path))
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": shape_schema(model.input_shape.members[name]),
        }
        for name in sorted(path_members)
    ]
    if route.method in ("GET", "DELETE"):
        parameters += [
            {"name": snake(name), "in": "query", "required": False, "schema": shape_schema(shape)}
            for name, shape in model.input_shape.members.items()
            if name not in path_members
        ]
        return {"parameters": parameters, "responses": _responses(model)}
    # Each field typed as its member is (enums, ranges, lists as repeated fields), so a form
    # such as Swagger UI's offers valid choices instead of sending "string" placeholders.
    form_props = {
        snake(name): (
            {"type": "string", "format": "binary"}
            if name in route.image_members
            else shape_schema(shape)
        )
        for name, shape in model.input_shape.members.items()
        if name in route.image_members or shape.type_name != "structure"
    }
    return {
        "parameters": parameters,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema},
                "multipart/form-data": {"schema": {"type": "object", "properties": form_props}},
            },
        },
        "responses": _responses(model),
    }


def _responses(model: Any) -> dict[str, Any]:
    return {
        "200": {"content": {"application/json": {"schema": shape_schema(model.output_shape)}}},
        "4XX": {"description": "problem+json with the Rekognition error name in `code`"},
    }


def _description(route: RestRoute) -> str:
    if route.operation in FACEBANK_OPERATIONS:
        return (
            f"facebank's `{route.operation}` (not part of Rekognition's API; policy action "
            f"`facebank:{route.operation}`, which `rekognition:*` does not grant): JSON "
            "request body. See docs/contract.md."
        )
    return f"Rekognition `{route.operation}`: JSON request body or multipart upload."


def build_router() -> APIRouter:
    router = APIRouter()
    for route in ROUTES:
        router.add_api_route(
            route.path,
            _endpoint(route),
            methods=[route.method],
            summary=route.summary,
            description=_description(route),
            openapi_extra=_openapi_extra(route),
            tags=[
                "collections"
                if "{CollectionId}" in route.path or route.path.endswith("collections")
                else "faces"
            ],
        )
    return router


async def credentials_refused(request: Request, request_id: str) -> Response | None:
    """The problem response for a request that carries no operation and no valid credentials
    (while access keys are configured; any loaded key may read these routes), logged as a
    refusal; None when it may go on."""
    try:
        await caller(request)
    except errors.ServiceError as error:
        tried = claimed_key_id(request_headers(request))
        log_refusal(request_id, request.url.path, tried, error)
        return problem(error, request_id)
    return None


def networks_in_use(pipeline: FaceModels) -> list[dict[str, Any]]:
    """The networks of the table this server runs: its embedder, and each attribute network
    that is provisioned, with the attributes it serves here."""
    found: list[dict[str, Any]] = [{"Name": pipeline.spec.network, "Role": "embedder"}]
    estimator = pipeline.attributes
    if estimator is None:
        return found
    for entry in ATTRIBUTE_NETWORKS:
        role = attribute_role(entry)
        if role.stage in estimator.runners:
            served = sorted(role.serves & estimator.served)
            found.append({"Name": entry.name, "Role": "attributes", "Attributes": served})
    return found


def embedder_precision(pipeline: FaceModels) -> dict[str, Any]:
    """What the embedder runs in, and on the CPU how that was chosen, with each way's timing."""
    choice = pipeline.embedder_precision
    return {"Precision": "fp32"} if choice is None else choice.as_response()


def detector_workers(pipeline: FaceModels) -> dict[str, Any]:
    """How the detector's batches use the CPU's cores, and how that was chosen."""
    choice = pipeline.detector_workers
    return {"Workers": 1} if choice is None else choice.as_response()


async def face_model(request: Request) -> Response:
    """The face model this server gives new collections: the FaceModelVersion collections
    record, and the model's name behind that number (which the wire surface has no member for);
    and the older models on the same weights that it still serves for their collections."""
    request_id = new_request_id()
    refusal = await credentials_refused(request, request_id)
    if refusal is not None:
        return refusal
    pipeline = app_state(request).running().context.pipeline
    return JSONResponse(
        {
            "FaceModelVersion": pipeline.spec.face_model_version,
            "FaceModelName": pipeline.spec.version,
            "EmbeddingDimension": pipeline.spec.embedding_dim,
            "CalibrationVersion": pipeline.calibration.calibration_version,
            "CalibrationFile": app_state(request).calibration_source,
            "AlsoServes": [
                {"FaceModelVersion": version, "FaceModelName": served.spec.version}
                for version, served in sorted(pipeline.also_serves.items())
            ],
            "Networks": networks_in_use(pipeline),
            "EmbedderPrecision": embedder_precision(pipeline),
            "DetectorWorkers": detector_workers(pipeline),
        },
        headers={"x-request-id": request_id},
    )


def install(app: FastAPI) -> None:
    app.include_router(build_router())
    app.add_api_route(
        "/v1/models/current",
        face_model,
        methods=["GET"],
        tags=["models"],
        summary="The face model this server runs (FaceModelVersion and the model's name)",
    )
