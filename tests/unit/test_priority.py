"""Video jobs wait for interactive requests: quiet for the grace period, or at most max_wait."""

from __future__ import annotations

import threading
import time

from service.background.priority import InteractiveActivity


def test_no_wait_when_nothing_runs() -> None:
    assert InteractiveActivity(idle_grace_s=0.05).wait_for_quiet() < 0.05


def test_a_background_job_waits_until_requests_stop_and_then_the_grace_period() -> None:
    activity = InteractiveActivity(idle_grace_s=0.1, max_wait_s=5)
    finished = threading.Event()

    def request() -> None:
        with activity.request():
            time.sleep(0.3)
        finished.set()

    threading.Thread(target=request).start()
    time.sleep(0.05)
    waited = activity.wait_for_quiet()
    assert finished.is_set()
    assert 0.3 <= waited < 1.0  # the rest of the request, then the grace period


def test_a_background_job_still_advances_under_constant_load() -> None:
    activity = InteractiveActivity(idle_grace_s=0.05, max_wait_s=0.3)
    with activity.request():
        waited = activity.wait_for_quiet()
    assert 0.3 <= waited < 0.6
