"""Verification accuracy and the Similarity calibration, fitted and reported on disjoint people.

    python -m benchmarks.verification [--faces ../shared/faces] [--extra DIR ...]
                                      [--lfw-pairs pairs.txt --lfw-root lfw/] [--write-calibration]

Photos: the labelled sets under --faces (the provisioned photos by default; ../shared/faces is the
team's wider set) plus any folder laid out as <person>/<image>.
The calibration is fitted on the people of one split and every table is reported on the people
of the other, so no person is in both. By default the fit split is the larger one in people
(the 10 of lfw-george-w-bush, facenet-pytorch and face-recognition-examples) and five-celebrities
(5 people) is held out; `--fit-on five-celebrities` swaps the folds. Writes
benchmarks/results/verification-<model>.{json,md,png}. --write-calibration (developers only)
replaces the calibration packaged with the model (ml/calibration/<model>.json) under a new
version id, and refuses a fit split too small for the knots; a deployment calibrates on its own
people with `facebank calibrate` instead, which never writes into the package.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import RESULTS
from benchmarks.embed_photos import PhotoFace, describe_photos
from benchmarks.photos import default_faces
from benchmarks.verification_report import markdown, plot
from ml.evaluation.calibration_fit import calibration_json, fit_knots
from ml.evaluation.refit import check_support, new_version_id
from ml.evaluation.splits import HELD_OUT_BY_DEFAULT, Item, collect
from ml.evaluation.statistics import (
    bootstrap_interval,
    error_rates,
    interpolated_tar,
    lfw_pairs,
    min_claimable_far,
    pair_scores,
    roc_auc,
    split_by_identity,
    tar_at_far,
)
from ml.face_models import DEFAULT_MODEL_VERSION
from ml.manifest import default_models_dir
from ml.pipeline import FacePipeline
from ml.similarity import Calibration, bundled_calibration_path
from service.build import build_pipeline
from service.operations.quality_filter import rejection_reasons
from service.settings import Settings

SIMILARITY_THRESHOLDS = [50.0, 70.0, 80.0, 90.0, 95.0, 99.0]
FARS = [1e-1, 1e-2, 1e-3]


def describe_items(pipeline: FacePipeline, items: list[Item]) -> list[PhotoFace | None]:
    return [describe_photos(pipeline, [item.path], item.subject)[0] for item in items]


def verification_table(
    genuine: np.ndarray, impostor: np.ndarray, calibration: Calibration
) -> dict[str, Any]:
    """AUC, TAR at FAR (with bootstrap intervals) on cosines; FMR/FNMR on Similarity."""
    auc_low, auc_high = bootstrap_interval(roc_auc, genuine, impostor)
    floor = min_claimable_far(len(impostor))
    tars = []
    for far in FARS:
        low, high = bootstrap_interval(lambda g, i, f=far: tar_at_far(g, i, f), genuine, impostor)
        tars.append(
            {
                "far": far,
                "tar": tar_at_far(genuine, impostor, far),
                "tar_interpolated": interpolated_tar(genuine, impostor, far),
                "ci95": [low, high],
                "claimable": far >= floor,
            }
        )
    similarity = calibration.similarity
    return {
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "auc": roc_auc(genuine, impostor),
        "auc_ci95": [auc_low, auc_high],
        "min_claimable_far": floor,
        "tar_at_far": tars,
        "thresholds": error_rates(similarity(genuine), similarity(impostor), SIMILARITY_THRESHOLDS),
    }


def quality_levels(
    photos: list[PhotoFace], labels: list[str], calibration: Calibration
) -> list[dict[str, Any]]:
    """Per QualityFilter level: photos it rejects (by reason) and FNMR at 80 on what is left."""
    vectors = np.stack([photo.vector for photo in photos])
    rows = []
    for level in ("NONE", "LOW", "MEDIUM", "HIGH"):
        reasons = [rejection_reasons(photo.face, level) for photo in photos]
        kept = np.array([not why for why in reasons])
        counts: dict[str, int] = {}
        for why in reasons:
            for reason in why:
                counts[reason] = counts.get(reason, 0) + 1
        genuine, impostor = pair_scores(
            vectors[kept], [lab for lab, k in zip(labels, kept, strict=True) if k]
        )
        rates = error_rates(
            calibration.similarity(genuine), calibration.similarity(impostor), [80.0]
        )[0]
        rows.append(
            {
                "level": level,
                "rejected_photos": int((~kept).sum()),
                "reasons": counts,
                "fnmr_at_80": rates["fnmr"],
                "fmr_at_80": rates["fmr"],
                "genuine_pairs": len(genuine),
            }
        )
    return rows


def fit_calibration(model: str, genuine: np.ndarray, impostor: np.ndarray) -> Calibration:
    knots = fit_knots(genuine, impostor)
    return Calibration(
        model,
        new_version_id(model, "heldout"),
        tuple(k[0] for k in knots),
        tuple(k[1] for k in knots),
    )


def lfw_protocol(
    pipeline: FacePipeline, calibration: Calibration, pairs_file: Path, root: Path
) -> dict[str, Any]:
    pairs = lfw_pairs(pairs_file, root)
    faces_a = describe_photos(pipeline, [a for a, _, _ in pairs], "centre")
    faces_b = describe_photos(pipeline, [b for _, b, _ in pairs], "centre")
    scores = {True: [], False: []}  # type: dict[bool, list[float]]
    for (_, _, same), a, b in zip(pairs, faces_a, faces_b, strict=True):
        if a is not None and b is not None:
            scores[same].append(float(a.vector @ b.vector))
    return verification_table(np.array(scores[True]), np.array(scores[False]), calibration)


def run(args: argparse.Namespace) -> dict[str, Any]:
    # Served settings (FACEBANK_* in the environment apply), on the CPU: the calibration is
    # fitted on the embeddings and detections that are served.
    settings = Settings(device="cpu", models_dir=args.models_dir, model_version=args.model_version)
    pipeline = build_pipeline(settings, None, allow_uncalibrated=True)
    items = collect(args.faces, args.extra, args.extra_subject, args.fit_on == HELD_OUT_BY_DEFAULT)
    if not items:
        raise SystemExit(
            f"no labelled photos under {args.faces} (nor --extra): point --faces at a folder of "
            "the project's photo sets, or use `facebank calibrate DIR` for your own people"
        )
    described = describe_items(pipeline, items)
    found = [(item, photo) for item, photo in zip(items, described, strict=True) if photo]
    labels = [item.label for item, _ in found]
    vectors = np.stack([photo.vector for _, photo in found])
    fit, held = split_by_identity(labels, {item.label for item, _ in found if item.fit})
    fit_scores = pair_scores(vectors[fit], [lab for lab, f in zip(labels, fit, strict=True) if f])
    held_labels = [lab for lab, h in zip(labels, held, strict=True) if h]
    held_scores = pair_scores(vectors[held], held_labels)
    if args.write_calibration:
        check_support(
            [lab for lab, f in zip(labels, fit, strict=True) if f],
            len(fit_scores[1]),
            (len(held_scores[0]), len(held_scores[1])),
        )
    # The provisioned photos alone hold no fit split with pairs: then the calibration in use is
    # reported on the held-out people (the published tables' people), and a refit needs more.
    fitted = len(fit_scores[0]) > 0 and len(fit_scores[1]) > 0
    if fitted:
        calibration = fit_calibration(pipeline.spec.version, *fit_scores)
    else:
        calibration = pipeline.calibration
        print(
            f"the fit split under {args.faces} has no genuine or no impostor pairs: reporting "
            f"the calibration in use ({calibration.calibration_version}) on the held-out "
            "people; --faces ../shared/faces (or --extra DIR) fits one"
        )
    held_photos = [photo for (_, photo), h in zip(found, held, strict=True) if h]
    report = {
        "model_version": pipeline.spec.version,
        "photos": len(items),
        "photos_without_face": len(items) - len(found),
        "identities": {
            "fit": sorted(set(labels) - set(held_labels)),
            "held_out": sorted(set(held_labels)),
        },
        "calibration": calibration_json(calibration),
        "calibration_fitted": fitted,
        "fit": verification_table(*fit_scores, calibration) if fitted else None,
        "held_out": verification_table(*held_scores, calibration),
        "quality_filter_held_out": quality_levels(held_photos, held_labels, calibration),
    }
    if args.lfw_pairs:
        report["lfw_pairs"] = lfw_protocol(pipeline, calibration, args.lfw_pairs, args.lfw_root)
    if args.write_calibration and args.fit_on == "others":
        path = bundled_calibration_path(pipeline.spec.version)
        path.write_text(json.dumps(calibration_json(calibration), indent=2) + "\n")
    plot(RESULTS / f"verification-{pipeline.spec.version}.png", calibration, held_scores)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=default_faces())
    parser.add_argument("--extra", type=Path, nargs="*", default=[])
    parser.add_argument("--extra-subject", choices=["largest", "centre"], default="largest")
    parser.add_argument("--fit-on", choices=["others", HELD_OUT_BY_DEFAULT], default="others")
    parser.add_argument("--lfw-pairs", type=Path)
    parser.add_argument("--lfw-root", type=Path)
    parser.add_argument("--model-version", default=DEFAULT_MODEL_VERSION)
    parser.add_argument("--models-dir", type=Path, default=default_models_dir())
    parser.add_argument("--write-calibration", action="store_true")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    report = run(args)
    stem = RESULTS / f"verification-{report['model_version']}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
