"""Fixtures shared by every test tier: real photos, real weights, live servers, real clients."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from PIL import Image

from ml.pipeline import FacePipeline, load_pipeline, resolve_device
from ml.registry import DEFAULT_MODEL_VERSION
from service.settings import default_models_dir
from tests.support import live_server
from tests.support.live_server import LiveServer, free_port, stop_server

ROOT = live_server.ROOT
ACCESS_KEY, SECRET_KEY = "AKIDFACEBANKTEST", "facebank-test-secret"


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    path = Path(os.environ.get("FACEBANK_TEST_FACES", ROOT.parent / "shared" / "faces"))
    if not (path / "MANIFEST.md").exists():
        pytest.fail(f"real test photos not found at {path}; set FACEBANK_TEST_FACES")
    return path


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return Path(os.environ.get("FACEBANK_MODELS_DIR", default_models_dir()))


@pytest.fixture(scope="session")
def pipeline(models_dir: Path) -> FacePipeline:
    return load_pipeline(models_dir, DEFAULT_MODEL_VERSION, resolve_device("cpu"))


def jpeg_bytes(pixels: np.ndarray, **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=92, **save)
    return buffer.getvalue()


def blank_jpeg(width: int = 320, height: int = 240, value: int = 128) -> bytes:
    return jpeg_bytes(np.full((height, width, 3), value, dtype=np.uint8))


def start_server(tmp: Path, extra_env: dict[str, str] | None = None) -> LiveServer:
    try:
        return live_server.start_server(tmp, extra_env)
    except live_server.ServerStartError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("open-server"))
    yield live
    stop_server(live)


@pytest.fixture(scope="session")
def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    keys = f"{ACCESS_KEY}:{SECRET_KEY},OTHERKEY:other-secret"
    live = start_server(tmp_path_factory.mktemp("signed-server"), {"FACEBANK_ACCESS_KEYS": keys})
    yield live
    stop_server(live)


NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def rekognition_client(url: str, key: str | None = None, secret: str | None = None) -> Any:
    if key is None:
        config = NO_RETRIES.merge(Config(signature_version=UNSIGNED))
        return boto3.client("rekognition", endpoint_url=url, region_name="eu-west-1", config=config)
    return boto3.client(
        "rekognition",
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=NO_RETRIES,
    )


@pytest.fixture(scope="session")
def rekognition(server: LiveServer) -> Any:
    return rekognition_client(server.url)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    from tests.postgres import INSTALL_HINT, find_bindir, postgres_server

    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)  # CI must run the PostgreSQL tests, never skip them
        pytest.skip(INSTALL_HINT)
    with postgres_server(bindir, free_port()) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'facebank.db'}"
    from tests.postgres import fresh_database

    return fresh_database(request.getfixturevalue("postgres_url"))
