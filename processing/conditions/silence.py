"""Silent sensors: no data for longer than a sensor's own reporting habit allows (pure).

The dropout lane of the :class:`~processing.bank.DetectorBank` knows each sensor's reporting
interval (learned from its gaps) and when it last reported; :class:`SilenceWatch` asks it,
after every slice of readings, which sensors are overdue, and turns the answer into one
:class:`~processing.conditions.base.Condition` per *station*: key ``sensor_silent:<station>``,
category ``sensor_health``, bilingual text naming the silent quantities and since when.
The alert clears on the first reading of the station once none of its sensors is overdue.

Everything is judged in **event time**: "now" is a watermark that follows the median
measurement time of each slice (a median, so one device with a fast clock cannot make the
rest of the city look silent), never the wall clock, so a backfill raises the same silence
alerts the live stream would have. A sensor is called silent only when

- its dropout lane scores the gap at or above the lane's threshold (by default a gap this
  sensor shows once in about 10 000, judged against its own history of gaps), and
- the gap is at least ``min_silence_s`` (a 10-second sensor is not "dead" after 50 s), and
- nothing from it has *arrived* while the watermark advanced by ``min_silence_s``: a device
  uploading a backlog (a gateway catching up, a backfill where some devices run behind
  others, a device clock running late) is late, not silent — it keeps delivering, only
  older data; a dead one delivers nothing. *When* something arrived is itself expressed in
  event time: each reading, in arrival order, is marked with the *front* of the stream — the
  latest measurement time that has arrived, leaving out clocks more than ``max_lead_s``
  ahead of both the front so far and the bulk of the last ``arrival_window`` arrivals
  (their 70th percentile; never decreasing) — and the silence check at
  watermark ``W`` counts only what had arrived by then. The watermark itself never passes
  the front, nor the 75th percentile of the stations' latest measurement times, so neither
  a device whose clock runs hours ahead nor a few whose clocks run minutes ahead (with a
  burst of their queued messages) can make the city look silent. Live, both
  conditions coincide; in a backfill this keeps per-device lag from looking like silence
  while a gap inside one big batch is still seen;
- gaps are counted from no earlier than the moment this watch began (after a restart nobody
  listened in between: a sensor is not blamed for that).

A city-wide silence (the broker or the network down) stops the watermark, so it raises no
flood of per-station alerts; ingest's station status and the service heartbeats report that.

>>> from datetime import UTC, datetime, timedelta
>>> from processing.bank import Silence
>>> from contract import Quantity, Reading, StationId
>>> watch = SilenceWatch(min_silence_s=300.0)
>>> t0 = datetime(2025, 9, 30, tzinfo=UTC)
>>> def pm25(station: str, at: datetime) -> Reading:
...     return Reading(StationId(station), Quantity.PM25, 30.0, at, at)
>>> watch.arriving([pm25("aq-x", t0), pm25("aq-y", t0)])
>>> watch.advance([pm25("aq-x", t0), pm25("aq-y", t0)])
>>> watch.arrived()
>>> watch.arriving([pm25("aq-y", t0 + timedelta(minutes=15))])
>>> watch.advance([pm25("aq-y", t0 + timedelta(minutes=15))])
>>> silent = [Silence("silent", SensorId("aq-x.pm25"), 0.7, t0.timestamp())]
>>> [(c.dedup_key, c.severity, c.value) for c in watch.judge(silent, {}, set())]
[('sensor_silent:aq-x', <Severity.MINOR: 'minor'>, 15.0)]
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from contract import QUANTITIES, Quantity, Reading, SensorId, Station, hanoi_time
from processing.alerts import Severity
from processing.alerts.wording import Place
from processing.bank import Silence
from processing.columns import Columns
from processing.conditions.base import Condition, Phase, RuleSpec, Step, Subject
from processing.errors import DetectorConfigError
from processing.windows import arrival_percentile

__all__ = ["SILENT_RULE", "SilenceWatch"]

FloatArray = npt.NDArray[np.float64]
SILENT_RULE: Final = "sensor_silent"
_BULK_PERCENTILE: Final = 70.0
_FLEET_PERCENTILE: Final = 75.0  # of the stations' latest times: the watermark's bound
_MIN_FLEET: Final = 8  # fewer stations than this: the slice median alone


def _split(sensor: SensorId) -> tuple[str, Quantity | None]:
    station, _, quantity = sensor.rpartition(".")
    try:
        return station, Quantity(quantity)
    except ValueError:
        return station, None


class SilenceWatch:
    """Event-time watermark and silence conditions, station by station.

    Args:
        min_silence_s: shortest gap ever called a silence, whatever the interval.
        severity: severity of a silence alert.
        arrival_window: recent arrivals that mark the front of the stream.
        max_lead_s: a measurement time this far ahead of the bulk of the recent arrivals is a
            clock error, not the front.
    """

    def __init__(
        self,
        *,
        min_silence_s: float = 300.0,
        severity: Severity = Severity.MINOR,
        arrival_window: int = 64,
        max_lead_s: float = 600.0,
    ) -> None:
        if not min_silence_s >= 0:
            msg = f"min_silence_s must be >= 0, got {min_silence_s!r}"
            raise DetectorConfigError(msg)
        self.min_silence_s = min_silence_s
        self.severity = severity
        self.arrival_window = max(1, arrival_window)
        self.watermark_s = -math.inf
        self.since_s: float | None = None
        self.max_lead_s = max_lead_s
        self.front_s = -math.inf  # the front of what has arrived, in event time
        self._recent: deque[float] = deque(maxlen=self.arrival_window - 1)
        self._heard: dict[str, float] = {}  # sensor -> front when it last delivered
        self._latest: dict[str, float] = {}  # station -> latest measurement time seen
        # this batch's readings' sensors and arrival marks (marks never decrease), and the
        # positions of each sensor's readings, built only if a silence check asks
        self._sensors: list[str] = []
        self._marks: FloatArray = np.empty(0)
        self._positions: dict[str, list[int]] | None = None

    def arriving(self, readings: Sequence[Reading], columns: Columns | None = None) -> None:
        """A batch arrived (in this order): note, per reading, when in event time it came.

        ``columns``: the readings' columns, when the caller has them.
        """
        cols = Columns.of(readings) if columns is None else columns
        times = cols.times_s
        self._sensors, self._marks, self._positions = [], np.empty(0), None
        if not times.size:
            return
        bulk = arrival_percentile(self._recent, times, self.arrival_window, _BULK_PERCENTILE)
        marks = self._fronts(times, bulk)
        self.front_s = float(marks[-1])
        self._recent.extend(times[-self.arrival_window :].tolist())
        self._sensors = list(cols.sensor_ids)
        self._marks = marks

    def _fronts(self, times: FloatArray, bulk: FloatArray) -> FloatArray:
        """The front after each arrival.

        It advances with each arrival, unless that clock is far ahead of both the front so
        far and the bulk of recent arrivals (a device hours ahead, say). Usually no clock
        is: the front is then the running maximum, computed at once.
        """
        front, lead = self.front_s, self.max_lead_s
        if math.isfinite(front):
            running = np.maximum.accumulate(np.concatenate(([front], times)))
            if bool(np.all(times <= np.maximum(running[:-1], bulk) + lead)):
                return running[1:]
        marks = np.empty(times.size)
        for i, (moment, usual) in enumerate(zip(times.tolist(), bulk.tolist(), strict=True)):
            if moment <= max(front, usual) + lead or not math.isfinite(front):
                front = max(front, moment)
            marks[i] = front
        return marks

    def arrived(self) -> None:
        """The batch is decided: remember when each of its sensors was last heard.

        Marks never decrease, across batches too, so a sensor's last mark in this batch is
        its latest: a plain update keeps the maximum.
        """
        self._heard.update(zip(self._sensors, self._marks.tolist(), strict=True))
        self._sensors, self._marks, self._positions = [], np.empty(0), None

    def _heard_by(self, sensor: str, since: float) -> float:
        """When ``sensor`` was last heard, counting only what had arrived by the watermark."""
        heard = self._heard.get(sensor, since)
        if self._positions is None:
            positions: dict[str, list[int]] = defaultdict(list)
            for i, name in enumerate(self._sensors):
                positions[name].append(i)
            self._positions = positions
        found = self._positions.get(sensor)
        if found:
            marks = self._marks[found]
            i = int(np.searchsorted(marks, self.watermark_s, side="right"))
            if i:
                heard = max(heard, float(marks[i - 1]))
        return heard

    def advance(self, readings: Sequence[Reading], times_s: FloatArray | None = None) -> None:
        """Move the watermark with a slice's readings (never backwards, never past the front).

        ``times_s``: their measurement times in epoch seconds, when the caller has them.
        """
        if times_s is None:
            times_s = Columns.of(readings).times_s
        latest, get = self._latest, self._latest.get
        for r, t in zip(readings, times_s.tolist(), strict=True):
            if t > get(r.station_id, -math.inf):  # NaN never is
                latest[r.station_id] = t
        finite = times_s[np.isfinite(times_s)]
        if not finite.size:
            return
        candidate = float(np.median(finite))
        if math.isfinite(self.front_s):
            # a slice of one device's far-future clock alone must not move "now"
            candidate = min(candidate, self.front_s)
        if len(self._latest) >= _MIN_FLEET:
            # nor may a few devices whose clocks run minutes ahead: "now" is no later than
            # where most of the fleet's stations have got to
            fleet = np.fromiter(self._latest.values(), dtype=np.float64, count=len(self._latest))
            candidate = min(candidate, float(np.percentile(fleet, _FLEET_PERCENTILE)))
        self.watermark_s = max(self.watermark_s, candidate)
        if self.since_s is None:
            self.since_s = self.watermark_s

    @property
    def now(self) -> datetime:
        """The watermark as a UTC datetime."""
        return datetime.fromtimestamp(self.watermark_s, UTC)

    rules: Final = (RuleSpec(SILENT_RULE, "sensor_health", "Mất tín hiệu", "Sensor silent"),)
    phase: Final[Phase] = "watermark"

    def conditions(self, step: Step) -> list[Condition]:
        """Silences at the watermark the slice moved to."""
        return self.judge(step.silences, step.stations, step.open_keys, step.reported)

    def judge(
        self,
        silences: Iterable[Silence],
        stations: Mapping[str, Station],
        open_keys: Collection[str],
        reported: Collection[str] = (),
    ) -> list[Condition]:
        """Abnormal conditions for silent stations, normal ones for stations heard again.

        Args:
            silences: what the bank's dropout lanes say at :attr:`watermark_s`.
            stations: the registry's stations (names and districts for the texts).
            open_keys: dedup keys of the open alerts.
            reported: stations that sent readings in the slice just processed.
        """
        if not math.isfinite(self.watermark_s):
            return []
        by_station: dict[str, list[Silence]] = defaultdict(list)
        since = self.since_s if self.since_s is not None else self.watermark_s
        for silence in silences:
            heard = self._heard_by(silence.sensor, since)
            if min(self.watermark_s - silence.last_seen_s, self.watermark_s - heard) >= (
                self.min_silence_s
            ):
                by_station[_split(silence.sensor)[0]].append(silence)
        out = [self._silent(station, found, stations) for station, found in by_station.items()]
        for station in reported:
            key = f"{SILENT_RULE}:{station}"
            if key in open_keys and station not in by_station:
                out.append(
                    Condition(key, SILENT_RULE, "sensor_health", Subject(station), self.now, 0.0,
                              None, True, clear_after=1)
                )  # fmt: skip
        return out

    def _silent(
        self, station: str, found: list[Silence], stations: Mapping[str, Station]
    ) -> Condition:
        quantities = sorted({q for s in found if (q := _split(s.sensor)[1]) is not None})
        last_seen = min(s.last_seen_s for s in found)
        minutes = round((self.watermark_s - last_seen) / 60.0, 1)
        ref = stations.get(station)
        district = ref.district if ref else "?"
        return Condition(
            f"{SILENT_RULE}:{station}", SILENT_RULE, "sensor_health", Subject(station),
            self.now, minutes, self.severity, False, round(self.min_silence_s / 60.0, 1),
            _texts(ref, station, quantities, last_seen, minutes),
            f"{SILENT_RULE}:{district}",
            {"silent_min": minutes,
             "last_seen_at": datetime.fromtimestamp(last_seen, UTC).isoformat(),
             "quantities": ",".join(q.value for q in quantities)},
        )  # fmt: skip


def _texts(
    ref: Station | None,
    station: str,
    quantities: list[Quantity],
    last_seen_s: float,
    minutes: float,
) -> tuple[str, str, str, str]:
    place = Place.of(ref, station).name
    where = Place.of(ref, station).in_district
    local = hanoi_time(datetime.fromtimestamp(last_seen_s, UTC))
    what_vi = ", ".join(QUANTITIES[q].label_vi for q in quantities) or "mọi số đo"
    what_en = ", ".join(QUANTITIES[q].label_en for q in quantities) or "all quantities"
    return (
        f"Mất tín hiệu: {place}",
        f"Sensor silent: {place}",
        f"Không nhận được dữ liệu ({what_vi}) từ {where} kể từ {local} (giờ Hà Nội), "
        f"đã {minutes:.0f} phút. Kiểm tra nguồn điện, đường truyền và thiết bị.",
        f"No data ({what_en}) from {where} since {local} (Hanoi time), "
        f"{minutes:.0f} min so far. Check the power supply, the link and the device.",
    )
