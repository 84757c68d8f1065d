"""The workers of one replica for one kind of long-running work: each thread claims a unit of
work and runs it, does the kind's housekeeping every so often, and backs off when something
fails (the database away, say: the claim's lease lapses and the work is retried). A running
unit keeps its claim alive with a Heartbeat. Every replica runs the same workers on the same
database, so N replicas share one queue."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("facebank.background")
IDLE_POLL_S = 0.5  # how often an idle worker looks for work
HOUSEKEEPING_S = 10.0


class Work(Protocol):
    """A kind of long-running work, as its workers drive it."""

    def run_one(self, worker: str) -> bool:
        """Claim one unit and run it to its end; False when none waits."""
        ...

    def housekeeping(self) -> None:
        """What the kind does between units (expire old results, publish what is owed)."""
        ...


class Workers:
    def __init__(self, kind: str, work: Work, count: int) -> None:
        self.kind = kind
        self.work = work
        self._stop = threading.Event()
        self._name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._threads = [
            threading.Thread(target=self._loop, args=(f"{self._name}:{i}",), daemon=True)
            for i in range(count)
        ]

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _loop(self, worker: str) -> None:
        next_housekeeping = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_housekeeping:
                    self.work.housekeeping()
                    next_housekeeping = time.monotonic() + HOUSEKEEPING_S
                if not self.work.run_one(worker):
                    self._stop.wait(IDLE_POLL_S)
            except Exception:  # the database away, say: the lease lapses, the work is retried
                log.exception("%s worker %s: retrying shortly", self.kind, worker)
                self._stop.wait(HOUSEKEEPING_S)


class Heartbeat:
    """Renews a running unit's lease in its own thread, three times per lease; `lost` once a
    renewal finds the unit no longer this worker's (another replica took it over)."""

    def __init__(self, renew: Callable[[], bool], lease_s: float, what: str) -> None:
        self.lost = False
        self._renew_once, self._lease_s, self._what = renew, lease_s, what
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=10)

    def _renew(self) -> None:
        while not self._done.wait(self._lease_s / 3):
            try:
                kept = self._renew_once()
            except Exception:  # a missed renewal is retried; the lease lasts three of them
                log.warning("lease of %s not renewed", self._what, exc_info=True)
                continue
            if not kept:
                self.lost = True
                return
