"""The server refuses to start in unsafe or unprovisioned states, saying what fixes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.testing.local_server import ROOT


def run_serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "serve"],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_weights_names_the_fix(tmp_path: Path) -> None:
    result = run_serve({"FACEBANK_MODELS_DIR": str(tmp_path), "FACEBANK_PORT": "1"})
    assert result.returncode != 0
    assert "facebank models fetch" in result.stderr


def test_public_interface_without_keys_is_refused() -> None:
    result = run_serve({"FACEBANK_HOST": "0.0.0.0", "FACEBANK_ACCESS_KEYS": ""})
    assert result.returncode != 0
    assert "FACEBANK_ACCESS_KEYS" in result.stderr


def test_corrupt_weights_are_detected(tmp_path: Path, models_dir: Path) -> None:
    (tmp_path / "manifest.json").write_text((models_dir / "manifest.json").read_text())
    (tmp_path / "facenet-20170512-110547.pt").write_bytes(b"not the weights")
    result = run_serve({"FACEBANK_MODELS_DIR": str(tmp_path), "FACEBANK_PORT": "1"})
    assert result.returncode != 0
    assert "checksum" in result.stderr
