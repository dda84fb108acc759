"""Shared helpers for the simulator tests: run the generator and decode what it produced."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from contract import PayloadError, Quantity, Topic, TruthEvent, decode_telemetry
from simulators.faults import FaultRates
from simulators.fleet import hanoi_fleet, select_stations
from simulators.generator import generate
from simulators.scenario import Scenario, load_scenario
from simulators.stream import Outgoing, OutgoingKind


@dataclass
class Decoded:
    """A generated stream, decoded: series per (station, quantity) and the truth records."""

    items: list[Outgoing]
    series: dict[tuple[str, Quantity], npt.NDArray[np.float64]] = field(default_factory=dict)
    truth: list[TruthEvent] = field(default_factory=list)
    refused: int = 0

    def values(self, station: str, quantity: Quantity) -> npt.NDArray[np.float64]:
        return self.series[(station, quantity)][:, 1]

    def times(self, station: str, quantity: Quantity) -> npt.NDArray[np.float64]:
        return self.series[(station, quantity)][:, 0]

    def labels(self, kind: str) -> list[TruthEvent]:
        return [e for e in self.truth if e.kind == kind]


def decode(items: Iterable[Outgoing]) -> Decoded:
    out = Decoded(list(items))
    rows: dict[tuple[str, Quantity], list[tuple[float, float]]] = defaultdict(list)
    for item in out.items:
        if item.kind is OutgoingKind.TRUTH and item.truth is not None:
            out.truth.append(item.truth)
        if item.kind is not OutgoingKind.TELEMETRY:
            continue
        try:
            decoded = decode_telemetry(Topic.parse(item.topic), item.payload, item.sim_time)
        except PayloadError:
            out.refused += 1
            continue
        out.refused += bool(decoded.rejections)
        for r in decoded.readings:
            rows[(r.station_id, r.quantity)].append((r.measured_at.timestamp(), r.value))
    out.series = {k: np.array(sorted(v)) for k, v in rows.items()}
    return out


def run_scenario(
    name: str,
    patterns: Sequence[str],
    *,
    start: datetime | None = None,
    hours: float | None = None,
    seed: int = 7,
    faults: FaultRates | None = None,
) -> tuple[Scenario, datetime, Decoded]:
    fleet = hanoi_fleet()
    scenario = load_scenario(name, fleet)
    begin = start or scenario.default_start(datetime(2025, 6, 2, 12, tzinfo=UTC))
    length = timedelta(hours=hours) if hours else timedelta(seconds=scenario.duration_s or 86400)
    stream = generate(
        scenario, select_stations(fleet, patterns), begin, begin + length, seed, faults=faults
    )
    return scenario, begin, decode(stream)


def hourly_profile(
    times: npt.NDArray[np.float64], values: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Mean by Hanoi local hour (0..23)."""
    hour = (np.mod(times + 7 * 3600, 86400) // 3600).astype(int)
    return np.array([values[hour == h].mean() for h in range(24)])
