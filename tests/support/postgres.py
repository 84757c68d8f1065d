"""A throwaway PostgreSQL server for the test session, from the installed server binaries.

PostgreSQL refuses to run as root, and CI runs as root: then the server runs as the `postgres`
account that Debian's package creates, in a temporary directory it owns. (pytest-postgresql runs
pg_ctl as the invoking user inside pytest's root-only temp dirs, so it cannot work there.)

The server runs in the foreground as pytest's child, not daemonised by pg_ctl, and the kernel
kills it when pytest ends however it ends: a killed test run leaves no server behind.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from service.testing.local_server import die_with_parent

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
        command = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        command += ["-k", str(self.root), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        # As root, Popen changes to the postgres account before die_with_parent runs: the
        # kernel clears the parent-death signal on a change of user.
        account = "postgres" if os.geteuid() == 0 else None
        with (self.root / "server.log").open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=log,
                preexec_fn=die_with_parent,
                user=account,
                group=account,
                extra_groups=[] if account else None,
            )
        self._wait_until_ready()

    def _wait_until_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        plain = self.url.replace("postgresql+psycopg://", "postgresql://")
        while True:
            if self._process.poll() is not None:
                log = (self.root / "server.log").read_text(errors="replace")
                raise RuntimeError(f"PostgreSQL exited while starting:\n{log}")
            try:
                psycopg.connect(plain, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """Immediate shutdown (SIGQUIT), as a crash would leave it; waits for the exit."""
        process = getattr(self, "_process", None)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            process.wait(timeout=60)

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
