"""A circuit breaker for the LLM endpoint: after N failed requests in a row it opens, and calls fail at once
(callers fall back to the extractive answer) until `reset_s` has passed; then one trial request decides."""
from __future__ import annotations

import threading
import time


class CircuitBreaker:
    def __init__(self, failures: int = 3, reset_s: float = 30.0, clock=time.monotonic):
        self.threshold, self.reset_s, self.clock = failures, reset_s, clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half-open" if self.clock() - self._opened_at >= self.reset_s else "open"

    def allow(self) -> bool:
        """May a request go out now? In half-open state only one trial at a time does."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self.clock() - self._opened_at < self.reset_s or self._trial:
                return False
            self._trial = True
            return True

    def success(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._trial = 0, None, False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial or self._failures >= self.threshold:
                self._opened_at = self.clock()
            self._trial = False

    def retry_in(self) -> float:
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self.reset_s - (self.clock() - self._opened_at))
