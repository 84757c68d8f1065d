"""PostgreSQL stops under a running server: readiness says so, requests get a retryable
error, and everything recovers by itself when the database is back."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.testing.local_server import free_port, start_server, stop_server
from tests.support.clients import rekognition_client
from tests.support.postgres import INSTALL_HINT, PostgresServer, find_bindir, fresh_database


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, since the test stops it."""
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    server = PostgresServer(bindir, free_port())
    server.start()
    yield server
    server.remove()


def ready(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=10)


def wait_until(check: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.3)
    return False


def test_database_outage_and_recovery(own_postgres: PostgresServer, tmp_path: Path) -> None:
    url = fresh_database(own_postgres.url)
    live = start_server(tmp_path, {"FACEBANK_DATABASE_URL": url})
    try:
        client = rekognition_client(live.url)
        client.create_collection(CollectionId="kept")
        own_postgres.stop()
        answer = ready(live.url)
        assert answer.status_code == 503 and "database unreachable" in answer.json()["reason"]
        with pytest.raises(client.exceptions.ClientError) as caught:
            client.list_collections()
        error = caught.value.response
        assert error["Error"]["Code"] == "ServiceUnavailableException"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 503  # botocore retries a 503
        own_postgres.start()
        assert wait_until(lambda: ready(live.url).status_code == 200)
        assert client.list_collections()["CollectionIds"] == ["kept"]
    finally:
        stop_server(live)
