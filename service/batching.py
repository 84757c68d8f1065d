"""Cross-request dynamic batching: a worker thread per model stage, fed by a bounded queue.

Callers submit an item and get a Future. The worker takes the first waiting item, then keeps
collecting until it has `max_batch` items or `max_wait_s` has passed since the first, runs the
model once on the whole batch and resolves every future. A full queue refuses at once
(`QueueFullError`) rather than letting latency grow without bound.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

import numpy as np
import torch

from ml.decode import DecodedImage, ImageLimits
from ml.detector import FaceDetector
from ml.device_decode import Outcome, decode_batch, unwrap
from ml.embedder import FaceEmbedder
from ml.networks.runner import ChipRunner
from ml.types import Detection

In = TypeVar("In")
Out = TypeVar("Out")


class QueueFullError(RuntimeError):
    """The model's queue is full: the caller should back off and retry."""


class BatchQueue(Generic[In, Out]):
    def __init__(
        self,
        name: str,
        run: Callable[[list[In]], list[Out]],
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
    ) -> None:
        self.name = name
        self._run = run
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue[tuple[In, Future[Out]]] = queue.Queue(maxsize=max_queue)
        self.batches_run = 0  # read by /metrics: items_run / batches_run is the mean batch
        self.items_run = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"batch-{name}", daemon=True)
        self._thread.start()

    def submit(self, item: In) -> Future[Out]:
        future: Future[Out] = Future()
        try:
            self._queue.put_nowait((item, future))
        except queue.Full:
            raise QueueFullError(f"the {self.name} queue is full") from None
        return future

    def depth(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _collect(self) -> list[tuple[In, Future[Out]]]:
        try:
            batch = [self._queue.get(timeout=0.1)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _loop(self) -> None:
        while not self._stopped.is_set():
            batch = self._collect()
            if not batch:
                continue
            self.batches_run += 1
            self.items_run += len(batch)
            try:
                results = self._run([item for item, _ in batch])
            except Exception as exc:  # every waiting caller learns of the failure
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)


def split_rows(joined: np.ndarray, requests: list[np.ndarray]) -> list[np.ndarray]:
    """`joined`'s rows back to the requests whose rows were joined, in order."""
    return list(np.split(joined, np.cumsum([len(rows) for rows in requests])[:-1]))


class BatchedStage(Generic[In, Out]):
    """A model stage behind a BatchQueue: `call` blocks until the batch holding its item ran."""

    def __init__(
        self,
        name: str,
        run: Callable[[list[In]], list[Out]],
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        timeout_s: float,
    ) -> None:
        self._timeout_s = timeout_s
        self.queue: BatchQueue[In, Out] = BatchQueue(name, run, max_batch, max_wait_s, max_queue)

    def call(self, item: In) -> Out:
        return self.queue.submit(item).result(timeout=self._timeout_s)

    def close(self) -> None:
        self.queue.close()


class BatchedEmbedder(BatchedStage[np.ndarray, np.ndarray]):
    """A FaceEmbedder whose calls from concurrent requests share one forward pass."""

    def __init__(
        self,
        inner: FaceEmbedder,
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        timeout_s: float = 120.0,
    ) -> None:
        self._inner = inner
        self.dim = inner.dim
        super().__init__("embedder", self._embed_many, max_batch, max_wait_s, max_queue, timeout_s)

    def _embed_many(self, requests: list[np.ndarray]) -> list[np.ndarray]:
        return split_rows(self._inner.embed(np.concatenate(requests)), requests)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.call(crops)


class BatchedDetector(BatchedStage[np.ndarray, list[Detection]]):
    """A FaceDetector whose calls from concurrent requests share one vectorised MTCNN pass."""

    def __init__(
        self,
        inner: FaceDetector,
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        timeout_s: float = 120.0,
    ) -> None:
        super().__init__("detector", inner.detect_many, max_batch, max_wait_s, max_queue, timeout_s)

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        return self.call(pixels)

    def detect_many(self, images: list[np.ndarray]) -> list[list[Detection]]:
        futures = [self.queue.submit(pixels) for pixels in images]  # all queued before waiting
        return [future.result(timeout=self._timeout_s) for future in futures]


class BatchedChips(BatchedStage[np.ndarray, list[np.ndarray]]):
    """An attribute network whose calls from concurrent requests share one forward pass: each
    call's chips are joined along the first axis and every output split back."""

    def __init__(
        self,
        name: str,
        inner: ChipRunner,
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        timeout_s: float = 120.0,
    ) -> None:
        self._inner = inner
        super().__init__(name, self._run_many, max_batch, max_wait_s, max_queue, timeout_s)

    def _run_many(self, requests: list[np.ndarray]) -> list[list[np.ndarray]]:
        per_output = [split_rows(out, requests) for out in self._inner(np.concatenate(requests))]
        return [list(parts) for parts in zip(*per_output, strict=True)]

    def __call__(self, chips: np.ndarray) -> list[np.ndarray]:
        return self.call(chips)


class BatchedDecoder(BatchedStage[bytes, Outcome]):
    """JPEG decoding on the model device, each batch gathered from concurrent requests (on
    CUDA, where one nvJPEG call on a batch beats many single ones)."""

    def __init__(
        self,
        limits: ImageLimits,
        device: torch.device,
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        timeout_s: float = 60.0,
    ) -> None:
        def run(datas: list[bytes]) -> list[Outcome]:
            return decode_batch(datas, limits, device)

        super().__init__("decoder", run, max_batch, max_wait_s, max_queue, timeout_s)

    def decode(self, data: bytes) -> DecodedImage:
        return unwrap(self.call(data))
