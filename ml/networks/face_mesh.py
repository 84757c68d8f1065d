"""Dense face landmarks from MediaPipe's face mesh and iris networks, and what they say about
the eyes and the mouth.

The mesh network reads a 192 x 192 crop of a square region about the face, turned so that the
eyes are level and 1.5 times the face box's side, as MediaPipe crops a face detection for it;
it gives 468 points and a face-presence logit. The iris network reads a 64 x 64 crop about
each eye, 2.3 times the eye's corner-to-corner width, turned so that the corners are level; it
was trained on one eye, so the other eye is mirrored before and after (MediaPipe's rule). Both
take RGB in [0, 1]. Points come back in image pixels.

Readings, from published facial geometry rather than trained heads:
- eye opening: lid gap over corner-to-corner width, the eye aspect ratio of Soukupova and Cech
  (2016), averaged over three lid pairs and both eyes, on the iris network's eye outline (the
  mesh's own lids agree less with eyes labelled open or closed: benchmarks.attributes);
- mouth opening: inner-lip gap over mouth width;
- eye direction: the iris centre's offset from the corners' midpoint, in eye widths, turned into
  the eyeball's rotation with an average eye (fissure EYE_WIDTH_MM long on a ball
  EYEBALL_RADIUS_MM in radius). This is the eyes' direction in the head, independent of head
  pose, as Rekognition defines EyeDirection; zero pitch is the corner line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from ml.networks.base import Fields
from ml.networks.runner import ChipRunner
from ml.types import Detection, Pose

MOUTH_ATTRIBUTES = frozenset({"MOUTH_OPEN"})  # the mesh alone
IRIS_ATTRIBUTES = frozenset({"EYES_OPEN", "EYE_DIRECTION"})  # the iris network on the mesh's eyes
MESH_INPUT = 192
IRIS_INPUT = 64
FACE_REGION_SCALE = 1.5
EYE_REGION_SCALE = 2.3

# Mesh indices (MediaPipe's canonical face mesh). Eyes in image order for an upright face:
# the one on the image's left first; each as (corner, corner, ((upper lid, lower lid), ...)).
# The lid pairs are kept for the benchmark's comparison with the iris network's outline.
EYES = (
    (33, 133, ((160, 144), (159, 145), (158, 153))),
    (362, 263, ((385, 380), (386, 374), (387, 373))),
)
# The iris network's first 16 points outline the eye: corners at 0 and 8, the lower lid
# between them, the upper lid from 9 on; three (upper, lower) pairs face each other.
CONTOUR_CORNERS = (0, 8)
CONTOUR_LIDS = ((11, 3), (12, 4), (13, 5))
CONTOUR_POINTS = 16
MOUTH_CORNERS = (61, 291)
INNER_LIPS = ((81, 178), (13, 14), (311, 402))  # (upper, lower) inner-lip pairs
IRIS_CENTRE = 0  # the first of the iris network's five points

# Rekognition's 30 landmark types from mesh vertices (MediaPipe's canonical face mesh; a tuple
# is the mean of its vertices). "Left" is the image's left, as in Rekognition's example
# responses and MTCNN's five points: eyeLeft is the eye on the image's left. The pupils come
# from the iris network (the eye's centre without it).
EYE_POINTS = ((33, 133, 159, 145), (362, 263, 386, 374))  # corners, upper and lower lid
LANDMARK_VERTICES: dict[str, int | tuple[int, ...]] = {
    "eyeLeft": EYE_POINTS[0],
    "eyeRight": EYE_POINTS[1],
    "nose": 1,
    "mouthLeft": 61,
    "mouthRight": 291,
    "leftEyeBrowLeft": 70,
    "leftEyeBrowRight": 107,
    "leftEyeBrowUp": 105,
    "rightEyeBrowLeft": 336,
    "rightEyeBrowRight": 300,
    "rightEyeBrowUp": 334,
    "leftEyeLeft": 33,
    "leftEyeRight": 133,
    "leftEyeUp": 159,
    "leftEyeDown": 145,
    "rightEyeLeft": 362,
    "rightEyeRight": 263,
    "rightEyeUp": 386,
    "rightEyeDown": 374,
    "noseLeft": 64,
    "noseRight": 294,
    "mouthUp": 0,
    "mouthDown": 17,
    "upperJawlineLeft": 234,
    "midJawlineLeft": 172,
    "chinBottom": 152,
    "midJawlineRight": 397,
    "upperJawlineRight": 454,
}
PUPILS = ("leftPupil", "rightPupil")
# Left-right pairs (image left first) and the midline points that give the face's axes.
ACROSS_PAIRS = ((33, 263), (133, 362), (61, 291), (234, 454))
UP_TO, UP_FROM = (61, 291), (33, 263, 133, 362)  # mouth corners, eye corners
LANDMARK_TYPES = (*list(LANDMARK_VERTICES)[:23], *PUPILS, *list(LANDMARK_VERTICES)[23:])

# Thresholds fitted on 40 labelled LFW photos by `python -m benchmarks.attributes`
# (benchmarks/labels/eyes-mouth.json, 'fit'), then checked on the held-out photos.
EYES_OPEN_ABOVE = 0.194  # iris-network eye outline: lid gap over corner-to-corner width
MOUTH_OPEN_ABOVE = 0.094  # inner-lip gap over mouth width
VERDICT_SOFTNESS = 0.05  # how far from a threshold a ratio must be for high confidence
EYE_WIDTH_MM = 30.0
EYEBALL_RADIUS_MM = 12.0


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


@dataclass(frozen=True)
class FaceMeshResult:
    mesh: np.ndarray  # 468 x 2 image points
    presence: float  # the mesh network's face probability, 0-1
    # From the iris network, eyes in EYES order: each iris centre (2 x 2) and each eye's
    # outline (2 x CONTOUR_POINTS x 2).
    irises: np.ndarray | None = None
    eye_contours: np.ndarray | None = None
    # Each point's depth in image pixels, smaller towards the camera (MediaPipe's z).
    depth: np.ndarray | None = None

    def landmarks(self) -> list[tuple[str, float, float]]:
        """Rekognition's 30 landmark types in the order of its LandmarkType enum, (name, x, y)
        in image pixels."""
        points = []
        for name in LANDMARK_TYPES:
            if name in PUPILS:
                eye = PUPILS.index(name)
                centre = self.mesh[list(EYE_POINTS[eye])].mean(axis=0)
                x, y = centre if self.irises is None else self.irises[eye]
            else:
                x, y = self.mesh[list(np.atleast_1d(LANDMARK_VERTICES[name]))].mean(axis=0)
            points.append((name, float(x), float(y)))
        return points

    def pose(self) -> Pose | None:
        """Head pose from the mesh's 3D points: the face's own axes (eye corners, mouth corners
        and ears for left to right; the mouth corners' midpoint to the eye corners' for up,
        points that lie nearly in one plane of the face, where chin to forehead would tilt
        every face down by its depth), and from them Roll, Yaw and Pitch as `ml.pose` defines
        their signs. None without depth."""
        if self.depth is None:
            return None
        points = np.column_stack([self.mesh, self.depth])
        across = sum(points[right] - points[left] for left, right in ACROSS_PAIRS)
        up = points[list(UP_FROM)].mean(axis=0) - points[list(UP_TO)].mean(axis=0)
        x_axis = across / np.linalg.norm(across)
        y_axis = up - (up @ x_axis) * x_axis
        y_axis /= np.linalg.norm(y_axis)
        forward = np.cross(x_axis, y_axis)  # towards the camera: negative depth
        roll = math.degrees(math.atan2(x_axis[1], x_axis[0]))
        yaw = math.degrees(math.atan2(forward[0], -forward[2]))
        pitch = math.degrees(math.atan2(-forward[1], math.hypot(forward[0], forward[2])))
        return Pose(roll=roll, yaw=yaw, pitch=pitch)

    def eyes_open(self) -> tuple[bool, float] | None:
        """None without the iris network's eye outlines: the mesh's own lids agree less with
        labelled eyes (benchmarks/results/attributes.json)."""
        ratio = self.eye_opening()
        return None if ratio is None else _verdict(ratio, EYES_OPEN_ABOVE, self.presence)

    def mouth_open(self) -> tuple[bool, float]:
        return _verdict(self.mouth_opening(), MOUTH_OPEN_ABOVE, self.presence)

    def gaze(self) -> tuple[float, float, float] | None:
        """(yaw, pitch, confidence 0-100); None without the irises. Closed eyes show no iris,
        so the confidence is the face presence times how sure the eyes are open."""
        eyes = self.eyes_open()
        if self.irises is None or eyes is None:
            return None
        yaw, pitch = self.eye_direction()
        is_open, confidence = eyes
        eyes_open_probability = confidence / 100.0 if is_open else 1.0 - confidence / 100.0
        return yaw, pitch, 100.0 * self.presence * eyes_open_probability

    def eye_opening(self) -> float | None:
        """Mean lid gap over corner-to-corner width, over both eyes' outlines."""
        if self.eye_contours is None:
            return None
        openings = [
            opening(outline, *CONTOUR_CORNERS, CONTOUR_LIDS) for outline in self.eye_contours
        ]
        return float(np.mean(openings))

    def mouth_opening(self) -> float:
        return opening(self.mesh, *MOUTH_CORNERS, INNER_LIPS)

    def eye_direction(self) -> tuple[float, float]:
        """(yaw, pitch) of the eyes in the head, degrees: positive yaw towards the image's
        right (as Pose's yaw), positive pitch up."""
        assert self.irises is not None
        offsets = np.array([_iris_offset(self.mesh, eye, self.irises[eye]) for eye in range(2)])
        right, down = offsets.mean(axis=0)
        return _rotation(right), _rotation(-down)


def _verdict(ratio: float, threshold: float, presence: float) -> tuple[bool, float]:
    """Above the threshold or not, and a confidence 0-100: 50 at the threshold, nearing 100 a
    VERDICT_SOFTNESS of the ratio away from it, scaled by the face presence."""
    certainty = 0.5 + 0.5 * math.tanh(abs(ratio - threshold) / VERDICT_SOFTNESS)
    return ratio > threshold, 100.0 * certainty * presence


def opening(mesh: np.ndarray, first: int, second: int, pairs: tuple[tuple[int, int], ...]) -> float:
    width = float(np.linalg.norm(mesh[second] - mesh[first]))
    gaps = [float(np.linalg.norm(mesh[upper] - mesh[lower])) for upper, lower in pairs]
    return float(np.mean(gaps)) / max(width, 1e-6)


def _iris_offset(mesh: np.ndarray, eye: int, iris: np.ndarray) -> tuple[float, float]:
    """The iris centre's offset from the corners' midpoint, in eye widths, along the corner
    line (towards the image's right) and across it (down)."""
    first, second, _ = EYES[eye]
    start, end = mesh[first], mesh[second]
    width = max(float(np.linalg.norm(end - start)), 1e-6)
    along = (end - start) / width
    across = np.array([-along[1], along[0]])
    offset = iris - (start + end) / 2
    return float(offset @ along) / width, float(offset @ across) / width


def _rotation(offset_in_eye_widths: float) -> float:
    ratio = offset_in_eye_widths * EYE_WIDTH_MM / EYEBALL_RADIUS_MM
    return math.degrees(math.asin(max(-1.0, min(1.0, ratio))))


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
) -> list[Fields]:
    """The mesh of every face, with the irises when one of theirs is wanted."""
    face_mesh = face_mesh_of(runners)
    assert face_mesh is not None  # the step runs only with the mesh network
    meshes = face_mesh.run(image, faces, irises=bool(wanted & IRIS_ATTRIBUTES))
    return [{"mesh": mesh} for mesh in meshes]
