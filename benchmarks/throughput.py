"""Throughput of the whole node in one run: detect + embed against stock, search, HTTP load.

    python -m benchmarks.throughput [--device cpu|cuda] [--parts detect search http]
        [--images 32] [--batch 8] [--repeats 3] [--workers N] [--levers] [--runs N]
        [--search-sizes N ...] [--clients N] [--requests 8] [--collection-faces 1000000]

detect: the stock facenet-pytorch pipeline against facebank's, in this process on the same
device, over the same 1280x720 scenes (2-3 real faces each, composed from the provisioned five-
celebrities photos), decoded from JPEG once up front. Embedder weights are random: speed does
not depend on their values. "Stock" is what a user assembles from facenet-pytorch:
`MTCNN(keep_all=True)` called on a batch of same-sized images, then `InceptionResnetV1` on every
crop. "facebank" is the server's pipeline (vectorised detection, pose, quality, alignment,
embedding with every view of the default model's recipe, model 1.1: the upright face and its
mirror image; the smallest face is Rekognition's 40 px in a 1920-px frame, in proportion in
others: 27 px in these scenes, where stock's is MTCNN's 20 px; on the CPU the embedder in the
way the server would serve here, timed afresh as ml/cpu_precision.py times it: torch in fp32
or bf16, ONNX Runtime in fp32, or OpenVINO in fp32, fp16 or bf16 on the same weights exported).
`--levers` also times each of those choices undone. On
the CPU facebank splits each batch over `--workers` threads (default: one per
core) with one torch thread each, because MTCNN's many small operations scale poorly inside one
call. Stock is measured both as a user calls it and with the same split, so the report separates
what the split buys from what the vectorised detector buys. The first batch of each is a
discarded warm-up. Prints images/s, faces/s, p50/p99 per batch and the ratios.

search: `benchmarks.search_throughput` on the same device (sizes 100k, 1M and 10M on CUDA;
100k on the CPU, where `python -m benchmarks.search_throughput` takes larger ones).

http: `benchmarks.http_load` (a live server with real weights; 64 clients on CUDA, 8 on the CPU;
SearchFacesByImage over a collection of --collection-faces synthetic faces).

`--runs N` (with `--parts detect`) runs the detect part N times in a row, each a whole report,
into benchmarks/results/throughput-<device>-detect-runs.json with facebank's ratios to stock in
each run, as the CPU-speed figures in docs/performance.md are taken. Otherwise it writes
benchmarks/results/throughput-<device>.json with the device, the CPU (model, cores, the
flags that decide precision: AMX, AVX512-BF16, AVX2...), the embedder's precision and runtime
with each way's timing, versions and commit.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from importlib.metadata import version
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks import RESULTS, git_commit, search_throughput
from benchmarks.scenes import celebrity_photos, compose_scene
from ml import cpu_precision
from ml.align import recipe_crops
from ml.cpu import describe_cpu
from ml.cpu_precision import WAYS, PrecisionChoice, Way
from ml.decode import DecodedImage, decode_image
from ml.detector import REKOGNITION_MIN_FACE_SIZE, MtcnnDetector
from ml.embedder import FaceEmbedder, TorchEmbedder, build_network, cpu_has_bf16
from ml.face_models import DEFAULT_MODEL_VERSION, FACENET_2017, ModelSpec, model_spec
from ml.mtcnn import MTCNN_MIN_FACE_SIZE
from ml.pipeline import described
from ml.provision.embedder_graph import export_graph
from ml.provision.photos import default_photos_dir

PARTS = ["detect", "search", "http"]
SERVED_SPEC = model_spec(DEFAULT_MODEL_VERSION)


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


@dataclass(frozen=True)
class EmbedderWay:
    """How facebank's embedder runs: on the CPU, one of the ways ml/cpu_precision.py times."""

    choice: PrecisionChoice
    graph: Path | None = None  # the ONNX graph of the benchmark's weights
    threads: int = 1  # a graph runtime's threads a call: one per worker, as torch's
    workers: int = 1  # calls at once (OpenVINO is compiled for as many)

    def embedder(self, spec: ModelSpec, device: torch.device) -> FaceEmbedder:
        network = build_network(spec)
        if device.type != "cpu":
            return TorchEmbedder(spec, network, device, batch=512)
        return cpu_precision.served_embedder(
            spec, network, self.choice, self.graph, self.threads, 512, self.workers
        )


def facebank_pipeline(
    device: torch.device,
    way: EmbedderWay,
    spec: ModelSpec = SERVED_SPEC,
    min_face_size: int = REKOGNITION_MIN_FACE_SIZE,
) -> Callable[[list[DecodedImage]], int]:
    """Detection and embedding as the server runs them for `spec`: every view of its recipe
    (model 1.1: the upright face and its mirror image), all faces of a batch in one pass."""
    embedder = way.embedder(spec, device)
    detector = MtcnnDetector(device, reference_min_face=min_face_size)

    def run(batch: list[DecodedImage]) -> int:
        found = detector.detect_many([image.pixels for image in batch])
        for image, faces in zip(batch, found, strict=True):
            described(image, faces)  # pose and quality, which every response carries
        crops = [
            recipe_crops(image.pixels, faces, spec.upright, spec.mirrored)
            for image, faces in zip(batch, found, strict=True)
            if faces
        ]
        if not crops:
            return 0
        stacked = np.concatenate(crops)
        embedder.embed(stacked.reshape(-1, *stacked.shape[2:]))
        return int(stacked.shape[0])

    return run


# The CPU embedder's ways that the levers time when the server would not serve them.
CPU_WAYS: dict[str, Way] = {
    "torch fp32 embedder": "fp32",
    "bf16 embedder": "bf16",
    "onnxruntime embedder": "onnxruntime",
    "openvino fp32 embedder": "openvino",
    "openvino fp16 embedder": "openvino-fp16",
    "openvino bf16 embedder": "openvino-bf16",
}


def levers(
    device: torch.device, served: EmbedderWay
) -> dict[str, Callable[[list[DecodedImage]], int]]:
    """facebank with one of its defaults changed back, to measure what each buys."""
    variants = {
        "20-px minimum face": facebank_pipeline(device, served, min_face_size=MTCNN_MIN_FACE_SIZE),
        "model 1.0 (one view)": facebank_pipeline(device, served, spec=FACENET_2017),
    }
    if device.type == "cpu":
        for name, way in CPU_WAYS.items():
            if way != served.choice.way and way in served.choice.batch_ms:  # runnable here
                precision, runtime = WAYS[way]
                lever = PrecisionChoice(precision, "lever", runtime)
                variants[name] = facebank_pipeline(device, replace(served, choice=lever))
    return variants


def served_way(device: torch.device, graph: Path, workers: int) -> EmbedderWay:
    """The embedder's way as the server chooses it on this machine (timed afresh, on the
    benchmark's weights and their exported graph)."""
    if device.type != "cpu":
        return EmbedderWay(PrecisionChoice("fp16", "device"))
    torch.manual_seed(0)
    network = build_network(SERVED_SPEC)
    export_graph(network, graph)
    choice = cpu_precision.measure(SERVED_SPEC, network, graph)
    threads = 1 if workers > 1 else torch.get_num_threads()
    return EmbedderWay(choice, graph, threads, workers)


def split_over(
    run: Callable[[list[DecodedImage]], int], pool: ThreadPoolExecutor, workers: int
) -> Callable[[list[DecodedImage]], int]:
    """`run` on `workers` runs of consecutive images of each batch at once, in `pool`.

    Consecutive, not every `workers`-th image: the scenes alternate between two and three
    faces, so a strided split would hand one worker every three-face scene."""
    if workers == 1:
        return run

    def split(batch: list[DecodedImage]) -> int:
        bounds = [len(batch) * i // workers for i in range(workers + 1)]
        slices = [batch[start:end] for start, end in pairwise(bounds)]
        return sum(pool.map(run, [part for part in slices if part]))

    return split


def timed(
    run: Callable[[list[DecodedImage]], int],
    images: list[DecodedImage],
    options: argparse.Namespace,
    workers: int,
) -> dict[str, float]:
    device, batch, repeats = torch.device(options.device), options.batch, options.repeats
    default_threads = torch.get_num_threads()
    torch.set_num_threads(1 if workers > 1 else default_threads)  # one torch thread per worker
    batches = [images[i : i + batch] for i in range(0, len(images), batch)]
    seconds, faces = [], 0
    with ThreadPoolExecutor(workers) as pool:
        run = split_over(run, pool, workers)
        run(batches[0])  # warm-up
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
    torch.set_num_threads(default_threads)
    return {
        "workers": workers,
        "images_per_s": len(images) * repeats / total,
        "faces_per_s": faces / total,
        "batch_p50_ms": float(np.percentile(seconds, 50) * 1000),
        "batch_p99_ms": float(np.percentile(seconds, 99) * 1000),
    }


def detect_embed(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    workers = args.workers or (os.cpu_count() or 1 if device.type == "cpu" else 1)
    with tempfile.TemporaryDirectory() as scratch:
        way = served_way(device, Path(scratch) / "embedder.onnx", workers)
        torch.manual_seed(0)
        images = scenes(args.faces, args.images)
        stock, facebank = stock_pipeline(device), facebank_pipeline(device, way)
        results: dict[str, Any] = {"stock facenet-pytorch": timed(stock, images, args, 1)}
        if workers > 1:
            results[f"stock, {workers} workers"] = timed(stock, images, args, workers)
        results["facebank"] = timed(facebank, images, args, workers)
        if args.levers:
            for name, lever in levers(device, way).items():
                results[f"facebank, {name}"] = timed(lever, images, args, workers)
            if workers > 1:  # as the server calls it: one pass over each batch, every thread
                one_pass = replace(way, threads=torch.get_num_threads(), workers=1)
                results["facebank, one pass"] = timed(
                    facebank_pipeline(device, one_pass), images, args, 1
                )
    return {
        "model_version": SERVED_SPEC.version,
        "min_face_size": REKOGNITION_MIN_FACE_SIZE,
        "embedder": way.choice.as_response(),
        "images": args.images,
        "batch": args.batch,
        "repeats": args.repeats,
        "scene": "1280x720, 2-3 faces",
        "results": results,
        "ratios": {
            f"{mine} / {theirs}": results[mine]["images_per_s"] / results[theirs]["images_per_s"]
            for mine in results
            if mine.startswith("facebank")
            for theirs in results
            if theirs.startswith("stock")
        },
    }


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--parts", nargs="+", default=PARTS, choices=PARTS)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="0: one per core on the CPU")
    parser.add_argument(
        "--levers",
        action="store_true",
        help="also time facebank with MTCNN's 20-px minimum face, with model 1.0's one view, "
        "and on the CPU with the embedder in the precision not served",
    )
    parser.add_argument("--faces", type=Path, default=default_photos_dir())
    parser.add_argument("--search-sizes", type=int, nargs="+", help="default: see the docstring")
    parser.add_argument("--clients", type=int, help="HTTP clients; 64 on CUDA, 8 on the CPU")
    parser.add_argument("--requests", type=int, default=8, help="HTTP requests per client")
    parser.add_argument("--collection-faces", type=int, default=1_000_000)
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="the detect part this many times in a row, into throughput-<device>-detect-runs.json",
    )
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/throughput-<device>")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs takes 1 or more")
    if args.runs > 1 and args.parts != ["detect"]:
        parser.error("--runs repeats the detect part alone: give --parts detect")
    return args


def main() -> None:
    args = arguments()
    if args.runs > 1:
        detect_runs(args)
        return
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    report: dict[str, Any] = environment(device)
    if "detect" in args.parts:
        report["detect_embed"] = detect_embed_printed(args, device)
    if "search" in args.parts:
        sizes = args.search_sizes or ([100_000, 1_000_000, 10_000_000] if cuda else [100_000])
        report["search"] = search_throughput.run(device, sizes)
        search_throughput.print_rows(report["search"])
    if "http" in args.parts:
        from benchmarks import http_load  # the server's packages, needed for this part only

        clients = args.clients or (64 if cuda else 8)
        report["http"] = http_load.run(
            args.device, args.faces, clients, args.requests, args.collection_faces
        )
        http_load.print_report(report["http"])
    out = args.out or RESULTS / f"throughput-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


def detect_embed_printed(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """The detect part's report, its table printed."""
    part = detect_embed(args, device)
    print_report(part["results"], part["ratios"])
    return part


def detect_runs(args: argparse.Namespace) -> None:
    """The detect part `--runs` times in a row, each as a whole report of its own, and how
    facebank stood against stock in each: the check "2x stock in every run" in one command."""
    device = torch.device(args.device)
    runs = []
    for number in range(1, args.runs + 1):
        print(f"run {number} of {args.runs}")
        runs.append({**environment(device), "detect_embed": detect_embed_printed(args, device)})
    ratios = {
        name: [run["detect_embed"]["ratios"][name] for run in runs]
        for name in runs[0]["detect_embed"]["ratios"]
        if name.startswith("facebank / ")
    }
    for name, per_run in ratios.items():
        print(f"{name}, each run: {', '.join(f'{ratio:.2f}x' for ratio in per_run)}")
    levers = " --levers" if args.levers else ""
    note = f"{args.runs} runs of the detect part{levers}, one after another"
    out = args.out or RESULTS / f"throughput-{device.type}-detect-runs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"note": note, "ratios": ratios, "runs": runs}, indent=2) + "\n")


def environment(device: torch.device) -> dict[str, Any]:
    """What the numbers depend on: device, library versions, the commit measured."""
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu": describe_cpu(),
        "native_bf16": cpu_has_bf16(),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "facenet_pytorch": version("facenet-pytorch"),
        "torch_threads": torch.get_num_threads(),
        "commit": git_commit(),
    }


def print_report(results: dict[str, Any], ratios: dict[str, float]) -> None:
    print(f"{'pipeline':<26} {'images/s':>9} {'faces/s':>9} {'p50 ms':>9} {'p99 ms':>9}")
    for name, row in results.items():
        print(
            f"{name:<26} {row['images_per_s']:9.2f} {row['faces_per_s']:9.2f} "
            f"{row['batch_p50_ms']:9.1f} {row['batch_p99_ms']:9.1f}"
        )
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
