"""The decision engine: readings in, alert commands and index rows out, in event time (pure).

:class:`Engine` is everything the processing service decides, without I/O: the detector
bank, the threshold rules, the derived series (VN_AQI, flood nowcasts), the silence and
device-clock watches, the air-quality alerts from the hourly VN_AQI, the heavy-rain alerts
from the gauges' trailing accumulation, the dry-weather check on depth alerts, the traffic
incident watch and the alert lifecycle. The service feeds it each batch and commits what it
returns. A reading delivered again (MQTT is at least once) is decided on only once. Lanes
of ``hourly`` cadence see the hourly means of their quantities as the hours close
(pollution episodes are judged on hours, not minutes).

**Event time.** A batch is sorted by measurement time and cut into *slices* of at most
``slice_s`` seconds of measurement time, processed in order: detectors score, indices and
nowcasts observe, rules and lanes produce conditions, the lifecycle steps through them in
time order, and then the silence watch looks at the watermark. A fast backfill (batches of
thousands of readings spanning many minutes) therefore gives the alerts the live stream
(batches of a few readings) gives; only readings within one slice see each other early
(the spatial and context lanes), never more than ``slice_s`` apart.

>>> from datetime import UTC, datetime, timedelta
>>> from contract import Quantity, Reading, Registry, StationId
>>> engine = Engine(Lifecycle())
>>> engine.use(Registry({}))
>>> t0 = datetime(2025, 9, 30, tzinfo=UTC)
>>> def depth(minute: int, cm: float) -> Reading:
...     at = t0 + timedelta(minutes=minute)
...     return Reading(StationId("fd-x"), Quantity.WATER_DEPTH, cm, at, at)
>>> result = engine.process([depth(m, cm) for m, cm in enumerate([1, 2, 12, 15])])
>>> [(type(c).__name__, c.alert.rule) for c in result.commands]
[('Raise', 'flood_depth')]
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from contract import Quantity, Reading, Registry, Station
from processing.air_quality import aqi_conditions
from processing.bank import BankResult, DetectorBank, LaneSpec
from processing.clock import ClockWatch
from processing.derived import DerivedSeries, IndexRow
from processing.detection import DEFAULT_LANES, SPIKE_LANE, conditions_from, spike_positions
from processing.dry_weather import DryWeatherCheck
from processing.errors import DetectorConfigError
from processing.incidents import IncidentWatch
from processing.lifecycle import Command, Lifecycle
from processing.rainfall import RainAccumulator
from processing.replays import SeenReadings
from processing.rules import DEFAULT_RULES, Condition, ThresholdRule, evaluate
from processing.silence import SilenceWatch

__all__ = ["Engine", "EngineResult", "time_slices"]


@dataclass(frozen=True, slots=True)
class EngineResult:
    """What one batch decided.

    Args:
        commands: alert transitions, in event-time order.
        index_rows: index values of the hours that closed.
        detections: readings flagged by any detector lane.
        repeats: readings withheld as already decided on (MQTT redeliveries).
    """

    commands: list[Command] = field(default_factory=list)
    index_rows: list[IndexRow] = field(default_factory=list)
    detections: int = 0
    repeats: int = 0


def time_slices(readings: Sequence[Reading], slice_s: float) -> Iterator[list[Reading]]:
    """Readings sorted by measurement time, in runs spanning at most ``slice_s`` seconds."""
    ordered = sorted(readings, key=lambda r: r.measured_at)
    chunk: list[Reading] = []
    start = 0.0
    for reading in ordered:
        at = reading.measured_at.timestamp()
        if chunk and at - start > slice_s:
            yield chunk
            chunk = []
        if not chunk:
            start = at
        chunk.append(reading)
    if chunk:
        yield chunk


class Engine:
    """Every processing decision, as a pure object the service owns.

    Args:
        lifecycle: the alert lifecycle (its settings: clear-after, cooldown).
        rules: threshold rules.
        lanes: detector lanes of the bank.
        lead_time_s: how far ahead a flood level must be expected to warn now.
        slice_s: longest span of measurement time processed as one step.
        min_silence_s: shortest gap ever called a silent sensor.
    """

    def __init__(
        self,
        lifecycle: Lifecycle,
        *,
        rules: Sequence[ThresholdRule] = DEFAULT_RULES,
        lanes: Sequence[LaneSpec] = DEFAULT_LANES,
        lead_time_s: float = 1800.0,
        slice_s: float = 60.0,
        min_silence_s: float = 300.0,
    ) -> None:
        if not slice_s > 0:
            msg = f"slice_s must be > 0, got {slice_s!r}"
            raise DetectorConfigError(msg)
        self.lifecycle = lifecycle
        self.lanes = tuple(lanes)
        self.bank = DetectorBank(list(self.lanes))
        self.derived = DerivedSeries(lead_time_s=lead_time_s)
        self.silence = SilenceWatch(min_silence_s=min_silence_s)
        self.rain = RainAccumulator()
        self.dry = DryWeatherCheck()
        self.clock = ClockWatch()
        self.incidents = IncidentWatch()
        self.seen = SeenReadings()
        self.slice_s = slice_s
        self._rules: dict[Quantity, list[ThresholdRule]] = defaultdict(list)
        for rule in rules:
            self._rules[rule.quantity].append(rule)
        self._registry = Registry({})
        # spike verdicts waiting for the sensor's next reading, and its last ordinary value
        self._spikes: dict[str, tuple[Condition, float]] = {}
        self._before: dict[str, float] = {}

    @property
    def stations(self) -> Mapping[str, Station]:
        """The registry's stations."""
        return self._registry.stations

    def use(self, registry: Registry) -> None:
        """Adopt a (new) registry: sensors get detector slots, hotspots their gauges."""
        self._registry = registry
        self.bank.register(registry.stations.values())
        self.derived.link(registry.stations.values())

    def process(self, readings: Sequence[Reading]) -> EngineResult:
        """Decide on a batch, slice by slice in measurement-time order."""
        result = EngineResult()
        detections = 0
        repeats = self.seen.repeats
        readings = self.seen.first_time(readings)
        self.silence.arriving(readings)
        clocks = self.clock.observe(readings, self.stations, self.lifecycle.open_keys)
        for chunk in time_slices(readings, self.slice_s):
            detections += self._slice(chunk, result)
        self.silence.arrived()
        self._step(sorted(clocks, key=lambda c: c.reading.measured_at), result)
        return dataclasses.replace(
            result, detections=detections, repeats=self.seen.repeats - repeats
        )

    def _slice(self, chunk: list[Reading], result: EngineResult) -> int:
        scored = self.bank.process(chunk)
        spikes = spike_positions(scored)
        suspect = {id(chunk[i]) for i in spikes}
        rows = self.derived.observe(chunk, self._registry.sensors)
        result.index_rows.extend(rows)
        watched = self.lifecycle.watched_keys
        stations = self.stations
        self.dry.observe(chunk)
        conditions = [
            dataclasses.replace(c, hold=True)
            if c.severity is not None and id(c.reading) in suspect
            else c
            for c in self.dry.apply(
                evaluate(chunk, self._rules, stations), stations, self.lifecycle.open_keys, watched
            )
        ]
        lanes = conditions_from(scored, stations, watched, spikes)
        conditions += self._isolated_spikes(scored, lanes)
        conditions += self.derived.forecasts(chunk, stations, watched)
        conditions += aqi_conditions(rows, stations)
        conditions += self.rain.conditions(chunk, stations)
        conditions += self.incidents.observe(chunk, stations, watched)
        hourly = self.derived.take_hourly()
        if hourly:
            conditions += conditions_from(self.bank.process(hourly, "hourly"), stations, watched)
        self._step(sorted(conditions, key=lambda c: c.reading.measured_at), result)
        self.silence.advance(chunk)
        silences = self.bank.silences(self.silence.watermark_s, since_s=self.silence.since_s)
        reported = {r.station_id for r in chunk}
        self._step(
            self.silence.conditions(silences, stations, self.lifecycle.open_keys, reported), result
        )
        return sum(int(lane.flags.sum()) for lane in scored.lanes)

    def _isolated_spikes(self, scored: BankResult, conditions: list[Condition]) -> list[Condition]:
        """Lane conditions, with a spike reported only once the next reading shows it isolated.

        A reading far from the recent median is a spike only if the sensor's next reading
        comes back (at least halfway to where it was); if it stays away, it was the start
        of a rise or a step — a street flooding, a plume arriving — and the event lanes and
        rules speak for it, not a sensor-health note.
        """
        flagged = {id(c.reading): c for c in conditions if c.rule == SPIKE_LANE and c.severity}
        out = [c for c in conditions if not (c.rule == SPIKE_LANE and c.severity)]
        for lane in scored.lanes:
            if lane.lane != SPIKE_LANE:
                continue
            for position, flag in zip(lane.indices.tolist(), lane.flags.tolist(), strict=True):
                reading = scored.readings[position]
                sensor = reading.sensor_id
                pending = self._spikes.pop(sensor, None)
                if pending is not None and not flag:
                    held, before = pending
                    if abs(reading.value - before) <= 0.5 * abs(held.reading.value - before):
                        out.append(held)
                if flag and id(reading) in flagged:
                    before = self._before.get(sensor, reading.value)
                    self._spikes[sensor] = (flagged[id(reading)], before)
                elif not flag:
                    self._before[sensor] = reading.value
        return out

    def _step(self, conditions: list[Condition], result: EngineResult) -> None:
        for condition in conditions:
            station = self.stations.get(condition.reading.station_id)
            command = self.lifecycle.step(condition, station)
            if command is not None:
                result.commands.append(command)
