"""`facebank models fetch`: every network of the table that comes from a package, provisioned
with its converter; and the user-supplied VGGFace2 checkpoint."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from ml.manifest import ManifestEntry, WeightsError
from ml.networks.table import NETWORKS, VGGFACE2_2018_NETWORK
from ml.provision.embedder_graph import provision_graph
from ml.provision.facenet_keras import convert_keras_facenet
from ml.provision.fer_keras import convert_keras_emotions
from ml.provision.keras_hdf5 import keras_tensors
from ml.provision.onnx_reader import read_onnx
from ml.provision.packaged import provision_packaged, record_file
from ml.provision.tflite_reader import read_tflite


def _saved_graph(graph: object, tensors: dict[str, torch.Tensor]) -> dict[str, object]:
    return {"graph": json.dumps(graph), "tensors": tensors}


# What each Source.converter name of the table runs on the extracted file.
CONVERTERS: dict[str, Callable[[Path], object]] = {
    "keras-facenet": convert_keras_facenet,
    "keras-fer": lambda path: convert_keras_emotions(keras_tensors(path)),
    "onnx": lambda path: _saved_graph(*read_onnx(path)),
    "tflite": lambda path: _saved_graph(*read_tflite(path)),
}


def fetch_networks(
    models_dir: Path, local_packages: Iterable[Path] = (), force: bool = False
) -> list[ManifestEntry]:
    """Provision every packaged network (idempotent). `local_packages` are archives to use
    instead of downloading, matched to the table by file name."""
    given = {path.name: path for path in local_packages}
    entries = []
    for network in NETWORKS:
        if network.source is None:
            continue
        convert = CONVERTERS[network.source.converter]
        local = given.get(network.source.package.filename)
        entries.append(provision_packaged(models_dir, network, convert, local, force))
        if network.attribute is None:  # an embedder: its ONNX graph too
            entries.append(provision_graph(models_dir, network, force))
    return entries


def install_vggface2(models_dir: Path, supplied: Path) -> ManifestEntry:
    """Take a user-supplied VGGFace2 checkpoint as the second model version."""
    models_dir.mkdir(parents=True, exist_ok=True)
    state = _load_state(supplied)
    if state.get("last_linear.weight", torch.empty(0)).shape != (512, 1792):
        raise WeightsError(f"{supplied} is not an InceptionResnetV1 VGGFace2 checkpoint")
    target = models_dir / VGGFACE2_2018_NETWORK.file
    if supplied.resolve() != target.resolve():
        shutil.copyfile(supplied, target)
    entry = record_file(
        models_dir, VGGFACE2_2018_NETWORK.name, target, f"user-supplied {supplied.name}"
    )
    provision_graph(models_dir, VGGFACE2_2018_NETWORK)
    return entry


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise WeightsError(f"cannot read {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{path} does not hold a state dict")
    return state
