"""Stored video, read with PyAV (FFmpeg inside its wheel): what the container says of the video,
and the frames sampled at a fixed interval as RGB arrays.

On a CUDA node the frames are decoded with NVDEC (`on_gpu`), falling back to the CPU where
FFmpeg finds no device or the stream needs it. Rekognition takes H.264 in MP4 or MOV. Here any
container FFmpeg reads is opened, and the video codecs of ACCEPTED_CODECS are decoded; anything
else is refused with the codec's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.codec.hwaccel import HWAccel, hwdevices_available

ACCEPTED_CODECS = ("h264", "hevc", "mpeg4", "vp8", "vp9", "av1")
FULL_RANGE = 2  # FFmpeg's AVCOL_RANGE_JPEG


class VideoError(ValueError):
    """The file cannot be read as a video facebank decodes; the message says why."""


@dataclass(frozen=True)
class VideoMetadata:
    codec: str
    duration_ms: int
    format: str
    frame_rate: float
    frame_height: int
    frame_width: int
    color_range: str  # FULL or LIMITED

    def as_rekognition(self) -> dict[str, Any]:
        return {
            "Codec": self.codec,
            "DurationMillis": self.duration_ms,
            "Format": self.format,
            "FrameRate": self.frame_rate,
            "FrameHeight": self.frame_height,
            "FrameWidth": self.frame_width,
            "ColorRange": self.color_range,
        }


def nvdec() -> HWAccel | None:
    """NVDEC through FFmpeg's CUDA device, when this FFmpeg has it; frames it cannot decode
    fall back to the CPU decoder."""
    if "cuda" not in hwdevices_available():
        return None
    return HWAccel("cuda", allow_software_fallback=True)


@contextmanager
def _opened(path: Path, on_gpu: bool = False) -> Iterator[tuple[Any, Any]]:
    """The container and its first video stream, or VideoError. `on_gpu` decodes with NVDEC
    where FFmpeg can reach a CUDA device, else on the CPU."""
    try:
        container = _open(path, nvdec() if on_gpu else None)
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise VideoError(f"the file is not a video FFmpeg can read ({_reason(exc)})") from None
    with container:
        if not container.streams.video:
            raise VideoError("the file has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context.name not in ACCEPTED_CODECS:
            raise VideoError(
                f"the video codec {stream.codec_context.name} is not decoded here; "
                f"accepted: {', '.join(ACCEPTED_CODECS)}"
            )
        yield container, stream


def _open(path: Path, hardware: HWAccel | None) -> Any:
    if hardware is None:
        return av.open(str(path))
    try:
        return av.open(str(path), hwaccel=hardware)
    except av.FFmpegError:  # no CUDA device after all: decode on the CPU
        return av.open(str(path))


def probe(path: Path) -> VideoMetadata:
    with _opened(path) as (container, stream):
        return _metadata(container, stream)


def _metadata(container: Any, stream: Any) -> VideoMetadata:
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    else:
        seconds = (container.duration or 0) / av.time_base
    rate = stream.average_rate or stream.guessed_rate or Fraction(0)
    context = stream.codec_context
    full = getattr(context, "color_range", 0) == FULL_RANGE
    return VideoMetadata(
        codec=context.name,
        duration_ms=round(seconds * 1000),
        format=container.format.long_name,
        frame_rate=float(rate),
        frame_height=int(context.height),
        frame_width=int(context.width),
        color_range="FULL" if full else "LIMITED",
    )


def sampled_frames(
    path: Path, every_ms: int, on_gpu: bool = False
) -> Iterator[tuple[int, np.ndarray]]:
    """(timestamp in ms, H x W x 3 uint8 RGB) of the first frame at or after each multiple of
    `every_ms`, in time order. A file that breaks off before the duration its container
    states raises VideoError once the frames before the break are given."""
    next_sample, last_frame = 0, -1
    with _opened(path, on_gpu) as (container, stream):
        stream.thread_type = "AUTO"  # FFmpeg's own frame threads
        metadata = _metadata(container, stream)
        try:
            for frame in container.decode(stream):
                last_frame = round(float(frame.time or 0.0) * 1000)
                if last_frame < next_sample:
                    continue
                yield last_frame, frame.to_ndarray(format="rgb24")
                next_sample = (last_frame // every_ms + 1) * every_ms
        except av.FFmpegError as exc:
            message = f"the video cannot be decoded past {last_frame} ms ({_reason(exc)})"
            raise VideoError(message) from None
    _check_whole(metadata, last_frame)


def _check_whole(metadata: VideoMetadata, last_frame_ms: int) -> None:
    """FFmpeg stops quietly where a file is cut off: the frames must reach the duration the
    container states, give or take two frames."""
    frame_ms = 1000 / metadata.frame_rate if metadata.frame_rate else 0
    if last_frame_ms + 3 * frame_ms < metadata.duration_ms:
        raise VideoError(
            f"the video cannot be decoded past {max(last_frame_ms, 0)} ms of the "
            f"{metadata.duration_ms} ms its container states (the file is cut off)"
        )


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc)
