"""Simulated time: a clock that maps real (monotonic) time to simulated UTC time.

Simulated time runs ``speed`` times faster than real time from ``start``. When
``never_ahead`` is set (the default) it never runs past the real wall-clock time: a run that
starts in the past at ``--speed 60`` catches up with "now" and then continues in real time,
so no measurement is ever stamped in the future. ``speed = inf`` is the backfill mode: the
clock never waits, and publishing goes as fast as the broker acknowledges.
"""

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "SimClock"]


class Clock(Protocol):
    """What the publisher needs from a clock (a fake one is used in tests)."""

    def now(self) -> datetime:
        """The current simulated time (tz-aware UTC)."""
        ...

    def delay_until(self, moment: datetime) -> float:
        """Real seconds to wait until simulated time reaches ``moment`` (0 if past)."""
        ...

    async def sleep_until(self, moment: datetime) -> None:
        """Sleep until simulated time reaches ``moment``."""
        ...


@dataclass(slots=True)
class SimClock:
    """Real-to-simulated time mapping, started at construction.

    Args:
        start: simulated time at the moment the clock is created (tz-aware).
        speed: simulated seconds per real second (``math.inf`` = backfill, never waits).
        never_ahead: keep simulated time at or behind the real wall clock.
        monotonic: source of real elapsed seconds (injectable for tests).
        wall: source of real wall-clock UTC time (injectable for tests).
    """

    start: datetime
    speed: float = 1.0
    never_ahead: bool = True
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _real0: float = field(init=False)
    _wall0: datetime = field(init=False)

    def __post_init__(self) -> None:
        if self.start.utcoffset() is None:
            msg = "the clock's start must be tz-aware"
            raise ValueError(msg)
        if not self.speed > 0:
            msg = "speed must be positive"
            raise ValueError(msg)
        self.start = self.start.astimezone(UTC)
        self._real0 = self.monotonic()
        self._wall0 = self.wall()

    @property
    def is_backfill(self) -> bool:
        """True when the clock never waits."""
        return math.isinf(self.speed)

    def now(self) -> datetime:
        """The current simulated time."""
        elapsed = self.monotonic() - self._real0
        if self.is_backfill:
            return self._wall0 + timedelta(seconds=elapsed)
        simulated = self.start + timedelta(seconds=elapsed * self.speed)
        if self.never_ahead:
            simulated = min(simulated, self._wall0 + timedelta(seconds=elapsed))
        return simulated

    def delay_until(self, moment: datetime) -> float:
        """Real seconds until simulated time reaches ``moment`` (0 when already there)."""
        if self.is_backfill:
            return 0.0
        ahead_s = (moment - self.start).total_seconds()
        due = ahead_s / self.speed
        if self.never_ahead:
            due = max(due, (moment - self._wall0).total_seconds())
        return max(0.0, due - (self.monotonic() - self._real0))

    async def sleep_until(self, moment: datetime) -> None:
        """Sleep until simulated time reaches ``moment``."""
        delay = self.delay_until(moment)
        if delay > 0:
            await asyncio.sleep(delay)
