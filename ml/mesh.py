"""The face mesh's topology (vertex numbers of MediaPipe's canonical face mesh, and points of its
iris network's eye outline) and what its points say, as plain geometry on arrays: Rekognition's
30 landmarks, head pose, eye and mouth opening, eye direction. The value the networks produce
is `ml.types.FaceMeshResult`; the networks that produce it are in `ml.networks.face_mesh`.

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

import numpy as np

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


def landmark_points(mesh: np.ndarray, irises: np.ndarray | None) -> list[tuple[str, float, float]]:
    """Rekognition's 30 landmark types in the order of its LandmarkType enum, (name, x, y)
    in image pixels; the pupils from the irises, else the eyes' centres."""
    points = []
    for name in LANDMARK_TYPES:
        if name in PUPILS:
            eye = PUPILS.index(name)
            centre = mesh[list(EYE_POINTS[eye])].mean(axis=0)
            x, y = centre if irises is None else irises[eye]
        else:
            x, y = mesh[list(np.atleast_1d(LANDMARK_VERTICES[name]))].mean(axis=0)
        points.append((name, float(x), float(y)))
    return points


def head_pose(mesh: np.ndarray, depth: np.ndarray) -> tuple[float, float, float]:
    """(roll, yaw, pitch) in degrees from the mesh's 3D points: the face's own axes (eye
    corners, mouth corners and ears for left to right; the mouth corners' midpoint to the eye
    corners' for up, points that lie nearly in one plane of the face, where chin to forehead
    would tilt every face down by its depth), with the signs `ml.pose` defines."""
    points = np.column_stack([mesh, depth])
    across = sum(points[right] - points[left] for left, right in ACROSS_PAIRS)
    up = points[list(UP_FROM)].mean(axis=0) - points[list(UP_TO)].mean(axis=0)
    x_axis = across / np.linalg.norm(across)
    y_axis = up - (up @ x_axis) * x_axis
    y_axis /= np.linalg.norm(y_axis)
    forward = np.cross(x_axis, y_axis)  # towards the camera: negative depth
    roll = math.degrees(math.atan2(x_axis[1], x_axis[0]))
    yaw = math.degrees(math.atan2(forward[0], -forward[2]))
    pitch = math.degrees(math.atan2(-forward[1], math.hypot(forward[0], forward[2])))
    return roll, yaw, pitch


def verdict(ratio: float, threshold: float, presence: float) -> tuple[bool, float]:
    """Above the threshold or not, and a confidence 0-100: 50 at the threshold, nearing 100 a
    VERDICT_SOFTNESS of the ratio away from it, scaled by the face presence."""
    certainty = 0.5 + 0.5 * math.tanh(abs(ratio - threshold) / VERDICT_SOFTNESS)
    return ratio > threshold, 100.0 * certainty * presence


def eye_opening(eye_contours: np.ndarray) -> float:
    """Mean lid gap over corner-to-corner width, over both eyes' outlines."""
    openings = [opening(outline, *CONTOUR_CORNERS, CONTOUR_LIDS) for outline in eye_contours]
    return float(np.mean(openings))


def mouth_opening(mesh: np.ndarray) -> float:
    return opening(mesh, *MOUTH_CORNERS, INNER_LIPS)


def eye_direction(mesh: np.ndarray, irises: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) of the eyes in the head, degrees: positive yaw towards the image's right
    (as Pose's yaw), positive pitch up."""
    offsets = np.array([_iris_offset(mesh, eye, irises[eye]) for eye in range(2)])
    right, down = offsets.mean(axis=0)
    return _rotation(right), _rotation(-down)


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
