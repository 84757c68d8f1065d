"""How the detector uses the CPU's cores, chosen by timing both ways on this machine: a batch in
one pass with every torch thread, or split into consecutive runs over one worker per core
with one torch thread each. MTCNN is many small operations (pyramid levels, gathers,
suppression) that scale poorly inside one call, so the split is faster on some machines and
not on others (docs/performance.md has the figures per CPU); which is measured once per
machine and cached in the data dir, like the embedder's precision (ml/cpu_precision.py), and a
setting forces either.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml import cpu
from ml.cpu import timed_ms
from ml.detector import FaceDetector
from ml.types import Detection

CACHE_FILE = "cpu-detector.json"
REQUIRED_GAIN = 0.05  # the split must be this much faster, or one pass stays
PROBE_SIZE = (360, 640)  # smaller than a camera frame: the timing is a sign, not a figure
ROUNDS = 5


@dataclass(frozen=True)
class DetectorChoice:
    workers: int  # 1: one pass; more: the batch split over that many one-thread workers
    chosen_by: str  # "measured", "measured earlier on this machine", "setting"
    one_pass_ms: float | None = None
    split_ms: float | None = None
    batch: int = 0  # images in the timed batch

    def as_response(self) -> dict[str, Any]:
        found: dict[str, Any] = {"Workers": self.workers, "ChosenBy": self.chosen_by}
        if self.one_pass_ms is not None and self.split_ms is not None:
            found["BatchMillis"] = {"one pass": self.one_pass_ms, "split": self.split_ms}
            found["BatchSize"] = self.batch
        return found

    def summary(self) -> str:
        how = "one pass" if self.workers == 1 else f"split over {self.workers} one-thread workers"
        text = f"detector batches in {how} ({self.chosen_by}"
        if self.one_pass_ms is not None and self.split_ms is not None:
            text += (
                f": {self.batch} images in {self.one_pass_ms:.0f} ms in one pass, "
                f"{self.split_ms:.0f} ms split"
            )
        return text + ")"


def one_thread() -> None:
    """A worker's start: one torch thread. torch fixes a thread's count on its first use, from
    the process-wide setting of that moment, so it is used here, while that setting is 1."""
    torch.set_num_threads(1)
    torch.get_num_threads()


class SplitDetector:
    """A detector whose batches are split into consecutive runs, each detected by a worker of
    its own with one torch thread. Consecutive, not strided: a batch's images tend to come in
    runs of similar ones, and each run keeps MTCNN's own batching."""

    def __init__(self, inner: FaceDetector, workers: int) -> None:
        self.inner, self.workers = inner, workers
        restore = torch.get_num_threads()
        self._pool = ThreadPoolExecutor(workers, "detect-split", initializer=one_thread)
        started = threading.Barrier(workers)
        list(self._pool.map(lambda _: started.wait(), range(workers)))  # every worker, now
        # torch.set_num_threads also sets what threads started later begin with: give them
        # the process's count back (each worker keeps its one thread).
        torch.set_num_threads(restore)

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        return self.inner.detect(pixels)

    def detect_many(self, images: list[np.ndarray]) -> list[list[Detection]]:
        if len(images) < 2:
            return self.inner.detect_many(images)
        parts = min(self.workers, len(images))
        bounds = [len(images) * i // parts for i in range(parts + 1)]
        runs = [images[start:end] for start, end in pairwise(bounds)]
        return [found for run in self._pool.map(self.inner.detect_many, runs) for found in run]

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def faster_split(one_pass_ms: float, split_ms: float) -> bool:
    return split_ms < one_pass_ms * (1.0 - REQUIRED_GAIN)


def probe_scenes(count: int) -> list[np.ndarray]:
    """Smooth scenes with some structure: P-Net's pyramid, most of MTCNN's work, runs whatever
    the pixels; noise would make R-Net and O-Net see hundreds of candidates."""
    rows, cols = np.mgrid[0 : PROBE_SIZE[0], 0 : PROBE_SIZE[1]] / 100.0
    scenes = []
    for index in range(count):
        channels = [np.sin(rows + index + c) * np.cos(0.7 * cols - c) for c in range(3)]
        scenes.append((np.stack(channels, axis=-1) * 90 + 128).astype(np.uint8))
    return scenes


def measure(detector: FaceDetector, workers: int, batch: int) -> DetectorChoice:
    """ROUNDS timed batches each way, the two ways taking turns so that whatever else the
    machine does falls on both alike; the split is chosen when its median ratio to one pass
    is clearly below 1. The timings reported are each way's best."""
    scenes = probe_scenes(batch)
    split = SplitDetector(detector, workers)
    try:
        detector.detect_many(scenes)  # warm both ways once
        split.detect_many(scenes)
        one_pass, parts = [], []
        for _ in range(ROUNDS):
            one_pass.append(timed_ms(detector.detect_many, scenes)[0])
            parts.append(timed_ms(split.detect_many, scenes)[0])
    finally:
        split.close()
    # Judged on each round's pair, whose two timings saw the same machine: the median ratio.
    ratio = float(np.median(np.asarray(parts) / np.asarray(one_pass)))
    one_pass_ms, split_ms = round(min(one_pass), 1), round(min(parts), 1)
    chosen = workers if faster_split(1.0, ratio) else 1
    return DetectorChoice(chosen, "measured", one_pass_ms, split_ms, batch)


def choose(
    setting: int,
    detector: FaceDetector,
    batch: int,
    cache_dir: Path | None,
    measure_on: Any = measure,
) -> DetectorChoice:
    """`setting` workers when it names them (1: one pass), else the cached measurement for
    this machine, else a fresh one (then cached); the split uses one worker per torch thread."""
    if setting:
        return DetectorChoice(setting, "setting")
    workers = torch.get_num_threads()
    if workers < 2:
        return DetectorChoice(1, "one torch thread: nothing to split over")
    key = {**cpu.machine_key(), "batch": batch}
    cache = None if cache_dir is None else cache_dir / CACHE_FILE
    cached = cpu.read_cached(cache, key)
    if cached is not None:
        try:
            return DetectorChoice(**{**cached, "chosen_by": "measured earlier on this machine"})
        except TypeError:
            pass  # written by another version: measure again
    choice: DetectorChoice = measure_on(detector, workers, batch)
    if cache is not None:
        cpu.store_cached(cache, key, asdict(choice))
    return choice
