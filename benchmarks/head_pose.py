"""Head pose from MTCNN's five points against pose from the face mesh's 3D points, checked
where the answer is known without a pose-labelled dataset.

    python -m benchmarks.head_pose [--faces DIR]

On every five-celebrities photo (its most confident face):
- Roll: the photo turned in its plane by -30, -15, 15 and 30 degrees (PIL, grey fill) must
  change Roll by exactly that angle (clockwise positive): the error of each estimate;
- Yaw: the mirrored photo must give the opposite Yaw, and Pitch must not change: |yaw +
  mirrored yaw| and |pitch - mirrored pitch|;
- agreement: the two estimates' correlation over the photos, per angle.
Writes benchmarks/results/head-pose.json.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks import RESULTS, git_commit
from benchmarks.scenes import celebrity_photos
from ml.decode import DecodedImage, decode_image
from ml.face_models import DEFAULT_MODEL_VERSION
from ml.manifest import default_models_dir
from ml.pipeline import FacePipeline, MeshCheck, load_pipeline, resolve_device
from ml.pose import estimate_pose
from ml.provision.photos import default_photos_dir
from ml.types import Pose

TURNS = (-30, -15, 15, 30)


def png(image: Image.Image) -> DecodedImage:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return decode_image(buffer.getvalue())


def poses(pipeline: FacePipeline, image: DecodedImage) -> tuple[Pose, Pose] | None:
    """(five-point pose, mesh pose) of the most confident face (the pipeline itself serves
    the mesh's)."""
    faces = pipeline.describe(image)
    if not faces:
        return None
    face = max(faces, key=lambda f: f.detection.probability)
    mesh_pose = face.mesh.pose() if face.mesh is not None else None
    return None if mesh_pose is None else (estimate_pose(face.detection.landmarks), mesh_pose)


def measure(pipeline: FacePipeline, photos: list[Path]) -> dict[str, Any]:
    roll_errors: dict[str, list[float]] = {"five": [], "mesh": []}
    mirror: dict[str, list[float]] = {
        "five_yaw": [],
        "mesh_yaw": [],
        "five_pitch": [],
        "mesh_pitch": [],
    }
    pairs: list[tuple[Pose, Pose]] = []
    for path in photos:
        original = Image.open(path).convert("RGB")
        base = poses(pipeline, png(original))
        if base is None:
            continue
        pairs.append(base)
        for turn in TURNS:
            # PIL turns anticlockwise for positive angles: Roll (clockwise) changes by -turn.
            turned = poses(pipeline, png(original.rotate(turn, expand=True, fillcolor=(128,) * 3)))
            if turned is None:
                continue
            for name, before, after in zip(("five", "mesh"), base, turned, strict=True):
                roll_errors[name].append(abs(_wrap(after.roll - before.roll + turn)))
        flipped = poses(pipeline, png(original.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
        if flipped is None:
            continue
        for name, before, after in zip(("five", "mesh"), base, flipped, strict=True):
            mirror[f"{name}_yaw"].append(abs(before.yaw + after.yaw))
            mirror[f"{name}_pitch"].append(abs(before.pitch - after.pitch))
    return {
        "photos": len(pairs),
        "roll_error_median_deg": {k: _median(v) for k, v in roll_errors.items()},
        "roll_error_p90_deg": {k: _p90(v) for k, v in roll_errors.items()},
        "mirror_median_deg": {k: _median(v) for k, v in mirror.items()},
        "mirror_p90_deg": {k: _p90(v) for k, v in mirror.items()},
        "five_vs_mesh_correlation": {
            angle: round(
                float(
                    np.corrcoef(
                        [getattr(f, angle) for f, _ in pairs], [getattr(m, angle) for _, m in pairs]
                    )[0, 1]
                ),
                3,
            )
            for angle in ("roll", "yaw", "pitch")
        },
        "spread_deg": {
            f"{which}_{angle}": round(float(np.std([getattr(p[i], angle) for p in pairs])), 1)
            for i, which in enumerate(("five", "mesh"))
            for angle in ("yaw", "pitch")
        },
    }


def _wrap(angle: float) -> float:
    return (angle + 180.0) % 360.0 - 180.0


def _median(values: list[float]) -> float:
    return round(float(np.median(values)), 2)


def _p90(values: list[float]) -> float:
    return round(float(np.percentile(values, 90)), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=default_photos_dir())
    args = parser.parse_args()
    torch.set_num_threads(2)
    pipeline = load_pipeline(
        default_models_dir(), DEFAULT_MODEL_VERSION, resolve_device("cpu"), mesh_check=MeshCheck()
    )
    report = {"commit": git_commit(), **measure(pipeline, celebrity_photos(args.faces))}
    print(json.dumps(report, indent=2))
    (RESULTS / "head-pose.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
