"""Videos that tests and benchmarks make themselves (H.264 in MP4, encoded with PyAV) from real
photos: known people at known times, moving, entering at an edge, two at once, nobody."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Appearance:
    person: str
    photo: Path
    start_ms: int
    end_ms: int  # exclusive
    left_from: float  # the photo's left edge, as a fraction of the frame's width, at the start
    left_to: float  # ... and at the end (below 0: cut by the left edge)
    height: int  # the photo's height in pixels

    def shows(self, timestamp_ms: int) -> bool:
        return self.start_ms <= timestamp_ms < self.end_ms

    def left_px(self, timestamp_ms: int, frame_width: int) -> int:
        progress = (timestamp_ms - self.start_ms) / max(self.end_ms - self.start_ms, 1)
        return round((self.left_from + (self.left_to - self.left_from) * progress) * frame_width)


@dataclass(frozen=True)
class Script:
    appearances: tuple[Appearance, ...]
    duration_ms: int
    width: int = 640
    height: int = 360
    fps: int = 10


def frame(script: Script, timestamp_ms: int) -> np.ndarray:
    canvas = Image.new("RGB", (script.width, script.height), (128, 128, 128))
    for shown in script.appearances:
        if shown.shows(timestamp_ms):
            photo = Image.open(shown.photo).convert("RGB")
            size = (round(photo.width * shown.height / photo.height), shown.height)
            top = (script.height - shown.height) // 2
            canvas.paste(photo.resize(size), (shown.left_px(timestamp_ms, script.width), top))
    return np.asarray(canvas)


def encode(
    frames: Iterable[np.ndarray],
    fps: int,
    codec: str = "libx264",
    container: str = "mp4",
    codec_options: dict[str, str] | None = None,
) -> bytes:
    """The frames (encoded as they come, never all held at once) as one video file."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream(codec, rate=fps, options=codec_options)
        assert isinstance(stream, av.VideoStream)
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for index, pixels in enumerate(frames):
            if index == 0:
                stream.height, stream.width = pixels.shape[:2]
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


def render(script: Script, repeat: int = 1) -> bytes:
    """The script's video, played `repeat` times in a row."""
    step = 1000 // script.fps
    times = [t for _ in range(repeat) for t in range(0, script.duration_ms, step)]
    return encode((frame(script, t) for t in times), script.fps)


def blank_video(seconds: int, fps: int = 1, side: int = 64) -> bytes:
    """A long, tiny video of grey frames (for the duration cap)."""
    grey = np.full((side, side, 3), 128, dtype=np.uint8)
    return encode([grey] * (seconds * fps), fps)


def audio_only() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as output:
        stream = output.add_stream("aac", rate=16000)
        assert isinstance(stream, av.AudioStream)
        silence = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        silence.sample_rate = 16000
        for index in range(20):
            silence.pts = index * 1024
            for packet in stream.encode(silence):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()
