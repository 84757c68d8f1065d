"""A camera read by CameraFeed, here a file (which it paces as a camera would send it): frames
come in order with capture times from now, the end of the stream is reported for the processor's
StatusMessage, and when the analysis samples far apart enough the frames nothing refers to
(B-frames) are not decoded."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ml.evaluation.videos import encode
from service.streaming.capture import CameraFeed

FRAMES, FPS = 30, 25


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bar sliding over a gradient: x264's defaults code most of it as B-frames."""
    ramp = np.tile(np.linspace(0, 255, 160, dtype=np.uint8), (96, 1))
    frames = []
    for index in range(FRAMES):
        pixels = np.stack([ramp, ramp[:, ::-1], np.full_like(ramp, 90)], axis=-1)
        pixels[:, 4 * index : 4 * index + 12] = 255
        frames.append(pixels)
    path = tmp_path_factory.mktemp("camera") / "bar.mp4"
    path.write_bytes(encode(frames, FPS))
    return path


def play(video: Path, sample_ms: int, on_gpu: bool = False) -> tuple[CameraFeed, list[str]]:
    """Read the file once through; the feed is closed once it reports the stream's end."""
    messages: list[str | None] = []
    ended = threading.Event()

    def changed(message: str | None) -> None:
        messages.append(message)
        if message is not None:
            ended.set()

    feed = CameraFeed("bar", str(video), sample_ms, changed, on_gpu)
    started = time.time()
    feed.start()
    newest = feed.newest(0, wait_s=5)
    assert newest is not None
    assert abs(newest.capture_time - started) < 2.0
    assert ended.wait(10)
    feed.close()
    return feed, [m for m in messages if m is not None]


def test_every_frame_is_read_when_the_analysis_may_want_each(video: Path) -> None:
    feed, messages = play(video, sample_ms=40)
    assert feed.stats.frames_read == FRAMES
    assert feed.stats.connections == 1
    assert messages[0].startswith("Reconnecting to camera bar since ")
    assert "the stream ended" in messages[0]


def test_frames_nothing_refers_to_are_skipped_when_sampling_far_apart(video: Path) -> None:
    feed, _ = play(video, sample_ms=200)
    assert FRAMES // 4 <= feed.stats.frames_read < FRAMES


@pytest.mark.cuda
def test_nvdec_reads_the_camera(video: Path) -> None:
    feed, _ = play(video, sample_ms=40, on_gpu=True)
    assert feed.stats.frames_read == FRAMES
