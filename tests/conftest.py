"""Fixtures shared by every test tier: real photos, real weights, live servers, real clients."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from PIL import Image

from ml.pipeline import FacePipeline, load_pipeline, resolve_device
from ml.registry import DEFAULT_MODEL_VERSION
from service.settings import default_models_dir

ROOT = Path(__file__).resolve().parents[1]
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def start_server(tmp: Path, extra_env: dict[str, str] | None = None) -> LiveServer:
    port = free_port()
    log = tmp / f"server-{port}.log"
    env = {
        **os.environ,
        "FACEBANK_PORT": str(port),
        "FACEBANK_DATA_DIR": str(tmp / f"data-{port}"),
        "FACEBANK_DEVICE": "cpu",
        "FACEBANK_TORCH_THREADS": "2",
        **(extra_env or {}),
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log)
    _wait_ready(server)
    return server


def _wait_ready(server: LiveServer, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"server exited early:\n{server.log.read_text()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    server.process.kill()
    pytest.fail(f"server not ready after {timeout}s:\n{server.log.read_text()}")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()


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
