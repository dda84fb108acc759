"""Device clocks that are off: measurement times out of step with the rest of the city (pure).

A device whose clock runs fast or slow (no NTP, a dead RTC battery, local time stamped as
UTC) sends readings that are stored at the wrong time: charts shift, hourly means and the
VN_AQI take them into the wrong hour, and its silences and rises are judged late or early.
Its values look normal, so no value detector can see it — only *when* its messages arrive.

Everything here is in event time, as in the silence watch: the **reference** for a message
is the median measurement time of the ``window`` messages that arrived just before it, from
the whole fleet (live this is "now" minus the usual latency; in a backfill it is where the
replay has got to). A station's **offset** is its message's measurement time minus that
reference, less the median of every station's latest such difference (the reference trails
the newest arrivals by half the window's span, the same for everyone). A clock is called
off when ``confirm`` offsets of the station, sampled at least ``sample_s`` of fleet time
apart, all sit beyond ``threshold_s`` on the same side *and* agree with each other (within
``spread_s``): a steady offset is a clock. A backlog uploaded after an outage is not one:
its messages arrive while the fleet's time hardly moves (one sample) and their offsets
shrink message by message. The alert clears once the median of the station's last three
samples is back under half the threshold.

Limits: a clock ahead by more than ingest's ``max_future_s`` (300 s) never reaches
processing — those messages are quarantined as ``future_time`` and the station is reported
silent; until ``min_fleet`` stations have been heard there is no reference and no
verdict. Nothing is snapshotted: after a restart a skewed clock is called again after
``confirm`` samples.

>>> from datetime import UTC, datetime, timedelta
>>> from contract import Quantity, Reading, StationId
>>> t0 = datetime(2025, 11, 12, 3, 0, tzinfo=UTC)
>>> def message(station: str, minute: int, skew_s: float = 0.0) -> Reading:
...     at = t0 + timedelta(minutes=minute, seconds=skew_s)
...     return Reading(StationId(station), Quantity.PM25, 30.0, at, at)
>>> watch = ClockWatch()
>>> fleet = [f"aq-{i}" for i in range(8)]
>>> watch.observe([message(s, m) for m in range(5) for s in fleet], {}, set())
[]
>>> def arrival(r: Reading) -> datetime:  # a slow clock's message arrives on time
...     return r.measured_at + timedelta(seconds=900 if r.station_id == "aq-slow" else 0)
>>> batch = [message(s, m) for m in range(5, 15) for s in fleet]
>>> batch += [message("aq-slow", m, -900.0) for m in range(5, 15)]
>>> found = watch.observe(sorted(batch, key=arrival), {}, set())
>>> found[0].dedup_key, found[0].severity, found[0].texts[1]
('clock_skew:aq-slow', <Severity.MINOR: 'minor'>, 'Device clock off: aq-slow')
>>> -17.0 < found[0].value < -14.0  # minutes, within the fleet's one-minute cadence
True
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

import numpy as np

from contract import Reading, Station, StationId, hanoi_time
from processing.alerts import Severity
from processing.alerts.wording import Place, number_en, number_vi
from processing.columns import Columns
from processing.conditions.base import Condition, Phase, RuleSpec, Step, Subject
from processing.errors import DetectorConfigError
from processing.windows import arrival_percentile

__all__ = ["CLOCK_RULE", "ClockWatch"]

CLOCK_RULE: Final = "clock_skew"
_CLEAR_OVER: Final = 3  # messages whose median offset decides a clear


class ClockWatch:
    """Per-station clock offsets against the fleet's arrivals, and clock-skew conditions.

    Args:
        threshold_s: smallest offset called a clock error (live latency and a backfill's
            interleaving stay well under it; a minute-off clock is below it).
        confirm: consecutive samples beyond the threshold, agreeing, before a verdict.
        sample_s: fleet time between two samples of a station's offset (a fast sensor is
            sampled, not taken message by message).
        spread_s: how far those offsets may disagree and still be one steady clock error.
        window: arrivals whose median measurement time is the reference.
        min_fleet: fewer stations heard than this: no reference, no verdict.
        severity: severity of a clock alert.
    """

    def __init__(
        self,
        *,
        threshold_s: float = 120.0,
        confirm: int = 5,
        sample_s: float = 30.0,
        spread_s: float = 45.0,
        window: int = 31,
        min_fleet: int = 8,
        severity: Severity = Severity.MINOR,
    ) -> None:
        if not threshold_s > 0 or confirm < 1 or window < 1:
            msg = f"need threshold_s > 0, confirm >= 1, window >= 1: {threshold_s}, {confirm}"
            raise DetectorConfigError(msg)
        self.threshold_s = threshold_s
        self.confirm = confirm
        self.sample_s = sample_s
        self.spread_s = spread_s
        self.window = window
        self.min_fleet = min_fleet
        self.severity = severity
        self._recent: deque[float] = deque(maxlen=window)
        self._offsets: dict[str, deque[float]] = {}  # station -> sampled offsets
        self._sampled: dict[str, float] = {}  # station -> reference time of the last sample
        self._raw: dict[str, float] = {}  # station -> latest lag behind the reference

    rules: Final = (
        RuleSpec(CLOCK_RULE, "sensor_health", "Đồng hồ thiết bị lệch", "Device clock off"),
    )
    phase: Final[Phase] = "batch"

    def conditions(self, step: Step) -> list[Condition]:
        """The clock verdicts of a batch, judged on its messages in arrival order."""
        return self.observe(step.readings, step.stations, step.open_keys, step.columns)

    def observe(
        self,
        readings: Sequence[Reading],
        stations: Mapping[str, Station],
        open_keys: Collection[str],
        columns: Columns | None = None,
    ) -> list[Condition]:
        """A batch as it arrived (in arrival order): clock conditions, one per sample judged.

        ``columns``: the readings' columns, when the caller has them.
        """
        cols = Columns.of(readings) if columns is None else columns
        # one sample per message: a station's readings of one measurement time
        last = {(r.station_id, t): i for i, (r, t) in enumerate(zip(readings,
                cols.times_s.tolist(), strict=True))}  # fmt: skip
        if not last:
            return []
        # (a dict keeps each key's first-seen place and its last reading)
        index = np.fromiter(last.values(), dtype=np.intp, count=len(last))
        messages = [readings[i] for i in index.tolist()]
        times = cols.times_s[index]
        refs = arrival_percentile(self._recent, times, self.window, 50.0, own=False)
        self._recent.extend(times.tolist())
        raw = (times - refs).tolist()
        for reading, lag in zip(messages, raw, strict=True):
            if math.isfinite(lag):
                self._raw[reading.station_id] = lag
        if len(self._raw) < self.min_fleet:
            return []
        # what every station shows: the reference trails the newest arrival by about half
        # the window's span (a small or slow fleet: minutes)
        usual = statistics.median(self._raw.values())
        out: list[Condition] = []
        for reading, lag, ref in zip(messages, raw, refs.tolist(), strict=True):
            if not math.isfinite(lag):
                continue
            station = reading.station_id
            if ref - self._sampled.get(station, -math.inf) < self.sample_s:
                continue
            self._sampled[station] = ref
            offsets = self._offsets.setdefault(station, deque(maxlen=self.confirm))
            offsets.append(lag - usual)
            condition = self._judge(station, offsets, ref, stations, open_keys)
            if condition is not None:
                out.append(condition)
        return out

    def _judge(
        self,
        station: StationId,
        offsets: deque[float],
        ref: float,
        stations: Mapping[str, Station],
        open_keys: Collection[str],
    ) -> Condition | None:
        key = f"{CLOCK_RULE}:{station}"
        if len(offsets) == self.confirm:
            low, high = min(offsets), max(offsets)
            beyond = low >= self.threshold_s or high <= -self.threshold_s
            if beyond and high - low <= self.spread_s:
                return self._skewed(station, statistics.median(offsets), ref, stations)
        if key in open_keys:
            recent = list(offsets)[-_CLEAR_OVER:]
            if abs(statistics.median(recent)) < self.threshold_s / 2:
                return Condition(key, CLOCK_RULE, "sensor_health", Subject(station), _at(ref),
                                 0.0, None, True, clear_after=1)  # fmt: skip
        return None

    def _skewed(
        self, station: StationId, offset_s: float, ref: float, stations: Mapping[str, Station]
    ) -> Condition:
        ref_station = stations.get(station)
        district = ref_station.district if ref_station else "?"
        minutes = round(offset_s / 60.0, 1)
        return Condition(
            f"{CLOCK_RULE}:{station}", CLOCK_RULE, "sensor_health", Subject(station), _at(ref),
            minutes, self.severity, False, round(self.threshold_s / 60.0, 1),
            _texts(ref_station, station, offset_s, ref), f"{CLOCK_RULE}:{district}",
            {"offset_s": round(offset_s, 1)},
        )  # fmt: skip


def _at(ref: float) -> datetime:
    """A verdict's event time: the fleet's time (not the device's)."""
    return datetime.fromtimestamp(ref, UTC)


def _span(offset_s: float) -> tuple[str, str]:
    size = abs(offset_s)
    if size >= 5400:
        hours = size / 3600
        decimals = 0 if round(hours, 1).is_integer() else 1
        return f"{number_vi(hours, decimals)} giờ", f"{number_en(hours, decimals)} h"
    return f"{size / 60:.0f} phút", f"{size / 60:.0f} min"


def _texts(
    ref: Station | None, station: str, offset_s: float, now_s: float
) -> tuple[str, str, str, str]:
    place = Place.of(ref, station).name
    where = Place.of(ref, station).in_district
    local = hanoi_time(datetime.fromtimestamp(now_s, UTC))
    span_vi, span_en = _span(offset_s)
    fast = offset_s > 0
    return (
        f"Đồng hồ thiết bị lệch: {place}",
        f"Device clock off: {place}",
        f"Đồng hồ của thiết bị {where} chạy {'nhanh' if fast else 'chậm'} khoảng "
        f"{span_vi} so với các trạm khác (lúc {local}, giờ Hà Nội). Số liệu vẫn được lưu theo "
        "giờ thiết bị gửi nên bị lệch thời gian trên biểu đồ và chỉ số giờ. "
        "Cần đồng bộ đồng hồ (NTP) cho thiết bị.",
        f"The clock of {where} runs about {span_en} {'fast' if fast else 'slow'} "
        f"against the rest of the network (at {local}, Hanoi time). Its readings are stored at "
        "the device's times, so they are shifted on the charts and in the hourly indices. "
        "Synchronise the device clock (NTP).",
    )
