"""The GPU suite rehearsed on the CPU with small sizes, so the first run on a lent GPU is not
also the first time it runs: every step, every results file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from service.testing.local_server import ROOT


def test_gpu_suite_rehearsal_on_the_cpu(tmp_path: Path, faces_dir: Path) -> None:
    out = tmp_path / "suite"
    command = [sys.executable, "-m", "benchmarks.gpu_suite", "--device", "cpu", "--small"]
    command += ["--out", str(out), "--photos-dir", str(faces_dir)]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    steps = {step["name"]: step for step in summary["steps"]}
    assert summary["ok"] and summary["weights"] == "random"
    assert set(steps) == {
        "weights",
        "cuda tests",
        "throughput detect search http",
        "video",
        "streams",
    }
    cuda_tier = steps["cuda tests"]["detail"]
    assert cuda_tier["tests"] >= 5 and cuda_tier["failures"] == cuda_tier["errors"] == 0
    if not torch.cuda.is_available():
        assert cuda_tier["skipped"] == cuda_tier["tests"]
    report = json.loads((out / "throughput-cpu.json").read_text())
    assert json.loads((out / "environment.json").read_text())["device"] == "cpu"
    rows = report["detect_embed"]["results"]
    assert rows["facebank"]["images_per_s"] > 0 and rows["stock facenet-pytorch"]["faces_per_s"] > 0
    assert [row["faiss_top10_agreement"] for row in report["search"]["rows"]] == [1.0]
    assert report["http"]["IndexFaces"]["faces_indexed"] > 0
    assert report["http"]["SearchFacesByImage"]["one_client"]["requests_per_s"] > 0
    video = json.loads((out / "video-cpu.json").read_text())["speed"]
    assert video[0]["resolution"] == "640x360" and video[0]["video_s_per_wall_s"] > 0
    streams = json.loads((out / "streams-cpu.json").read_text())
    assert streams["source"] == "file" and streams["runs"][0]["records"] > 0
