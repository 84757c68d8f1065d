"""Where a server's start-up goes, and what the first requests pay.

    python -m benchmarks.startup [--runs 3]

In this process, each step of the server's model start-up timed on its own, in the server's
order: checking and loading the embedder's weights, each attribute network (the table's
networks), the detector, then each warm-up pass. Then `facebank serve` on an empty database,
timed from launch to /readyz 200, and the latency
of the first DetectFaces and IndexFaces after ready against the tenth. Medians of `--runs`.
Start-up with 1,000,000 faces is `python -m benchmarks.restart`. Writes
benchmarks/results/startup-cpu.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import RESULTS, git_commit
from benchmarks.scenes import celebrity_photos, compose_scene
from ml.detector import REKOGNITION_MIN_FACE_SIZE, MtcnnDetector
from ml.embedder import TorchEmbedder, load_network
from ml.face_models import DEFAULT_MODEL_VERSION, model_spec
from ml.manifest import default_models_dir
from ml.networks.table import ATTRIBUTE_NETWORKS, attribute_role, network
from ml.provision.photos import default_photos_dir
from service.client.evaluation_gather import rekognition
from service.settings import Settings
from service.testing.local_server import start_server, stop_server


def clocked(steps: dict[str, float], name: str, work: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = work()
    steps[name] = time.perf_counter() - start
    return result


def model_steps(models_dir: Path) -> dict[str, float]:
    """Each model step of the server's start-up, in its order, in seconds."""
    settings = Settings()
    device = torch.device("cpu")
    spec = model_spec(DEFAULT_MODEL_VERSION)
    steps: dict[str, float] = {}
    weights = clocked(
        steps, "embedder: check sha256", lambda: network(spec.network).verified_path(models_dir)
    )
    module = clocked(steps, "embedder: load", lambda: load_network(spec, weights))
    embedder = clocked(
        steps, "embedder: prepare", lambda: TorchEmbedder(spec, module, device, cpu_bf16=True)
    )
    for entry in ATTRIBUTE_NETWORKS:
        path = clocked(
            steps, f"{entry.name}: check sha256", lambda e=entry: e.verified_path(models_dir)
        )
        role = attribute_role(entry)
        clocked(steps, f"{entry.name}: load", lambda r=role, p=path: r.load(p))
    detector = clocked(
        steps,
        "detector: load",
        lambda: MtcnnDetector(device, reference_min_face=REKOGNITION_MIN_FACE_SIZE),
    )
    noise = np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    clocked(steps, "warm-up: detect one", lambda: detector.detect(noise))
    clocked(
        steps,
        "warm-up: detect a batch",
        lambda: detector.detect_many([noise] * settings.detect_batch_size),
    )
    clocked(steps, "warm-up: embed one", lambda: embedder.embed(noise[None]))
    clocked(
        steps,
        "warm-up: embed a batch",
        lambda: embedder.embed(np.repeat(noise[None], settings.embed_batch_size, axis=0)),
    )
    return steps


def first_requests(work: Path, faces: Path) -> dict[str, Any]:
    """Launch to ready on an empty database, then DetectFaces and IndexFaces latencies."""
    scene = compose_scene(celebrity_photos(faces), seed=0, faces=2)
    launched = time.perf_counter()
    server = start_server(work, {"FACEBANK_DATA_DIR": str(work / "data")})
    ready = time.perf_counter() - launched
    try:
        client = rekognition(server.url, "us-east-1")
        client.create_collection(CollectionId="startup")
        latencies: dict[str, list[float]] = {"DetectFaces": [], "IndexFaces": []}
        for _ in range(10):
            for name, call in (
                ("DetectFaces", lambda: client.detect_faces(Image={"Bytes": scene})),
                (
                    "IndexFaces",
                    lambda: client.index_faces(CollectionId="startup", Image={"Bytes": scene}),
                ),
            ):
                start = time.perf_counter()
                call()
                latencies[name].append(time.perf_counter() - start)
    finally:
        stop_server(server)
    return {
        "launch_to_ready_s": ready,
        "first_ms": {name: 1000 * values[0] for name, values in latencies.items()},
        "tenth_ms": {name: 1000 * values[-1] for name, values in latencies.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--faces", type=Path, default=default_photos_dir())
    args = parser.parse_args()
    runs = [model_steps(default_models_dir()) for _ in range(args.runs)]
    steps = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
    served = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as work:  # an empty database each time
            served.append(first_requests(Path(work), args.faces))
    report = {
        "commit": git_commit(),
        "model_steps_s_median": steps,
        "model_steps_total_s": sum(steps.values()),
        "launch_to_ready_s": [run["launch_to_ready_s"] for run in served],
        "first_requests": served,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup-cpu.json").write_text(json.dumps(report, indent=2) + "\n")
    for name, seconds in steps.items():
        print(f"{name:<40} {seconds:7.3f} s")
    print(f"launch to ready: {report['launch_to_ready_s']}")
    for run in served:
        print(f"first / tenth ms: {run['first_ms']} / {run['tenth_ms']}")


if __name__ == "__main__":
    main()
