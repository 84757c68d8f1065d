"""Fit the cosine -> Similarity calibration of a face model on labelled photos (a first fit).

    python -m benchmarks.calibrate --faces ../shared/faces/five-celebrities

Knots: cosine -1 -> 0; the median impostor -> 5; the cosine where the impostor false-match rate
falls to 1e-2 -> 50; to 1e-3 -> 80; just above the highest impostor seen -> 99; cosine 1 -> 100.
So Similarity 80 has a measured FMR of at most 1e-3 and no impostor pair reached 99 on the fitting
photos. The calibration issue replaces this with a held-out, confidence-bounded fit.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.embed_photos import embed_largest_faces
from ml.evaluation import labelled_images, pair_scores, roc_auc, threshold_at_far
from ml.pipeline import FacePipeline, load_pipeline, resolve_device
from ml.registry import DEFAULT_MODEL_VERSION
from ml.similarity import Calibration, bundled_calibration_path
from service.settings import default_models_dir

MIN_KNOT_GAP = 1e-3
HIGHEST_IMPOSTOR_MARGIN = 0.02


def fit_knots(genuine: np.ndarray, impostor: np.ndarray) -> list[tuple[float, float]]:
    anchors = [
        (float(np.median(impostor)), 5.0),
        (threshold_at_far(impostor, 1e-2), 50.0),
        (threshold_at_far(impostor, 1e-3), 80.0),
        (float(impostor.max()) + HIGHEST_IMPOSTOR_MARGIN, 99.0),
    ]
    knots = [(-1.0, 0.0)]
    for cosine, similarity in anchors:
        knots.append((max(cosine, knots[-1][0] + MIN_KNOT_GAP), similarity))
    last = min(knots[-1][0], 1.0 - MIN_KNOT_GAP)
    knots[-1] = (last, knots[-1][1])
    knots.append((1.0, 100.0))
    return knots


def fit(pipeline: FacePipeline, faces_root: Path) -> tuple[Calibration, dict[str, float]]:
    items = labelled_images(faces_root)
    vectors, found = embed_largest_faces(pipeline, [path for _, path in items])
    labels = [label for (label, _), ok in zip(items, found, strict=True) if ok]
    genuine, impostor = pair_scores(vectors[found], labels)
    knots = fit_knots(genuine, impostor)
    calibration = Calibration(
        model_version=pipeline.spec.version,
        calibration_version=f"{pipeline.spec.version}-{faces_root.name}-v1",
        cosines=tuple(k[0] for k in knots),
        similarities=tuple(k[1] for k in knots),
    )
    similarity = calibration.similarity
    report = {
        "photos": float(len(items)),
        "photos_without_face": float((~found).sum()),
        "genuine_pairs": float(len(genuine)),
        "impostor_pairs": float(len(impostor)),
        "auc": roc_auc(genuine, impostor),
        "fmr_at_80": float(np.mean(similarity(impostor) >= 80)),
        "fnmr_at_80": float(np.mean(similarity(genuine) < 80)),
        "fmr_at_99": float(np.mean(similarity(impostor) >= 99)),
        "fnmr_at_99": float(np.mean(similarity(genuine) < 99)),
    }
    return calibration, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=Path("../shared/faces/five-celebrities"))
    parser.add_argument("--model-version", default=DEFAULT_MODEL_VERSION)
    parser.add_argument("--models-dir", type=Path, default=default_models_dir())
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or bundled_calibration_path(args.model_version)
    if not out.exists():  # the pipeline needs some calibration to load; any monotone map will do
        identity = Calibration(args.model_version, "bootstrap", (-1.0, 1.0), (0.0, 100.0))
        out.write_text(json.dumps(identity.to_json()))
    pipeline = load_pipeline(args.models_dir, args.model_version, resolve_device("cpu"), out)
    calibration, report = fit(pipeline, args.faces)
    out.write_text(json.dumps(calibration.to_json(), indent=2) + "\n")
    print(json.dumps({"calibration": str(out), **report}, indent=2))


if __name__ == "__main__":
    main()
