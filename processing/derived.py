"""Derived series computed live: hourly VN_AQI per station and flood nowcasts per hotspot.

VN_AQI (Decision 1459/QĐ-TCMT) is computed when an hour closes for a station's pollutant
(hour-ending convention, NowCast for PM) and stored in ``indices`` as ``VN_AQI``; the row is
updated if another pollutant's hour closes later. Flood nowcasts look at every hotspot that
reported and turn "level expected within the lead time" into an early-warning condition
``flood_forecast:<hotspot>``, raised before the level is crossed. Both work in event time:
hours close on measurement times and each nowcast is made as of its depth reading's
measurement time, so a fast backfill gives what the live stream gave.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from contract import Quantity, Reading, Sensor, Station, StationId
from db import Conn
from processing.alerts import Severity, hanoi_time
from processing.indices.flood import FloodLevel
from processing.indices.hourly import AqiTracker, HourlyAggregator, HourlyMean
from processing.indices.vn_aqi import Pollutant
from processing.nowcast import FloodNowcast, FloodNowcaster, LevelEta
from processing.rules import Condition

__all__ = ["FORECAST_RULE", "DerivedSeries", "IndexRow", "store_indices"]

FORECAST_RULE: Final = "flood_forecast"
"""Rule name (and dedup-key prefix) of the flood early warnings."""
_AQI_QUANTITIES: Final = frozenset(Quantity(p.value) for p in Pollutant)
_FORECAST_SEVERITY: Final = {
    FloodLevel.WATCH: Severity.MINOR,
    FloodLevel.WARNING: Severity.MODERATE,
    FloodLevel.SEVERE: Severity.SEVERE,
    FloodLevel.EXTREME: Severity.EXTREME,
}
_UPSERT: Final = """
INSERT INTO indices (time, station_id, index, value, level, dominant, details)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (time, station_id, index) DO UPDATE SET
    value = excluded.value, level = excluded.level, dominant = excluded.dominant,
    details = excluded.details"""


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One row of ``indices``."""

    time: datetime
    station_id: str
    index: str
    value: float | None
    level: str | None
    dominant: str | None
    details: dict[str, float | str | None]


class DerivedSeries:
    """Live index and nowcast state (pure; bounded by the underlying trackers).

    Args:
        lead_time_s: how far ahead a flood level must be expected to warn now.
    """

    def __init__(self, *, lead_time_s: float = 1800.0) -> None:
        self._hourly = HourlyAggregator()
        self._aqi = AqiTracker()
        self._means: list[HourlyMean] = []
        self._nowcaster = FloodNowcaster()
        self._lead_time_s = lead_time_s

    def link(self, stations: Iterable[Station]) -> None:
        """Link each flood hotspot to its upstream rain gauge (registry attribute)."""
        for station in stations:
            gauge = station.attributes.get("upstream_gauge")
            if isinstance(gauge, str):
                self._nowcaster.link(station.station_id, [gauge])

    def observe(
        self, readings: Iterable[Reading], sensors: Mapping[tuple[str, Quantity], Sensor]
    ) -> list[IndexRow]:
        """Feed readings; returns index rows for every hour that closed."""
        closed: dict[tuple[str, datetime], None] = {}
        for reading in readings:
            if reading.quantity in _AQI_QUANTITIES:
                ref = sensors.get((reading.station_id, reading.quantity))
                for mean in self._hourly.add(reading, ref.interval_s if ref else None):
                    if mean.valid:
                        self._means.append(mean)
                    if self._aqi.add_mean(mean):
                        closed[(reading.station_id, mean.hour_end)] = None
            elif reading.quantity in (Quantity.WATER_DEPTH, Quantity.RAINFALL):
                self._nowcaster.observe(reading)
        return [self._aqi_row(station, hour_end) for station, hour_end in closed]

    def take_hourly(self) -> list[Reading]:
        """Valid hourly means closed since the last call, as readings at the hour's end."""
        means, self._means = self._means, []
        out = []
        for mean in means:
            station, _, quantity = mean.sensor_id.rpartition(".")
            out.append(
                Reading(StationId(station), Quantity(quantity), mean.mean, mean.hour_end,
                        mean.hour_end)
            )  # fmt: skip
        return out

    def _aqi_row(self, station_id: str, hour_end: datetime) -> IndexRow:
        result = self._aqi.hourly(station_id, hour_end)
        level = result.level
        return IndexRow(
            hour_end,
            station_id,
            "VN_AQI",
            None if result.value is None else float(result.value),
            None if level is None else f"{level.name_vi} / {level.name_en}",
            None if result.dominant is None else result.dominant.value,
            {
                "exact": result.exact,
                "reason": result.reason,
                **{f"sub_{p.value}": round(v, 2) for p, v in result.sub_indices.items()},
            },
        )

    def forecasts(
        self, readings: Iterable[Reading], stations: Mapping[str, Station], open_keys: set[str]
    ) -> list[Condition]:
        """Early-warning conditions, one per depth reading, each as of its measurement time.

        Call it after :meth:`observe` has seen the same readings: a nowcast at a reading's
        time uses only data measured up to that time (later points in the window are left
        out), so the verdicts do not depend on how the stream was cut into batches.
        """
        depths = sorted(
            (r for r in readings if r.quantity is Quantity.WATER_DEPTH),
            key=lambda r: r.measured_at,
        )
        out: list[Condition] = []
        for reading in depths:
            hotspot = reading.station_id
            cast = self._nowcaster.nowcast(hotspot, reading.measured_at.timestamp())
            if cast is None:
                continue
            key = f"{FORECAST_RULE}:{hotspot}"
            warnings = cast.warnings(self._lead_time_s)
            if not warnings:
                if key in open_keys:
                    out.append(Condition(key, FORECAST_RULE, "event", reading, None, True))
                continue
            worst = warnings[-1]
            station = stations.get(hotspot)
            out.append(
                Condition(
                    key, FORECAST_RULE, "event", reading, _FORECAST_SEVERITY[worst.level],
                    False, worst.depth_cm, _forecast_texts(cast, worst, reading, station),
                    f"{FORECAST_RULE}:{station.district if station else '?'}",
                    {"eta_min": round((worst.eta_s or 0) / 60, 1), "level": worst.level.value,
                     "rate_cm_h": round(cast.rate_cm_h, 1),
                     "confidence": round(cast.confidence, 2),
                     "rain_mm_h": None if cast.rain_mm_h is None else round(cast.rain_mm_h, 1)},
                )
            )  # fmt: skip
        return out


def _minutes(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds / 60:.0f}"


def _forecast_texts(
    cast: FloodNowcast, eta: LevelEta, reading: Reading, station: Station | None
) -> tuple[str, str, str, str]:
    place = station.name if station else reading.station_id
    local = hanoi_time(reading.measured_at)
    window = f"{_minutes(eta.eta_early_s)}–{_minutes(eta.eta_late_s)}"
    rain_vi = rain_en = ""
    if cast.rain_mm_h is not None:
        rain_vi = f", mưa thượng nguồn {cast.rain_mm_h:.0f} mm/h"
        rain_en = f", upstream rain {cast.rain_mm_h:.0f} mm/h"
    return (
        f"Dự báo ngập {eta.depth_cm:g} cm: {place}",
        f"Flood forecast {eta.depth_cm:g} cm: {place}",
        f"Lúc {local} (giờ Hà Nội) độ sâu ngập tại {place} là {cast.depth_cm:.0f} cm, đang dâng "
        f"{cast.rate_cm_h:.0f} cm/h{rain_vi}; dự kiến đạt {eta.depth_cm:g} cm sau khoảng "
        f"{_minutes(eta.eta_s)} phút ({window} phút). Chuẩn bị phân luồng, tránh đi vào khu vực.",
        f"At {local} (Hanoi time) the flood depth at {place} is {cast.depth_cm:.0f} cm, rising "
        f"{cast.rate_cm_h:.0f} cm/h{rain_en}; expected to reach {eta.depth_cm:g} cm in about "
        f"{_minutes(eta.eta_s)} min ({window} min). Prepare diversions; avoid the area.",
    )


async def store_indices(conn: Conn, rows: list[IndexRow]) -> None:
    """Upsert index rows (inside the caller's transaction)."""
    if rows:
        async with conn.cursor() as cur:
            await cur.executemany(
                _UPSERT,
                [
                    (r.time, r.station_id, r.index, r.value, r.level, r.dominant,
                     json.dumps(r.details))
                    for r in rows
                ],
            )  # fmt: skip
