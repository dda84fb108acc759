"""What an evaluation run leaves behind, as typed values: alerts, series and the run itself.

Ground truth travels as :class:`contract.TruthEvent` (the simulator's labels, unchanged);
alerts are read back from the database into :class:`AlertTimeline` with their **event times**
(the measurement times at which they were raised, reached each severity and cleared — see
:mod:`processing.alerts.lifecycle`), never the wall-clock audit columns, because a backfill runs
days of data in minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from contract import Station, TruthEvent
from processing.alerts import Severity

__all__ = ["AlertTimeline", "RunResult", "Series"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class AlertTimeline:
    """One alert as processing stored it, with the event times of its transitions.

    Args:
        alert_id: database id.
        rule: rule or detector lane that raised it.
        category: ``event`` or ``sensor_health``.
        station_id: the station concerned.
        quantity: the quantity concerned (None for a silent station).
        severity: the worst severity it reached.
        raised_at: measurement time at which it was raised.
        cleared_at: measurement time at which it cleared (None: still open at the end).
        severity_at: first measurement time at which each severity was reached.
        title_en: English title (for the report).
        carried_over: raised before the scored period (during the spin-up) and still open
            in it: it may detect a label that starts while it is open, but is never
            counted as a false alarm of the scored period.
    """

    alert_id: int
    rule: str
    category: str
    station_id: str | None
    quantity: str | None
    severity: Severity
    raised_at: datetime
    cleared_at: datetime | None = None
    severity_at: Mapping[Severity, datetime] = field(default_factory=dict)
    title_en: str = ""
    carried_over: bool = False

    def reached(self, severity: Severity) -> datetime | None:
        """First time the alert stood at ``severity`` or worse (None: never)."""
        times = [t for s, t in self.severity_at.items() if s.rank >= severity.rank]
        return min(times) if times else None


@dataclass(frozen=True, slots=True)
class Series:
    """One sensor's stored readings: epoch seconds and values, in time order."""

    station_id: str
    quantity: str
    times_s: FloatArray
    values: FloatArray

    def __len__(self) -> int:
        return int(self.times_s.size)


@dataclass(frozen=True, slots=True)
class RunResult:
    """One scenario run through the real pipeline.

    Args:
        scenario: scenario name.
        title_vi: its Vietnamese title.
        title_en: its English title.
        seed: simulator seed.
        start: simulated start (UTC).
        end: simulated end (UTC).
        stations: the stations simulated (the registry of the run).
        labels: ground truth (the simulator's truth file).
        alerts: every alert processing raised.
        series: stored series of the stations the report shows, by ``(station, quantity)``.
        published: telemetry messages the simulator published.
        counters: each service's final counters (``ingest``, ``processing``).
        elapsed_s: wall-clock seconds the run took.
        warmup_s: quiet spin-up played before ``start`` (not scored).
    """

    scenario: str
    title_vi: str
    title_en: str
    seed: int
    start: datetime
    end: datetime
    stations: Mapping[str, Station]
    labels: tuple[TruthEvent, ...]
    alerts: tuple[AlertTimeline, ...]
    series: Mapping[tuple[str, str], Series]
    published: int
    counters: Mapping[str, Mapping[str, float | int | str]]
    elapsed_s: float
    warmup_s: float = 0.0

    def interval_s(self, station_id: str | None) -> float:
        """The station's reporting interval (60 s when unknown)."""
        info = self.stations.get(station_id or "")
        return info.sensors[0].interval_s if info and info.sensors else 60.0
