"""What reduced-precision embedding (bf16 on the CPU, fp16 on CUDA) does to vectors and accuracy.

    python -m benchmarks.precision [--device cpu|cuda]

Embeds the largest face of every five-celebrities photo with the real weights twice, in fp32 and
at the precision the server uses on this device, and reports the cosine between the two vectors
of each face, verification AUC over all pairs for each, and the largest change in calibrated
Similarity over all pairs. Writes benchmarks/results/precision-<device>.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from benchmarks import RESULTS
from ml.embedder import TorchEmbedder, load_network
from ml.evaluation.crops import crop_faces
from ml.evaluation.statistics import labelled_images, pair_scores, roc_auc
from ml.face_models import FACENET_2017
from ml.manifest import default_models_dir
from ml.networks.table import FACENET_2017_NETWORK
from ml.pipeline import load_pipeline
from ml.provision.photos import default_photos_dir
from ml.similarity import load_calibration


def celebrity_crops(faces: Path, device: torch.device) -> tuple[np.ndarray, list[str]]:
    pipeline = load_pipeline(default_models_dir(), FACENET_2017.version, device)
    crops, labels = [], []
    for label, path in labelled_images(faces / "five-celebrities"):
        image = pipeline.decode(path.read_bytes())
        faces_found = pipeline.describe(image)
        crops.append(crop_faces(image.pixels, [faces_found[0].detection.box])[0])
        labels.append(label)
    return np.stack(crops), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--faces", type=Path, default=default_photos_dir())
    args = parser.parse_args()
    device = torch.device(args.device)
    crops, labels = celebrity_crops(args.faces, device)
    weights = FACENET_2017_NETWORK.verified_path(default_models_dir())
    full = TorchEmbedder(
        FACENET_2017, load_network(FACENET_2017, weights), device, full_precision=True
    )
    reduced = TorchEmbedder(
        FACENET_2017, load_network(FACENET_2017, weights), device, cpu_bf16=True
    )
    precision = "fp16" if reduced.half else "bf16" if reduced.bf16 else "fp32"
    a, b = full.embed(crops), reduced.embed(crops)
    cosines = np.sum(a * b, axis=1)
    calibration = load_calibration(FACENET_2017.version)
    shift = np.abs(calibration.similarity(a @ a.T) - calibration.similarity(b @ b.T))
    report = {
        "device": str(device),
        "reduced_precision": precision,
        "faces": len(crops),
        "cosine_fp32_vs_reduced": {"min": float(cosines.min()), "mean": float(cosines.mean())},
        "auc_fp32": roc_auc(*pair_scores(a, labels)),
        "auc_reduced": roc_auc(*pair_scores(b, labels)),
        "max_similarity_change": float(shift.max()),
        "mean_similarity_change": float(shift.mean()),
        "pairs_moving_over_1_point": float(np.mean(shift > 1.0)),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"precision-{device.type}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
