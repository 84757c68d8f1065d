"""Where a camera frame's capture time comes from: the camera's RTCP sender reports when it has
sent one and its clock agrees with ours within MAX_CAMERA_SKEW_S, else arrival times."""

from __future__ import annotations

import pytest

from service.streaming.capture import MAX_CAMERA_SKEW_S, connection_start

ARRIVAL = 1_796_615_730.5  # epoch seconds: the earliest arrival less offset


def test_without_a_sender_report_arrival_times_stand_in() -> None:
    assert connection_start(None, 0.0, ARRIVAL) == ARRIVAL
    assert connection_start(0, 0.0, ARRIVAL) == ARRIVAL


def test_a_sender_report_gives_the_camera_s_time_of_the_first_frame() -> None:
    # presentation time zero at ARRIVAL - 0.3 by the camera; the first frame 2 s after it
    realtime_us = round((ARRIVAL - 0.3) * 1e6)
    assert connection_start(realtime_us, 2.0, ARRIVAL) == pytest.approx(ARRIVAL + 1.7, abs=1e-6)


@pytest.mark.parametrize("skew", [MAX_CAMERA_SKEW_S + 1, -(MAX_CAMERA_SKEW_S + 1), -ARRIVAL / 2])
def test_a_camera_clock_far_from_ours_is_not_believed(skew: float) -> None:
    realtime_us = round((ARRIVAL + skew) * 1e6)
    assert connection_start(realtime_us, 0.0, ARRIVAL) == ARRIVAL
