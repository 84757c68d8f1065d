"""What a video job computes: the sampled frames go through the same detector, embedder and
search as image requests (the server's batch queues, shared with interactive work), and the
faces of a face search are tracked into persons. Decoding runs in its own thread, a few frames
ahead of the models."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from ml.decode import DecodedImage
from ml.tracking import FaceTracker
from ml.types import FaceDescription
from ml.video_frames import sampled_frames
from service.context import WithInteractive
from service.operations.inputs import model_collection
from service.operations.render import bounding_box, face_detail, face_details
from service.operations.requested_attributes import estimate_attributes, wanted_attributes
from service.operations.search import DEFAULT_MAX_FACES, SearchContext, search_collection

# Rekognition's video results leave these out.
NOT_IN_VIDEO = frozenset({"EYE_DIRECTION", "FACE_OCCLUDED"})
READ_AHEAD = 4  # decoded frames waiting for the models
Entry = tuple[dict[str, Any], int | None]  # a result and its person index
OnFrame = Callable[[int], None]  # told the frames done so far; raises to stop the job
T = TypeVar("T")


@dataclass
class StageClock:
    """Seconds spent in each stage of a job (decode runs beside the others)."""

    seconds: dict[str, float] = field(default_factory=dict)
    frames: int = 0

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed


class FrameAnalysisContext(SearchContext, WithInteractive, Protocol):
    """What a video's frames go through: the models and searches image requests use."""


@dataclass
class VideoRun:
    """One job's analysis: its video file, its Start request, how it samples and decodes."""

    context: FrameAnalysisContext
    path: Path
    request: dict[str, Any]
    every_ms: int
    on_frame: OnFrame = field(default=lambda _: None)
    on_gpu: bool = False  # NVDEC where FFmpeg reaches a CUDA device
    clock: StageClock = field(default_factory=StageClock)

    def frames(self) -> Iterator[tuple[int, DecodedImage]]:
        """The sampled frames as upright images, decoded ahead in their own thread, each
        handed on once interactive requests leave room for it."""
        frames = sampled_frames(self.path, self.every_ms, self.on_gpu)
        for timestamp, pixels in read_ahead(frames, self.clock):
            with self.clock.timed("waiting for interactive requests"):
                self.context.interactive.wait_for_quiet()
            yield timestamp, DecodedImage(np.ascontiguousarray(pixels), "video", None)
            self.clock.frames += 1
            self.on_frame(self.clock.frames)


def detect_faces_in_video(run: VideoRun) -> list[Entry]:
    """GetFaceDetection's Faces: every face of every sampled frame, with its Timestamp."""
    context, clock = run.context, run.clock
    asked = [run.request["FaceAttributes"]] if "FaceAttributes" in run.request else None
    wanted = wanted_attributes(asked) - NOT_IN_VIDEO
    entries: list[Entry] = []
    for timestamp, image in run.frames():
        with clock.timed("detect"):
            faces = context.pipeline.describe(image)
            estimated = estimate_attributes(context, image, faces, wanted)
        details = face_details(faces, image, estimated, wanted)
        entries += [({"Timestamp": timestamp, "Face": detail}, None) for detail in details]
    return entries


def search_faces_in_video(run: VideoRun) -> list[Entry]:
    """GetFaceSearch's Persons: each face of a sampled frame, tracked into a person, whose
    search of the collection found matches at or above FaceMatchThreshold."""
    context, clock, collection_id = run.context, run.clock, run.request["CollectionId"]
    threshold = float(run.request.get("FaceMatchThreshold", 80.0))
    with context.read() as session:
        collection = model_collection(context, session, collection_id)
    tracker = FaceTracker()
    entries: list[Entry] = []
    for timestamp, image in run.frames():
        with clock.timed("detect"):
            faces = context.pipeline.describe(image)
        if not faces:
            tracker.assign(timestamp, [])  # tracks unseen for too long end
            continue
        with clock.timed("embed"):
            vectors = context.pipeline.embed(image, faces, collection.face_model_version)
        with clock.timed("tracking"):
            people = tracker.assign(timestamp, [face.detection.box for face in faces], vectors)
        for face, vector, person in zip(faces, vectors, people, strict=True):
            with clock.timed("search"):
                matches = search_collection(
                    context, collection_id, vector, DEFAULT_MAX_FACES, threshold
                )
            if matches:
                entries.append((_person_match(timestamp, person, face, image, matches), person))
    return entries


def _person_match(
    timestamp: int,
    person: int,
    face: FaceDescription,
    image: DecodedImage,
    matches: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "Timestamp": timestamp,
        "Person": {
            "Index": person,
            "BoundingBox": bounding_box(face.detection.box, image),
            "Face": face_detail(face, image),
        },
        "FaceMatches": matches,
    }


def read_ahead(items: Iterator[T], clock: StageClock, depth: int = READ_AHEAD) -> Iterator[T]:
    """`items` produced by a thread of their own, at most `depth` ahead of the consumer; the
    producer's error is raised here, after the items it gave."""
    waiting: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            while not stop.is_set():
                with clock.timed("decode"):
                    item = next(items, _END)
                if item is _END:
                    break
                waiting.put(("item", item))
        except Exception as exc:  # handed to the consumer, which raises it
            waiting.put(("error", exc))
            return
        waiting.put(("end", None))

    producer = threading.Thread(target=produce, name="video-decode", daemon=True)
    producer.start()
    try:
        while True:
            kind, value = waiting.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting for room
            try:
                waiting.get_nowait()
            except queue.Empty:
                producer.join(timeout=0.05)


_END = object()
