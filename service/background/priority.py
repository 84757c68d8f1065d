"""Interactive requests before video jobs: a video job starts each frame only once no image
request has been in flight for a short grace period (or after waiting `max_wait_s`, so video
still advances under constant load). Both share the same models and cores, and a frame started
beside a request slows that request (docs/video.md measures by how much)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

IDLE_GRACE_S = 0.05  # a client's next request usually follows within a few milliseconds
MAX_WAIT_S = 2.0


class InteractiveActivity:
    def __init__(self, idle_grace_s: float = IDLE_GRACE_S, max_wait_s: float = MAX_WAIT_S):
        self.idle_grace_s = idle_grace_s
        self.max_wait_s = max_wait_s
        self._in_flight = 0
        self._last_active = 0.0
        self._changed = threading.Condition()

    @contextmanager
    def request(self) -> Iterator[None]:
        """Marks an interactive request in flight."""
        with self._changed:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._last_active = time.monotonic()
                self._changed.notify_all()

    def wait_for_quiet(self) -> float:
        """Block a background job until interactive work has been quiet for the grace period,
        or `max_wait_s` has passed; the seconds it waited."""
        started = time.monotonic()
        deadline = started + self.max_wait_s
        with self._changed:
            while (now := time.monotonic()) < deadline:
                quiet_at = self._last_active + self.idle_grace_s
                if self._in_flight == 0 and now >= quiet_at:
                    break
                wake = deadline if self._in_flight else min(quiet_at, deadline)
                self._changed.wait(timeout=wake - now)
        return time.monotonic() - started
