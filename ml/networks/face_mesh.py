"""Dense face landmarks from MediaPipe's face mesh and iris networks (what their points say is
read in `ml.mesh`; the value they give is `ml.types.FaceMeshResult`).

The mesh network reads a 192 x 192 crop of a square region about the face, turned so that the
eyes are level and 1.5 times the face box's side, as MediaPipe crops a face detection for it;
it gives 468 points and a face-presence logit. The iris network reads a 64 x 64 crop about
each eye, 2.3 times the eye's corner-to-corner width, turned so that the corners are level; it
was trained on one eye, so the other eye is mirrored before and after (MediaPipe's rule). Both
take RGB in [0, 1]. Points come back in image pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from ml.mesh import CONTOUR_POINTS, EYES, IRIS_CENTRE
from ml.networks.runner import ChipRunner
from ml.types import Detection, FaceAttributes, FaceMeshResult

MOUTH_ATTRIBUTES = frozenset({"MOUTH_OPEN"})  # the mesh alone
IRIS_ATTRIBUTES = frozenset({"EYES_OPEN", "EYE_DIRECTION"})  # the iris network on the mesh's eyes
MESH_INPUT = 192
IRIS_INPUT = 64
FACE_REGION_SCALE = 1.5
EYE_REGION_SCALE = 2.3


@dataclass(frozen=True)
class Region:
    """A square of the image: centre, side and turn (radians, the image's clockwise angle)."""

    centre_x: float
    centre_y: float
    side: float
    angle: float

    def to_image(self, size: int, mirrored: bool = False) -> np.ndarray:
        """3 x 3 matrix from a size x size crop's pixel coordinates to the image's."""
        scale = self.side / size
        cos, sin = math.cos(self.angle) * scale, math.sin(self.angle) * scale
        flip = -1.0 if mirrored else 1.0
        linear = np.array([[cos * flip, -sin], [sin * flip, cos]])
        offset = np.array([self.centre_x, self.centre_y]) - linear @ np.array([size, size]) / 2
        matrix = np.eye(3)
        matrix[:2, :2], matrix[:2, 2] = linear, offset
        return matrix


def crop(image: Image.Image, region: Region, size: int, mirrored: bool = False) -> np.ndarray:
    """size x size x 3 uint8 of the region (black past the frame, as MediaPipe pads)."""
    matrix = region.to_image(size, mirrored)
    # PIL's affine reads the input at (a x + b y + c, d x + e y + f) for each output pixel.
    data = tuple(matrix[:2].reshape(-1))
    warped = image.transform((size, size), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)
    return np.asarray(warped, dtype=np.uint8)


def project(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """N x 2 crop points to image points."""
    return np.asarray(points @ matrix[:2, :2].T + matrix[:2, 2])


def face_region(face: Detection) -> Region:
    """The mesh network's crop: about the face box, level eyes, FACE_REGION_SCALE its side."""
    eye_a, eye_b = face.landmarks[0], face.landmarks[1]
    angle = math.atan2(float(eye_b[1] - eye_a[1]), float(eye_b[0] - eye_a[0]))
    box = face.box
    side = max(box.width, box.height) * FACE_REGION_SCALE
    return Region((box.left + box.right) / 2, (box.top + box.bottom) / 2, side, angle)


def eye_region(mesh: np.ndarray, eye: int) -> Region:
    first, second, _ = EYES[eye]
    start, end = mesh[first], mesh[second]
    width = float(np.linalg.norm(end - start))
    angle = math.atan2(float(end[1] - start[1]), float(end[0] - start[0]))
    centre = (start + end) / 2
    return Region(float(centre[0]), float(centre[1]), max(width, 1.0) * EYE_REGION_SCALE, angle)


class FaceMesh:
    """Runs the mesh network on every face of an image in one call, then the iris network on
    every eye in one call."""

    def __init__(self, mesh: ChipRunner, iris: ChipRunner | None) -> None:
        self.mesh = mesh
        self.iris = iris

    def run(
        self, image: Image.Image, faces: list[Detection], irises: bool = True
    ) -> list[FaceMeshResult]:
        """The mesh of every face, and the irises when asked for and the network is there."""
        if not faces:
            return []
        regions = [face_region(face) for face in faces]
        chips = np.stack([crop(image, region, MESH_INPUT) for region in regions])
        points, logits = self.mesh(chips)
        per_face = points.reshape(len(faces), -1, 3)
        meshes = [
            project(found[:, :2], region.to_image(MESH_INPUT))
            for found, region in zip(per_face, regions, strict=True)
        ]
        # Depth in the crop's pixels, scaled like x and y: the turn about the image's own axis
        # that the crop undid leaves it unchanged.
        depths = [
            found[:, 2] * region.side / MESH_INPUT
            for found, region in zip(per_face, regions, strict=True)
        ]
        presence = 1.0 / (1.0 + np.exp(-logits.reshape(-1)))
        found = [
            FaceMeshResult(mesh, float(p), depth=depth)
            for mesh, p, depth in zip(meshes, presence, depths, strict=True)
        ]
        if not irises or self.iris is None:
            return found
        return [
            replace(result, irises=centres, eye_contours=outlines)
            for result, (centres, outlines) in zip(found, self._eyes(image, meshes), strict=True)
        ]

    def _eyes(
        self, image: Image.Image, meshes: list[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per face: both iris centres (2 x 2) and both eye outlines (2 x 16 x 2)."""
        assert self.iris is not None
        # The second eye is mirrored: the network knows one eye only.
        eyes = [(eye_region(mesh, eye), eye == 1) for mesh in meshes for eye in range(2)]
        chips = np.stack([crop(image, region, IRIS_INPUT, mirrored) for region, mirrored in eyes])
        contours, irises = self.iris(chips)
        points = np.concatenate(
            [
                irises.reshape(len(eyes), 5, 3)[:, IRIS_CENTRE : IRIS_CENTRE + 1, :2],
                contours.reshape(len(eyes), -1, 3)[:, :CONTOUR_POINTS, :2],
            ],
            axis=1,
        )
        found = [
            project(eye_points, region.to_image(IRIS_INPUT, mirrored))
            for eye_points, (region, mirrored) in zip(points, eyes, strict=True)
        ]
        return [
            (np.stack([found[i][0], found[i + 1][0]]), np.stack([found[i][1:], found[i + 1][1:]]))
            for i in range(0, len(found), 2)
        ]


def mirrored_type(name: str) -> str:
    """The landmark type a point of `name` becomes in the mirror image (Left and Right swap)."""
    swapped = name.replace("Left", "\0").replace("Right", "Left").replace("\0", "Right")
    return swapped.replace("left", "\0").replace("right", "left").replace("\0", "right")


def face_mesh_of(runners: Mapping[str, ChipRunner]) -> FaceMesh | None:
    """The mesh (with the irises where provisioned), or None without the mesh network."""
    mesh = runners.get("mesh")
    return None if mesh is None else FaceMesh(mesh, runners.get("iris"))


def mesh_step(
    image: Image.Image,
    faces: list[Detection],
    runners: Mapping[str, ChipRunner],
    wanted: frozenset[str],
) -> list[FaceAttributes]:
    """The mesh of every face, with the irises when one of theirs is wanted."""
    face_mesh = face_mesh_of(runners)
    assert face_mesh is not None  # the step runs only with the mesh network
    meshes = face_mesh.run(image, faces, irises=bool(wanted & IRIS_ATTRIBUTES))
    return [FaceAttributes(mesh=mesh) for mesh in meshes]
