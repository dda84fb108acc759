"""The decision engine: readings in, alert commands and index rows out, in event time (pure).

:class:`Engine` is everything the processing service decides, without I/O: the detector
bank, the threshold rules, the derived series (VN_AQI, flood nowcasts), the silence and
device-clock watches, the air-quality alerts from the hourly VN_AQI, the heavy-rain alerts
from the gauges' trailing accumulation, the dry-weather check on depth alerts, the traffic
incident watch — every rule family a :class:`~processing.conditions.base.ConditionSource`
of :func:`~processing.conditions.registry.default_sources` — and the alert lifecycle.
The service feeds it each batch of the reading feed and commits what it
returns; the feed gives every stored reading exactly once, so the engine assumes it. Lanes
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from contract import Reading, Registry, Station
from processing.alerts.lifecycle import Command, Lifecycle
from processing.bank import DetectorBank, LaneSpec
from processing.columns import Columns, time_runs
from processing.conditions.base import Condition, ConditionSource, Step
from processing.conditions.dry_weather import DryWeatherCheck
from processing.conditions.lanes import DEFAULT_LANES, spike_positions
from processing.conditions.registry import default_sources
from processing.conditions.thresholds import DEFAULT_RULES, ThresholdRule, ThresholdSource
from processing.derived import DerivedSeries, IndexRow
from processing.errors import DetectorConfigError

__all__ = ["Engine", "EngineResult"]


@dataclass(frozen=True, slots=True)
class EngineResult:
    """What one batch decided.

    Args:
        commands: alert transitions, in event-time order.
        index_rows: index values of the hours that closed.
        detections: readings flagged by any detector lane.
    """

    commands: list[Command] = field(default_factory=list)
    index_rows: list[IndexRow] = field(default_factory=list)
    detections: int = 0


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
        self.derived = DerivedSeries()
        self.sources = default_sources(
            self.derived, rules=rules, lead_time_s=lead_time_s, min_silence_s=min_silence_s
        )
        self.silence = self.sources.silence
        self.slice_s = slice_s
        self._registry = Registry({})

    @property
    def stations(self) -> Mapping[str, Station]:
        """The registry's stations."""
        return self._registry.stations

    @property
    def dry(self) -> DryWeatherCheck:
        """The dry-weather check on flood depths (its counters)."""
        source = self.sources.per_slice[0]
        assert isinstance(source, ThresholdSource)  # noqa: S101 - default_sources' first
        return source.dry

    @property
    def registry(self) -> Registry:
        """The registry in force."""
        return self._registry

    def use(self, registry: Registry) -> None:
        """Adopt a (new) registry: what changed gets detector slots, positions and gauges.

        New or changed stations' sensors get their slots and positions in the bank, flood
        hotspots their upstream gauges; stations as they were need nothing again.
        """
        before = self._registry.stations
        changed = [s for sid, s in registry.stations.items() if before.get(sid) != s]
        self._registry = registry
        self.bank.register(changed)
        self.derived.link(changed)

    def restore(self, bank: DetectorBank) -> None:
        """Adopt a detector bank restored from a snapshot (every station registered in it)."""
        self.bank = bank
        bank.register(self._registry.stations.values())

    def process(self, readings: Sequence[Reading], columns: Columns | None = None) -> EngineResult:
        """Decide on a batch, slice by slice in measurement-time order.

        ``columns``: the readings' columns when the caller has them (the service builds
        them from the feed); computed here otherwise.
        """
        batch = Columns.of(readings) if columns is None else columns
        result = EngineResult()
        detections = 0
        self.silence.arriving(readings, batch)
        clocks = self._ask([self.sources.clock], self._step_of(batch))
        for chunk in time_runs(batch, self.slice_s):
            detections += self._slice(chunk, result)
        self.silence.arrived()
        self._decide(clocks, result)
        return dataclasses.replace(result, detections=detections)

    def _slice(self, chunk: Columns, result: EngineResult) -> int:
        scored = self.bank.process(chunk.readings, columns=chunk)
        rows = self.derived.observe(chunk.readings, self._registry.sensors, chunk)
        result.index_rows.extend(rows)
        hourly = self.derived.take_hourly()
        step = dataclasses.replace(
            self._step_of(chunk),
            scored=scored,
            spikes=spike_positions(scored),
            index_rows=rows,
            hourly=self.bank.process(hourly, "hourly") if hourly else None,
        )
        self._decide(self._ask(self.sources.per_slice, step), result)
        self.silence.advance(chunk.readings, chunk.times_s)
        watermark = dataclasses.replace(
            self._step_of(chunk),
            watermark_s=self.silence.watermark_s,
            reported={r.station_id for r in chunk.readings},
            silences=self.bank.silences(self.silence.watermark_s, since_s=self.silence.since_s),
        )
        self._decide(self.silence.conditions(watermark), result, ordered=False)
        return sum(int(lane.flags.sum()) for lane in scored.lanes)

    def _step_of(self, columns: Columns) -> Step:
        return Step(columns.readings, self._registry, self.lifecycle.watched_keys,
                    self.lifecycle.open_keys, columns=columns)  # fmt: skip

    @staticmethod
    def _ask(sources: Sequence[ConditionSource], step: Step) -> list[Condition]:
        return [c for source in sources for c in source.conditions(step)]

    def _decide(
        self, conditions: list[Condition], result: EngineResult, *, ordered: bool = True
    ) -> None:
        """Step the lifecycle through conditions in event-time order (stable)."""
        if ordered:
            conditions = sorted(conditions, key=lambda c: c.at)
        stations = self.stations
        for condition in conditions:
            command = self.lifecycle.step(condition, stations.get(condition.station_id or ""))
            if command is not None:
                result.commands.append(command)
