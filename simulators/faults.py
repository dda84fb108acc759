"""Sensor and device faults: pure transforms of a station's sample stream, with rate knobs.

The rates and kinds live in :mod:`simulators.fault_config` (re-exported here).
Value faults (stuck, drift, spike) change the published values; transport faults decide
which messages leave the device, when, with which timestamp and in which shape. Every
fault yields a :class:`~simulators.truth.Label` (category ``fault``).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from contract import QUANTITIES, Quantity
from simulators.fault_config import FaultKind, FaultRates, ScriptedFault
from simulators.truth import Label

__all__ = [
    "MALFORMED_FLAVOURS",
    "Control",
    "Emission",
    "FaultKind",
    "FaultOutcome",
    "FaultRates",
    "ScriptedFault",
    "StationFaults",
]

Array = npt.NDArray[np.float64]
_DAY_S = 86400.0
_GAP_MEAN = 3.0  # mean length of a dropout burst, in messages

MALFORMED_FLAVOURS = (
    "truncated",
    "wrong_type",
    "null_values",
    "nan_literal",
    "unknown_quantity",
    "wrong_unit",
    "oversized",
    "not_json",
    "missing_time",
    "naive_time",
)


_EPISODIC = (FaultKind.STUCK, FaultKind.DRIFT, FaultKind.OFFLINE, FaultKind.CLOCK_SKEW)
# Median episode length (s) and log-spread [U].
_LENGTH = {
    FaultKind.STUCK: (2 * 3600.0, 0.8),
    FaultKind.DRIFT: (18 * 3600.0, 0.6),
    FaultKind.OFFLINE: (40 * 60.0, 0.9),
    FaultKind.CLOCK_SKEW: (8 * 3600.0, 0.8),
}
# Typical size of a quantity's excursions, for drift and spikes [U].
_SCALE = {
    Quantity.PM25: 30.0,
    Quantity.PM10: 40.0,
    Quantity.NO2: 25.0,
    Quantity.SO2: 10.0,
    Quantity.CO: 800.0,
    Quantity.O3: 30.0,
    Quantity.AIR_TEMPERATURE: 3.0,
    Quantity.RELATIVE_HUMIDITY: 10.0,
    Quantity.WATER_TEMPERATURE: 2.0,
    Quantity.DISSOLVED_OXYGEN: 2.5,
    Quantity.PH: 0.6,
    Quantity.TURBIDITY: 15.0,
    Quantity.CONDUCTIVITY: 80.0,
    Quantity.CHLOROPHYLL_A: 20.0,
    Quantity.AMMONIUM: 0.5,
    Quantity.RAINFALL: 3.0,
    Quantity.WATER_DEPTH: 12.0,
    Quantity.FLOW_MOTORBIKE: 60.0,
    Quantity.FLOW_CAR: 15.0,
    Quantity.FLOW_BUS: 3.0,
    Quantity.FLOW_TRUCK: 5.0,
    Quantity.SPEED: 12.0,
    Quantity.OCCUPANCY: 15.0,
}


_DIGITS = {
    Quantity.CO: 0,
    Quantity.CONDUCTIVITY: 0,
    Quantity.FLOW_MOTORBIKE: 0,
    Quantity.FLOW_CAR: 0,
    Quantity.FLOW_BUS: 0,
    Quantity.FLOW_TRUCK: 0,
    Quantity.DISSOLVED_OXYGEN: 2,
    Quantity.PH: 2,
    Quantity.AMMONIUM: 2,
}


@dataclass(slots=True)
class _Episode:
    kind: FaultKind
    start_s: float
    end_s: float
    quantity: Quantity | None
    magnitude: float
    announced: bool = False
    held: float | None = None  # the stuck value
    went_offline: bool = False
    came_back: bool = False


@dataclass(frozen=True, slots=True)
class Emission:
    """One message leaving the device for sample ``index`` of the chunk.

    Args:
        index: sample index within the chunk.
        emit_s: when it is sent (simulated).
        stamp_s: the measurement time written in the payload (clock skew shifts it).
        malformed: the breakage flavour, if any.
    """

    index: int
    emit_s: float
    stamp_s: float
    malformed: str | None = None


@dataclass(frozen=True, slots=True)
class Control:
    """The device drops off (its last will fires) or comes back online."""

    online: bool
    at_s: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class FaultOutcome:
    """What the faults made of one chunk of samples."""

    values: dict[Quantity, Array]
    emissions: list[Emission]
    controls: list[Control]
    labels: list[Label]


@dataclass(slots=True)
class StationFaults:
    """Fault state of one station, applied chunk by chunk in time order.

    Args:
        station_id: the station.
        quantities: its quantities (value faults pick one of them).
        interval_s: its reporting interval.
        rates: fault rates.
        rng: the station's fault generator (separate from the signal's, so changing fault
            rates never changes the underlying signals).
        scripted: fault episodes fixed by the scenario, in absolute unix seconds.
    """

    station_id: str
    quantities: Sequence[Quantity]
    interval_s: float
    rates: FaultRates
    rng: np.random.Generator
    scripted: Sequence[ScriptedFault] = ()
    origin_s: float = 0.0
    _episodes: list[_Episode] = field(default_factory=list)
    _next_s: dict[FaultKind, float] = field(default_factory=dict)
    _in_gap: bool = False
    _gap: list[float] = field(default_factory=list)
    _started: bool = False

    def apply(self, times_s: Array, values: dict[Quantity, Array]) -> FaultOutcome:
        """Fault one chunk: ``times_s`` are the true sample times, in order."""
        if len(times_s) == 0:
            return FaultOutcome(values, [], [], [])
        self._schedule(float(times_s[0]), float(times_s[-1]))
        labels: list[Label] = []
        out = {q: v.astype(np.float64, copy=True) for q, v in values.items()}
        for episode in self._episodes:
            labels.extend(self._announce(episode, float(times_s[0]), float(times_s[-1])))
            self._apply_value_episode(episode, times_s, out)
        labels.extend(self._spikes(times_s, out))
        emissions, controls, transport = self._transport(times_s)
        self._episodes = [e for e in self._episodes if e.end_s > float(times_s[-1])]
        for q, v in out.items():  # a faulty sensor still reports at its resolution
            spec = QUANTITIES[q]
            clipped = np.clip(v, spec.physical_min, spec.physical_max)
            out[q] = np.asarray(np.round(clipped, _DIGITS.get(q, 1)) + 0.0, dtype=np.float64)
        return FaultOutcome(out, emissions, controls, labels + transport)

    def flush(self, known_s: float) -> list[Label]:
        """Labels still pending at the end of the run (an open dropout gap)."""
        return [self._close_gap(known_s)] if self._gap else []

    # --- episodes ---------------------------------------------------------------------

    def _schedule(self, t0: float, t1: float) -> None:
        if not self._started:
            self._started = True
            for fault in self.scripted:
                start = self.origin_s + fault.start_s
                self._episodes.append(
                    self._episode(
                        fault.kind, start, start + fault.duration_s, fault.quantity, fault.magnitude
                    )
                )
        for kind in _EPISODIC:
            rate = self.rates.per_day(kind)
            if rate <= 0:
                continue
            next_s = self._next_s.get(kind, t0 + self.rng.exponential(_DAY_S / rate))
            while next_s <= t1:
                median, spread = _LENGTH[kind]
                length = median * math.exp(self.rng.normal(0.0, spread))
                self._episodes.append(self._episode(kind, next_s, next_s + length, None, None))
                next_s += length + self.rng.exponential(_DAY_S / rate)
            self._next_s[kind] = next_s

    def _episode(
        self,
        kind: FaultKind,
        start: float,
        end: float,
        quantity: Quantity | None,
        size: float | None,
    ) -> _Episode:
        if quantity is None and kind in (FaultKind.STUCK, FaultKind.DRIFT):
            quantity = self.quantities[int(self.rng.integers(len(self.quantities)))]
        if size is None:
            if kind is FaultKind.DRIFT and quantity is not None:
                size = (
                    float(self.rng.choice([-1.0, 1.0]) * self.rng.uniform(1.0, 2.5))
                    * _SCALE[quantity]
                )
            elif kind is FaultKind.CLOCK_SKEW:  # a device on local time stamped as UTC, or drift
                size = (
                    7 * 3600.0
                    if self.rng.random() < 0.3
                    else float(self.rng.choice([-1.0, 1.0]) * self.rng.uniform(60.0, 1800.0))
                )
            else:
                size = 0.0
        return _Episode(kind, start, end, quantity, size)

    def _announce(self, episode: _Episode, t0: float, t1: float) -> list[Label]:
        if episode.announced or episode.start_s > t1:
            return []
        episode.announced = True
        quantities = (episode.quantity,) if episode.quantity is not None else ()
        detail = {
            FaultKind.DRIFT: f"drift to {episode.magnitude:+.3g} by the end",
            FaultKind.CLOCK_SKEW: f"device clock off by {episode.magnitude:+.0f} s",
            FaultKind.OFFLINE: "device offline (last will)",
            FaultKind.STUCK: "value frozen",
        }[episode.kind]
        known = max(episode.start_s, t0)
        return [
            Label(
                self.station_id,
                episode.kind.value,
                "fault",
                episode.start_s,
                episode.end_s,
                known,
                quantities,
                detail,
            )
        ]

    def _apply_value_episode(
        self, ep: _Episode, times_s: Array, out: dict[Quantity, Array]
    ) -> None:
        if ep.quantity is None or ep.quantity not in out:
            return
        inside = (times_s >= ep.start_s) & (times_s < ep.end_s)
        if not inside.any():
            return
        series = out[ep.quantity]
        if ep.kind is FaultKind.STUCK:
            if ep.held is None:
                ep.held = float(series[np.argmax(inside)])
            series[inside] = ep.held
        elif ep.kind is FaultKind.DRIFT:
            progress = (times_s[inside] - ep.start_s) / (ep.end_s - ep.start_s)
            if ep.quantity in (Quantity.RAINFALL,) or ep.quantity.value.startswith("flow_"):
                series[inside] *= np.maximum(
                    1.0 + progress * ep.magnitude / (2 * _SCALE[ep.quantity]), 0.0
                )
            else:
                series[inside] += progress * ep.magnitude

    def _spikes(self, times_s: Array, out: dict[Quantity, Array]) -> list[Label]:
        if self.rates.spike_rate <= 0:
            return []
        labels = []
        for q, series in out.items():
            hits = np.flatnonzero(self.rng.random(len(times_s)) < self.rates.spike_rate)
            for i in hits.tolist():
                jump = float(self.rng.uniform(4.0, 10.0)) * _SCALE[q]
                sign = 1.0 if q is Quantity.RAINFALL or self.rng.random() < 0.75 else -1.0
                series[i] = series[i] + sign * jump
                t = float(times_s[i])
                labels.append(
                    Label(
                        self.station_id,
                        FaultKind.SPIKE.value,
                        "fault",
                        t,
                        t,
                        t,
                        (q,),
                        f"{sign * jump:+.4g} {QUANTITIES[q].unit}",
                    )
                )
        return labels

    # --- transport ----------------------------------------------------------------------

    def _transport(self, times_s: Array) -> tuple[list[Emission], list[Control], list[Label]]:
        emissions: list[Emission] = []
        controls: list[Control] = []
        labels: list[Label] = []
        offline = [e for e in self._episodes if e.kind is FaultKind.OFFLINE]
        skews = [e for e in self._episodes if e.kind is FaultKind.CLOCK_SKEW]
        first, last = float(times_s[0]), float(times_s[-1])
        for ep in offline:
            if not ep.went_offline and ep.start_s <= last:
                ep.went_offline = True
                controls.append(Control(False, max(ep.start_s, first), "offline fault"))
            if ep.went_offline and not ep.came_back and ep.end_s <= last:
                ep.came_back = True
                controls.append(Control(True, ep.end_s, "back online"))
        for i, t in enumerate(times_s.tolist()):
            if any(e.start_s <= t < e.end_s for e in offline):
                continue
            if self._dropped(t):
                continue
            if self._gap:
                labels.append(self._close_gap(t))
            emissions.extend(self._emit(i, t, skews, labels))
        return emissions, controls, labels

    def _dropped(self, t: float) -> bool:
        rate = self.rates.dropout_rate
        if rate <= 0:
            return False
        if self._in_gap:
            self._in_gap = self.rng.random() < 1.0 - 1.0 / _GAP_MEAN
        else:
            enter = rate / (_GAP_MEAN * (1.0 - rate))
            self._in_gap = self.rng.random() < enter
        if self._in_gap:
            self._gap.append(t)
        return self._in_gap

    def _close_gap(self, known_s: float) -> Label:
        start, end, n = self._gap[0], self._gap[-1], len(self._gap)
        self._gap = []
        return Label(
            self.station_id,
            FaultKind.DROPOUT.value,
            "fault",
            start,
            end,
            known_s,
            (),
            f"{n} message(s) lost",
        )

    def _emit(self, i: int, t: float, skews: list[_Episode], labels: list[Label]) -> list[Emission]:
        stamp = t + sum(e.magnitude for e in skews if e.start_s <= t < e.end_s)
        if self.rng.random() < self.rates.malformed_rate:
            flavour = MALFORMED_FLAVOURS[int(self.rng.integers(len(MALFORMED_FLAVOURS)))]
            labels.append(
                Label(self.station_id, FaultKind.MALFORMED.value, "fault", t, t, t, (), flavour)
            )
            return [Emission(i, t, stamp, flavour)]
        emit = t
        if self.rng.random() < self.rates.out_of_order_rate:
            emit = t + float(self.rng.uniform(1.2, 3.0)) * self.interval_s
            labels.append(
                Label(
                    self.station_id,
                    FaultKind.OUT_OF_ORDER.value,
                    "fault",
                    t,
                    t,
                    t,
                    (),
                    f"sent {emit - t:.0f} s late",
                )
            )
        out = [Emission(i, emit, stamp)]
        if self.rng.random() < self.rates.duplicate_rate:
            out.append(
                Emission(i, emit + float(self.rng.uniform(0.0, 0.5)) * self.interval_s, stamp)
            )
            labels.append(
                Label(
                    self.station_id, FaultKind.DUPLICATE.value, "fault", t, t, t, (), "sent twice"
                )
            )
        return out
