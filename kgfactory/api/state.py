"""What the app holds between requests: the services, keys, audit log, jobs, metrics, rate limiter."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from ..bootstrap import Services
from ..service.asking import Observer
from ..settings import Settings
from .audit import AuditLog
from .jobs import JobManager
from .keys import KeyStore, Principal
from .metrics import Metrics


class RateLimiter:
    """A token bucket per caller: `per_minute` requests, refilled continuously; 0 = off."""

    def __init__(self, per_minute: int):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, who: str) -> float:
        """0.0 when allowed, else the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(who, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[who] = (tokens - 1.0, now)
                return 0.0
            self._buckets[who] = (tokens, now)
            return (1.0 - tokens) / self.rate


@dataclass
class AppState:
    settings: Settings
    services: Services
    keys: KeyStore
    audit: AuditLog
    jobs: JobManager
    metrics: Metrics
    limiter: RateLimiter
    observer: Observer | None = None  # what the application layer tells the metrics
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    ready: bool = False
    warmup_error: str | None = None


def get_state(request: Request) -> AppState:
    return request.app.state.kgf


def audit(request: Request, p: Principal | None, action: str, outcome: str, target: str | None = None,
          status: int | None = None, detail: dict | None = None) -> None:
    st = get_state(request)
    st.audit.record(action=action, outcome=outcome, tenant=p.tenant if p else None, key_id=p.key_id if p else None,
                    who=p.name if p else None, target=target, status=status,
                    request_id=getattr(request.state, "request_id", None), detail=detail)
