"""Flood depth without rain: a new flood alert on a dry day is a sensor matter (pure).

Hanoi's street floods come from rain the drains cannot take. A depth sensor that starts
reading a flood while its upstream gauge — reporting normally — has measured no rain for
hours is far more likely drifting, fouled or knocked than standing in water. A *new*
``flood_depth`` alert in that situation is raised instead as a sensor-health alert
``depth_without_rain`` ("Ngập khi không mưa – kiểm tra cảm biến / Flood depth without rain –
check the sensor"), which still reaches the operators, with the depth and the dry spell in
its text, but does not send a flood warning to the environment department.

It fails safe: without a linked gauge, or when the gauge itself has gone quiet (no reading
for ``gauge_fresh_s``), the flood alert is raised as usual; an alert already open keeps
following the depth (a street stays flooded for hours after the rain stops); and once rain
is measured again a demoted alert clears and a real flood raises normally.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from typing import Final
from zoneinfo import ZoneInfo

from ingest.registry import StationRef
from ingest.wire import Quantity, Reading
from processing.alerts import Severity
from processing.rules import Condition

__all__ = ["DEPTH_WITHOUT_RAIN_RULE", "DryWeatherCheck"]

DEPTH_WITHOUT_RAIN_RULE: Final = "depth_without_rain"
_FLOOD_RULE: Final = "flood_depth"
_HANOI: Final = ZoneInfo("Asia/Ho_Chi_Minh")


class DryWeatherCheck:
    """Tracks when each rain gauge last measured rain, and demotes dry-weather floods.

    Args:
        dry_after_s: no rain for this long at the upstream gauge makes a new flood suspect
            (six hours: longer than the slowest drainage of a storm's tail) [U].
        gauge_fresh_s: the gauge must have reported within this long to be believed.
        min_rain_mm: a reading below this is no rain (a tipping bucket's single tip of
            condensation is not a storm).
    """

    def __init__(
        self, *, dry_after_s: float = 6 * 3600.0, gauge_fresh_s: float = 1800.0,
        min_rain_mm: float = 0.5,
    ) -> None:  # fmt: skip
        self.dry_after_s = dry_after_s
        self.gauge_fresh_s = gauge_fresh_s
        self.min_rain_mm = min_rain_mm
        self._first: dict[str, float] = {}  # gauge -> first reading time seen
        self._seen: dict[str, float] = {}  # gauge -> latest reading time
        self._wet: dict[str, float] = {}  # gauge -> latest time it measured rain
        self.demoted = 0

    def observe(self, readings: Iterable[Reading]) -> None:
        """Note the rain gauges' readings (other quantities are ignored)."""
        for r in readings:
            if r.quantity is not Quantity.RAINFALL:
                continue
            at = r.measured_at.timestamp()
            gauge = r.station_id
            self._first.setdefault(gauge, at)
            self._seen[gauge] = max(self._seen.get(gauge, at), at)
            if r.value >= self.min_rain_mm:
                self._wet[gauge] = max(self._wet.get(gauge, at), at)

    def dry_for(self, gauge: str, at_s: float) -> float | None:
        """Seconds without rain at ``gauge`` by ``at_s``.

        None when that is not known: the gauge is not reporting, or it has not been watched
        long enough (after a restart, a dry spell is not assumed).
        """
        seen = self._seen.get(gauge)
        if seen is None or at_s - seen > self.gauge_fresh_s:
            return None
        wet = self._wet.get(gauge, self._first[gauge])
        return at_s - wet

    def apply(
        self,
        conditions: list[Condition],
        stations: Mapping[str, StationRef],
        open_keys: Collection[str],
    ) -> list[Condition]:
        """The conditions, with new dry-weather flood alerts turned into sensor matters."""
        out = []
        for cond in conditions:
            if cond.rule != _FLOOD_RULE:
                out.append(cond)
                continue
            station = stations.get(cond.reading.station_id)
            gauge = station.attributes.get("upstream_gauge") if station else None
            at = cond.reading.measured_at.timestamp()
            dry = self.dry_for(gauge, at) if isinstance(gauge, str) else None
            key = f"{DEPTH_WITHOUT_RAIN_RULE}:{cond.reading.station_id}"
            suspect = dry is not None and dry >= self.dry_after_s
            if cond.severity is None or cond.dedup_key in open_keys or not suspect:
                out.append(cond)
                if key in open_keys:
                    # back under the flood levels, or rain measured again (then the flood
                    # alert speaks for itself): the suspicion ends
                    normal = cond.normal if cond.severity is None else True
                    out.append(dataclasses.replace(
                        cond, dedup_key=key, rule=DEPTH_WITHOUT_RAIN_RULE,
                        category="sensor_health", severity=None, normal=normal,
                    ))  # fmt: skip
                continue
            self.demoted += 1
            district = station.district if station else "?"
            out.append(dataclasses.replace(
                cond, dedup_key=key, rule=DEPTH_WITHOUT_RAIN_RULE, category="sensor_health",
                severity=Severity.MINOR, group=f"{DEPTH_WITHOUT_RAIN_RULE}:{district}",
                texts=_texts(cond.reading, station, str(gauge), dry or 0.0),
                details={**cond.details, "upstream_gauge": str(gauge),
                         "dry_h": round((dry or 0.0) / 3600.0, 1)},
            ))  # fmt: skip
        return out


def _texts(
    reading: Reading, station: StationRef | None, gauge: str, dry_s: float
) -> tuple[str, str, str, str]:
    place = station.name if station else reading.station_id
    local = reading.measured_at.astimezone(_HANOI).strftime("%H:%M %d/%m/%Y")
    hours = f"{dry_s / 3600.0:.0f}"
    return (
        f"Ngập khi không mưa – kiểm tra cảm biến: {place}",
        f"Flood depth without rain – check the sensor: {place}",
        f"Cảm biến tại {place} báo ngập {reading.value:.0f} cm lúc {local} (giờ Hà Nội) trong "
        f"khi trạm đo mưa {gauge} không ghi nhận mưa trong {hours} giờ qua. Nhiều khả năng "
        "cảm biến bị trôi hoặc bẩn; kiểm tra tại chỗ trước khi cảnh báo ngập.",
        f"The sensor at {place} reads {reading.value:.0f} cm of water at {local} (Hanoi time) "
        f"while rain gauge {gauge} has measured no rain for {hours} h. The sensor has most "
        "likely drifted or is fouled; check on site before warning of a flood.",
    )
