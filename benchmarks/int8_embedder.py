"""What an int8 embedder would buy on the CPU, and what it would cost in accuracy (not served).

    python -m benchmarks.int8_embedder [--calibration DIR ...]

Quantizes the provisioned embedder graph with ONNX Runtime's static quantization (int8 weights
per channel, uint8 activations, QDQ), its activation ranges taken from the faces of the
calibration photos (by default face_recognition's examples; never five-celebrities, which it is
judged on). Then embeds the largest face of every five-celebrities photo as the default model
is served, through ONNX Runtime in fp32 and in int8, and reports what benchmarks.precision
reports for bf16 (cosines, AUC, the change in calibrated Similarity, FMR/FNMR) and the time of
8 crops each way, at one thread and at every thread. Writes
benchmarks/results/int8-embedder-cpu.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import RESULTS, git_commit
from benchmarks.precision import celebrity_faces, drift, vectors
from ml.align import recipe_crops
from ml.cpu import best_ms, describe_cpu
from ml.decode import DecodedImage
from ml.evaluation.statistics import IMAGE_SUFFIXES
from ml.face_models import DEFAULT_MODEL_VERSION
from ml.manifest import default_models_dir
from ml.networks.table import network
from ml.onnx_embedder import INPUT_NAME, OnnxRuntimeEmbedder, provisioned_graph
from ml.pipeline import FacePipeline, load_pipeline
from ml.provision.photos import default_photos_dir
from ml.types import FaceDescription

TIMED_CROPS = 8


def calibration_inputs(
    pipeline: FacePipeline, embedder: OnnxRuntimeEmbedder, folders: list[Path], most: int
) -> np.ndarray:
    """The graph's inputs for every face (both views) of up to `most` photos per folder."""
    found = []
    for folder in folders:
        photos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        for path in photos[:most]:
            image = pipeline.decode(path.read_bytes())
            faces = pipeline.describe(image)
            if faces:
                found.append((image, faces))
    if not found:
        raise SystemExit(f"no faces found to calibrate on in {', '.join(map(str, folders))}")
    return embedder.graph_input(face_crops(pipeline, found))


def quantized(graph: Path, inputs: np.ndarray, out: Path) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # onnxruntime ships no type information, so its base class is Any to mypy.
    class Batches(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._batches: Iterator[np.ndarray] = iter(
                np.array_split(inputs, len(inputs) // 16 + 1)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    prepared = out / "prepared.onnx"
    quant_pre_process(str(graph), str(prepared))
    quantize_static(
        str(prepared),
        str(out / "int8.onnx"),
        Batches(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out / "int8.onnx"


def face_crops(
    pipeline: FacePipeline, found: list[tuple[DecodedImage, list[FaceDescription]]]
) -> np.ndarray:
    """Every view of every face in `found`, as the embedder takes them."""
    spec = pipeline.spec
    views = [
        recipe_crops(image.pixels, [face.detection for face in faces], spec.upright, spec.mirrored)
        for image, faces in found
    ]
    stacked = np.concatenate(views)
    return stacked.reshape(-1, *stacked.shape[2:])


def batch_millis(
    pipeline: FacePipeline, graphs: dict[str, Path], crops: np.ndarray
) -> dict[str, dict[str, float]]:
    threads = {"one thread": 1, "every thread": torch.get_num_threads()}
    return {
        name: {
            label: best_ms(OnnxRuntimeEmbedder(pipeline.spec, graph, count).embed, crops)[0]
            for label, count in threads.items()
        }
        for name, graph in graphs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    photos = default_photos_dir()
    parser.add_argument("--faces", type=Path, default=photos)
    parser.add_argument(
        "--calibration", type=Path, nargs="+", default=[photos / "face-recognition-examples"]
    )
    parser.add_argument("--calibration-photos", type=int, default=200, help="most per folder")
    args = parser.parse_args()
    models = default_models_dir()
    pipeline = load_pipeline(models, DEFAULT_MODEL_VERSION, torch.device("cpu"))
    graph = provisioned_graph(models, network(pipeline.spec.network))
    if graph is None:
        raise SystemExit("no embedder graph provisioned: run facebank models fetch")
    fp32 = OnnxRuntimeEmbedder(pipeline.spec, graph.path, torch.get_num_threads())
    inputs = calibration_inputs(pipeline, fp32, args.calibration, args.calibration_photos)
    found, labels = celebrity_faces(args.faces, pipeline)
    with tempfile.TemporaryDirectory() as scratch:
        int8_graph = quantized(graph.path, inputs, Path(scratch))
        int8 = OnnxRuntimeEmbedder(pipeline.spec, int8_graph, torch.get_num_threads())
        a = vectors(replace(pipeline, embedder=fp32), found)
        b = vectors(replace(pipeline, embedder=int8), found)
        crops = face_crops(pipeline, found)[:TIMED_CROPS]
        timings = batch_millis(pipeline, {"fp32": graph.path, "int8": int8_graph}, crops)
    report: dict[str, Any] = {
        "cpu": describe_cpu(),
        "commit": git_commit(),
        "model_version": pipeline.spec.version,
        "calibration": [str(folder) for folder in args.calibration],
        "calibration_crops": len(inputs),
        "faces": len(found),
        **drift(pipeline, labels, a, b, ("fp32", "int8")),
        f"batch_millis_{TIMED_CROPS}_crops": timings,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "int8-embedder-cpu.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
