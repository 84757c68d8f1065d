"""Schema-driven fuzzing of both surfaces: requests generated from botocore's Rekognition model
(valid members, wrong types, hostile values, real and broken images) never get a 5xx."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from botocore.model import Shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from service.http.rest import ROUTES, RestRoute, snake
from service.operations.dispatch import HANDLERS
from service.operations.validation import operation_model
from service.testing.local_server import LiveServer, start_server, stop_server
from tests.support.images import jpeg_bytes

EXAMPLES = 150  # per surface: about 20 s each on two cores


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


NOISE = np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8)
IMAGES = [
    jpeg_bytes(NOISE),
    png_bytes(NOISE),
    jpeg_bytes(NOISE)[:300],  # truncated
    png_bytes(NOISE[:40, :40]),  # below the minimum side
    b"\xff\xd8\xff" + bytes(200),  # a JPEG signature and nothing after it
    b"",
    b"GIF89a" + bytes(50),
]

JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**30, max_value=10**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _string(shape: Shape) -> st.SearchStrategy[Any]:
    options: list[st.SearchStrategy[Any]] = [st.text(max_size=40)]
    if shape.enum:
        options.append(st.sampled_from(shape.enum))
    pattern = shape.metadata.get("pattern")
    if pattern:
        with contextlib.suppress(re.error):  # \p{...} classes that `re` lacks: text covers them
            options.append(
                st.from_regex(re.compile(pattern), fullmatch=True).map(lambda v: v[:255])
            )
    return st.one_of(options)


def _blob(shape: Shape) -> st.SearchStrategy[Any]:
    return st.sampled_from(IMAGES).map(lambda data: base64.b64encode(data).decode())


def _number(shape: Shape) -> st.SearchStrategy[Any]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if shape.type_name in ("integer", "long"):
        return st.integers(min_value=low, max_value=high) | st.integers()
    return st.floats(min_value=low, max_value=high) | st.floats()


def shape_values(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    """Mostly values of the member's type (often within its constraints), sometimes junk."""
    if depth > 4:
        return JUNK
    kind = shape.type_name
    if kind == "structure":
        members = {name: shape_values(member, depth + 1) for name, member in shape.members.items()}
        valid: st.SearchStrategy[Any] = st.fixed_dictionaries({}, optional=members)
    elif kind == "list":
        valid = st.lists(shape_values(shape.member, depth + 1), max_size=4)
    elif kind == "map":
        valid = st.dictionaries(
            st.text(max_size=8), shape_values(shape.value, depth + 1), max_size=3
        )
    elif kind == "string":
        valid = _string(shape)
    elif kind == "blob":
        valid = _blob(shape)
    elif kind in ("integer", "long", "float", "double"):
        valid = _number(shape)
    elif kind == "boolean":
        valid = st.booleans()
    else:
        valid = JUNK
    return st.one_of(valid, valid, valid, JUNK)


def request_bodies(operation: str) -> st.SearchStrategy[Any]:
    return st.one_of(shape_values(operation_model(operation).input_shape), JUNK)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("fuzz"))
    client = httpx.Client(base_url=live.url, timeout=60)
    client.post("/v1/collections", json={"CollectionId": "fuzz"})  # something to find
    yield live
    stop_server(live)


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run of the same code: CI is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def no_server_error(answer: httpx.Response, sent: object) -> None:
    assert answer.status_code < 500, (answer.status_code, answer.text, sent)


@FUZZ_SETTINGS
@given(data=st.data(), operation=st.sampled_from(sorted(HANDLERS)))
def test_wire_surface(fuzz_server: LiveServer, data: st.DataObject, operation: str) -> None:
    body = data.draw(request_bodies(operation))
    answer = httpx.post(
        f"{fuzz_server.url}/",
        content=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"RekognitionService.{operation}",
        },
        timeout=60,
    )
    no_server_error(answer, body)


def rest_request(route: RestRoute, body: Any) -> tuple[str, dict[str, Any]]:
    """The route's URL with path members filled from the body, and httpx arguments."""
    fields = dict(body) if isinstance(body, dict) else {}
    path = route.path
    for name in re.findall(r"{(\w+)}", route.path):
        value = fields.pop(name, "x")
        path = path.replace(f"{{{name}}}", quote(str(value), safe="") or "x")
    if route.method in ("GET", "DELETE"):
        params = {snake(name): str(value) for name, value in fields.items()}
        return path, {"params": params}
    return path, {"content": json.dumps(fields if isinstance(body, dict) else body).encode()}


@FUZZ_SETTINGS
@given(data=st.data(), route=st.sampled_from(ROUTES))
def test_rest_surface(fuzz_server: LiveServer, data: st.DataObject, route: RestRoute) -> None:
    body = data.draw(request_bodies(route.operation))
    path, arguments = rest_request(route, body)
    answer = httpx.request(
        route.method,
        f"{fuzz_server.url}{path}",
        headers={"Content-Type": "application/json"},
        timeout=60,
        **arguments,
    )
    no_server_error(answer, body)
