"""Face attributes on the model device, one batch per image and network: each attribute network
of the table (`ml.networks.table`) gives its fields of FaceAttributes through its step, and runs
only when one of its attributes is wanted."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from ml.networks.base import AttributeRole
from ml.networks.runner import ChipRunner
from ml.networks.table import ATTRIBUTE_NETWORKS, attribute_role
from ml.types import Detection, FaceAttributes, FaceMeshResult


class AttributeEstimator:
    """Runs, on the faces of one image, the attribute networks that the wanted attributes need
    (one call per network, which cross-request batching may join with other requests'). A
    network that is missing leaves its attributes unserved, and so does a network whose
    `needs` are missing."""

    def __init__(self, runners: dict[str, ChipRunner]) -> None:
        stages = {attribute_role(entry).stage for entry in ATTRIBUTE_NETWORKS}
        unknown = set(runners) - stages
        if unknown:
            raise ValueError(f"no attribute network is called {sorted(unknown)}")
        self.runners = runners
        self.served = frozenset().union(*(role.serves for role in _roles() if self._runs(role)))

    def _runs(self, role: AttributeRole) -> bool:
        return all(stage in self.runners for stage in (role.stage, *role.needs))

    def with_runners(self, wrap: Callable[[str, ChipRunner], ChipRunner]) -> AttributeEstimator:
        """The same estimator with each network's runner wrapped (e.g. in a batch queue)."""
        return AttributeEstimator({name: wrap(name, run) for name, run in self.runners.items()})

    def estimate(
        self,
        pixels: np.ndarray,
        faces: list[Detection],
        wanted: frozenset[str] | None = None,
        meshes: list[FaceMeshResult | None] | None = None,
    ) -> list[FaceAttributes]:
        """Per face, the attributes of `wanted` (every served one when None). `meshes` are the
        faces' meshes where the pipeline already ran the mesh network: a step whose fields are
        all known is skipped."""
        wanted = self.served if wanted is None else wanted & self.served
        if not faces:
            return []
        image = Image.fromarray(pixels)
        found = [FaceAttributes(mesh=mesh) for mesh in meshes or [None] * len(faces)]
        for role in _roles():
            known = role.known is not None and all(role.known(f) for f in found)
            if role.step is not None and wanted & _step_serves(role) and not known:
                given = role.step(image, faces, self.runners, wanted)
                found = [f.merged(new) for f, new in zip(found, given, strict=True)]
        return found


def _roles() -> list[AttributeRole]:
    return [attribute_role(entry) for entry in ATTRIBUTE_NETWORKS]


def _step_serves(role: AttributeRole) -> frozenset[str]:
    """What a network's step gives: its own attributes and those of networks run inside it."""
    inside = (other.serves for other in _roles() if role.stage in other.needs)
    return role.serves.union(*inside)
