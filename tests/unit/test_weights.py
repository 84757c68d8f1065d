"""Weights provisioning: manifest checks and the optional VGGFace2 model version."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.embedder import TorchEmbedder, build_network, load_network
from ml.registry import FACENET_2017, VGGFACE2_2018
from ml.weights import WeightsError, install_vggface2, verified_weights_path
from tests.support.live_server import ROOT


@pytest.fixture(scope="module")
def vggface2_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint laid out like facenet-pytorch's VGGFace2 release (random values)."""
    torch.manual_seed(0)
    state = build_network(VGGFACE2_2018).state_dict()
    state["logits.weight"] = torch.zeros(8631, 512)
    state["logits.bias"] = torch.zeros(8631)
    path = tmp_path_factory.mktemp("torch-home") / VGGFACE2_2018.weights_file
    torch.save(state, path)
    return path


def test_vggface2_becomes_a_512d_model_version(tmp_path: Path, vggface2_file: Path) -> None:
    entry = install_vggface2(tmp_path, vggface2_file)
    assert entry.version == "facenet-vggface2-20180402"
    weights = verified_weights_path(tmp_path, VGGFACE2_2018)
    embedder = TorchEmbedder(
        VGGFACE2_2018, load_network(VGGFACE2_2018, weights), torch.device("cpu")
    )
    crops = np.random.default_rng(0).integers(0, 256, (2, 160, 160, 3), dtype=np.uint8)
    vectors = embedder.embed(crops)
    assert vectors.shape == (2, 512)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_file_that_is_not_vggface2_is_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pt"
    torch.save(build_network(FACENET_2017).state_dict(), wrong)  # a 128-d head
    with pytest.raises(WeightsError, match="not an InceptionResnetV1 VGGFace2"):
        install_vggface2(tmp_path / "models", wrong)


def test_missing_manifest_entry_names_the_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="facebank models fetch"):
        verified_weights_path(tmp_path, FACENET_2017)


def test_server_without_a_calibration_refuses_to_start(tmp_path: Path, vggface2_file: Path) -> None:
    install_vggface2(tmp_path, vggface2_file)
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **os.environ,
            "FACEBANK_MODELS_DIR": str(tmp_path),
            "FACEBANK_MODEL_VERSION": VGGFACE2_2018.version,
            "FACEBANK_PORT": "1",
        },
    )
    assert result.returncode != 0
    assert "benchmarks.verification --model-version facenet-vggface2-20180402" in result.stderr
