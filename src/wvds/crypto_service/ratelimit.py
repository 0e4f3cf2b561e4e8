"""Per-client token bucket (the original product's limiter, made per client and configurable).

`rate` tokens per second refill a bucket of `burst` tokens; a request takes one.
When the bucket runs dry the client is refused for `cooldown` seconds, so a
flooding client backs off instead of hovering at the limit. rate == 0 disables it.
"""
from __future__ import annotations

import threading
import time


class TokenBucket:
    def __init__(self, rate: float, burst: int, cooldown: float, clock=time.monotonic):
        self.rate, self.burst, self.cooldown = float(rate), int(burst), float(cooldown)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self) -> bool:
        if not self.enabled:
            return True
        with self._lock:
            now = self._clock()
            if now < self._blocked_until:
                return False
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            self._blocked_until = now + self.cooldown
            return False
