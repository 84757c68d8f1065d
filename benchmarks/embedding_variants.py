"""Embedding variants the FaceNet weights allow without retraining, compared on held-out people.

    python -m benchmarks.embedding_variants [--faces ../shared/faces] [--variants ...]

Each variant changes only how a detected face becomes a vector: the crop's margin, rotating
the face upright by its eye line before cropping, and adding the mirrored crop's embedding
(the mean of both, renormalised). For each, the calibration is fitted on the fit people by the
shipped rule (ml.evaluation.calibration_fit) and the held-out people are reported: AUC, TAR
at FAR 1e-3, FMR and FNMR at Similarity 80; and the time to crop and embed one face (batches of the
embedder's size, on the CPU). Writes benchmarks/results/embedding-variants.json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks import RESULTS, git_commit
from benchmarks.embed_photos import subject_face
from benchmarks.photos import default_faces
from benchmarks.verification import fit_calibration
from ml.align import CROP_SIZE, crop_face, crop_upright
from ml.decode import decode_image
from ml.detector import EDGE_MARGIN, MtcnnDetector
from ml.evaluation.splits import HELD_OUT_BY_DEFAULT, SETS
from ml.evaluation.statistics import error_rates, labelled_images, pair_scores, roc_auc, tar_at_far
from ml.face_models import DEFAULT_MODEL_VERSION
from ml.manifest import default_models_dir
from ml.pipeline import FacePipeline, load_pipeline, resolve_device
from ml.types import FaceDescription


@dataclass(frozen=True)
class Variant:
    name: str
    margin: int = 32
    upright: bool = False
    mirrored: bool = False


VARIANTS = {
    v.name: v
    for v in (
        Variant("margin-32 (model 1.0)"),
        Variant("margin-16", margin=16),
        Variant("margin-44", margin=44),
        Variant("mirrored", mirrored=True),
        Variant("upright", upright=True),
        Variant("upright+mirrored", upright=True, mirrored=True),
        Variant("margin-44+mirrored", margin=44, mirrored=True),
    )
}


def crops_for(image: Image.Image, face: FaceDescription, variant: Variant) -> list[np.ndarray]:
    if variant.upright:
        crop = crop_upright(image, face.detection, CROP_SIZE, variant.margin)
    else:
        crop = crop_face(image, face.detection.box, CROP_SIZE, variant.margin)
    return [crop, crop[:, ::-1]] if variant.mirrored else [crop]


def vectors_for(pipeline: FacePipeline, crops: list[list[np.ndarray]]) -> np.ndarray:
    flat = np.stack([c for group in crops for c in group])
    embedded = pipeline.embedder.embed(np.ascontiguousarray(flat))
    per_face = embedded.reshape(len(crops), -1, embedded.shape[1]).mean(axis=1)
    return per_face / np.linalg.norm(per_face, axis=1, keepdims=True)


def evaluate(vectors: np.ndarray, labels: list[str], fit: np.ndarray, model: str) -> dict:
    held = ~fit
    fit_scores = pair_scores(vectors[fit], [lab for lab, f in zip(labels, fit, strict=True) if f])
    genuine, impostor = pair_scores(
        vectors[held], [lab for lab, h in zip(labels, held, strict=True) if h]
    )
    calibration = fit_calibration(model, *fit_scores)
    at_80 = error_rates(calibration.similarity(genuine), calibration.similarity(impostor), [80.0])
    return {
        "held_out_auc": roc_auc(genuine, impostor),
        "held_out_tar_at_far_1e-3": tar_at_far(genuine, impostor, 1e-3),
        "held_out_fmr_at_80": at_80[0]["fmr"],
        "held_out_fnmr_at_80": at_80[0]["fnmr"],
        "fit_auc": roc_auc(*fit_scores),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=default_faces())
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--edge-margin", type=int, default=EDGE_MARGIN)
    args = parser.parse_args()
    torch.set_num_threads(2)
    pipeline = load_pipeline(
        default_models_dir(), DEFAULT_MODEL_VERSION, resolve_device("cpu"), allow_uncalibrated=True
    )
    pipeline.detector = MtcnnDetector(resolve_device("cpu"), edge_margin=args.edge_margin)
    labels, fit, faces = [], [], []
    for folder, rule in SETS:
        for label, path in labelled_images(args.faces / folder):
            decoded = decode_image(path.read_bytes())
            face = subject_face(pipeline.describe(decoded), decoded.width, decoded.height, rule)
            if face is not None:
                labels.append(label)
                fit.append(folder != HELD_OUT_BY_DEFAULT)
                faces.append((Image.fromarray(decoded.pixels), face))
    fit_mask = np.array(fit)
    rows = []
    for name in args.variants:
        variant = VARIANTS[name]
        started = time.perf_counter()
        vectors = vectors_for(pipeline, [crops_for(image, face, variant) for image, face in faces])
        per_face_ms = 1000 * (time.perf_counter() - started) / len(faces)
        row = {
            "variant": name,
            **evaluate(vectors, labels, fit_mask, pipeline.spec.version),
            "crop_and_embed_ms_per_face": round(per_face_ms, 1),
        }
        rows.append(row)
        print(json.dumps(row))
    report = {"commit": git_commit(), "photos": len(faces), "rows": rows}
    (RESULTS / "embedding-variants.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
