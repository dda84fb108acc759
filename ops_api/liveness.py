"""A station's current state from its reported status and the age of its data (pure).

The device's own status (retained MQTT ``status`` -> ``sensor_status``) says online or
offline; the data says whether it is really reporting. Data newer than an ``offline``
report wins (the device came back and its status message was lost); data older than
``stale_factor`` reporting intervals makes an online station ``stale``.

>>> from datetime import UTC, datetime, timedelta
>>> now = datetime(2026, 9, 30, 6, 0, tzinfo=UTC)
>>> rule = StaleRule(stale_factor=3.0, stale_min_s=60.0)
>>> rule.state("online", now - timedelta(hours=1), now - timedelta(seconds=30), 10.0, now)
'online'
>>> rule.state("online", now - timedelta(hours=1), now - timedelta(seconds=90), 10.0, now)
'stale'
>>> rule.state("offline", now - timedelta(minutes=5), now - timedelta(seconds=90), 10.0, now)
'offline'
>>> rule.state(None, None, None, 10.0, now)
'unknown'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = ["StaleRule", "StationStateName"]

StationStateName = Literal["online", "offline", "stale", "unknown"]


@dataclass(frozen=True, slots=True)
class StaleRule:
    """When a station's data counts as stale.

    Args:
        stale_factor: stale after this many of its shortest reporting interval.
        stale_min_s: but never sooner than this.
    """

    stale_factor: float
    stale_min_s: float

    def threshold_s(self, interval_s: float | None) -> float:
        """Seconds of silence after which a station with this interval is stale."""
        if interval_s is None:
            return self.stale_min_s
        return max(self.stale_min_s, self.stale_factor * interval_s)

    def state(
        self,
        reported: str | None,
        since: datetime | None,
        last_received: datetime | None,
        interval_s: float | None,
        now: datetime,
    ) -> StationStateName:
        """The effective state (see the module docstring)."""
        fresh = last_received is not None and (
            now - last_received
        ).total_seconds() <= self.threshold_s(interval_s)
        if reported == "offline":
            came_back = last_received is not None and (since is None or last_received > since)
            return "online" if fresh and came_back else "offline"
        if fresh:
            return "online"
        if last_received is not None:
            return "stale"
        if reported in ("online", "stale"):
            return "online" if reported == "online" else "stale"
        return "unknown"
