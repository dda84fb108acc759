"""The pure generator: a scenario, a fleet, a period and a seed in; time-ordered messages out.

``generate`` yields exactly what the publisher sends (and what the broker's subscribers
see), without touching the network, so the same stream serves offline evaluation, tests
and the live publisher. It is reproducible: the same arguments give the same bytes.

Randomness is split per purpose and per station (``SeedSequence([seed, purpose,
crc32(station)])``): filtering stations or changing fault rates never changes another
station's signal, nor any station's underlying signal.

Time advances in chunks (one simulated hour by default) on a 60 s driver grid; each
station reports on its own interval with a fixed phase, like unsynchronised devices.
"""

import dataclasses
import heapq
import itertools
import math
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from contract import (
    DEFAULT_ROOT,
    Quantity,
    Station,
    Topic,
    encode_status,
    encode_telemetry,
    encode_truth,
    truth_topic,
)
from simulators.events import OxygenCrash, RainEvent, TrafficIncident, Window
from simulators.faults import FaultRates, StationFaults
from simulators.fleet import hanoi_fleet
from simulators.malformed import malformed_payload
from simulators.scenario import Scenario
from simulators.signals.weather import CityWeather
from simulators.stations import CityFrame, StationSim, make_station_sim
from simulators.stream import Outgoing, OutgoingKind
from simulators.truth import Label, utc

__all__ = ["WILL_PAYLOAD", "generate", "status_topic", "telemetry_topic"]

Array = npt.NDArray[np.float64]
STEP_S = 60.0
WILL_PAYLOAD = encode_status(False, reason="connection lost")
_PURPOSE = {"city": 1, "signal": 2, "faults": 3, "malformed": 4}


def telemetry_topic(station: Station, root: str = DEFAULT_ROOT) -> str:
    """The station's telemetry topic."""
    return str(Topic(station.domain, station.station_id, "telemetry", root))


def status_topic(station: Station, root: str = DEFAULT_ROOT) -> str:
    """The station's retained status topic (its last will)."""
    return str(Topic(station.domain, station.station_id, "status", root))


def _rng(seed: int, purpose: str, key: str = "") -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence([seed, _PURPOSE[purpose], zlib.crc32(key.encode())])
    )


@dataclass(slots=True)
class _Station:
    info: Station
    sim: StationSim
    faults: StationFaults
    signal_rng: np.random.Generator
    malformed_rng: np.random.Generator
    telemetry: str
    status: str
    quantities: tuple[Quantity, ...]
    interval_s: float
    phase_s: float
    seq: int = 0

    def times(self, t0: float, t1: float) -> Array:
        first = math.ceil((t0 - self.phase_s) / self.interval_s) * self.interval_s + self.phase_s
        return np.arange(first, t1, self.interval_s)


@dataclass(slots=True)
class _Run:
    scenario: Scenario
    seed: int
    root: str
    origin_s: float
    stations: list[_Station]
    weather: CityWeather
    gauges: tuple[str, ...]
    site_km: dict[int, float]
    heap: list[tuple[float, int, Outgoing]] = field(default_factory=list)
    order: Iterator[int] = field(default_factory=itertools.count)
    label_counts: dict[str, int] = field(default_factory=dict)
    flushed_s: float = -math.inf
    """Time of the latest item yielded: nothing is scheduled before it any more."""
    resume_s: float = -math.inf
    """Items before it are computed (the stream after it stays the same) but not yielded."""

    def push(self, at_s: float, item: Outgoing) -> None:
        if at_s < self.flushed_s:
            # Known only now (a reconnect found while computing the next chunk): it leaves
            # now, not in the past, so the stream stays in time order.
            at_s = self.flushed_s
            item = dataclasses.replace(item, sim_time=utc(at_s))
        heapq.heappush(self.heap, (at_s, next(self.order), item))

    def push_label(self, label: Label) -> None:
        n = self.label_counts.get(label.station_id, 0) + 1
        self.label_counts[label.station_id] = n
        event_id = f"{self.scenario.name}-s{self.seed}-{label.station_id}-{label.kind}-{n}"
        record = label.to_truth(self.scenario.name, event_id)
        self.push(
            label.known_s,
            Outgoing(
                utc(label.known_s),
                label.station_id,
                OutgoingKind.TRUTH,
                truth_topic(self.root),
                encode_truth(record),
                1,
                False,
                record,
            ),
        )

    def skipped(self, at_s: float) -> bool:
        """True for an item that would leave before the resume point (not even encoded)."""
        return max(at_s, self.flushed_s) < self.resume_s

    def due(self, before_s: float) -> Iterator[Outgoing]:
        while self.heap and self.heap[0][0] < before_s:
            at_s, _, item = heapq.heappop(self.heap)
            self.flushed_s = max(self.flushed_s, at_s)
            if at_s >= self.resume_s:
                yield item


def _build(
    scenario: Scenario,
    fleet: Sequence[Station],
    start_s: float,
    seed: int,
    faults: FaultRates,
    root: str,
) -> _Run:
    city = hanoi_fleet()
    gauges = tuple(s.station_id for s in city if s.kind == "rain_gauge")
    by_id: dict[str, Station] = {s.station_id: s for s in city}
    site_km = {
        i: float(str(by_id[f"tr-{e.corridor}-{e.position}"].attributes["km_from_start"]))
        for i, e in enumerate(scenario.events)
        if isinstance(e, TrafficIncident)
    }
    stations = []
    for info in fleet:
        sid = info.station_id
        interval = info.sensors[0].interval_s
        scripted = [f for f in scenario.scripted_faults if f.station_id == sid]
        quantities = tuple(s.quantity for s in info.sensors)
        stations.append(
            _Station(
                info,
                make_station_sim(info, _rng(seed, "signal", sid), STEP_S),
                StationFaults(
                    sid, quantities, interval, faults, _rng(seed, "faults", sid), scripted, start_s
                ),
                _rng(seed, "signal", sid + "/noise"),
                _rng(seed, "malformed", sid),
                telemetry_topic(info, root),
                status_topic(info, root),
                quantities,
                interval,
                float(zlib.crc32(sid.encode()) % int(interval)),
            )
        )
    weather = CityWeather(gauges, _rng(seed, "city"), STEP_S, scenario.background_rain)
    return _Run(scenario, seed, root, start_s, stations, weather, gauges, site_km)


def _frame(run: _Run, t0: float, t1: float) -> CityFrame:
    grid = np.asarray(t0 + STEP_S * np.arange(math.ceil((t1 - t0) / STEP_S)), dtype=np.float64)
    rel = grid - run.origin_s
    rain_events = [e for e in run.scenario.events if isinstance(e, RainEvent)]
    crashes = [e for e in run.scenario.events if isinstance(e, OxygenCrash)]

    def scripted(_: Array) -> npt.NDArray[np.float64]:
        total = np.zeros((len(run.gauges), len(grid)))
        for event in rain_events:
            total += event.rate(run.gauges, rel)
        return total

    def overcast(_: Array) -> Array:
        cover = np.zeros(len(grid))
        for crash in crashes:
            cover = np.maximum(cover, crash.overcast(rel))
        return cover

    weather = run.weather.frame(grid, scripted, overcast)
    return CityFrame(weather, run.origin_s, STEP_S, run.gauges, run.scenario.events, run.site_km)


def _station_chunk(run: _Run, st: _Station, t0: float, t1: float, city: CityFrame) -> None:
    times = st.times(t0, t1)
    if len(times) == 0:
        return
    values, labels = st.sim.sample(st.signal_rng, times, city)
    outcome = st.faults.apply(times, values)
    for label in labels + outcome.labels:
        run.push_label(label)
    for control in outcome.controls:
        kind = OutgoingKind.ONLINE if control.online else OutgoingKind.OFFLINE
        payload = encode_status(True, utc(control.at_s)) if control.online else WILL_PAYLOAD
        run.push(
            control.at_s,
            Outgoing(utc(control.at_s), st.info.station_id, kind, st.status, payload, 1, True),
        )
    columns = [outcome.values[q].tolist() for q in st.quantities]
    rows = list(zip(*columns, strict=True))
    seqs = list(range(st.seq, st.seq + len(times)))
    st.seq += len(times)
    for emission in outcome.emissions:
        if emission.malformed is None and run.skipped(emission.emit_s):
            continue  # (a malformed one draws from its random stream: made, then skipped)
        readings = list(zip(st.quantities, rows[emission.index], strict=True))
        stamp = utc(emission.stamp_s)
        if emission.malformed is None:
            payload = encode_telemetry(
                st.info.station_id, stamp, readings, seq=seqs[emission.index]
            )
        else:
            payload = malformed_payload(
                emission.malformed, st.info.station_id, stamp, readings, st.malformed_rng
            )
        run.push(
            emission.emit_s,
            Outgoing(
                utc(emission.emit_s),
                st.info.station_id,
                OutgoingKind.TELEMETRY,
                st.telemetry,
                payload,
            ),
        )


def _declared_labels(run: _Run, end_s: float | None) -> None:
    attrs: dict[str, Mapping[str, object]] = {
        str(st.info.station_id): st.info.attributes for st in run.stations
    }
    for index, event in enumerate(run.scenario.events):
        windows: Iterator[Window]
        if isinstance(event, TrafficIncident):
            windows = event.windows(attrs, run.site_km[index])
        else:
            windows = event.windows(attrs)
        for w in windows:
            start, end = run.origin_s + w.start_s, run.origin_s + w.end_s
            if end_s is not None and start >= end_s:
                continue
            run.push_label(
                Label(
                    w.station_id,
                    w.kind,
                    "event",
                    start,
                    end,
                    max(start, run.origin_s),
                    w.quantities,
                    w.detail,
                )
            )


def generate(
    scenario: Scenario,
    fleet: Sequence[Station],
    start: datetime,
    end: datetime | None,
    seed: int,
    *,
    faults: FaultRates | None = None,
    root: str = DEFAULT_ROOT,
    chunk_s: float = 3600.0,
    resume_at: datetime | None = None,
) -> Iterator[Outgoing]:
    """Yield the scenario's messages for ``fleet`` from ``start`` to ``end``, in time order.

    Args:
        scenario: the scenario (events, background, fault rates, scripted faults).
        fleet: the stations to simulate (a subset of :func:`~simulators.fleet.hanoi_fleet`
            or stations of the same kinds).
        start: simulated start (tz-aware).
        end: simulated end (exclusive); None runs forever.
        seed: the seed; the same arguments always give the same stream.
        faults: fault rates (default: the scenario's).
        root: topic root.
        chunk_s: simulated seconds computed at a time (a multiple of 60).
        resume_at: yield only the items from this time on (tz-aware): exactly the stream's
            suffix, computed faster (what comes before is simulated, not encoded).
    """
    if any(t is not None and t.utcoffset() is None for t in (start, end, resume_at)):
        msg = "start, end and resume_at must be tz-aware"
        raise ValueError(msg)
    start_s = start.timestamp()
    end_s = end.timestamp() if end is not None else None
    run = _build(scenario, fleet, start_s, seed, faults or scenario.fault_rates, root)
    if resume_at is not None:
        run.resume_s = resume_at.timestamp()
    for st in run.stations:
        run.push(
            start_s,
            Outgoing(
                start,
                st.info.station_id,
                OutgoingKind.ONLINE,
                st.status,
                encode_status(True, start),
                1,
                True,
            ),
        )
    _declared_labels(run, end_s)
    t0 = start_s
    while end_s is None or t0 < end_s:
        t1 = t0 + chunk_s if end_s is None else min(t0 + chunk_s, end_s)
        city = _frame(run, t0, t1)
        for st in run.stations:
            _station_chunk(run, st, t0, t1, city)
        yield from run.due(t1)
        t0 = t1
    final = end_s if end_s is not None else t0
    for st in run.stations:
        for label in st.sim.flush(final) + st.faults.flush(final):
            run.push_label(label)
    yield from run.due(math.inf)
