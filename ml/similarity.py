"""Cosine similarity -> Rekognition's 0-100 Similarity, through a versioned calibration file.

A calibration is a list of knots (cosine, similarity), strictly increasing in both, from
cosine -1 to cosine 1; Similarity is the piecewise-linear interpolation between them, which is
monotone by construction. `ml/evaluation/calibration_fit.py` holds the fitting rule; the
project's calibration ships in ml/calibration/, and a deployment's own (`facebank calibrate`)
is loaded over it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np


class CalibrationError(ValueError):
    """A calibration file that is missing or does not describe a monotone map."""


@dataclass(frozen=True)
class Calibration:
    model_version: str
    calibration_version: str
    cosines: tuple[float, ...]
    similarities: tuple[float, ...]

    def __post_init__(self) -> None:
        c, s = np.asarray(self.cosines), np.asarray(self.similarities)
        if len(c) < 2 or len(c) != len(s):
            raise CalibrationError("a calibration needs at least two (cosine, similarity) knots")
        if c[0] > -1.0 or c[-1] < 1.0:
            raise CalibrationError("calibration knots must span cosine -1 to 1")
        if np.any(np.diff(c) <= 0) or np.any(np.diff(s) <= 0):
            raise CalibrationError("calibration knots must increase strictly in both coordinates")
        if s[0] < 0.0 or s[-1] > 100.0:
            raise CalibrationError("similarities must lie within 0..100")

    def similarity(self, cosine: np.ndarray | float) -> np.ndarray:
        clipped = np.clip(np.asarray(cosine, dtype=np.float64), -1.0, 1.0)
        return np.asarray(np.interp(clipped, self.cosines, self.similarities))


def calibration_from_json(body: dict[str, object]) -> Calibration:
    knots = body.get("knots")
    if not isinstance(knots, list):
        raise CalibrationError("calibration has no knots")
    return Calibration(
        model_version=str(body["model_version"]),
        calibration_version=str(body["calibration_version"]),
        cosines=tuple(float(k[0]) for k in knots),
        similarities=tuple(float(k[1]) for k in knots),
    )


def bundled_calibration_path(model_version: str) -> Path:
    return Path(str(resources.files("ml") / "calibration" / f"{model_version}.json"))


def deployment_calibration_path(data_dir: Path, model_version: str) -> Path:
    """A deployment's own calibration (`facebank calibrate`), loaded over the packaged one."""
    return data_dir / "calibration" / f"{model_version}.json"


def load_calibration(model_version: str, path: Path | None = None) -> Calibration:
    path = path or bundled_calibration_path(model_version)
    if not path.exists():
        raise CalibrationError(
            f"no calibration for face model {model_version} at {path}; fit one on your "
            f"people with `facebank calibrate DIR --model-version {model_version}`"
        )
    calibration = calibration_from_json(json.loads(path.read_text()))
    if calibration.model_version != model_version:
        raise CalibrationError(
            f"{path} calibrates {calibration.model_version}, not {model_version}"
        )
    return calibration


def published_rates(calibration: Calibration) -> list[dict[str, float]]:
    """The held-out false match and false non-match rates per Similarity threshold measured
    with the packaged `calibration` (docs/accuracy.md); empty for any other calibration (one
    a deployment fitted on its own people reports its own)."""
    path = bundled_calibration_path(calibration.model_version).parent / "rates"
    path = path / f"{calibration.model_version}.json"
    if not path.exists():
        return []
    published = json.loads(path.read_text())
    if published.get("calibration_version") != calibration.calibration_version:
        return []
    return [dict(row) for row in published["thresholds"]]
