"""A minimal throttle: space calls at least ``interval`` seconds apart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Throttle:
    def __init__(
        self,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if interval < 0:
            raise ValueError("interval must be >= 0")
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next_allowed: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until the next call is allowed; return how long we slept."""
        with self._lock:
            now = self._clock()
            delay = 0.0
            if self._next_allowed is not None and now < self._next_allowed:
                delay = self._next_allowed - now
                self._sleep(delay)
                now = self._next_allowed
            self._next_allowed = now + self.interval
            return delay
