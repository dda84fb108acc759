"""Derived series computed live: hourly VN_AQI per station and flood nowcasts per hotspot.

VN_AQI (Decision 1459/QĐ-TCMT) is computed when an hour closes for a station's pollutant
(hour-ending convention, NowCast for PM) and stored in ``indices`` as ``VN_AQI``; the row is
updated if another pollutant's hour closes later. Flood nowcasts follow every hotspot that
reports; :mod:`processing.conditions.forecasts` turns "level expected within the lead time"
into an early warning raised before the level is crossed. Both work in event time:
hours close on measurement times and each nowcast is made as of its depth reading's
measurement time, so a fast backfill gives what the live stream gave.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from contract import Quantity, Reading, Sensor, Station, StationId
from processing.columns import Columns
from processing.indices.hourly import AqiTracker, HourlyAggregator, HourlyMean
from processing.indices.vn_aqi import Pollutant
from processing.nowcast import FloodNowcast, FloodNowcaster

__all__ = ["DerivedSeries", "IndexRow"]

_AQI_QUANTITIES: Final = frozenset(Quantity(p.value) for p in Pollutant)


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
    """Live index and nowcast state (pure; bounded by the underlying trackers)."""

    def __init__(self) -> None:
        self._hourly = HourlyAggregator()
        self._aqi = AqiTracker()
        self._means: list[HourlyMean] = []
        self._nowcaster = FloodNowcaster()

    def link(self, stations: Iterable[Station]) -> None:
        """Link each flood hotspot to its upstream rain gauge (registry attribute)."""
        for station in stations:
            gauge = station.attributes.get("upstream_gauge")
            if isinstance(gauge, str):
                self._nowcaster.link(station.station_id, [gauge])

    def observe(
        self,
        readings: Sequence[Reading],
        sensors: Mapping[tuple[str, Quantity], Sensor],
        columns: Columns | None = None,
    ) -> list[IndexRow]:
        """Feed readings; returns index rows for every hour that closed.

        ``columns``: the readings' columns, when the caller has them.
        """
        cols = Columns.of(readings) if columns is None else columns
        closed: dict[tuple[str, datetime], None] = {}
        hourly, aqi_quantities = self._hourly, _AQI_QUANTITIES
        for reading, sensor, at_s in zip(readings, cols.sensor_ids, cols.times_s.tolist(),
                                         strict=True):  # fmt: skip
            if reading.quantity in aqi_quantities:
                ref = sensors.get((reading.station_id, reading.quantity))
                means = hourly.add_at(sensor, at_s, reading.value, ref.interval_s if ref else None)
                for mean in means:
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

    def nowcast(self, hotspot: str, at_s: float) -> FloodNowcast | None:
        """The hotspot's nowcast as of ``at_s`` (after :meth:`observe` saw its readings)."""
        return self._nowcaster.nowcast(hotspot, at_s)
