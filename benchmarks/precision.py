"""What reduced-precision embedding (bf16 on the CPU, fp16 on CUDA) does to vectors and accuracy.

    python -m benchmarks.precision [--device cpu|cuda]

Embeds the largest face of every five-celebrities photo with the real weights twice, as the
default model (1.1: upright and mirrored views) is served, in fp32 and at the reduced precision
on this device, and reports the cosine between the two vectors of each face, verification AUC
over all pairs for each, the change in calibrated Similarity over all pairs, and FMR/FNMR at
Similarity 50, 80, 90 and 99 for each. On the CPU, where the embedder's ONNX graph is
provisioned, OpenVINO's bf16 and fp16 are reported the same way under "openvino_bf16" and
"openvino_fp16", each where OpenVINO has kernels for it here (the server may serve any of
them: ml/cpu_precision.py). Where OpenVINO has no fp16 kernels, fp16's drift is reported
from torch's fp16 on the CPU ("torch_fp16": weights and activations in fp16, on slow generic
kernels; the server never serves it) as the nearest measure of what the arithmetic does.
Writes benchmarks/results/precision-<device>.json.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import RESULTS
from ml.decode import DecodedImage
from ml.embedder import TorchEmbedder, load_network
from ml.evaluation.statistics import error_rates, labelled_images, pair_scores, roc_auc
from ml.face_models import DEFAULT_MODEL_VERSION
from ml.manifest import default_models_dir
from ml.networks.table import network
from ml.onnx_embedder import (
    GraphPrecision,
    OpenVinoEmbedder,
    ProvisionedGraph,
    openvino_available,
    provisioned_graph,
)
from ml.pipeline import FacePipeline, load_pipeline
from ml.provision.photos import default_photos_dir
from ml.types import FaceDescription

THRESHOLDS = [50.0, 80.0, 90.0, 99.0]
OPENVINO_REDUCED: list[GraphPrecision] = ["bf16", "fp16"]


def celebrity_faces(
    faces: Path, pipeline: FacePipeline
) -> tuple[list[tuple[DecodedImage, list[FaceDescription]]], list[str]]:
    found, labels = [], []
    for label, path in labelled_images(faces / "five-celebrities"):
        image = pipeline.decode(path.read_bytes())
        described = pipeline.describe(image)
        if described:
            found.append((image, described[:1]))
            labels.append(label)
    return found, labels


def vectors(
    pipeline: FacePipeline, found: list[tuple[DecodedImage, list[FaceDescription]]]
) -> np.ndarray:
    return np.concatenate([pipeline.embed(image, faces) for image, faces in found])


def drift(
    pipeline: FacePipeline, labels: list[str], a: np.ndarray, b: np.ndarray, names: tuple[str, str]
) -> dict[str, Any]:
    """How far vectors `b` are from `a` (the same faces, embedded two ways), and what that does
    to verification over every pair: AUC, calibrated Similarity, FMR/FNMR at THRESHOLDS."""
    cosines = np.sum(a * b, axis=1)
    similarity = pipeline.calibration.similarity
    shift = np.abs(similarity(a @ a.T) - similarity(b @ b.T))
    tables = {name: rates(similarity, v, labels) for name, v in zip(names, (a, b), strict=True)}
    return {
        "cosine_fp32_vs_reduced": {"min": float(cosines.min()), "mean": float(cosines.mean())},
        "auc_fp32": roc_auc(*pair_scores(a, labels)),
        "auc_reduced": roc_auc(*pair_scores(b, labels)),
        "max_similarity_change": float(shift.max()),
        "mean_similarity_change": float(shift.mean()),
        "pairs_moving_over_1_point": float(np.mean(shift > 1.0)),
        "error_rates": {
            name: [{k: row[k] for k in ("threshold", "fmr", "fnmr")} for row in rows]
            for name, rows in tables.items()
        },
    }


def rates(
    similarity: Callable[[np.ndarray], np.ndarray], vectors: np.ndarray, labels: list[str]
) -> list[dict[str, Any]]:
    genuine, impostor = pair_scores(vectors, labels)
    return error_rates(similarity(genuine), similarity(impostor), THRESHOLDS)


def openvino_in(
    pipeline: FacePipeline, graph: ProvisionedGraph, precision: GraphPrecision
) -> OpenVinoEmbedder | None:
    """OpenVINO in `precision` on the provisioned graph, or None where OpenVINO has no kernels
    for `precision` on this CPU."""
    embedder = OpenVinoEmbedder(pipeline.spec, graph.path, torch.get_num_threads(), precision)
    return embedder if embedder.executes_in == precision else None


def openvino_drifts(
    pipeline: FacePipeline,
    found: list[tuple[DecodedImage, list[FaceDescription]]],
    labels: list[str],
    full: np.ndarray,
) -> dict[str, Any]:
    """OpenVINO's drift in each reduced precision it has kernels for here, by report key; none
    where the graph is not provisioned (its checksum is read once) or OpenVINO not installed."""
    graph = provisioned_graph(default_models_dir(), network(pipeline.spec.network))
    if graph is None or not openvino_available():
        return {}
    drifts = {}
    for precision in OPENVINO_REDUCED:
        openvino = openvino_in(pipeline, graph, precision)
        if openvino is not None:
            reduced = vectors(replace(pipeline, embedder=openvino), found)
            names = ("fp32", f"openvino {precision}")
            drifts[f"openvino_{precision}"] = drift(pipeline, labels, full, reduced, names)
    return drifts


class TorchFp16Embedder(TorchEmbedder):
    """The embedder in fp16 through torch on the CPU: fp16's rounding where OpenVINO cannot
    run it (a benchmark's measure of drift only: torch has no fast fp16 kernels on most
    CPUs)."""

    def __init__(self, pipeline: FacePipeline, weights: Path) -> None:
        spec, cpu = pipeline.spec, torch.device("cpu")
        super().__init__(spec, load_network(spec, weights), cpu, full_precision=True)
        self.network, self.dtype = self.network.half(), torch.float16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--faces", type=Path, default=default_photos_dir())
    args = parser.parse_args()
    device = torch.device(args.device)
    pipeline = load_pipeline(default_models_dir(), DEFAULT_MODEL_VERSION, device)
    found, labels = celebrity_faces(args.faces, pipeline)
    spec = pipeline.spec
    weights = network(spec.network).verified_path(default_models_dir())
    full = TorchEmbedder(spec, load_network(spec, weights), device, full_precision=True)
    reduced = TorchEmbedder(spec, load_network(spec, weights), device, cpu_bf16=True)
    precision = "fp16" if reduced.half else "bf16" if reduced.bf16 else "fp32"
    a = vectors(replace(pipeline, embedder=full), found)
    b = vectors(replace(pipeline, embedder=reduced), found)
    report = {
        "device": str(device),
        "model_version": spec.version,
        "reduced_precision": precision,
        "faces": len(found),
        **drift(pipeline, labels, a, b, ("fp32", precision)),
    }
    if device.type == "cpu":
        report |= openvino_drifts(pipeline, found, labels, a)
    if device.type == "cpu" and "openvino_fp16" not in report:
        d = vectors(replace(pipeline, embedder=TorchFp16Embedder(pipeline, weights)), found)
        report["torch_fp16"] = drift(pipeline, labels, a, d, ("fp32", "torch fp16"))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"precision-{device.type}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
