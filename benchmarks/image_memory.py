"""What one large image costs in memory while it is decoded and its faces are detected: the
growth of the process's peak resident memory for one image of each size, on the CPU.

    python -m benchmarks.image_memory [--megapixels 16 64]

Each size runs in a fresh process (peak memory only grows), after the models were loaded and
warmed on a small image. Writes benchmarks/results/image-memory.json.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

from benchmarks import RESULTS, git_commit
from ml.decode import ImageLimits
from ml.face_models import DEFAULT_MODEL_VERSION
from ml.manifest import default_models_dir
from ml.pipeline import load_pipeline, resolve_device


def png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (120, 130, 140)).save(buffer, format="PNG")
    return buffer.getvalue()


def peak_growth_bytes(megapixels: int) -> int:
    """In this process: load, warm, then decode and describe one square image."""
    torch.set_num_threads(2)
    limits = ImageLimits(max_bytes=50_000_000, max_pixels=megapixels * 1_000_000)
    pipeline = load_pipeline(
        default_models_dir(), DEFAULT_MODEL_VERSION, resolve_device("cpu"), limits=limits
    )
    warm = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(warm).save(buffer, format="PNG")
    pipeline.describe(pipeline.decode(buffer.getvalue()))
    data = png(int((megapixels * 1_000_000) ** 0.5))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pipeline.describe(pipeline.decode(data))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (after - before) * 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child's own size
    args = parser.parse_args()
    if args.one:
        print(peak_growth_bytes(args.one))
        return
    rows = []
    for size in args.megapixels:
        child = [sys.executable, "-m", "benchmarks.image_memory", "--one", str(size)]
        grown = int(subprocess.run(child, capture_output=True, text=True, check=True).stdout)
        rows.append({"megapixels": size, "peak_growth_gb": round(grown / 1e9, 2)})
        print(f"{size:>4} MP: peak resident memory grew {grown / 1e9:.2f} GB")
    body = {"commit": git_commit(), "device": "cpu", "rows": rows}
    (RESULTS / "image-memory.json").write_text(json.dumps(body, indent=2) + "\n")


if __name__ == "__main__":
    main()
