"""Which refused messages keep a quarantine row: a token bucket per publisher (pure).

Every refused message is counted; a row (with a payload prefix) is kept only while its
publisher stays within ``rate_per_min`` (with a ``burst``), plus the first message of each
reason in each minute, so every kind of fault keeps a sample however hard one publisher
floods. The publisher is the station level of the topic: under the broker's ACL only the
station's own device (or its registered gateway) can publish there, so it cannot be forged,
unlike anything in the payload or an MQTT 5 user property.

>>> from datetime import UTC, datetime, timedelta
>>> sampler = QuarantineSampler(rate_per_min=60.0, burst=2)
>>> t = datetime(2026, 9, 30, tzinfo=UTC)
>>> [sampler.admit("aq-1", ("schema",), t) for _ in range(4)]
[True, True, False, False]
>>> sampler.admit("aq-1", ("schema",), t + timedelta(seconds=1))  # one token a second
True
>>> sampler.admit("aq-1", ("bad_unit",), t + timedelta(seconds=1))  # a new reason this minute
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

__all__ = ["QuarantineSampler", "publisher_of"]

_MAX_PUBLISHERS: Final = 100_000
_PUBLISHER_CHARS: Final = 64


def publisher_of(topic: str) -> str:
    """The publisher a message is counted against: its topic's station level.

    >>> publisher_of("hanoi/v1/air/aq-1/telemetry"), publisher_of("junk")
    ('aq-1', 'junk')
    """
    parts = topic.rsplit("/", 2)
    name = parts[-2] if len(parts) == 3 else topic
    return name[:_PUBLISHER_CHARS]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    minute: int
    reasons: set[str] = field(default_factory=set)


class QuarantineSampler:
    """A token bucket per publisher: which refused messages get a quarantine row.

    Args:
        rate_per_min: rows a minute a publisher earns.
        burst: rows a publisher may use at once.
        max_publishers: publishers remembered (all are forgotten, and start full again, when
            more arrive: the bound on memory).
    """

    def __init__(
        self, *, rate_per_min: float, burst: int, max_publishers: int = _MAX_PUBLISHERS
    ) -> None:
        self._rate_s = rate_per_min / 60.0
        self._burst = float(burst)
        self._max = max_publishers
        self._buckets: dict[str, _Bucket] = {}

    def admit(self, publisher: str, reasons: Iterable[str], at: datetime) -> bool:
        """True when this message gets a row (it is counted either way)."""
        now = at.timestamp()
        minute = int(now // 60)
        bucket = self._buckets.get(publisher)
        if bucket is None:
            if len(self._buckets) >= self._max:
                self._buckets.clear()
            bucket = self._buckets[publisher] = _Bucket(self._burst, now, minute)
        elapsed = max(0.0, now - bucket.at)
        bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate_s)
        bucket.at = max(bucket.at, now)
        if bucket.minute != minute:
            bucket.minute, bucket.reasons = minute, set()
        new_reason = False
        for reason in reasons:
            if reason not in bucket.reasons:
                bucket.reasons.add(reason)
                new_reason = True
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return new_reason
