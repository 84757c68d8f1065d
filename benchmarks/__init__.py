"""Accuracy, calibration and speed scripts; each writes its results under RESULTS."""

import subprocess
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def git_commit() -> str:
    """The commit being measured, for the results files."""
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip()
