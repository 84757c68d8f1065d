"""The provisioned model files as the server sees them: a folder and its manifest, each file
checked against the sha256 recorded when it was provisioned (`ml.provision` writes both).
Nothing here downloads or converts."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

MANIFEST_NAME = "manifest.json"


class WeightsError(RuntimeError):
    """Weights are missing, corrupt or cannot be provisioned."""


@dataclass(frozen=True)
class ManifestEntry:
    version: str
    file: str
    sha256: str
    source: str
    created: str


def default_models_dir() -> Path:
    """A cache directory outside the data dir, so a fresh FACEBANK_DATA_DIR keeps the weights."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "facebank" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(models_dir: Path) -> dict[str, ManifestEntry]:
    path = models_dir / MANIFEST_NAME
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    return {key: ManifestEntry(**value) for key, value in raw.get("models", {}).items()}


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


def is_provisioned(models_dir: Path, name: str, file: str) -> bool:
    try:
        verified_file(models_dir, name, file)
    except WeightsError:
        return False
    return True
