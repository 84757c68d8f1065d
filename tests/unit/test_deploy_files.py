"""The deployment files parse as their tools read them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from service.testing.local_server import ROOT


def _missing(tool: str) -> str:
    hint = f"{tool} is needed (.ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(hint)  # CI checks the deployment files, never skips them
    pytest.skip(hint)


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze") or _missing("systemd-analyze (Debian's systemd)")
    unit = (ROOT / "deploy" / "facebank.service").read_text()
    # Verified against this checkout, whose venv stands where /opt/facebank's would.
    local = tmp_path / "facebank.service"
    local.write_text(unit.replace("/opt/facebank", str(ROOT)))
    checked = subprocess.run(
        [analyze, "verify", str(local)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in checked.stderr.splitlines() if "facebank.service" in line]
    assert checked.returncode == 0 and problems == [], checked.stderr


def test_the_compose_file_validates(tmp_path: Path) -> None:
    compose = shutil.which("docker-compose") or _missing("docker-compose (Debian's package)")
    for name in ("compose.yaml", "compose.gpu.yaml"):
        (tmp_path / name).write_text((ROOT / "deploy" / name).read_text())
    for beside in ("keys.json", "postgres.secret", "minio.env", "facebank.env"):
        (tmp_path / beside).write_text("")
    cpu = [compose, "-f", str(tmp_path / "compose.yaml")]
    gpu = [*cpu, "-f", str(tmp_path / "compose.gpu.yaml")]
    for files, on_gpu in ((cpu, False), (gpu, True)):
        checked = subprocess.run([*files, "config"], capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stderr
        stanza = "capabilities:" in checked.stdout and "- gpu" in checked.stdout
        assert stanza == on_gpu  # the CPU variant reserves no GPU
        # The password is written once, in the secret both services read.
        assert "FACEBANK_DATABASE_PASSWORD_FILE: /run/secrets/postgres_password" in checked.stdout
        assert "mc mb --ignore-existing local/facebank" in checked.stdout  # the bucket is made
