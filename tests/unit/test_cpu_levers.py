"""The detector's split over one-thread workers: chosen by timing (both timings faked here: the
faster way is served), forced by a setting, measured once per machine; and a split batch gives
each image's detections in order, each run detected with one torch thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ml import cpu_levers
from ml.cpu_levers import CACHE_FILE, DetectorChoice, SplitDetector, choose, faster_split, measure
from ml.types import Box, Detection


class Recording:
    """A detector that finds one face per image, as wide as the image's first pixel says, and
    records the torch threads each call ran with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.lock = threading.Lock()

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        return self.detect_many([pixels])[0]

    def detect_many(self, images: list[np.ndarray]) -> list[list[Detection]]:
        with self.lock:
            self.calls.append(
                (threading.current_thread().name, torch.get_num_threads(), len(images))
            )
        width = [float(image[0, 0, 0]) for image in images]
        return [[Detection(Box(0, 0, w, w), 1.0, np.zeros((5, 2)))] for w in width]


def images(count: int) -> list[np.ndarray]:
    return [np.full((8, 8, 3), 10 + i, dtype=np.uint8) for i in range(count)]


def test_a_split_batch_keeps_its_order_and_runs_each_part_on_one_thread() -> None:
    before = torch.get_num_threads()
    inner = Recording()
    split = SplitDetector(inner, 2)
    try:
        assert torch.get_num_threads() == before  # the caller's threads are untouched
        found = split.detect_many(images(5))
        assert [faces[0].box.right for faces in found] == [10, 11, 12, 13, 14]
        assert sorted(size for _, _, size in inner.calls) == [2, 3]
        assert {threads for _, threads, _ in inner.calls} == {1}
        assert all(name.startswith("detect-split") for name, _, _ in inner.calls)
        inner.calls.clear()
        split.detect_many(images(1))  # one image: nothing to split, the caller's threads
        assert inner.calls == [(threading.current_thread().name, before, 1)]
    finally:
        split.close()


@pytest.mark.parametrize(
    ("one_pass", "split", "workers"), [(100, 70, 2), (100, 97, 1), (70, 100, 1)]
)
def test_the_faster_way_is_served(
    monkeypatch: pytest.MonkeyPatch, one_pass: float, split: float, workers: int
) -> None:
    timings = iter([one_pass, split] * cpu_levers.ROUNDS)

    def faked(call: Any, inputs: Any) -> tuple[float, Any]:
        return next(timings), call(inputs)

    monkeypatch.setattr(cpu_levers, "timed_ms", faked)
    choice = measure(Recording(), 2, 4)
    assert (choice.workers, choice.one_pass_ms, choice.split_ms) == (workers, one_pass, split)
    assert faster_split(one_pass, split) == (workers == 2)


def test_a_setting_forces_and_a_machine_measures_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured: list[int] = []

    def fake(detector: Any, workers: int, batch: int) -> DetectorChoice:
        measured.append(workers)
        return DetectorChoice(workers, "measured", 100.0, 60.0, batch)

    assert choose(1, Recording(), 8, tmp_path, fake).workers == 1
    assert choose(3, Recording(), 8, tmp_path, fake) == DetectorChoice(3, "setting")
    assert measured == []
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    first = choose(0, Recording(), 8, tmp_path, fake)
    again = choose(0, Recording(), 8, tmp_path, fake)
    assert measured == [2] and (tmp_path / CACHE_FILE).exists()
    assert (first.workers, again.workers) == (2, 2)
    assert again.chosen_by == "measured earlier on this machine"
