"""Per-key rate limits in transactions per second, per operation or for all ("*"), counted by
this replica alone: a token bucket per (key, limit) that holds one second of calls (at least
one call)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from service import errors


class RateLimits:
    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (tokens, at)
        self._lock = threading.Lock()

    def admit(self, key_id: str, operation: str, rates: Mapping[str, float]) -> None:
        """Take a token from each limit that applies; ProvisionedThroughputExceededException
        (which botocore retries) when one has none left."""
        limits = [(name, rate) for name, rate in rates.items() if name in ("*", operation)]
        now = time.monotonic()
        with self._lock:
            refilled = {name: self._refilled(key_id, name, rate, now) for name, rate in limits}
            if any(tokens < 1.0 for tokens in refilled.values()):
                self._buckets.update({(key_id, n): (t, now) for n, t in refilled.items()})
                raise errors.ProvisionedThroughputExceededError(
                    f"Key {key_id} is over its rate for {operation}"
                )
            self._buckets.update({(key_id, n): (t - 1.0, now) for n, t in refilled.items()})

    def _refilled(self, key_id: str, name: str, rate: float, now: float) -> float:
        burst = max(rate, 1.0)  # one second of calls, and at least one call
        tokens, at = self._buckets.get((key_id, name), (burst, now))
        return min(burst, tokens + (now - at) * rate)
