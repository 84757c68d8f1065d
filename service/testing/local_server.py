"""Start `facebank serve` as a subprocess on a free loopback port, for tests and benchmarks.

The server is tied to the process that started it: on Linux the kernel kills it when that
process ends, however it ends (Ctrl-C, SIGTERM, SIGKILL, a timeout), so an interrupted test
run never leaves a server holding a gigabyte behind."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL it when its parent exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class ServerStartError(RuntimeError):
    """The server exited or never became ready; the message holds its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def start_server(
    tmp: Path, extra_env: dict[str, str] | None = None, timeout: float = 120.0
) -> LiveServer:
    """A server on CPU with its data under `tmp` (unless extra_env names a data dir), ready."""
    port = free_port()
    log = tmp / f"server-{port}.log"
    env = {
        **os.environ,
        "FACEBANK_PORT": str(port),
        "FACEBANK_DATA_DIR": str(tmp / f"data-{port}"),
        "FACEBANK_DEVICE": "cpu",
        "FACEBANK_TORCH_THREADS": "2",
        # botocore must never ask a cloud metadata service for credentials from a test machine
        "AWS_EC2_METADATA_DISABLED": "true",
        **(extra_env or {}),
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log)
    wait_ready(server, timeout)
    return server


def wait_ready(server: LiveServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerStartError(f"server exited early:\n{server.log.read_text()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    server.process.kill()
    raise ServerStartError(f"server not ready after {timeout}s:\n{server.log.read_text()}")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()


@contextmanager
def running_server(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    """A ready server for the duration of the block, stopped however the block ends."""
    server = start_server(tmp, extra_env)
    try:
        yield server
    finally:
        stop_server(server)


@contextmanager
def endpoint(given: str | None, work: str) -> Iterator[str]:
    """`given` if set; otherwise a fresh server's URL for the duration of the block."""
    if given is not None:
        yield given
        return
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / work
    tmp.mkdir(exist_ok=True)
    with running_server(tmp, {"FACEBANK_DATA_DIR": str(tmp / f"data-{os.getpid()}")}) as server:
        yield server.url


def start_moto(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """moto's server (S3, SNS, SQS) on a free loopback port, tied to this process like a
    facebank server; its URL once it answers."""
    port = free_port()
    with log.open("wb") as sink:
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    return moto, url


SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which has python3-gi; the venv's has not
RTSP_CAMERA = Path(__file__).with_name("rtsp_camera.py")


def start_rtsp_camera(
    video: Path, port: int, path: str, log: Path, credentials: tuple[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """GStreamer's RTSP server playing `video` (rtsp_camera.py), tied to this process like a
    facebank server; returned once it listens."""
    command = [SYSTEM_PYTHON, str(RTSP_CAMERA), "--video", str(video), "--port", str(port)]
    command += ["--path", path]
    if credentials is not None:
        command += ["--user", credentials[0], "--password", credentials[1]]
    with log.open("ab") as sink:  # the camera keeps its own descriptor
        camera = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=sink,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
    assert camera.stdout is not None
    ready = camera.stdout.readline()
    if b"ready" not in ready:
        camera.kill()
        raise ServerStartError(f"the RTSP camera did not start: {log.read_text()[-2000:]}")
    return camera
