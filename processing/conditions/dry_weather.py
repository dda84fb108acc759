"""Flood depth without rain: a new flood alert on a dry day is a sensor matter (pure).

Hanoi's street floods come from rain the drains cannot take: under 50 mm in two hours the
streets stay dry (domain reference §6.1 [V]). A depth sensor that starts reading a flood
while its upstream gauge — reporting normally — has measured no heavy rain for hours (no
two-hour span with ``heavy_mm`` or more in the last ``window_s``; 20 mm, the system's own
heavy-rain level, well under the drains' 50) is far more likely drifting, fouled or knocked
than standing in water. A *new* ``flood_depth`` alert in that situation is raised instead as
a sensor-health alert ``depth_without_rain`` ("Ngập khi không mưa – kiểm tra cảm biến /
Flood depth without rain – check the sensor"), which still reaches the operators, with the
depth and the rain in its text, but does not send a flood warning to the environment
department.

It fails safe: without a linked gauge, when the gauge itself has gone quiet (no reading
for ``gauge_fresh_s``) or has not been watched for a whole window yet (after a restart),
the flood alert is raised as usual; an alert already open keeps following the depth (a
street stays flooded for hours after the rain stops); and once heavy rain is measured a
demoted alert clears and a real flood raises normally.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from typing import Final

import numpy as np

from contract import Quantity, Reading, Station, hanoi_time
from processing.alerts import Severity
from processing.alerts.wording import Place, number_vi
from processing.conditions.base import Condition, RuleSpec
from processing.nowcast import MAX_RAIN_MM_H
from processing.windows import TimeWindow

__all__ = ["DEPTH_WITHOUT_RAIN_RULE", "DryWeatherCheck"]

DEPTH_WITHOUT_RAIN_RULE: Final = "depth_without_rain"
_FLOOD_RULE: Final = "flood_depth"


class DryWeatherCheck:
    """Tracks when each rain gauge last measured rain, and demotes dry-weather floods.

    (Not a source of its own: it filters the threshold rules' flood-depth conditions, see
    :class:`~processing.conditions.thresholds.ThresholdSource`.)

    Args:
        window_s: how far back heavy rain is looked for (six hours: longer than the slowest
            drainage of a storm's tail) [U].
        burst_s: the span over which rain is totalled (two hours, as the drainage figures).
        heavy_mm: a burst total at or above this could flood a street.
        gauge_fresh_s: the gauge must have reported within this long to be believed.
        max_rain_mm_h: no reading counts for more than this intensity over its interval (a
            gauge's one-minute glitch of 24 mm must not make a dry day wet).
    """

    def __init__(
        self, *, window_s: float = 6 * 3600.0, burst_s: float = 2 * 3600.0,
        heavy_mm: float = 20.0, gauge_fresh_s: float = 1800.0,
        max_rain_mm_h: float = MAX_RAIN_MM_H,
    ) -> None:  # fmt: skip
        self.window_s = window_s
        self.burst_s = burst_s
        self.heavy_mm = heavy_mm
        self.gauge_fresh_s = gauge_fresh_s
        self.max_rain_mm_h = max_rain_mm_h
        self._first: dict[str, float] = {}  # gauge -> first reading time seen
        self._rain: dict[str, TimeWindow] = {}  # gauge -> its recent readings
        self.demoted = 0

    rules: Final = (
        RuleSpec(
            DEPTH_WITHOUT_RAIN_RULE,
            "sensor_health",
            "Ngập khi không mưa – kiểm tra cảm biến",
            "Flood depth without rain – check the sensor",
        ),
    )

    def observe(self, readings: Iterable[Reading]) -> None:
        """Note the rain gauges' readings (other quantities are ignored)."""
        for r in readings:
            if r.quantity is not Quantity.RAINFALL:
                continue
            gauge = r.station_id
            window = self._rain.get(gauge)
            if window is None:
                window = self._rain[gauge] = TimeWindow(self.window_s)
            at = r.measured_at.timestamp()
            self._first.setdefault(gauge, at)
            window.append_amount(at, r.value, self.max_rain_mm_h)

    def heaviest_mm(self, gauge: str, at_s: float) -> float | None:
        """The most rain ``gauge`` measured in any ``burst_s`` span of the window to ``at_s``.

        None when that is not known: the gauge is not reporting, or it has not been watched
        for a whole window yet (after a restart, a dry spell is not assumed).
        """
        window = self._rain.get(gauge)
        if window is None or not len(window):
            return None
        last = float(window.times()[-1])
        if at_s - last > self.gauge_fresh_s or at_s - self._first[gauge] < self.window_s:
            return None
        times, values = window.since(at_s - self.window_s - self.burst_s)
        keep = times <= at_s
        times, values = times[keep], values[keep]
        if not times.size:
            return 0.0
        total = np.concatenate([[0.0], np.cumsum(values)])
        # each reading ends a burst: its total is everything after (end - burst_s)
        starts = np.searchsorted(times, times - self.burst_s, side="right")
        bursts = total[1:] - total[starts]
        in_window = times >= at_s - self.window_s
        return float(bursts[in_window].max()) if in_window.any() else 0.0

    def apply(
        self,
        conditions: list[Condition],
        stations: Mapping[str, Station],
        open_keys: Collection[str],
        watched_keys: Collection[str] = (),
    ) -> list[Condition]:
        """The conditions, with new dry-weather flood alerts turned into sensor matters.

        Args:
            conditions: the threshold rules' conditions of a slice.
            stations: the registry's stations (their upstream gauges).
            open_keys: dedup keys of the open alerts.
            watched_keys: keys whose normal conditions matter (open, or held: a suspicion
                on a glitch waits for the next reading, which must be able to let it go).
        """
        out = []
        for cond in conditions:
            if cond.rule != _FLOOD_RULE or cond.station_id is None:
                out.append(cond)
                continue
            station = stations.get(cond.station_id)
            gauge = station.attributes.get("upstream_gauge") if station else None
            at = cond.at.timestamp()
            rain = self.heaviest_mm(gauge, at) if isinstance(gauge, str) else None
            key = f"{DEPTH_WITHOUT_RAIN_RULE}:{cond.station_id}"
            suspect = rain is not None and rain < self.heavy_mm
            if cond.severity is None or cond.dedup_key in open_keys or not suspect:
                out.append(cond)
                if key in open_keys or key in watched_keys:
                    # back under the flood levels, or rain measured again (then the flood
                    # alert speaks for itself): the suspicion ends, or a held one is let go
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
                texts=_texts(cond, station, Place.of(stations.get(str(gauge)), str(gauge)),
                             rain or 0.0, self.window_s),
                details={**cond.details, "upstream_gauge": str(gauge),
                         "heaviest_2h_rain_mm": round(rain or 0.0, 1),
                         "window_h": round(self.window_s / 3600.0, 1)},
            ))  # fmt: skip
        return out


def _texts(
    cond: Condition, station: Station | None, gauge: Place, rain_mm: float, window_s: float
) -> tuple[str, str, str, str]:
    place = Place.of(station, cond.station_id or "?").name
    local = hanoi_time(cond.at)
    hours = f"{window_s / 3600.0:g}"
    gauge_vi = gauge.titled("trạm đo mưa")
    gauge_en = gauge.name if gauge_vi == gauge.name else f"rain gauge {gauge.name}"
    return (
        f"Ngập khi không mưa – kiểm tra cảm biến: {place}",
        f"Flood depth without rain – check the sensor: {place}",
        f"Cảm biến tại {place} báo ngập {cond.value:.0f} cm lúc {local} (giờ Hà Nội) trong "
        f"khi {gauge_vi} không ghi nhận mưa lớn trong {hours} giờ qua (nhiều nhất "
        f"{number_vi(rain_mm)} mm trong 2 giờ), không đủ gây ngập. Nhiều khả năng cảm biến bị trôi "
        "hoặc bẩn; kiểm tra tại chỗ trước khi cảnh báo ngập.",
        f"The sensor at {place} reads {cond.value:.0f} cm of water at {local} (Hanoi time) "
        f"while {gauge_en} has measured no heavy rain in the last {hours} h (at most "
        f"{rain_mm:.1f} mm in 2 h), too little to flood a street. The sensor has most likely "
        "drifted or is fouled; check on site before warning of a flood.",
    )
