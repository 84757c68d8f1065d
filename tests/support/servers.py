"""Live servers for tests: a server that cannot start fails the test with its log."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import live_server
from tests.support.live_server import LiveServer


def start_server(tmp: Path, extra_env: dict[str, str] | None = None) -> LiveServer:
    try:
        return live_server.start_server(tmp, extra_env)
    except live_server.ServerStartError as exc:
        pytest.fail(str(exc))
