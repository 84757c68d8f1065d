"""QualityFilter levels: which faces a level keeps, and why it rejects the others.

Cut-offs per level (a face must meet every one of its level's bars):

| level  | Confidence >= | box side >= px | Sharpness >= | Brightness >= | abs Yaw, Pitch <= |
| ------ | ------------- | -------------- | ------------ | ------------- | ----------------- |
| LOW    | 90            | 20             | 4            | 8             | 75                |
| MEDIUM | 97            | 32             | 10           | 15            | 60                |
| HIGH   | 99.5          | 48             | 25           | 25            | 40                |

(box side: the shorter side of the face box in pixels.)
AUTO is MEDIUM; NONE keeps every face. Reasons use Rekognition's names.
"""

from __future__ import annotations

from dataclasses import dataclass

from ml.types import FaceDescription


@dataclass(frozen=True)
class QualityBar:
    min_confidence: float
    min_side_px: float
    min_sharpness: float
    min_brightness: float
    max_pose_degrees: float


BARS = {
    "LOW": QualityBar(90.0, 20.0, 4.0, 8.0, 75.0),
    "MEDIUM": QualityBar(97.0, 32.0, 10.0, 15.0, 60.0),
    "HIGH": QualityBar(99.5, 48.0, 25.0, 25.0, 40.0),
}
BARS["AUTO"] = BARS["MEDIUM"]


def rejection_reasons(face: FaceDescription, level: str) -> list[str]:
    """Rekognition reason names for each bar of `level` the face fails; empty if it passes."""
    bar = BARS.get(level)
    if bar is None:  # NONE
        return []
    box = face.detection.box
    checks = [
        (face.detection.probability * 100.0 < bar.min_confidence, "LOW_CONFIDENCE"),
        (min(box.width, box.height) < bar.min_side_px, "SMALL_BOUNDING_BOX"),
        (face.quality.sharpness < bar.min_sharpness, "LOW_SHARPNESS"),
        (face.quality.brightness < bar.min_brightness, "LOW_BRIGHTNESS"),
        (max(abs(face.pose.yaw), abs(face.pose.pitch)) > bar.max_pose_degrees, "EXTREME_POSE"),
    ]
    return [reason for failed, reason in checks if failed]


def passes(face: FaceDescription, level: str) -> bool:
    return not rejection_reasons(face, level)
