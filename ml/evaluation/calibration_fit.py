"""The calibration's fitting rule: where the cosine -> Similarity knots go.

Knots: cosine -1 -> 0; the median impostor -> 5; the cosine where the impostor false-match rate
falls to 1e-2 -> 50; to 1e-3 -> 80; just above the highest impostor seen -> 99; cosine 1 -> 100.
Fitted on impostor scores of one set of people, Similarity 80 then has a measured FMR of at
most 1e-3 there and no impostor pair reaches 99. `python -m benchmarks.verification` fits it on one
split of people and reports it on another; `facebank calibrate` fits it on a deployment's own
people (ml/evaluation/refit.py).
"""

from __future__ import annotations

import numpy as np

from ml.evaluation.statistics import threshold_at_far
from ml.similarity import Calibration

FIT_FMR_AT_50 = 1e-2
FIT_FMR_AT_80 = 1e-3
MIN_KNOT_GAP = 1e-3
HIGHEST_IMPOSTOR_MARGIN = 0.02


def fit_knots(genuine: np.ndarray, impostor: np.ndarray) -> list[tuple[float, float]]:
    del genuine  # the rule is set by impostors alone: FMR is what a threshold promises
    anchors = [
        (float(np.median(impostor)), 5.0),
        (threshold_at_far(impostor, FIT_FMR_AT_50), 50.0),
        (threshold_at_far(impostor, FIT_FMR_AT_80), 80.0),
        (float(impostor.max()) + HIGHEST_IMPOSTOR_MARGIN, 99.0),
    ]
    knots = [(-1.0, 0.0)]
    for cosine, similarity in anchors:
        knots.append((max(cosine, knots[-1][0] + MIN_KNOT_GAP), similarity))
    last = min(knots[-1][0], 1.0 - MIN_KNOT_GAP)
    knots[-1] = (last, knots[-1][1])
    knots.append((1.0, 100.0))
    return knots


def calibration_json(calibration: Calibration) -> dict[str, object]:
    """The calibration as its file holds it (`ml.similarity.calibration_from_json` reads it)."""
    return {
        "model_version": calibration.model_version,
        "calibration_version": calibration.calibration_version,
        "knots": [
            [c, s] for c, s in zip(calibration.cosines, calibration.similarities, strict=True)
        ],
    }
