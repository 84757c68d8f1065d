"""The house matches its plan: every import runs down the layers of docs/development.md (the
contracts in pyproject.toml), and the server's start-up imports only the runtime: no
provisioning (downloads, converters and their readers), no evaluation, no client tools."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.testing.local_server import ROOT

# Imports the lifespan of `facebank serve` (settings, app, models loaded and warmed, indexes
# loaded), then prints every module it brought in.
START_UP = """
import asyncio, sys
from service.cli import _settings, configure_logging
from service.app import create_app

settings = _settings()
configure_logging(settings)
app = create_app(settings)

async def start_and_stop():
    async with app.router.lifespan_context(app):
        assert app.state.facebank.ready

asyncio.run(start_and_stop())
print("\\n".join(sorted(sys.modules)))
"""
# Packages that only provisioning, evaluation or client tools use.
NOT_AT_RUN_TIME = ("ml.provision", "ml.evaluation", "service.client", "onnx", "tflite", "h5py")


def modules_loaded_by(script: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """The module names `script` prints, run by this Python in a process of its own."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_serving_imports_nothing_of_provisioning_evaluation_or_clients(tmp_path: Path) -> None:
    env = {**os.environ, "FACEBANK_DATA_DIR": str(tmp_path), "FACEBANK_DEVICE": "cpu"}
    env["FACEBANK_EMBED_CPU_PRECISION"] = "auto"  # times ONNX Runtime on the exported graph too
    modules = modules_loaded_by(START_UP, env=env)
    assert "ml.pipeline" in modules and "service.app" in modules  # it did walk the start-up
    assert "onnxruntime" in modules  # and ran the graph, without the onnx package below
    unwanted = [m for m in modules if any(m == p or m.startswith(f"{p}.") for p in NOT_AT_RUN_TIME)]
    assert unwanted == []


def test_every_import_runs_down_the_layers() -> None:
    checked = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout[-4000:]
    assert "0 broken" in checked.stdout


# The client commands (and the container's health probe, run every few seconds) as the
# `facebank` command runs them, up to the point of calling a server.
CLIENT_COMMANDS = """
import sys
from service.cli import main

try:
    main(["healthcheck", "--port", sys.argv[1], "--timeout", "1"])
except SystemExit:
    pass  # nothing listens there: the probe fails, as it should
import service.client.evaluation_report, service.client.importer, service.client.migrate
print("\\n".join(sorted(sys.modules)))
"""


def test_client_commands_and_the_health_probe_load_no_models() -> None:
    from service.testing.local_server import free_port

    modules = modules_loaded_by(CLIENT_COMMANDS, str(free_port()))
    assert "service.client.migrate" in modules
    assert [m for m in modules if m == "torch" or m.startswith(("torch.", "ml.networks"))] == []
