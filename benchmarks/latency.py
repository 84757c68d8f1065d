"""CPU latency of DetectFaces and CompareFaces through the wire protocol, as a client sees it.

    python -m benchmarks.latency [--endpoint URL] [--repeats 30]

Without --endpoint it starts a server on a free loopback port (FACEBANK_DEVICE=cpu). Requests
are sequential from one boto3 client; the first WARMUP calls of each operation are discarded.
IndexFaces (2 faces a call) and SearchFacesByImage run on a collection holding the 118
five-celebrities faces plus the scenes indexed meanwhile.
Writes benchmarks/results/latency-<device>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import torch
from botocore import UNSIGNED
from botocore.config import Config

from benchmarks import RESULTS, git_commit
from benchmarks.scenes import celebrity_photos, compose_scene
from ml.provision.photos import default_photos_dir
from service.testing.local_server import endpoint

WARMUP = 3


def timed(call: Callable[[], Any], repeats: int) -> list[float]:
    for _ in range(WARMUP):
        call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": float(np.percentile(samples, 50)),
        "p95_ms": float(np.percentile(samples, 95)),
        "mean_ms": statistics.fmean(samples),
        "n": float(len(samples)),
    }


def measure(url: str, faces_dir: Path, repeats: int) -> dict[str, dict[str, float]]:
    client = boto3.client(
        "rekognition",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED),
    )
    photos = celebrity_photos(faces_dir)
    scene = compose_scene(photos, seed=1, faces=2)
    other = compose_scene(photos, seed=2, faces=3)
    found = len(client.detect_faces(Image={"Bytes": scene})["FaceDetails"])
    detect = timed(lambda: client.detect_faces(Image={"Bytes": scene}), repeats)
    compare = timed(
        lambda: client.compare_faces(SourceImage={"Bytes": scene}, TargetImage={"Bytes": other}),
        repeats,
    )
    return {
        "DetectFaces": {**summary(detect), "faces": float(found)},
        "CompareFaces": summary(compare),
        **collection_latencies(client, photos, scene, repeats),
    }


def collection_latencies(
    client: Any, photos: list[Path], scene: bytes, repeats: int
) -> dict[str, dict[str, float]]:
    """IndexFaces and SearchFacesByImage on a collection holding every five-celebrities face."""
    client.create_collection(CollectionId="latency")
    for i, photo in enumerate(photos):
        client.index_faces(
            CollectionId="latency",
            Image={"Bytes": photo.read_bytes()},
            ExternalImageId=f"enrol-{i}",
            MaxFaces=1,
        )
    counter = iter(range(10**6))
    index = timed(
        lambda: client.index_faces(
            CollectionId="latency", Image={"Bytes": scene}, ExternalImageId=f"scene-{next(counter)}"
        ),
        repeats,
    )
    search = timed(
        lambda: client.search_faces_by_image(CollectionId="latency", Image={"Bytes": scene}),
        repeats,
    )
    size = client.describe_collection(CollectionId="latency")["FaceCount"]
    client.delete_collection(CollectionId="latency")
    return {
        "IndexFaces": summary(index),
        "SearchFacesByImage": {**summary(search), "collection_faces": float(size)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--faces", type=Path, default=default_photos_dir())
    args = parser.parse_args()
    with endpoint(args.endpoint, "facebank-bench") as url:
        results = measure(url, args.faces, args.repeats)
    report = {
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "commit": git_commit(),
        "image": "1280x720 JPEG",
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latency-cpu.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'operation':<14} {'p50 ms':>8} {'p95 ms':>8} {'n':>4}")
    for name, row in results.items():
        print(f"{name:<14} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} {int(row['n']):4d}")


if __name__ == "__main__":
    main()
