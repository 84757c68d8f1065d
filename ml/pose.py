"""Head pose (roll, yaw, pitch in degrees) estimated from the five MTCNN landmarks.

Method: roll is the angle of the line through the eyes. The landmarks are then rotated by -roll
about the eye midpoint. A rigid average face places the nose tip in front of the eye plane by
NOSE_DEPTH times the inter-ocular distance (IOD) and, seen frontally, a fraction NOSE_DROP of the
way from the eye line to the mouth line. Turning the head by yaw moves the nose tip sideways by
depth*sin(yaw) while the eyes' projected distance shrinks by cos(yaw), so
yaw = atan(dx / (NOSE_DEPTH * IOD_projected)); pitch follows the same way from the nose's vertical
offset against its frontal position, measured in eye-to-mouth distances. Positive yaw: the face
turns towards the image's right; positive pitch: the face tilts up; positive roll: clockwise in
the image. These are geometric estimates, not a trained pose regressor; their error against
ground-truth head poses has not been measured.
"""

from __future__ import annotations

import math

import numpy as np

from ml.types import Pose

NOSE_DEPTH = 0.55  # nose-tip protrusion over inter-ocular distance, average adult face
NOSE_DROP = 0.55  # frontal nose-tip height between eye line (0) and mouth line (1)
MOUTH_DEPTH_RATIO = 0.9  # eye-to-mouth distance over inter-ocular distance, average adult face


def estimate_pose(landmarks: np.ndarray) -> Pose:
    eye_left, eye_right = landmarks[0], landmarks[1]
    eye_vector = eye_right - eye_left
    roll = math.degrees(math.atan2(float(eye_vector[1]), float(eye_vector[0])))
    centre = (eye_left + eye_right) / 2.0
    upright = _rotate(landmarks - centre, -math.radians(roll))
    iod = max(float(np.linalg.norm(eye_vector)), 1e-6)
    mouth_y = float((upright[3, 1] + upright[4, 1]) / 2.0)
    nose_x, nose_y = float(upright[2, 0]), float(upright[2, 1])
    yaw = math.degrees(math.atan2(nose_x, NOSE_DEPTH * iod))
    eye_to_mouth = max(mouth_y, 1e-6)
    offset = NOSE_DROP - nose_y / eye_to_mouth
    pitch = math.degrees(math.atan2(offset * MOUTH_DEPTH_RATIO, NOSE_DEPTH))
    return Pose(roll=_wrap(roll), yaw=_wrap(yaw), pitch=_wrap(pitch))


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    return np.asarray(points @ rotation.T, dtype=np.float64)


def _wrap(angle: float) -> float:
    return (angle + 180.0) % 360.0 - 180.0
