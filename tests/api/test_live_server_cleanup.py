"""An interrupted test run leaves no server behind: a live server, and a throwaway PostgreSQL,
die with their starter."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.testing.local_server import ROOT

STARTER = """
import sys, time
from pathlib import Path
from service.testing.local_server import start_server
server = start_server(Path(sys.argv[1]))
print(server.process.pid, flush=True)
time.sleep(600)
"""
POSTGRES_STARTER = """
import time
from service.testing.local_server import free_port
from tests.support.postgres import find_bindir, postgres_server
with postgres_server(find_bindir(), free_port()) as server:
    print(server._process.pid, server.root, flush=True)
    time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\tZ" in status.read_text().split("State:")[1][:4])


@pytest.mark.skipif(sys.platform != "linux", reason="uses the Linux parent-death signal")
@pytest.mark.parametrize("starter_code", [STARTER, POSTGRES_STARTER], ids=["server", "postgres"])
def test_server_dies_when_the_test_process_is_killed(
    tmp_path: Path, starter_code: str, request: pytest.FixtureRequest
) -> None:
    if starter_code == POSTGRES_STARTER:
        request.getfixturevalue("postgres_bindir")  # skips, or fails on CI, without PostgreSQL
    starter = subprocess.Popen(
        [sys.executable, "-c", starter_code, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert starter.stdout is not None
    pid, *left_behind = starter.stdout.readline().split()  # and PostgreSQL's folder
    server_pid = int(pid)
    assert alive(server_pid)
    starter.send_signal(signal.SIGKILL)  # no teardown, no atexit: the hardest interruption
    starter.wait()
    deadline = time.monotonic() + 10
    while alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(server_pid)
    for folder in left_behind:  # the killed starter could not remove it
        shutil.rmtree(folder, ignore_errors=True)
