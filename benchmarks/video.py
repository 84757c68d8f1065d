"""Stored video: how fast a job runs, what sampling coarser than every frame saves and misses,
and what a running job does to interactive requests.

    python -m benchmarks.video [--device cpu] [--steps speed sampling interactive]

- speed: a face search job at the default sampling on generated 720p and 1080p videos (25 fps,
  three people coming and going), run in-process through the server's own batched stages;
  video seconds per wall-clock second, and each stage's share of the job's time (decoding runs
  in its own thread beside the others, so its share overlaps theirs);
- sampling: face detection on a 720p video of appearances 0.3 to 4 s long, at several sampling
  intervals: the time it takes, the appearances found at least once, and how long after an
  appearance starts its first detection comes;
- interactive: DetectFaces latency (p50, p99 of sequential calls) on an idle live server and
  while a video job runs on it (the video read from a moto S3 server).

Writes benchmarks/results/video-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import RESULTS, git_commit
from benchmarks.scenes import celebrity_photos, compose_scene
from ml.evaluation.videos import Appearance, Script, render
from ml.provision.photos import default_photos_dir
from service.build import batch_models, build_context, build_operations, build_pipeline, warm_up
from service.context import OperationContext
from service.settings import Settings
from service.stored_video.frame_analysis import (
    StageClock,
    VideoRun,
    detect_faces_in_video,
    search_faces_in_video,
)

PEOPLE = ("ben_afflek", "madonna", "jerry_seinfeld")
SAMPLINGS_MS = (40, 100, 200, 500, 1000)


def photo_of(faces: Path, person: str, split: str = "val") -> Path:
    return sorted((faces / "five-celebrities" / split / person).iterdir())[0]


def crowd_script(faces: Path, width: int, height: int, seconds: int) -> Script:
    """Three people, each in view for most of the video, crossing at different speeds."""
    size = height * 2 // 3
    appearances = tuple(
        Appearance(
            person, photo_of(faces, person), start, seconds * 1000, 0.05 + 0.3 * i, 0.3 * i, size
        )
        for i, (person, start) in enumerate(zip(PEOPLE, (0, 1500, 3000), strict=True))
    )
    return Script(appearances, seconds * 1000, width, height, fps=25)


def short_appearances(faces: Path) -> Script:
    """Appearances 0.3 to 4 s long, one at a time, 1 s apart, at changing offsets to the grid."""
    lengths = (300, 450, 600, 1000, 2000, 4000, 300, 700)
    appearances, start = [], 130
    for i, length in enumerate(lengths):
        person = PEOPLE[i % len(PEOPLE)]
        photo = photo_of(faces, person)
        appearances.append(Appearance(person, photo, start, start + length, 0.3, 0.35, 400))
        start += length + 1000 + 37 * i
    return Script(tuple(appearances), start, 1280, 720, fps=25)


def local_context(device: str, scratch: Path) -> OperationContext:
    """The server's pipeline (warmed, behind its batch queues) over a scratch database."""
    settings = Settings(device=device, data_dir=scratch, torch_threads=torch.get_num_threads())
    pipeline = build_pipeline(settings, settings.calibration_in_use())
    warm_up(pipeline, settings)
    batched, _ = batch_models(pipeline, settings)
    context, _ = build_context(settings, batched)
    return context


def enrol(context: OperationContext, faces: Path) -> str:
    operations = build_operations(Settings(), context)
    operations.dispatch("CreateCollection", {"CollectionId": "bench"})
    for person in PEOPLE:
        for photo in sorted((faces / "five-celebrities/train" / person).iterdir())[:3]:
            image = {"Bytes": photo.read_bytes()}
            operations.dispatch("IndexFaces", {"CollectionId": "bench", "Image": image})
    return "bench"


def speed(
    context: OperationContext,
    faces: Path,
    scratch: Path,
    sizes: list[tuple[int, int]],
    seconds: int,
) -> list[dict[str, Any]]:
    collection = enrol(context, faces)
    rows = []
    for width, height in sizes:
        script = crowd_script(faces, width, height, seconds=seconds)
        path = scratch / f"crowd-{height}.mp4"
        path.write_bytes(render(script))
        request = {"CollectionId": collection, "FaceMatchThreshold": 80.0}
        clock = StageClock()
        started = time.perf_counter()
        found = search_faces_in_video(VideoRun(context, path, request, 200, clock=clock))
        wall = time.perf_counter() - started
        row = {
            "resolution": f"{width}x{height}",
            "video_s": script.duration_ms / 1000,
            "wall_s": round(wall, 2),
            "video_s_per_wall_s": round(script.duration_ms / 1000 / wall, 2),
            "frames": clock.frames,
            "persons_entries": len(found),
            "stage_share": {k: round(v / wall, 3) for k, v in sorted(clock.seconds.items())},
        }
        print(json.dumps(row))
        rows.append(row)
    return rows


def sampling(context: OperationContext, faces: Path, scratch: Path) -> list[dict[str, Any]]:
    script = short_appearances(faces)
    path = scratch / "short-appearances.mp4"
    path.write_bytes(render(script))
    rows = []
    for every_ms in SAMPLINGS_MS:
        started = time.perf_counter()
        entries = detect_faces_in_video(VideoRun(context, path, {}, every_ms))
        wall = time.perf_counter() - started
        times = sorted({body["Timestamp"] for body, _ in entries})
        delays = [_entry_delay(appearance, times) for appearance in script.appearances]
        found = [d for d in delays if d is not None]
        row = {
            "sample_ms": every_ms,
            "wall_s": round(wall, 2),
            "video_s_per_wall_s": round(script.duration_ms / 1000 / wall, 2),
            "appearances_found": f"{len(found)} of {len(delays)}",
            "missed_lengths_ms": [
                a.end_ms - a.start_ms
                for a, d in zip(script.appearances, delays, strict=True)
                if d is None
            ],
            "mean_entry_delay_ms": round(statistics.mean(found)) if found else None,
        }
        print(json.dumps(row))
        rows.append(row)
    return rows


def _entry_delay(appearance: Appearance, face_times: list[int]) -> int | None:
    inside = [t for t in face_times if appearance.start_ms <= t < appearance.end_ms]
    return inside[0] - appearance.start_ms if inside else None


def interactive(faces: Path, scratch: Path) -> dict[str, Any]:
    """DetectFaces p50/p99 over 40 sequential calls on a 1280x720 scene, on an idle server and
    while a face detection job on a 60 s 720p video runs on it."""
    import boto3

    from service.testing.local_server import start_moto, start_server, stop_server

    moto, endpoint = start_moto(scratch / "moto.log")
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials)
    s3.create_bucket(Bucket="bench")
    script = crowd_script(faces, 1280, 720, seconds=60)
    s3.put_object(Bucket="bench", Key="long.mp4", Body=render(script))
    env = {
        "FACEBANK_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    server = start_server(scratch, env)
    try:
        client = boto3.client(
            "rekognition", endpoint_url=server.url, region_name="us-east-1", **credentials
        )
        scene = compose_scene(celebrity_photos(faces), seed=1, faces=3)
        idle = _latencies(client, scene)
        job = client.start_face_detection(
            Video={"S3Object": {"Bucket": "bench", "Name": "long.mp4"}}
        )
        time.sleep(2)  # the job under way
        busy = _latencies(client, scene)
        still_running = client.get_face_detection(JobId=job["JobId"])["JobStatus"] == "IN_PROGRESS"
    finally:
        stop_server(server)
        moto.terminate()
    result = {"idle": idle, "during_video_job": busy, "job_still_running_at_end": still_running}
    print(json.dumps(result))
    return result


def _latencies(client: Any, scene: bytes, calls: int = 40) -> dict[str, float]:
    client.detect_faces(Image={"Bytes": scene})  # warm the connection
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        client.detect_faces(Image={"Bytes": scene})
        seconds.append(time.perf_counter() - started)
    ordered = sorted(seconds)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--faces", type=Path, default=default_photos_dir())
    parser.add_argument("--steps", nargs="+", default=["speed", "sampling", "interactive"])
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/video-<device>.json")
    parser.add_argument("--sizes", nargs="+", default=["1280x720", "1920x1080"])
    parser.add_argument("--seconds", type=int, default=10, help="the speed step's video length")
    args = parser.parse_args()
    results: dict[str, Any] = {"commit": git_commit(), "device": args.device}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        if {"speed", "sampling"} & set(args.steps):
            context = local_context(args.device, scratch / "data")
            if "speed" in args.steps:
                pairs = (size.split("x") for size in args.sizes)
                sizes = [(int(width), int(height)) for width, height in pairs]
                results["speed"] = speed(context, args.faces, scratch, sizes, args.seconds)
            if "sampling" in args.steps:
                results["sampling"] = sampling(context, args.faces, scratch)
        if "interactive" in args.steps:
            results["interactive"] = interactive(args.faces, scratch)
    out = args.out or RESULTS / f"video-{args.device}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
