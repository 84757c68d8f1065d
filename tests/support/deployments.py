"""Live servers over each database (SQLite, PostgreSQL), restartable on the same data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from service.testing.local_server import LiveServer, start_server, stop_server


@dataclass
class Deployment:
    """Where a server keeps its state, so a restart (or a second process) sees the same data."""

    data_dir: Path
    database_url: str

    def env(self) -> dict[str, str]:
        env = {"FACEBANK_DATA_DIR": str(self.data_dir)}
        if self.database_url.startswith("postgresql"):
            env["FACEBANK_DATABASE_URL"] = self.database_url
        return env

    def start(self, extra: dict[str, str] | None = None) -> LiveServer:
        return start_server(self.data_dir.parent, {**self.env(), **(extra or {})})


def deployment_for(database: str, request: pytest.FixtureRequest, tmp: Path) -> Deployment:
    data_dir = tmp / "data"
    if database == "sqlite":
        return Deployment(data_dir, f"sqlite:///{data_dir / 'facebank.db'}")
    from tests.support.postgres import fresh_database

    return Deployment(data_dir, fresh_database(request.getfixturevalue("postgres_url")))


__all__ = ["Deployment", "deployment_for", "stop_server"]
