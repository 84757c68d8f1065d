"""Accuracy, calibration and speed scripts; each writes its results under RESULTS."""

from pathlib import Path

RESULTS = Path(__file__).parent / "results"
