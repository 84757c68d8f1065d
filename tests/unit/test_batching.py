from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ml.types import Box, Detection
from service.batching import (
    BatchedChips,
    BatchedDetector,
    BatchedEmbedder,
    BatchQueue,
    QueueFullError,
)


def test_concurrent_submissions_share_batches_and_get_their_own_results() -> None:
    sizes: list[int] = []

    def run(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return [item * 10 for item in items]

    batches = BatchQueue("double", run, max_batch=8, max_wait_s=0.2, max_queue=64)
    try:
        with ThreadPoolExecutor(16) as pool:
            futures = list(pool.map(batches.submit, range(16)))
        assert [future.result(timeout=5) for future in futures] == [i * 10 for i in range(16)]
    finally:
        batches.close()
    assert max(sizes) > 1 and max(sizes) <= 8 and sum(sizes) == 16


def test_a_failing_batch_fails_every_caller() -> None:
    def run(items: list[int]) -> list[int]:
        raise ValueError("model broke")

    batches = BatchQueue("broken", run, max_batch=4, max_wait_s=0.01, max_queue=4)
    try:
        with pytest.raises(ValueError, match="model broke"):
            batches.submit(1).result(timeout=5)
    finally:
        batches.close()


def test_full_queue_refuses_at_once() -> None:
    release = threading.Event()

    def run(items: list[int]) -> list[int]:
        release.wait(timeout=5)
        return items

    batches = BatchQueue("slow", run, max_batch=1, max_wait_s=0.0, max_queue=2)
    try:
        first = batches.submit(0)
        while batches._queue.qsize():  # wait until the worker holds the first item
            pass
        batches.submit(1)
        batches.submit(2)
        with pytest.raises(QueueFullError):
            batches.submit(3)
        release.set()
        assert first.result(timeout=5) == 0
    finally:
        release.set()
        batches.close()


class DoublingEmbedder:
    dim = 3

    def __init__(self) -> None:
        self.calls: list[int] = []

    def embed(self, crops: np.ndarray) -> np.ndarray:
        self.calls.append(len(crops))
        return np.repeat(crops[:, :1, 0, 0].astype(np.float32), 3, axis=1)


def test_batched_embedder_splits_results_back_per_request() -> None:
    inner = DoublingEmbedder()
    embedder = BatchedEmbedder(inner, max_batch=16, max_wait_s=0.2, max_queue=16)
    requests = [np.full((n, 2, 2, 3), n, dtype=np.uint8) for n in (1, 3, 2, 4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            outputs = list(pool.map(embedder.embed, requests))
        assert [out.shape for out in outputs] == [(1, 3), (3, 3), (2, 3), (4, 3)]
        assert all(np.all(out == n) for out, n in zip(outputs, (1, 3, 2, 4), strict=True))
        assert embedder.embed(np.zeros((0, 2, 2, 3), dtype=np.uint8)).shape == (0, 3)
    finally:
        embedder.close()
    assert sum(inner.calls) == 10 and len(inner.calls) < 4


class CountingDetector:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        return self.detect_many([pixels])[0]

    def detect_many(self, images: list[np.ndarray]) -> list[list[Detection]]:
        self.calls.append(len(images))
        return [[face(float(image[0, 0, 0]))] for image in images]


def face(left: float) -> Detection:
    return Detection(Box(left, 0, left + 10, 10), 0.99, np.zeros((5, 2)))


def test_batched_detector_shares_passes_and_returns_each_image_its_faces() -> None:
    inner = CountingDetector()
    detector = BatchedDetector(inner, max_batch=8, max_wait_s=0.2, max_queue=16)
    images = [np.full((4, 4, 3), value, dtype=np.uint8) for value in range(6)]
    try:
        with ThreadPoolExecutor(6) as pool:
            found = list(pool.map(detector.detect, images))
        assert [faces[0].box.left for faces in found] == [0, 1, 2, 3, 4, 5]
        assert [f[0].box.left for f in detector.detect_many(images[:3])] == [0, 1, 2]
    finally:
        detector.close()
    assert sum(inner.calls) == 9 and len(inner.calls) < 9


def test_attribute_chips_of_concurrent_requests_share_a_pass_and_get_their_own_outputs() -> None:
    passes: list[int] = []

    def network(chips: np.ndarray) -> list[np.ndarray]:
        passes.append(len(chips))
        return [chips.sum(axis=(1, 2)), chips[:, 0, 0, None] * 2]  # two outputs, N first

    stage = BatchedChips("chips", network, max_batch=64, max_wait_s=0.2, max_queue=16)
    requests = [np.full((count, 4, 4), count, dtype=np.int64) for count in (1, 3, 2, 5)]
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(stage, requests))
    finally:
        stage.close()
    for chips, (sums, doubled) in zip(requests, answers, strict=True):
        assert sums.tolist() == [16 * len(chips)] * len(chips)
        assert doubled.tolist() == [[2 * len(chips)]] * len(chips)
    assert sum(passes) == 11 and len(passes) < 4
