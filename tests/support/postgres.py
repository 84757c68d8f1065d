"""A throwaway PostgreSQL server for the test session, from the installed server binaries.

PostgreSQL refuses to run as root, and CI runs as root: then the server runs as the `postgres`
account that Debian's package creates, in a temporary directory it owns. (pytest-postgresql runs
pg_ctl as the invoking user inside pytest's root-only temp dirs, so it cannot work there.)
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) are needed for the PostgreSQL tests: "
    "install them with `apt-get install postgresql` (Debian/Ubuntu), or put their directory "
    "on PATH or in FACEBANK_PG_BINDIR"
)


def find_bindir() -> Path | None:
    configured = os.environ.get("FACEBANK_PG_BINDIR")
    if configured:
        return Path(configured)
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3])
    )
    if debian:
        return Path(debian[-1]).parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _run(command: list[str]) -> None:
    result = subprocess.run(_as_server_user(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


class PostgresServer:
    """A throwaway server in its own directory, which a test may stop and start again."""

    def __init__(self, bindir: Path, port: int) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="facebank-pg-"))
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self.data = self.root / "data"
        self.port = port
        self.url = f"postgresql+psycopg://facebank@127.0.0.1:{port}/postgres"
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "facebank",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg_ctl = str(self.bindir / "pg_ctl")
        log = str(self.root / "server.log")
        _run([pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "-t", "60", "start"])

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            _run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_server(bindir: Path, port: int) -> Iterator[PostgresServer]:
    """A started server for the block; stopped and deleted after it."""
    server = PostgresServer(bindir, port)
    try:
        server.start()
        yield server
    finally:
        server.remove()


def fresh_database(server_url: str) -> str:
    """A new empty database on the server; its SQLAlchemy URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"
