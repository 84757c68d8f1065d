"""A camera read continuously in a thread of its own: frames are decoded as they arrive and only
the newest is kept, so a slow analysis skips frames instead of building a backlog. A camera that
drops, reboots or never answers is reconnected with backoff (at most MAX_BACKOFF_S between
tries), forever, while the processor runs.

Capture time: a frame's offset is its presentation time less the connection's first frame's
(the camera's own clock: RTP timestamps for RTSP). The connection's start is, once the camera
has sent an RTCP sender report, the wall-clock time the camera gave that first frame (FFmpeg's
start_time_realtime: the report's NTP time, carried back to presentation time zero); before the
first report, and for a camera whose clock is off by more than MAX_CAMERA_SKEW_S, it is the
earliest arrival less offset seen so far (FFmpeg hands the first frames over together once it
has probed the stream, late, and the estimate settles on the frames that arrive as they are
sent). A file is paced by the offsets, as a camera would send it. ProducerTimestamp is the
connection's start, FrameOffsetInSeconds the frame's offset, so ProducerTimestamp +
FrameOffsetInSeconds is the capture time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import av

from ml.video_frames import nvdec
from service.streaming.cameras import redact

log = logging.getLogger("facebank.streaming")
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0
OPEN_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 5.0
# Frames nothing else refers to (most B-frames) are not decoded when the analysis samples at
# least this far apart: a gap they leave is at most four frames at 30 fps, 133 ms, and skipping
# them halves the decoding of a stream with B-frames (docs/live-cameras.md); a camera that sends
# I and P frames only loses nothing.
SKIP_NONREF_FROM_MS = 150
# A camera clock further than this from ours is wrong (no NTP, a reset battery): its sender
# reports are not believed, and arrival times stand in.
MAX_CAMERA_SKEW_S = 300.0
NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "rtmps://", "srt://", "http://", "https://")


@dataclass(frozen=True)
class Frame:
    pixels: Any  # an av.VideoFrame, converted only if analysed
    number: int  # frames read from this camera since the processor started
    producer_time: float  # epoch seconds: the connection's first frame
    offset_s: float  # from the connection's first frame, by the camera's clock
    server_time: float  # epoch seconds: when the frame was read here

    @property
    def capture_time(self) -> float:
        return self.producer_time + self.offset_s


@dataclass
class CameraStats:
    connected: bool = False
    frames_read: int = 0
    connections: int = 0
    trouble: str | None = None  # what the last connection ended with (redacted)
    trouble_since: float | None = None  # epoch seconds since the camera is unreachable
    camera_clock: bool = False  # capture times from the camera's RTCP sender reports


class CameraFeed:
    def __init__(
        self,
        name: str,
        url: str,
        sample_ms: int,
        on_change: Callable[[str | None], None],
        on_gpu: bool = False,
    ) -> None:
        """`on_change` gets a StatusMessage a person can act on while the camera is away, and
        None once it sends frames again. `on_gpu` decodes with NVDEC where FFmpeg reaches a
        CUDA device (each stream it cannot decode there falls back to the CPU)."""
        self.name, self._url, self._on_change = name, url, on_change
        self._skip_nonref = sample_ms >= SKIP_NONREF_FROM_MS
        self._hardware = nvdec() if on_gpu else None
        self.stats = CameraStats()
        self._newest: Frame | None = None
        self._arrived = threading.Condition()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=READ_TIMEOUT_S + OPEN_TIMEOUT_S)

    def newest(self, after: int, wait_s: float) -> Frame | None:
        """The newest frame read since frame number `after`, waiting up to `wait_s` for one."""
        with self._arrived:
            if self._newest is None or self._newest.number <= after:
                self._arrived.wait(timeout=wait_s)
            found = self._newest
        return found if found is not None and found.number > after else None

    def _run(self) -> None:
        backoff = FIRST_BACKOFF_S
        while not self._closed.is_set():
            try:
                self._read_connection()
                reason = "the stream ended"
            except (av.FFmpegError, OSError, ValueError) as exc:
                reason = redact(f"{type(exc).__name__}: {exc}")
            if self.stats.connected:
                backoff = FIRST_BACKOFF_S  # it had been up: try again soon
            self._lost(reason)
            self._closed.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _read_connection(self) -> None:
        options = {"rtsp_transport": "tcp"} if self._url.startswith(("rtsp://", "rtsps://")) else {}
        timeout = (OPEN_TIMEOUT_S, READ_TIMEOUT_S)
        with av.open(self._url, options=options, timeout=timeout, hwaccel=self._hardware) as got:
            stream = got.streams.video[0]
            stream.thread_type = "AUTO"
            if self._skip_nonref:
                stream.codec_context.skip_frame = "NONREF"
            paced = not self._url.startswith(NETWORK_SCHEMES)  # a file plays as a camera would
            first_pts: float | None = None
            arrival_start = 0.0  # the earliest arrival less offset
            for frame in got.decode(stream):
                if self._closed.is_set():
                    return
                pts = float(frame.time or 0.0)
                if first_pts is None:
                    first_pts, arrival_start = pts, time.time()
                    self._connected()
                offset = pts - first_pts
                if paced:
                    self._closed.wait(max(0.0, arrival_start + offset - time.time()))
                arrival_start = min(arrival_start, time.time() - offset)
                start = connection_start(got.start_time_realtime, first_pts, arrival_start)
                self._note_clock(start != arrival_start)
                self._publish(frame, start, offset)

    def _note_clock(self, camera_clock: bool) -> None:
        if camera_clock and not self.stats.camera_clock:
            log.info("camera %s: capture times from its sender reports", self.name)
        self.stats.camera_clock = camera_clock

    def _publish(self, frame: Any, producer_time: float, offset_s: float) -> None:
        self.stats.frames_read += 1
        found = Frame(frame, self.stats.frames_read, producer_time, offset_s, time.time())
        with self._arrived:
            self._newest = found
            self._arrived.notify_all()

    def _connected(self) -> None:
        self.stats.connected, self.stats.trouble, self.stats.trouble_since = True, None, None
        self.stats.connections += 1
        log.info("camera %s connected", self.name)
        self._on_change(None)

    def _lost(self, reason: str) -> None:
        was_connected = self.stats.connected
        self.stats.connected, self.stats.trouble = False, reason
        if self.stats.trouble_since is None:
            self.stats.trouble_since = time.time()
        since = datetime.fromtimestamp(self.stats.trouble_since, UTC).isoformat(timespec="seconds")
        verb = "lost; reconnecting" if was_connected else "unreachable; retrying"
        log.warning("camera %s %s: %s", self.name, verb, reason)
        self._on_change(f"Reconnecting to camera {self.name} since {since}: {reason}")


def connection_start(realtime_us: int | None, first_pts: float, arrival_start: float) -> float:
    """The wall-clock time of the connection's first frame: by the camera's sender reports
    (`realtime_us`, FFmpeg's start_time_realtime, the time of presentation time zero) when it
    has sent one and its clock agrees with ours, else by arrival."""
    if not realtime_us or realtime_us < 0:
        return arrival_start
    by_camera = realtime_us / 1e6 + first_pts
    return by_camera if abs(by_camera - arrival_start) <= MAX_CAMERA_SKEW_S else arrival_start
