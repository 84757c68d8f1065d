"""Faces the mesh confirms: the face mesh network's face-presence score beside MTCNN's
probability, on real faces that must stay found and on detections that are no face.

    python -m benchmarks.mesh_check [--faces DIR]

Real faces: the person of every one-face photo, and every face MTCNN finds whole in crops that
cut a face at an image edge (benchmarks.edge_faces).
Other detections: those beside the person on the one-face photos, labelled by looking at each
crop (benchmarks/labels/extra-detections.json: a face, not a face, unclear). The rule keeps a
detection when the mesh's presence reaches `min_presence`, MTCNN is at least
`sure_probability` sure, or its box reaches past the frame; each pair of the sweep counts what
it keeps and drops. Also: the mesh's eye, nose and mouth landmarks against MTCNN's five points
(median distance over the inter-eye distance), and how far a mirrored photo's landmarks are
from the mirror image of the original's with left and right swapped. Writes
benchmarks/results/mesh-check.json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks import RESULTS, git_commit
from benchmarks.edge_faces import cut_faces
from benchmarks.false_faces import one_face_photos
from benchmarks.scenes import celebrity_photos, compose_scene
from ml.decode import decode_image
from ml.detector import MtcnnDetector
from ml.face_models import DEFAULT_MODEL_VERSION
from ml.manifest import default_models_dir
from ml.networks.face_mesh import FaceMesh, face_mesh_of, mirrored_type
from ml.pipeline import FacePipeline, MeshCheck, load_pipeline, resolve_device
from ml.provision.photos import default_photos_dir
from ml.tracking import iou
from ml.types import Detection, FaceMeshResult

LABELS = Path(__file__).parent / "labels" / "extra-detections.json"
PRESENCES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
SURE = (0.99, 0.995, 0.999, 1.01)  # 1.01: MTCNN never overrules the mesh
FIVE = {"eyeLeft": 0, "eyeRight": 1, "nose": 2, "mouthLeft": 3, "mouthRight": 4}


@dataclass(frozen=True)
class Scored:
    kind: str  # real, face, not a face, unclear
    probability: float
    presence: float
    cut: bool  # the box reaches past the frame


def scored(mesh: FaceMesh, pixels: np.ndarray, found: list[Detection]) -> list[FaceMeshResult]:
    return mesh.run(Image.fromarray(pixels), found, irises=False) if found else []


def one_face_scores(pipeline: FacePipeline, mesh: FaceMesh, faces: Path) -> list[Scored]:
    labels = json.loads(LABELS.read_text())["labels"]
    found_scores = []
    for path in one_face_photos(faces):
        pixels = decode_image(path.read_bytes()).pixels
        detections = pipeline.detector.detect(pixels)
        results = scored(mesh, pixels, detections)
        if not detections:
            continue
        person = max(range(len(detections)), key=lambda i: detections[i].probability)
        marked = labels.get(str(path.relative_to(faces)), [])
        for index, (detection, result) in enumerate(zip(detections, results, strict=True)):
            kind = "real" if index == person else _label(marked, detection)
            found_scores.append(_scored(kind, detection, result, pixels))
    return found_scores


def _scored(kind: str, detection: Detection, mesh: FaceMeshResult, pixels: np.ndarray) -> Scored:
    box, (height, width) = detection.box, pixels.shape[:2]
    cut = box.left < 0 or box.top < 0 or box.right > width or box.bottom > height
    return Scored(kind, detection.probability, mesh.presence, cut)


def _label(marked: list[dict[str, Any]], detection: Detection) -> str:
    for entry in marked:
        close = abs(entry["box_left"] - detection.box.left) + abs(
            entry["box_top"] - detection.box.top
        )
        if close <= 4:
            return str(entry["label"])
    return "unlabelled"


def edge_scores(pipeline: FacePipeline, mesh: FaceMesh, faces: Path) -> list[Scored]:
    """The faces found whole in crops that cut a face at an edge (every third photo)."""
    stock = MtcnnDetector(torch.device("cpu"), edge_margin=0)
    found = []
    for cut in cut_faces(stock, celebrity_photos(faces)[::3]):
        found_here = pipeline.detector.detect(cut.pixels)
        detections = [d for d in found_here if iou(d.box, cut.truth) >= 0.5]
        for detection, result in zip(detections, scored(mesh, cut.pixels, detections), strict=True):
            found.append(_scored("real (cut by an edge)", detection, result, cut.pixels))
    return found


def sweep(found: list[Scored]) -> list[dict[str, Any]]:
    rows = []
    kinds = sorted({s.kind for s in found})
    for sure in SURE:
        for presence in PRESENCES:
            row: dict[str, Any] = {"min_presence": presence, "sure_probability": sure}
            for kind in kinds:
                members = [s for s in found if s.kind == kind]
                kept = sum(
                    s.cut or s.presence >= presence or s.probability >= sure for s in members
                )
                row[kind] = f"{kept} of {len(members)} kept"
            rows.append(row)
    return rows


def landmark_agreement(pipeline: FacePipeline, mesh: FaceMesh, faces: Path) -> dict[str, Any]:
    to_five, mirrored = [], []
    for path in celebrity_photos(faces):
        pixels = decode_image(path.read_bytes()).pixels
        detections = pipeline.detector.detect(pixels)
        if not detections:
            continue
        face = detections[0]
        result = mesh.run(Image.fromarray(pixels), [face])[0]
        marks = {name: np.array([x, y]) for name, x, y in result.landmarks()}
        eyes = float(np.linalg.norm(face.landmarks[1] - face.landmarks[0]))
        for name, index in FIVE.items():
            to_five.append(float(np.linalg.norm(marks[name] - face.landmarks[index])) / eyes)
        mirrored.append(_mirror_error(pipeline, mesh, pixels, marks, eyes))
    return {
        "photos": len(mirrored),
        "median_distance_to_mtcnn_five_over_eye_distance": round(float(np.median(to_five)), 3),
        "p90_distance_to_mtcnn_five": round(float(np.percentile(to_five, 90)), 3),
        "median_mirror_error_over_eye_distance": round(float(np.median(mirrored)), 3),
    }


def _mirror_error(
    pipeline: FacePipeline,
    mesh: FaceMesh,
    pixels: np.ndarray,
    marks: dict[str, np.ndarray],
    eyes: float,
) -> float:
    """Median distance between the mirrored photo's landmarks and the original's mirrored,
    with Left and Right swapped in the names."""
    flipped = np.ascontiguousarray(pixels[:, ::-1])
    face = pipeline.detector.detect(flipped)[0]
    result = mesh.run(Image.fromarray(flipped), [face])[0]
    width = pixels.shape[1]
    errors = []
    for name, x, y in result.landmarks():
        original = marks[mirrored_type(name)]
        errors.append(float(np.linalg.norm(np.array([width - x, y]) - original)) / eyes)
    return float(np.median(errors))


def cost(pipeline: FacePipeline, faces: Path) -> dict[str, float]:
    """describe() on 12 1280x720 scenes of three faces, MTCNN's five points against the mesh
    (landmarks and confirmation): the median of three passes, per scene."""
    photos = celebrity_photos(faces)
    scenes = [decode_image(compose_scene(photos, seed=100 + i, faces=3)) for i in range(12)]
    timings = {}
    for name, check in (("five_points_ms", None), ("mesh_ms", MeshCheck())):
        configured = replace(pipeline, mesh_check=check)
        configured.describe(scenes[0])  # warm
        passes = []
        for _ in range(3):
            started = time.perf_counter()
            for scene in scenes:
                configured.describe(scene)
            passes.append((time.perf_counter() - started) * 1000 / len(scenes))
        timings[name] = round(float(np.median(passes)), 1)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=default_photos_dir())
    args = parser.parse_args()
    torch.set_num_threads(2)
    pipeline = load_pipeline(default_models_dir(), DEFAULT_MODEL_VERSION, resolve_device("cpu"))
    assert pipeline.attributes is not None
    mesh = face_mesh_of(pipeline.attributes.runners)
    assert mesh is not None, "the face mesh network is not provisioned"
    found = one_face_scores(pipeline, mesh, args.faces) + edge_scores(pipeline, mesh, args.faces)
    low = sorted((s for s in found if s.presence < 0.5), key=lambda s: s.presence)
    report = {
        "commit": git_commit(),
        "sweep": sweep(found),
        "low_presence": [s.__dict__ for s in low],
        "landmarks": landmark_agreement(pipeline, mesh, args.faces),
        "describe_cost_per_scene": cost(pipeline, args.faces),
    }
    print(json.dumps(report["describe_cost_per_scene"]))
    for row in report["sweep"]:
        print(json.dumps(row))
    print(json.dumps(report["landmarks"]))
    (RESULTS / "mesh-check.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
