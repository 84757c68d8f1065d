"""Faces cut off by the frame edge: found before and after padding the detector's input.

    python -m benchmarks.edge_faces [--faces DIR] [--margins 0 6 12] [--fills 0 127.5]

Cut faces are generated from real one-face photos: each photo's face (found by stock MTCNN on
the whole photo) is cut by the frame at each of the four edges so that 25% or 50% of its box lies
outside, and the rest of the photo is kept. A cut face counts as found when a detection overlaps
its whole (uncut) box with IoU >= 0.5, as Rekognition reports a cut face's box past the frame;
as touched when a detection covers at least half of its visible part. False faces are
detections that match no face: on the cut crops (anything but the cut face) and on the whole
one-face photos (anything but their most confident face). Writes
benchmarks/results/edge-faces.json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks import RESULTS, git_commit
from benchmarks.false_faces import one_face_photos
from benchmarks.scenes import celebrity_photos, compose_scene
from ml.decode import decode_image
from ml.detector import MtcnnDetector
from ml.provision.photos import default_photos_dir
from ml.tracking import intersection, iou
from ml.types import Box, Detection

EDGES = ("left", "right", "top", "bottom")
CUTS = (0.25, 0.5)
MIN_SIDE = 80  # Rekognition's smallest image


@dataclass(frozen=True)
class CutFace:
    pixels: np.ndarray
    truth: Box  # the whole face, in the cut image's pixels (may reach past it)
    edge: str
    cut: float


def cut_at_edge(pixels: np.ndarray, face: Box, edge: str, cut: float) -> CutFace | None:
    """`pixels` cropped so that `cut` of the face's box lies past `edge`."""
    height, width = pixels.shape[:2]
    if edge in ("left", "right"):
        line = face.left + cut * face.width if edge == "left" else face.right - cut * face.width
        start, stop = (round(line), width) if edge == "left" else (0, round(line))
        if stop - start < MIN_SIDE:
            return None
        shifted = Box(face.left - start, face.top, face.right - start, face.bottom)
        return CutFace(pixels[:, start:stop], shifted, edge, cut)
    line = face.top + cut * face.height if edge == "top" else face.bottom - cut * face.height
    start, stop = (round(line), height) if edge == "top" else (0, round(line))
    if stop - start < MIN_SIDE:
        return None
    shifted = Box(face.left, face.top - start, face.right, face.bottom - start)
    return CutFace(pixels[start:stop], shifted, edge, cut)


def visible(box: Box, height: int, width: int) -> Box:
    return Box(max(box.left, 0), max(box.top, 0), min(box.right, width), min(box.bottom, height))


def score_cut(found: list[Detection], face: CutFace) -> dict[str, int]:
    height, width = face.pixels.shape[:2]
    seen = visible(face.truth, height, width)
    whole = [d for d in found if iou(d.box, face.truth) >= 0.5]
    touching = [d for d in found if intersection(d.box, seen) >= 0.5 * seen.area]
    matched = {id(d) for d in whole + touching}
    return {
        "found": int(bool(whole)),
        "touched": int(bool(touching)),
        "false": sum(1 for d in found if id(d) not in matched),
    }


def cut_faces(stock: MtcnnDetector, photos: list[Path]) -> list[CutFace]:
    cuts = []
    for path in photos:
        pixels = decode_image(path.read_bytes()).pixels
        faces = sorted(stock.detect(pixels), key=lambda d: d.probability, reverse=True)
        if not faces:
            continue
        for edge in EDGES:
            for cut in CUTS:
                made = cut_at_edge(pixels, faces[0].box, edge, cut)
                if made is not None:
                    cuts.append(made)
    return cuts


def measure(detector: MtcnnDetector, cuts: list[CutFace], whole: list[np.ndarray]) -> dict:
    per_key: dict[str, dict[str, int]] = {}
    for face in cuts:
        key = f"{face.edge}-{int(face.cut * 100)}%"
        tally = per_key.setdefault(key, {"crops": 0, "found": 0, "touched": 0, "false": 0})
        tally["crops"] += 1
        for name, value in score_cut(detector.detect(face.pixels), face).items():
            tally[name] += value
    started = time.perf_counter()
    extra = sum(max(len(detector.detect(pixels)) - 1, 0) for pixels in whole)
    seconds = time.perf_counter() - started
    names = ("crops", "found", "touched", "false")
    totals = {name: sum(t[name] for t in per_key.values()) for name in names}
    return {
        "cut_faces": totals,
        "per_edge_and_cut": per_key,
        "one_face_photos_false_faces": extra,
        "detect_ms_per_whole_photo": round(1000 * seconds / len(whole), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=default_photos_dir())
    parser.add_argument("--margins", type=int, nargs="+", default=[0, 6, 9, 12])
    parser.add_argument("--fills", type=float, nargs="+", default=[0.0, 127.5])
    args = parser.parse_args()
    torch.set_num_threads(2)
    device = torch.device("cpu")
    cuts = cut_faces(MtcnnDetector(device, edge_margin=0), celebrity_photos(args.faces))
    whole = [decode_image(p.read_bytes()).pixels for p in one_face_photos(args.faces)]
    photos = celebrity_photos(args.faces)
    scenes = [decode_image(compose_scene(photos, seed=i, faces=3)).pixels for i in range(10)]
    rows = []
    for margin in args.margins:
        for fill in args.fills if margin else [0.0]:
            detector = MtcnnDetector(device, edge_margin=margin, edge_fill=fill)
            row = {"edge_margin": margin, "edge_fill": fill, **measure(detector, cuts, whole)}
            row["scene_faces"] = sum(len(detector.detect(s)) for s in scenes)
            rows.append(row)
            print(json.dumps(row))
    report = {"commit": git_commit(), "photos": len(whole), "cut_crops": len(cuts), "rows": rows}
    (RESULTS / "edge-faces.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
