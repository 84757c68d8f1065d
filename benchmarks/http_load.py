"""HTTP load on loopback: IndexFaces throughput, SearchFacesByImage latency on a big collection.

    python -m benchmarks.http_load [--device cpu|cuda] [--clients 8] [--requests 8]
                                   [--collection-faces 1000000]

Starts `facebank serve` on a free loopback port (real weights, as provisioned by `make models`),
over an embedded SQLite database seeded beforehand with `--collection-faces` synthetic 128-d
faces in collection "big" (as IndexFaces stores them, index events included). Then, each with
`--clients` concurrent boto3 clients (one per thread, unsigned):
- IndexFaces: every client indexes `--requests` 1280x720 JPEG scenes (2-3 real faces each)
  into a fresh collection; images/s over the wall time, and per-request p50/p99;
- SearchFacesByImage against "big": one client alone (p50/p99 without contention), then all
  clients at once (requests/s and p50/p99), with single-face celebrity photos.
The server admits 2 x clients requests at once (FACEBANK_MAX_INFLIGHT), so the run measures
the pipeline rather than throttling; any other FACEBANK_* variable set here reaches it too.
Also run by `python -m benchmarks.throughput --parts http`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import numpy as np
from botocore import UNSIGNED
from botocore.config import Config

from benchmarks import RESULTS
from benchmarks.restart import seed
from benchmarks.scenes import celebrity_photos, compose_scene
from ml.provision.photos import default_photos_dir
from service.testing.local_server import start_server, stop_server


def client_for(url: str, clients: int) -> Any:
    config = Config(
        signature_version=UNSIGNED,
        max_pool_connections=clients,
        retries={"max_attempts": 1, "mode": "standard"},  # a throttled call counts as failed
    )
    return boto3.client("rekognition", endpoint_url=url, region_name="us-east-1", config=config)


def summary(latencies_s: list[float], wall_s: float) -> dict[str, float]:
    return {
        "requests": len(latencies_s),
        "requests_per_s": len(latencies_s) / wall_s,
        "p50_ms": float(np.percentile(latencies_s, 50) * 1000),
        "p99_ms": float(np.percentile(latencies_s, 99) * 1000),
    }


def concurrently(calls: list[Callable[[], Any]], clients: int) -> tuple[list[float], float]:
    """Run `calls` on `clients` threads; (each call's latency, the wall time of all)."""

    def timed(call: Callable[[], Any]) -> float:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(timed, calls))
    return latencies, time.perf_counter() - start


def index_faces_load(url: str, scenes: list[bytes], clients: int, requests: int) -> dict[str, Any]:
    client = client_for(url, clients)
    client.create_collection(CollectionId="load")
    client.index_faces(CollectionId="load", Image={"Bytes": scenes[0]})  # warm-up

    def index(position: int) -> Callable[[], Any]:
        image = {"Bytes": scenes[position % len(scenes)]}
        return lambda: client.index_faces(
            CollectionId="load", Image=image, ExternalImageId=f"scene-{position}"
        )

    latencies, wall = concurrently([index(i) for i in range(clients * requests)], clients)
    faces = client.describe_collection(CollectionId="load")["FaceCount"]
    client.delete_collection(CollectionId="load")
    return {**summary(latencies, wall), "faces_indexed": faces}  # one image per request


def search_load(url: str, photos: list[bytes], clients: int, requests: int) -> dict[str, Any]:
    client = client_for(url, clients)
    size = client.describe_collection(CollectionId="big")["FaceCount"]

    def search(position: int) -> Callable[[], Any]:
        image = {"Bytes": photos[position % len(photos)]}
        return lambda: client.search_faces_by_image(CollectionId="big", Image=image)

    concurrently([search(i) for i in range(3)], 1)  # warm-up
    alone, alone_wall = concurrently([search(i) for i in range(max(20, requests))], 1)
    together, wall = concurrently([search(i) for i in range(clients * requests)], clients)
    return {
        "collection_faces": size,
        "one_client": summary(alone, alone_wall),
        f"{clients}_clients": summary(together, wall),
    }


def run(
    device: str, faces_dir: Path, clients: int, requests: int, collection_faces: int
) -> dict[str, Any]:
    photos = celebrity_photos(faces_dir)
    scenes = [compose_scene(photos, seed=i, faces=2 + i % 2) for i in range(16)]
    singles = [photo.read_bytes() for photo in photos[:32]]
    with tempfile.TemporaryDirectory(prefix="facebank-load-") as work:
        data_dir = Path(work) / "data"
        data_dir.mkdir()
        start = time.perf_counter()
        seed(f"sqlite:///{data_dir / 'facebank.db'}", collection_faces, np.random.default_rng(0))
        seeding_s = time.perf_counter() - start
        env = {
            "FACEBANK_DATA_DIR": str(data_dir),
            "FACEBANK_DEVICE": device,
            "FACEBANK_TORCH_THREADS": os.environ.get("FACEBANK_TORCH_THREADS", "0"),
            "FACEBANK_MAX_INFLIGHT": str(max(32, 2 * clients)),
        }
        server = start_server(Path(work), env, timeout=1800)
        try:
            return {
                "clients": clients,
                "seeding_s": seeding_s,
                "IndexFaces": index_faces_load(server.url, scenes, clients, requests),
                "SearchFacesByImage": search_load(server.url, singles, clients, requests),
            }
        finally:
            stop_server(server)


def print_report(report: dict[str, Any]) -> None:
    index = report["IndexFaces"]
    print(
        f"IndexFaces, {report['clients']} clients: {index['requests_per_s']:.1f} images/s, "
        f"p50 {index['p50_ms']:.0f} ms, p99 {index['p99_ms']:.0f} ms"
    )
    search = report["SearchFacesByImage"]
    for name, row in search.items():
        if isinstance(row, dict):
            print(
                f"SearchFacesByImage over {search['collection_faces']} faces, {name}: "
                f"{row['requests_per_s']:.1f} req/s, p50 {row['p50_ms']:.1f} ms, "
                f"p99 {row['p99_ms']:.1f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=8, help="per client")
    parser.add_argument("--collection-faces", type=int, default=1_000_000)
    parser.add_argument("--faces", type=Path, default=default_photos_dir())
    args = parser.parse_args()
    report = run(args.device, args.faces, args.clients, args.requests, args.collection_faces)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"http-load-{args.device}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)


if __name__ == "__main__":
    main()
