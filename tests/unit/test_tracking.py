"""Faces followed across sampled frames: by box overlap, by embedding where boxes jump, one face
per track per frame, and a new track after a long absence."""

from __future__ import annotations

import numpy as np

from ml.tracking import FaceTracker, TrackerSettings
from ml.types import Box


def box(left: float, top: float = 50, side: float = 100) -> Box:
    return Box(left, top, left + side, top + side)


def test_a_face_moving_steadily_keeps_its_track() -> None:
    tracker = FaceTracker()
    indexes = [tracker.assign(t * 200, [box(10 + 20 * t)])[0] for t in range(10)]
    assert indexes == [0] * 10


def test_two_people_in_one_frame_never_share_a_track() -> None:
    tracker = FaceTracker()
    first = tracker.assign(0, [box(0), box(40)])  # overlapping boxes
    assert len(set(first)) == 2
    again = tracker.assign(200, [box(2), box(42)])
    assert again == first


def test_the_embedding_follows_a_face_whose_box_jumps() -> None:
    tracker = FaceTracker()
    alice, bob = np.eye(8, dtype=np.float32)[:2]  # nothing alike
    start = tracker.assign(0, [box(0), box(400)], np.stack([alice, bob]))
    swapped = tracker.assign(200, [box(0), box(400)], np.stack([bob, alice]))
    assert swapped == [start[1], start[0]]  # the same boxes, the people crossed over


def test_an_overlapping_face_with_another_embedding_is_someone_else() -> None:
    tracker = FaceTracker()
    alice, bob = np.eye(8, dtype=np.float32)[:2]
    assert tracker.assign(0, [box(0)], alice[None]) == [0]
    assert tracker.assign(200, [box(5)], bob[None]) == [1]


def test_a_face_gone_longer_than_the_gap_comes_back_as_a_new_track() -> None:
    tracker = FaceTracker(TrackerSettings(max_gap_ms=1000))
    assert tracker.assign(0, [box(0)]) == [0]
    tracker.assign(200, [])
    assert tracker.assign(1000, [box(0)]) == [0]  # within the gap
    tracker.assign(1200, [])
    tracker.assign(1800, [])
    assert tracker.assign(2200, [box(0)]) == [1]  # unseen for 1.2 s


def test_a_face_in_the_last_frame_analysed_keeps_its_track_across_a_stall() -> None:
    """A live processor that falls behind skips frames: 1.8 s between two analysed frames is
    not 1.8 s unseen, but a face missing from a frame analysed in between is."""
    tracker = FaceTracker(TrackerSettings(max_gap_ms=1000))
    assert tracker.assign(0, [box(0)]) == [0]
    assert tracker.assign(1800, [box(4)]) == [0]  # nothing looked at in between
    assert tracker.assign(2000, [box(8), box(400)]) == [0, 1]
    tracker.assign(2200, [box(400)])  # the first face gone, the second stays
    assert tracker.assign(4000, [box(8), box(400)]) == [2, 1]
