"""Gender, AgeRange and Smile measured on labelled photos, and what ALL costs against DEFAULT.

    python -m benchmarks.attributes [--faces ../shared/faces]

Gender: every photo of the labelled people (the people's genders are public: 5 women, 11 men),
the labelled face chosen as the verification benchmark chooses it. AgeRange: the 530 LFW photos
of George W. Bush, born 6 July 1946; LFW's photos are news photos of 2002-2004 (the set was
gathered from Yahoo News in those years), so his age at each is 55 to 58. A range is counted
correct when it overlaps 55-58, and its width is reported. No other photo has a known date.
Smile: agreement with benchmarks/labels/smile.json (39 five-celebrities photos labelled by
looking). Emotions: not measured, as no photo here has a labelled expression.
Cost: DetectFaces-like work (decode excluded) per 1280x720 scene with DEFAULT and with the age
and gender networks added, on the CPU. Writes benchmarks/results/attributes.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import RESULTS, git_commit
from benchmarks.embed_photos import subject_face
from benchmarks.photos import default_faces
from benchmarks.scenes import celebrity_photos, compose_scene
from ml.attributes import AttributeEstimator
from ml.decode import decode_image
from ml.evaluation.splits import SETS
from ml.evaluation.statistics import labelled_images
from ml.face_models import DEFAULT_MODEL_VERSION
from ml.manifest import default_models_dir
from ml.mesh import EYES, EYES_OPEN_ABOVE, MOUTH_OPEN_ABOVE, opening
from ml.pipeline import FacePipeline, load_pipeline, resolve_device
from service.operations.requested_attributes import SERVED_ATTRIBUTES

SMILE_LABELS = Path(__file__).parent / "labels" / "smile.json"
OPENING_LABELS = Path(__file__).parent / "labels" / "eyes-mouth.json"
SPLITS = ("fit", "held_out")
OPENING_ATTRIBUTES = frozenset({"EYES_OPEN", "MOUTH_OPEN"})
AGE_AND_GENDER = frozenset({"AGE_RANGE", "GENDER"})
SMILE = frozenset({"SMILE"})
WOMEN = {"madonna", "mindy_kaling", "angelina_jolie", "kate_siegel", "rose_leslie"}
BUSH_AGE_AT_LFW_PHOTOS = (55, 58)


def measure_labels(pipeline: FacePipeline, estimator: AttributeEstimator, faces: Path) -> dict:
    per_person: dict[str, list[int]] = {}
    bush_ranges = []
    for folder, rule in SETS:
        for label, path in labelled_images(faces / folder):
            image = decode_image(path.read_bytes())
            face = subject_face(pipeline.describe(image), image.width, image.height, rule)
            if face is None:
                continue
            found = estimator.estimate(image.pixels, [face.detection], AGE_AND_GENDER)[0]
            truth = "Female" if label in WOMEN else "Male"
            per_person.setdefault(label, []).append(int(found.gender == truth))
            if folder == "lfw-george-w-bush":
                bush_ranges.append((found.age_low, found.age_high))
    low, high = BUSH_AGE_AT_LFW_PHOTOS
    return {
        "gender_accuracy": float(np.mean([v for votes in per_person.values() for v in votes])),
        "gender_photos": sum(len(v) for v in per_person.values()),
        "gender_accuracy_per_person": {
            person: round(float(np.mean(votes)), 3) for person, votes in sorted(per_person.items())
        },
        "bush_photos": len(bush_ranges),
        "bush_age_range_overlaps_55_58": float(
            np.mean([lo <= high and hi >= low for lo, hi in bush_ranges])
        ),
        "bush_age_range_mean_width": float(np.mean([hi - lo for lo, hi in bush_ranges])),
        "bush_age_range_median_low_high": [
            statistics.median(lo for lo, _ in bush_ranges),
            statistics.median(hi for _, hi in bush_ranges),
        ],
    }


def measure_smiles(pipeline: FacePipeline, estimator: AttributeEstimator, faces: Path) -> dict:
    labels = json.loads(SMILE_LABELS.read_text())["labels"]
    agree = []
    for name, smiling in sorted(labels.items()):
        image = decode_image((faces / name).read_bytes())
        face = pipeline.describe(image)[0]
        found = estimator.estimate(image.pixels, [face.detection], SMILE)[0].smiling
        agree.append(found is not None and found[0] == smiling)
    return {"smile_photos": len(agree), "smile_agreement": float(np.mean(agree))}


def measure_openings(pipeline: FacePipeline, estimator: AttributeEstimator, faces: Path) -> dict:
    """Eye and mouth opening ratios on the labelled photos: thresholds fitted on the 'fit'
    photos, agreement reported on both sets, for the iris network's eye outline (served) and
    the face mesh's own lids (not served)."""
    labels = json.loads(OPENING_LABELS.read_text())
    ratios = {part: _opening_ratios(pipeline, estimator, faces, labels[part]) for part in SPLITS}
    report: dict = {}
    for reading, attribute in (("eyes", "eyes"), ("mesh_eyes", "eyes"), ("mouth", "mouth")):
        fit = [
            (ratios["fit"][name][reading], truth)
            for name, truth in labels["fit"][attribute].items()
        ]
        threshold = fitted_threshold(fit)
        report[f"{reading}_fitted_threshold"] = round(threshold, 4)
        for part in SPLITS:
            agreement = _agreement(ratios[part], labels[part][attribute], reading, threshold)
            report[f"{reading}_{part}_agreement"] = agreement
    held_out = labels["held_out"]
    report["shipped_thresholds"] = {"eyes": EYES_OPEN_ABOVE, "mouth": MOUTH_OPEN_ABOVE}
    report["shipped_held_out_agreement"] = {
        "eyes": _agreement(ratios["held_out"], held_out["eyes"], "eyes", EYES_OPEN_ABOVE),
        "mouth": _agreement(ratios["held_out"], held_out["mouth"], "mouth", MOUTH_OPEN_ABOVE),
    }
    return report


def _agreement(ratios: dict, labels: dict[str, bool], reading: str, threshold: float) -> str:
    right = [(ratios[name][reading] > threshold) == truth for name, truth in labels.items()]
    return f"{sum(right)}/{len(right)}"


def fitted_threshold(pairs: list[tuple[float, bool]]) -> float:
    """The midpoint between neighbouring ratios that classifies most pairs right (ratio above
    it means true); of equally good ones, the one with the widest gap."""
    values = sorted(ratio for ratio, _ in pairs)
    gaps = {(a + b) / 2: b - a for a, b in itertools.pairwise(values) if b > a}

    def score(threshold: float) -> tuple[int, float]:
        right = sum((ratio > threshold) == truth for ratio, truth in pairs)
        return right, gaps[threshold]

    return max(gaps, key=score)


def _opening_ratios(
    pipeline: FacePipeline, estimator: AttributeEstimator, faces: Path, labels: dict
) -> dict[str, dict[str, float]]:
    names = sorted(set(labels["eyes"]) | set(labels["mouth"]))
    ratios = {}
    for name in names:
        image = decode_image((faces / name).read_bytes())
        face = pipeline.describe(image)[0]  # the largest
        mesh = estimator.estimate(image.pixels, [face.detection], OPENING_ATTRIBUTES)[0].mesh
        assert mesh is not None and mesh.eye_opening() is not None
        ratios[name] = {
            "eyes": mesh.eye_opening(),
            # the same ratio from the mesh's own lids, for comparison
            "mesh_eyes": float(np.mean([opening(mesh.mesh, *eye) for eye in EYES])),
            "mouth": mesh.mouth_opening(),
        }
    return ratios


def measure_cost(pipeline: FacePipeline, estimator: AttributeEstimator, faces: Path) -> dict:
    photos = celebrity_photos(faces)
    scenes = [decode_image(compose_scene(photos, seed=i, faces=3)) for i in range(12)]
    timings: dict[str, list[float]] = {"DEFAULT": [], "ALL": []}
    for _ in range(3):
        for name in timings:
            started = time.perf_counter()
            for scene in scenes:
                described = pipeline.describe(scene)
                if name == "ALL":
                    estimator.estimate(scene.pixels, [f.detection for f in described])
            timings[name].append(1000 * (time.perf_counter() - started) / len(scenes))
    return {f"ms_per_scene_{k}": round(statistics.median(v), 1) for k, v in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=default_faces())
    args = parser.parse_args()
    torch.set_num_threads(2)
    device = resolve_device("cpu")
    pipeline = load_pipeline(default_models_dir(), DEFAULT_MODEL_VERSION, device)
    estimator = pipeline.attributes
    if estimator is None or estimator.served != SERVED_ATTRIBUTES:
        raise SystemExit("attribute networks are not provisioned: run `facebank models fetch`")
    report = {
        "commit": git_commit(),
        **measure_labels(pipeline, estimator, args.faces),
        **measure_smiles(pipeline, estimator, args.faces),
        **measure_openings(pipeline, estimator, args.faces),
        **measure_cost(pipeline, estimator, args.faces / "five-celebrities/.."),
    }
    (RESULTS / "attributes.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
