"""Detect + embed throughput: the stock facenet-pytorch pipeline against facebank's, in one run.

    python -m benchmarks.throughput [--device cpu|cuda] [--images 32] [--batch 8] [--repeats 3]

Both run in this process on the same device over the same 1280x720 scenes (2-3 real faces each,
composed from ../shared/faces), decoded from JPEG once up front. Embedder weights are random:
speed does not depend on their values. "Stock" is what a user assembles from facenet-pytorch:
`MTCNN(keep_all=True)` called on a batch of same-sized images, then `InceptionResnetV1` on
every crop. "facebank" is the server's pipeline (detection, pose, quality, alignment, embedding).
The first batch of each is a discarded warm-up. Prints images/s, faces/s, p50/p99 per batch and
the ratio; writes benchmarks/results/throughput-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks import RESULTS
from benchmarks.scenes import celebrity_photos, compose_scene
from ml.decode import DecodedImage, decode_image
from ml.detector import MtcnnDetector
from ml.embedder import TorchEmbedder, build_network
from ml.pipeline import FacePipeline, uncalibrated
from ml.registry import FACENET_2017


def scenes(faces: Path, count: int) -> list[DecodedImage]:
    photos = celebrity_photos(faces)
    return [decode_image(compose_scene(photos, seed=i, faces=2 + i % 2)) for i in range(count)]


def stock_pipeline(device: torch.device) -> Callable[[list[DecodedImage]], int]:
    from facenet_pytorch import MTCNN, InceptionResnetV1

    mtcnn = MTCNN(image_size=160, margin=32, keep_all=True, device=device)
    resnet = InceptionResnetV1().eval().to(device)

    def run(batch: list[DecodedImage]) -> int:
        with torch.inference_mode():
            crops = mtcnn([Image.fromarray(image.pixels) for image in batch])
            found = [c for c in crops if c is not None]
            if not found:
                return 0
            stacked = torch.cat(found).to(device)
            resnet(stacked)
        return int(stacked.shape[0])

    return run


def facebank_pipeline(device: torch.device) -> Callable[[list[DecodedImage]], int]:
    spec = FACENET_2017
    pipeline = FacePipeline(
        spec,
        MtcnnDetector(device),
        TorchEmbedder(spec, build_network(spec), device, batch=512),
        uncalibrated(spec.version),
    )

    def run(batch: list[DecodedImage]) -> int:
        described = [(image, pipeline.describe(image)) for image in batch]
        crops = [pipeline.embed(image, faces) for image, faces in described]
        return sum(len(c) for c in crops)

    return run


def timed(
    run: Callable[[list[DecodedImage]], int],
    images: list[DecodedImage],
    batch: int,
    repeats: int,
    device: torch.device,
) -> dict[str, float]:
    batches = [images[i : i + batch] for i in range(0, len(images), batch)]
    run(batches[0])  # warm-up
    seconds, faces = [], 0
    for _ in range(repeats):
        for chunk in batches:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            faces += run(chunk)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - start)
    total = sum(seconds)
    return {
        "images_per_s": len(images) * repeats / total,
        "faces_per_s": faces / total,
        "batch_p50_ms": float(np.percentile(seconds, 50) * 1000),
        "batch_p99_ms": float(np.percentile(seconds, 99) * 1000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--faces", type=Path, default=Path("../shared/faces"))
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    images = scenes(args.faces, args.images)
    results: dict[str, Any] = {
        "stock facenet-pytorch": timed(
            stock_pipeline(device), images, args.batch, args.repeats, device
        ),
        "facebank": timed(facebank_pipeline(device), images, args.batch, args.repeats, device),
    }
    ratio = results["facebank"]["images_per_s"] / results["stock facenet-pytorch"]["images_per_s"]
    report = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "images": args.images,
        "batch": args.batch,
        "repeats": args.repeats,
        "scene": "1280x720, 2-3 faces",
        "results": results,
        "facebank_over_stock": ratio,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"throughput-{device.type}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'pipeline':<24} {'images/s':>9} {'faces/s':>9} {'p50 ms':>9} {'p99 ms':>9}")
    for name, row in results.items():
        print(
            f"{name:<24} {row['images_per_s']:9.2f} {row['faces_per_s']:9.2f} "
            f"{row['batch_p50_ms']:9.1f} {row['batch_p99_ms']:9.1f}"
        )
    print(f"facebank / stock: {ratio:.2f}x")


if __name__ == "__main__":
    main()
