"""People followed across the sampled frames of a video: each face of a frame joins the track of
the same person seen shortly before, judged by box overlap and embedding similarity, or starts
a new track. A person who leaves for longer than `max_gap_ms` and comes back starts a new
track, as Rekognition's tracker may give them a new index. Leaving is judged on the frames
looked at: a live camera's processor that falls behind skips frames, and a person in the last
frame it analysed keeps their track however long it took to analyse the next."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.types import Box


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    overlap = intersection(a, b)
    return overlap / (a.area + b.area - overlap) if overlap else 0.0


def intersection(a: Box, b: Box) -> float:
    width = min(a.right, b.right) - max(a.left, b.left)
    height = min(a.bottom, b.bottom) - max(a.top, b.top)
    return max(width, 0.0) * max(height, 0.0)


@dataclass
class Track:
    index: int
    box: Box
    vector: np.ndarray | None
    last_seen_ms: int


@dataclass(frozen=True)
class TrackerSettings:
    max_gap_ms: int = 1000  # unseen longer than this, a track ends
    min_overlap: float = 0.3  # IoU with the track's last box that makes the same person
    min_cosine: float = 0.6  # embedding cosine that makes the same person wherever the box is
    min_cosine_near: float = 0.3  # below it, an overlapping face is someone else


class FaceTracker:
    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._tracks: list[Track] = []
        self._next_index = 0
        self._last_frame_ms: int | None = None

    def assign(
        self, timestamp_ms: int, boxes: list[Box], vectors: np.ndarray | None = None
    ) -> list[int]:
        """The track index of each face of one frame, frames given in time order. A track
        takes at most one face per frame: the pairs that look most alike are joined first."""
        live = [t for t in self._tracks if self._still_here(t, timestamp_ms)]
        pairs = sorted(
            (
                (score, t, f)
                for t, track in enumerate(live)
                for f in range(len(boxes))
                if (score := self._likeness(track, boxes[f], vectors, f)) > 0
            ),
            key=lambda pair: -pair[0],
        )
        chosen: dict[int, Track] = {}
        taken: set[int] = set()
        for _, t, f in pairs:
            if f not in chosen and t not in taken:
                chosen[f], taken = live[t], taken | {t}
        indexes = []
        for f, box in enumerate(boxes):
            vector = None if vectors is None else vectors[f]
            track = chosen.get(f) or self._new_track(box, vector, timestamp_ms)
            track.box, track.vector, track.last_seen_ms = box, vector, timestamp_ms
            indexes.append(track.index)
        self._tracks = [t for t in self._tracks if t in live or t.last_seen_ms == timestamp_ms]
        self._last_frame_ms = timestamp_ms
        return indexes

    def _still_here(self, track: Track, timestamp_ms: int) -> bool:
        """Seen in the frame analysed last, or unseen for no longer than the gap."""
        in_last_frame = track.last_seen_ms == self._last_frame_ms
        return in_last_frame or timestamp_ms - track.last_seen_ms <= self.settings.max_gap_ms

    def _likeness(self, track: Track, box: Box, vectors: np.ndarray | None, face: int) -> float:
        """How alike a face is to a track's last one (0: not the same person). An embedding
        that matches joins a face to a track wherever its box went; a box that overlaps joins
        it unless the embedding says it is someone else."""
        overlap = iou(track.box, box)
        if vectors is None or track.vector is None:
            return overlap if overlap >= self.settings.min_overlap else 0.0
        cosine = float(np.dot(track.vector, vectors[face]))
        near = overlap >= self.settings.min_overlap and cosine >= self.settings.min_cosine_near
        same = cosine >= self.settings.min_cosine or near
        return overlap + cosine if same else 0.0

    def _new_track(self, box: Box, vector: np.ndarray | None, timestamp_ms: int) -> Track:
        track = Track(self._next_index, box, vector, timestamp_ms)
        self._next_index += 1
        self._tracks.append(track)
        return track
