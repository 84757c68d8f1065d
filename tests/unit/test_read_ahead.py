"""Video frames are decoded in a thread of their own, a few ahead of the models."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from service.stored_video.frame_analysis import StageClock, read_ahead


def test_items_arrive_in_order_from_another_thread() -> None:
    threads = []

    def numbers() -> Iterator[int]:
        for n in range(10):
            threads.append(threading.current_thread())
            yield n

    clock = StageClock()
    assert list(read_ahead(numbers(), clock, depth=2)) == list(range(10))
    assert threading.current_thread() not in threads
    assert "decode" in clock.seconds  # the producer's time is counted as decoding


def test_the_producers_error_comes_after_its_items() -> None:
    def breaks() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("cut off")

    seen = []
    with pytest.raises(ValueError, match="cut off"):
        for item in read_ahead(breaks(), StageClock()):
            seen.append(item)
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_stops_the_producer() -> None:
    produced = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    for item in read_ahead(endless(), StageClock(), depth=2):
        if item == 3:
            break
    assert len(produced) <= 3 + 2 + 2  # at most the queue's depth beyond what was taken
