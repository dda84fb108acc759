"""Hourly means from raw readings (hour-ending convention) and live per-station VN_AQI.

Hour-ending: the mean labelled 09:00 covers readings measured in (08:00, 09:00]; a reading
at exactly 09:00:00 belongs to the hour ending 09:00 [U, project convention]. Vietnam has a
whole-hour UTC offset, so UTC and local hours share boundaries. A mean is *valid* when it
holds at least ``min_completeness`` (75 %, [U]) of the readings the sensor's interval implies.

>>> from datetime import UTC, datetime
>>> hour_ending(datetime(2026, 1, 5, 8, 15, tzinfo=UTC)).hour
9
>>> agg = HourlyAggregator()
>>> out = []
>>> for minute in range(0, 75, 5):
...     t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC) + timedelta(minutes=minute, seconds=1)
...     out += agg.add_value("aq-1.pm25", t, 40.0, interval_s=300.0)
>>> [(m.hour_end.hour, m.mean, m.count, m.valid) for m in out]
[(9, 40.0, 12, True)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from contract import HANOI_UTC_OFFSET_S, Reading
from processing.errors import DetectorConfigError
from processing.indices.vn_aqi import AqiResult, Pollutant, daily_aqi, hourly_aqi

__all__ = ["AqiTracker", "HourlyAggregator", "HourlyMean", "hour_ending"]

_HOUR: Final = 3600


def hour_ending(moment: datetime) -> datetime:
    """The UTC label of the hour a measurement belongs to (ceiling to the hour).

    Raises:
        DetectorConfigError: for a naive datetime.
    """
    if moment.tzinfo is None:
        msg = "hour_ending needs a tz-aware datetime"
        raise DetectorConfigError(msg)
    seconds = moment.timestamp()
    return datetime.fromtimestamp(math.ceil(seconds / _HOUR) * _HOUR, UTC)


@dataclass(frozen=True, slots=True)
class HourlyMean:
    """The mean of one sensor over one hour.

    Args:
        sensor_id: ``<station>.<quantity>``.
        hour_end: UTC end of the hour (its label).
        mean: arithmetic mean of the readings.
        count: readings in the hour.
        expected: readings the reporting interval implies.
        valid: ``count >= min_completeness * expected``.
    """

    sensor_id: str
    hour_end: datetime
    mean: float
    count: int
    expected: int
    valid: bool


@dataclass(slots=True)
class _Bucket:
    hour: int  # hour_end as whole hours since the epoch
    total: float
    count: int
    interval_s: float


class HourlyAggregator:
    """Streaming hour-ending means per sensor (pure; feed readings in any batch size).

    A bucket closes when a reading of a later hour arrives or on :meth:`flush`. Readings for
    an hour already closed are dropped and counted (``late_dropped``); at most
    ``max_sensors`` are tracked and readings of further sensors are refused
    (``refused``).

    Args:
        min_completeness: share of expected readings a valid mean needs.
        default_interval_s: reporting interval assumed when none is given.
        max_sensors: bound on the sensors tracked.
    """

    def __init__(
        self,
        *,
        min_completeness: float = 0.75,
        default_interval_s: float = 60.0,
        max_sensors: int = 200_000,
    ) -> None:
        if not 0 < min_completeness <= 1 or default_interval_s <= 0 or max_sensors < 1:
            msg = "need 0 < min_completeness <= 1, default_interval_s > 0, max_sensors >= 1"
            raise DetectorConfigError(msg)
        self.min_completeness = min_completeness
        self.default_interval_s = default_interval_s
        self.max_sensors = max_sensors
        self._open: dict[str, _Bucket] = {}
        self._closed_until: dict[str, int] = {}
        self._known: set[str] = set()
        self.late_dropped = 0
        self.refused = 0

    def add(self, reading: Reading, interval_s: float | None = None) -> list[HourlyMean]:
        """Add one reading; returns the hourly means this closes (oldest first)."""
        return self.add_value(reading.sensor_id, reading.measured_at, reading.value, interval_s)

    def add_value(
        self, sensor_id: str, measured_at: datetime, value: float, interval_s: float | None = None
    ) -> list[HourlyMean]:
        """Add one value of ``sensor_id``; returns the hourly means this closes."""
        if measured_at.tzinfo is None:
            msg = "hourly means need tz-aware times"
            raise DetectorConfigError(msg)
        return self.add_at(sensor_id, measured_at.timestamp(), value, interval_s)

    def add_at(
        self, sensor_id: str, at_s: float, value: float, interval_s: float | None = None
    ) -> list[HourlyMean]:
        """:meth:`add_value` with the measurement time in epoch seconds."""
        if not math.isfinite(value):
            return []
        hour = math.ceil(at_s / _HOUR)  # the hour-ending label, in hours
        if hour <= self._closed_until.get(sensor_id, -1):
            self.late_dropped += 1
            return []
        if sensor_id not in self._known:
            if len(self._known) >= self.max_sensors:
                self.refused += 1
                return []
            self._known.add(sensor_id)
        bucket = self._open.get(sensor_id)
        closed: list[HourlyMean] = []
        if bucket is not None and hour > bucket.hour:
            closed.append(self._close(sensor_id))
            bucket = None
        if bucket is None:
            interval = interval_s if interval_s and interval_s > 0 else self.default_interval_s
            bucket = self._open[sensor_id] = _Bucket(hour, 0.0, 0, interval)
        bucket.total += value
        bucket.count += 1
        return closed

    def _close(self, sensor_id: str) -> HourlyMean:
        bucket = self._open.pop(sensor_id)
        self._closed_until[sensor_id] = bucket.hour
        expected = max(1, round(_HOUR / bucket.interval_s))
        valid = bucket.count >= self.min_completeness * expected
        end = datetime.fromtimestamp(bucket.hour * _HOUR, UTC)
        return HourlyMean(
            sensor_id, end, bucket.total / bucket.count, bucket.count, expected, valid
        )

    def flush(self, now: datetime, grace_s: float = 120.0) -> list[HourlyMean]:
        """Close every bucket whose hour ended at least ``grace_s`` before ``now``."""
        limit = now.timestamp() - grace_s
        due = [s for s, b in self._open.items() if b.hour * _HOUR <= limit]
        return sorted((self._close(s) for s in due), key=lambda m: (m.hour_end, m.sensor_id))


class AqiTracker:
    """The last hours of hourly means per station and pollutant, and their VN_AQI.

    Args:
        history_hours: hours kept per series (at least 31 for the daily O3 8-h rule).
        max_stations: bound on stations tracked; further ones are refused (``refused``).
        utc_offset_s: offset of the local day used by :meth:`daily` (Hanoi: +7 h).

    >>> from datetime import UTC, datetime
    >>> tracker = AqiTracker()
    >>> end = datetime(2026, 1, 5, 9, tzinfo=UTC)
    >>> pm25 = [26.9, 24.7, 20.5, 23.5, 19.5, 16.5, 19.0, 16.5, 20.3, 22.4, 19.6, 20.6]
    >>> for h, c in enumerate(pm25):
    ...     tracker.add("aq-1", Pollutant.PM25, end + timedelta(hours=h), c)
    >>> tracker.hourly("aq-1", end + timedelta(hours=11)).value
    41
    """

    def __init__(
        self,
        *,
        history_hours: int = 48,
        max_stations: int = 10_000,
        utc_offset_s: float = HANOI_UTC_OFFSET_S,
    ) -> None:
        if history_hours < 31 or max_stations < 1:
            msg = "need history_hours >= 31 and max_stations >= 1"
            raise DetectorConfigError(msg)
        self.history_hours, self.max_stations = history_hours, max_stations
        self.utc_offset_s = utc_offset_s
        self._series: dict[str, dict[Pollutant, dict[int, float]]] = {}
        self.refused = 0

    def add(
        self, station_id: str, pollutant: Pollutant, hour_end: datetime, mean: float | None
    ) -> None:
        """Record one hourly mean (None or NaN: the hour is missing)."""
        if station_id not in self._series:
            if len(self._series) >= self.max_stations:
                self.refused += 1
                return
            self._series[station_id] = {}
        series = self._series[station_id].setdefault(pollutant, {})
        hour = int(hour_ending(hour_end).timestamp()) // _HOUR
        if mean is not None and math.isfinite(mean):
            series[hour] = float(mean)
        else:
            series.pop(hour, None)
        newest = max(series, default=hour)
        for old in [h for h in series if h <= newest - self.history_hours]:
            del series[old]

    def add_mean(self, hourly: HourlyMean) -> bool:
        """Record a :class:`HourlyMean` of an AQI pollutant; invalid means count as missing.

        Returns:
            False when the sensor's quantity is not a VN_AQI pollutant.
        """
        station, _, quantity = hourly.sensor_id.rpartition(".")
        try:
            pollutant = Pollutant(quantity)
        except ValueError:
            return False
        self.add(station, pollutant, hourly.hour_end, hourly.mean if hourly.valid else None)
        return True

    def _window(
        self, station_id: str, last_hour: int, hours: int
    ) -> dict[Pollutant, list[float | None]]:
        stored = self._series.get(station_id, {})
        span = range(last_hour - hours + 1, last_hour + 1)
        return {p: [s.get(h) for h in span] for p, s in stored.items()}

    def hourly(self, station_id: str, hour_end: datetime) -> AqiResult:
        """Hourly VN_AQI of the hour ending at ``hour_end``."""
        last = int(hour_ending(hour_end).timestamp()) // _HOUR
        window = self._window(station_id, last, 12)
        return hourly_aqi({p: list(reversed(series)) for p, series in window.items()})

    def daily(self, station_id: str, day: date) -> AqiResult:
        """Daily VN_AQI of local ``day`` (hour-ending 01:00 that day to 00:00 the next)."""
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        last = int(midnight.timestamp() - self.utc_offset_s) // _HOUR
        return daily_aqi(self._window(station_id, last, 31))

    def stations(self) -> Sequence[str]:
        """Stations with at least one series."""
        return sorted(self._series)
