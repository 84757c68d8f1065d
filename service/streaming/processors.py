"""Stream processors as a kind of long-running work: each of a replica's stream workers claims
a running processor under a lease (service/background/) and runs it until it is stopped,
deleted, taken over or fails, or the server shuts down (then it is given back, and runs again
on whichever replica claims it next, without a new Start).

While it runs: its camera is read in a thread of its own (capture.py); at every sampling
interval the newest frame waits for interactive requests to leave room, then its faces are
detected (those outside RegionsOfInterest left out), embedded, followed into people and
searched in the collection, and a frame with a face makes one record on the output stream.
The lease's heartbeat also reads the row: Stop, Update and Delete reach the runner within a
third of the lease."""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ml.decode import DecodedImage
from ml.tracking import FaceTracker
from ml.types import FaceDescription
from service import errors
from service.background.workers import Heartbeat, Workers
from service.context import WithInteractive
from service.operations.inputs import model_collection
from service.operations.render import face_detail
from service.operations.search import DEFAULT_MAX_FACES, SearchContext, search_collection
from service.operations.stream_processors import data_stream_name, video_stream_name
from service.settings import StreamSettings
from service.storage import stream_processors as store
from service.streaming.cameras import Cameras, redact
from service.streaming.capture import CameraFeed, CameraStats, Frame
from service.streaming.records import face_search_record
from service.streaming.regions import in_regions
from service.streaming.sinks import OutputMissingError, SinkError, Sinks

log = logging.getLogger("facebank.streaming")
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
LATEST_KEPT = 5


class StreamsContext(SearchContext, WithInteractive, Protocol):
    """What a running processor uses: the models and searches image requests use."""


@dataclass
class ProcessorStats:
    """One running processor's counters on this replica, for /metrics."""

    name: str
    camera: CameraStats = field(default_factory=CameraStats)
    frames_analysed: int = 0
    frames_dropped: int = 0  # sampling slots that passed while the analysis was behind
    records_written: int = 0
    sink_errors: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_count: int = 0
    latency_sum: float = 0.0
    # The newest records, summed up for the console: capture time and who was matched.
    latest: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LATEST_KEPT))

    def observe_latency(self, seconds: float) -> None:
        self.latency_count += 1
        self.latency_sum += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_buckets[i] += 1


class StreamProcessors:
    """The Work the stream workers run (one processor per worker at a time)."""

    def __init__(
        self,
        context: StreamsContext,
        settings: StreamSettings,
        cameras: Cameras,
        sinks: Sinks,
        on_gpu: bool = False,  # NVDEC, where FFmpeg reaches a CUDA device
    ) -> None:
        self.context, self.settings, self.cameras, self.sinks = context, settings, cameras, sinks
        self.on_gpu = on_gpu
        self.running: dict[str, ProcessorStats] = {}
        self.workers = Workers("stream", self, settings.max_running)

    def start(self) -> None:
        self.workers.start()

    def close(self) -> None:
        self.workers.close()
        self.sinks.close()

    def run_one(self, worker: str) -> bool:
        run = store.claim_next(
            self.context.read,
            self.context.write,
            worker,
            self.settings.lease_s,
            lambda row: ProcessorRun(self, worker, row.pk, row.name, json.loads(row.request)),
        )
        if run is None:
            return False
        run.run()
        return True

    def housekeeping(self) -> None:
        with self.context.write() as session:
            store.settle_abandoned(session)

    def stats(self) -> list[ProcessorStats]:
        return list(self.running.values())


class ProcessorRun:
    def __init__(
        self, processors: StreamProcessors, worker: str, pk: int, name: str, request: Any
    ) -> None:
        self.processors, self.worker, self.pk, self.name = processors, worker, pk, name
        self.request: dict[str, Any] = request
        self.context = processors.context
        self.stats = ProcessorStats(name)
        self.tracker = FaceTracker()
        self._message: str | None = None  # what the camera says, written at the heartbeat
        self._written: str | None = "unwritten"

    def run(self) -> None:
        self.processors.running[self.name] = self.stats
        try:
            self._run()
        finally:
            self.processors.running.pop(self.name, None)
            with self.context.write() as session:
                store.release(session, self.pk, self.worker)

    def _run(self) -> None:
        stream_arn = self.request["Input"]["KinesisVideoStream"]["Arn"]
        camera = video_stream_name(stream_arn) or ""
        url = self.processors.cameras.url(camera)
        if url is None:
            self._fail(
                f"The video stream {camera} is not configured: add it to the streams file "
                "(FACEBANK_VIDEO_STREAMS_FILE), then start the processor again"
            )
            return
        self._message = f"Connecting to camera {camera}"
        sample_ms = self.processors.settings.sample_ms
        feed = CameraFeed(camera, url, sample_ms, self._camera_changed, self.processors.on_gpu)
        self.stats.camera = feed.stats
        log.info("stream processor %s: reading camera %s", self.name, camera)
        feed.start()
        try:
            self._analyse(feed, stream_arn)
        except OutputMissingError as exc:
            self._fail(str(exc))
        except errors.ResourceNotFoundError as exc:
            self._fail(f"{exc.message}: the processor's collection is gone")
        finally:
            feed.close()

    def _analyse(self, feed: CameraFeed, stream_arn: str) -> None:
        sample_s = self.processors.settings.sample_ms / 1000.0
        if not self._renew():  # RUNNING, with the camera's word, before the first frame
            return
        heartbeat = Heartbeat(self._renew, self.processors.settings.lease_s, self.name)
        try:
            self._sample(feed, stream_arn, sample_s, heartbeat)
        finally:
            heartbeat.stop()

    def _sample(
        self, feed: CameraFeed, stream_arn: str, sample_s: float, heartbeat: Heartbeat
    ) -> None:
        next_slot, last = time.monotonic(), 0
        while not (self.processors.workers.stopping or heartbeat.lost):
            time.sleep(max(0.0, next_slot - time.monotonic()))
            frame = feed.newest(last, wait_s=sample_s)
            if frame is None:  # the camera is away: the heartbeat still runs
                next_slot = time.monotonic()
                continue
            last = frame.number
            self.context.interactive.wait_for_quiet()
            record = self._record(frame, stream_arn)
            if record is not None:
                self._write(record, frame)
            next_slot, now = next_slot + sample_s, time.monotonic()
            if now > next_slot:  # behind: the slots that passed are dropped, not queued
                self.stats.frames_dropped += int((now - next_slot) // sample_s)
                next_slot = now

    def _renew(self) -> bool:
        """The heartbeat: renew the claim and read the row (Stop, Update and Delete land
        here); False when the processor is no longer this worker's to run."""
        lease_s = self.processors.settings.lease_s
        with self.context.write() as session:
            row = store.renew(session, self.pk, self.worker, lease_s)
            if row is None:
                log.info("stream processor %s: stopped, deleted or taken over", self.name)
                return False
            self.request = json.loads(row.request)  # an Update's regions take effect
            message = self._message  # read once: the camera's thread may change it meanwhile
            if message != self._written or row.status != store.RUNNING:
                row.status, row.status_message = store.RUNNING, message
                self._written = message
        return True

    def _camera_changed(self, message: str | None) -> None:
        self._message = message

    def _fail(self, message: str) -> None:
        message = redact(message)
        log.error("stream processor %s failed: %s", self.name, message)
        with self.context.write() as session:
            store.fail(session, self.pk, self.worker, message)

    def _record(self, frame: Frame, stream_arn: str) -> dict[str, Any] | None:
        settings = self.request["Settings"]["FaceSearch"]
        pixels = np.ascontiguousarray(frame.pixels.to_ndarray(format="rgb24"))
        image = DecodedImage(pixels, "video", None)
        regions = self.request.get("RegionsOfInterest", [])
        faces = [
            face
            for face in self.context.pipeline.describe(image)
            if in_regions(face.detection.box, image, regions)
        ]
        self.stats.frames_analysed += 1
        timestamp_ms = round(frame.capture_time * 1000)
        if not faces:
            self.tracker.assign(timestamp_ms, [])  # people unseen for long enough leave
            return None
        found = self._search(image, faces, settings, timestamp_ms)
        return face_search_record(stream_arn, frame, found)

    def _search(
        self,
        image: DecodedImage,
        faces: list[FaceDescription],
        settings: dict[str, Any],
        timestamp_ms: int,
    ) -> list[tuple[dict[str, Any], list[dict[str, Any]], int]]:
        collection_id, threshold = settings["CollectionId"], settings["FaceMatchThreshold"]
        with self.context.read() as session:
            version = model_collection(self.context, session, collection_id).face_model_version
        vectors = self.context.pipeline.embed(image, faces, version)
        people = self.tracker.assign(timestamp_ms, [f.detection.box for f in faces], vectors)
        return [
            (
                face_detail(face, image),
                search_collection(
                    self.context, collection_id, vector, DEFAULT_MAX_FACES, threshold
                ),
                person,
            )
            for face, vector, person in zip(faces, vectors, people, strict=True)
        ]

    def _write(self, record: dict[str, Any], frame: Frame) -> None:
        output = data_stream_name(self.request["Output"]["KinesisDataStream"]["Arn"]) or ""
        webhook = self.processors.cameras.webhook(output)
        sink = self.processors.sinks.for_output(
            output, webhook.url if webhook else None, webhook.secret if webhook else None
        )
        try:
            sink.put(output, self.name, record)
        except SinkError as exc:
            self.stats.sink_errors += 1
            log.warning("stream processor %s: a record was not written: %s", self.name, exc)
            return
        self.stats.records_written += 1
        self.stats.observe_latency(time.time() - frame.capture_time)
        self.stats.latest.appendleft(summary(record, frame.capture_time))


def summary(record: dict[str, Any], captured: float) -> dict[str, Any]:
    """Who a record names: per face, the best match's ExternalImageId (or FaceId) and
    Similarity, or nobody known."""
    faces = []
    for item in record["FaceSearchResponse"]:
        matches = item["MatchedFaces"]
        if matches:
            face = matches[0]["Face"]
            name = face.get("ExternalImageId") or face["FaceId"]
            faces.append({"match": name, "Similarity": round(matches[0]["Similarity"], 1)})
        else:
            faces.append({"match": None, "Similarity": None})
    return {"at": captured, "faces": faces}
