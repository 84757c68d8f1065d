"""How often AgeRange holds the true age, for the rule that turns the age network's distribution
into a range: the central `mass` of the distribution, widened about its median to at least
`min_width` years.

    python -m benchmarks.age_ranges [--faces ../shared/faces]

Known ages: the 530 LFW photos of George W. Bush, taken while he was 55 to 58; a range
"holds" the age when it meets 55-58. The rules are fitted on the odd-numbered photos and
reported on the even-numbered ones. Writes benchmarks/results/age-ranges.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks import RESULTS, git_commit
from benchmarks.embed_photos import subject_face
from benchmarks.photos import default_faces
from ml.decode import decode_image
from ml.face_models import DEFAULT_MODEL_VERSION
from ml.manifest import default_models_dir
from ml.networks.dlib import AGE_CHIP, AGE_RANGE_MASS, MIN_AGE_RANGE_WIDTH, age_range, face_chip
from ml.pipeline import load_pipeline, resolve_device

BUSH_AGE = (55, 58)
MASSES = (0.8, 0.9, 0.95, 0.98)
MIN_WIDTHS = (0, 4, 6, 8, 10)
TARGET_COVERAGE = 0.8  # what a range should hold at least this often


def distributions(faces: Path) -> list[np.ndarray]:
    torch.set_num_threads(2)
    pipeline = load_pipeline(default_models_dir(), DEFAULT_MODEL_VERSION, resolve_device("cpu"))
    assert pipeline.attributes is not None
    run = pipeline.attributes.runners["age"]
    found = []
    for path in sorted((faces / "lfw-george-w-bush").glob("*.jpg")):
        image = decode_image(path.read_bytes())
        face = subject_face(pipeline.describe(image), image.width, image.height, "centre")
        if face is None:
            continue
        chip = face_chip(Image.fromarray(image.pixels), face.detection.landmarks, AGE_CHIP)
        found.append(np.asarray(run(chip[None])[0][0], dtype=np.float64))
    return found


def coverage(ranges: list[tuple[int, int]]) -> float:
    low, high = BUSH_AGE
    return float(np.mean([lo <= high and hi >= low for lo, hi in ranges]))


def row(probabilities: list[np.ndarray], mass: float, width: int) -> dict[str, Any]:
    fit = [age_range(p, mass, width) for p in probabilities[0::2]]
    held_out = [age_range(p, mass, width) for p in probabilities[1::2]]
    return {
        "mass": mass,
        "min_width": width,
        "fit_coverage": round(coverage(fit), 3),
        "held_out_coverage": round(coverage(held_out), 3),
        "held_out_mean_width": round(float(np.mean([hi - lo for lo, hi in held_out])), 1),
        "held_out_narrowest": min(hi - lo for lo, hi in held_out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=default_faces())
    args = parser.parse_args()
    probabilities = distributions(args.faces)
    rows = [row(probabilities, mass, width) for mass in MASSES for width in MIN_WIDTHS]
    for found in rows:
        print(json.dumps(found))
    served = row(probabilities, AGE_RANGE_MASS, MIN_AGE_RANGE_WIDTH)
    print("served:", json.dumps(served))
    report = {"commit": git_commit(), "photos": len(probabilities), "rows": rows, "served": served}
    (RESULTS / "age-ranges.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
