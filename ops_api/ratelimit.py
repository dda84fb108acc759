"""Token buckets keyed by caller, with a bounded number of keys (pure; the clock is passed in).

>>> limiter = RateLimiter(rate_per_s=1.0, burst=2, max_keys=10)
>>> [limiter.take("a", now=0.0) for _ in range(3)]
[0.0, 0.0, 1.0]
>>> limiter.take("a", now=1.0), limiter.take("b", now=1.0)
(0.0, 0.0)
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["RateLimiter"]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``burst`` requests at once, then ``rate_per_s`` per second, per key.

    Args:
        rate_per_s: refill rate.
        burst: bucket size.
        max_keys: keys remembered at most; the least recently used is forgotten (its bucket
            would be full again by then unless the keys churn faster than that, which only
            an attacker with many identities can do, and each of them starts at ``burst``).
    """

    def __init__(self, *, rate_per_s: float, burst: int, max_keys: int = 10_000) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.refused = 0

    def take(self, key: str, *, now: float) -> float:
        """Spend one token: ``0.0`` when allowed, else the seconds until one is available."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate_per_s)
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        self.refused += 1
        return (1.0 - bucket.tokens) / self.rate_per_s

    def peek(self, key: str, *, now: float) -> float:
        """Seconds until ``key`` may take a token (``0.0``: now), without taking one."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate_per_s)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate_per_s

    def __len__(self) -> int:
        return len(self._buckets)
