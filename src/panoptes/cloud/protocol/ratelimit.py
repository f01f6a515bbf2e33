"""Per-account request rates: token buckets, one for all calls and one for writes.

AWS throttles per account and answers ``ThrottlingException``; botocore's retry
modes back off and retry on that code, so a script that bursts slows down instead
of failing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    stamp: float

    def take(self, now: float) -> float:
        """0 when a token was taken, else seconds until one is available."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class RateLimiter:
    per_second: float = 5.0
    mutating_per_second: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _bucket(self, account: str, kind: str, rate: float, now: float) -> _Bucket:
        key = (account, kind)
        if key not in self._buckets:
            # Burst: one second's worth of calls, and at least one.
            capacity = max(1.0, rate)
            self._buckets[key] = _Bucket(rate, capacity, capacity, now)
        return self._buckets[key]

    def check(self, account: str, mutating: bool) -> float:
        """0 when the call may go ahead, else the seconds to wait (a Retry-After)."""
        with self._lock:
            now = self.clock()
            overall = self._bucket(account, "all", self.per_second, now)
            wait = overall.take(now)
            if wait or not mutating:
                return wait
            wait = self._bucket(account, "write", self.mutating_per_second, now).take(now)
            if wait:
                overall.tokens += 1  # the refused call should not cost a read token too
            return wait
