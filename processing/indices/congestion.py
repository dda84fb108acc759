"""Traffic congestion from the speed ratio (observed / free-flow speed).

Levels are the project's proposal (domain reference §7.4, [U]): free ≥ 0.75, slow 0.50-0.75,
congested 0.25-0.50, jammed < 0.25; configurable with :class:`CongestionLevels`. The index is
``100 * (1 - ratio)`` clipped to 0-100 (0 = free flow, 100 = standstill), also a project
convention. FIWARE ``TrafficFlowObserved.congested`` is true from ``congested`` up.

>>> c = congestion(12.0, 40.0)
>>> c.level, c.index, c.is_congested
(<CongestionLevel.CONGESTED: 'congested'>, 70.0, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from processing.errors import DetectorConfigError

__all__ = [
    "LEVEL_NAMES",
    "CongestionLevel",
    "CongestionLevels",
    "CongestionResult",
    "FreeFlowTracker",
    "congestion",
]


class CongestionLevel(StrEnum):
    """Congestion levels, best first."""

    FREE = "free"
    SLOW = "slow"
    CONGESTED = "congested"
    JAMMED = "jammed"


LEVEL_NAMES: Final = {
    CongestionLevel.FREE: ("Thông thoáng", "Free flow"),
    CongestionLevel.SLOW: ("Chậm", "Slow"),
    CongestionLevel.CONGESTED: ("Ùn tắc", "Congested"),
    CongestionLevel.JAMMED: ("Tắc nghẽn nghiêm trọng", "Jammed"),
}
"""(Vietnamese, English) display names."""


@dataclass(frozen=True, slots=True)
class CongestionLevels:
    """Speed-ratio boundaries (project proposal [U]).

    Args:
        slow_below: ratios below this are at least slow.
        congested_below: ratios below this are at least congested.
        jammed_below: ratios below this are jammed.
    """

    slow_below: float = 0.75
    congested_below: float = 0.50
    jammed_below: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.jammed_below < self.congested_below < self.slow_below <= 1:
            msg = "need 0 < jammed_below < congested_below < slow_below <= 1"
            raise DetectorConfigError(msg)

    def level_of(self, ratio: float) -> CongestionLevel:
        """The level of a speed ratio."""
        if ratio < self.jammed_below:
            return CongestionLevel.JAMMED
        if ratio < self.congested_below:
            return CongestionLevel.CONGESTED
        if ratio < self.slow_below:
            return CongestionLevel.SLOW
        return CongestionLevel.FREE


@dataclass(frozen=True, slots=True)
class CongestionResult:
    """Congestion at one road sensor.

    Args:
        speed_ratio: observed / free-flow speed, clipped to [0, 1].
        index: ``100 * (1 - speed_ratio)``, one decimal.
        level: the congestion level.
    """

    speed_ratio: float
    index: float
    level: CongestionLevel

    @property
    def is_congested(self) -> bool:
        """FIWARE ``congested``: level congested or jammed."""
        return self.level in (CongestionLevel.CONGESTED, CongestionLevel.JAMMED)


def congestion(
    speed_kmh: float, free_flow_kmh: float, levels: CongestionLevels | None = None
) -> CongestionResult | None:
    """Congestion from a mean speed and the road's free-flow speed (None if not computable)."""
    if not (math.isfinite(speed_kmh) and math.isfinite(free_flow_kmh)) or free_flow_kmh <= 0:
        return None
    ratio = min(1.0, max(0.0, speed_kmh / free_flow_kmh))
    index = round(100.0 * (1.0 - ratio), 1)
    return CongestionResult(ratio, index, (levels or CongestionLevels()).level_of(ratio))


class FreeFlowTracker:
    """Per-sensor free-flow speed: configured, or learned as a high quantile of speeds.

    The learned estimate follows the ``quantile`` (default 85th percentile) of observed
    speeds by stochastic approximation, moving ``step_kmh`` per reading. At most
    ``max_sensors`` are tracked; readings of further sensors are refused and counted.

    Args:
        configured: known free-flow speeds (km/h) by sensor id; these are never learned.
        quantile: which quantile of observed speeds counts as free flow.
        step_kmh: adaptation step per reading.
        max_sensors: bound on the sensors tracked.

    >>> f = FreeFlowTracker()
    >>> for v in [30.0, 45.0, 50.0, 42.0] * 100:
    ...     f.observe("tr-1.speed", v)
    >>> 45.0 <= f.free_flow("tr-1.speed") <= 51.0
    True
    """

    def __init__(
        self,
        configured: Mapping[str, float] | None = None,
        *,
        quantile: float = 0.85,
        step_kmh: float = 0.5,
        max_sensors: int = 100_000,
    ) -> None:
        if not 0 < quantile < 1 or step_kmh <= 0 or max_sensors < 1:
            msg = "need 0 < quantile < 1, step_kmh > 0 and max_sensors >= 1"
            raise DetectorConfigError(msg)
        self._configured = dict(configured or {})
        self._learned: dict[str, float] = {}
        self.quantile, self.step_kmh, self.max_sensors = quantile, step_kmh, max_sensors
        self.refused = 0

    def observe(self, sensor: str, speed_kmh: float) -> None:
        """Learn from one observed mean speed."""
        if sensor in self._configured or not math.isfinite(speed_kmh) or speed_kmh < 0:
            return
        current = self._learned.get(sensor)
        if current is None:
            if len(self._learned) >= self.max_sensors:
                self.refused += 1
                return
            self._learned[sensor] = speed_kmh
            return
        below = 1.0 if speed_kmh < current else 0.0
        self._learned[sensor] = current + self.step_kmh * (self.quantile - below)

    def free_flow(self, sensor: str) -> float | None:
        """The free-flow speed of a sensor, or None when unknown."""
        return self._configured.get(sensor, self._learned.get(sensor))
