"""Reading stored video: what the container says, frames sampled at a fixed interval, and a
clear reason for every file that cannot be read."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from ml.evaluation.videos import audio_only, encode
from ml.video_frames import VideoError, probe, sampled_frames


def greys(count: int, width: int = 160, height: int = 96) -> list[np.ndarray]:
    """Frame i is grey level 10 * i, so a sampled frame says which frame it was."""
    return [np.full((height, width, 3), 10 * i, dtype=np.uint8) for i in range(count)]


@pytest.fixture
def two_seconds(tmp_path: Path) -> Path:
    path = tmp_path / "grey.mp4"
    path.write_bytes(encode(greys(20), fps=10))
    return path


def test_metadata_comes_from_the_container(two_seconds: Path) -> None:
    metadata = probe(two_seconds)
    assert (metadata.codec, metadata.format) == ("h264", "QuickTime / MOV")
    assert (metadata.frame_width, metadata.frame_height) == (160, 96)
    assert metadata.frame_rate == 10.0 and metadata.duration_ms == 2000
    assert metadata.as_rekognition()["ColorRange"] in ("FULL", "LIMITED")


def test_frames_are_sampled_at_the_first_frame_of_each_interval(two_seconds: Path) -> None:
    sampled = list(sampled_frames(two_seconds, 500))
    assert [timestamp for timestamp, _ in sampled] == [0, 500, 1000, 1500]
    for timestamp, pixels in sampled:
        assert pixels.shape == (96, 160, 3)
        assert abs(float(pixels.mean()) - timestamp / 100 * 10) < 3  # frame timestamp/100


def test_every_frame_when_sampling_is_finer_than_the_frame_rate(two_seconds: Path) -> None:
    assert len(list(sampled_frames(two_seconds, 10))) == 20


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _faststart_mp4(frames: list[np.ndarray], path: Path) -> bytes:
    """An MP4 with its index first, so a truncated copy still opens (FFmpeg moves the index
    by rewriting the file, so it needs a path)."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as output:
        stream = output.add_stream("libx264", rate=10)
        assert isinstance(stream, av.VideoStream)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for pixels in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (lambda: _half(encode(greys(20), fps=10)), "not a video FFmpeg can read"),
        (lambda: b"just some text, not a video" * 40, "not a video FFmpeg can read"),
        (audio_only, "no video stream"),
        (lambda: encode(greys(5), fps=5, codec="mjpeg", container="avi"), "codec mjpeg"),
    ],
    ids=["truncated", "text", "audio only", "mjpeg"],
)
def test_unreadable_files_say_why(tmp_path: Path, content: object, reason: str) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content())  # type: ignore[operator]
    with pytest.raises(VideoError, match=reason):
        probe(path)
    with pytest.raises(VideoError, match=reason):
        list(sampled_frames(path, 100))


def test_a_file_cut_mid_way_gives_its_frames_then_says_where_it_broke(tmp_path: Path) -> None:
    noise = np.random.default_rng(0)
    frames = [noise.integers(0, 256, (96, 160, 3), dtype=np.uint8) for _ in range(40)]
    whole = _faststart_mp4(frames, tmp_path / "whole.mp4")
    path = tmp_path / "cut.mp4"
    path.write_bytes(whole[: len(whole) // 2])
    probe(path)  # the index is whole: it opens
    seen = []
    with pytest.raises(VideoError, match="cannot be decoded past"):
        for timestamp, _ in sampled_frames(path, 100):
            seen.append(timestamp)
    assert 0 < len(seen) < 40


@pytest.mark.cuda
def test_nvdec_gives_the_frames_the_cpu_decoder_gives(tmp_path: Path) -> None:
    noise = np.random.default_rng(1)
    frames = [noise.integers(0, 256, (96, 160, 3), dtype=np.uint8) for _ in range(20)]
    path = tmp_path / "noise.mp4"
    path.write_bytes(encode(frames, fps=10))
    on_cpu = list(sampled_frames(path, 300))
    on_gpu = list(sampled_frames(path, 300, on_gpu=True))
    assert [t for t, _ in on_gpu] == [t for t, _ in on_cpu]
    for (_, gpu), (_, cpu) in zip(on_gpu, on_cpu, strict=True):
        # NVDEC's colour conversion may round differently by a level or two
        assert np.abs(gpu.astype(np.int16) - cpu).mean() < 2.0
