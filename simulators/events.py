"""Scripted city events and what they do to the drivers (pure numpy, times relative to start).

Every event knows its own effect over time and the ground-truth windows it creates, so the
labels published next to the data are computed from the same definition that shaped it.
All times here are seconds relative to the run's start.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from contract import Quantity

__all__ = [
    "Event",
    "OxygenCrash",
    "PollutionEpisode",
    "RainEvent",
    "TrafficIncident",
    "Window",
    "trapezoid",
]

Array = npt.NDArray[np.float64]
RainShape = Literal["storm", "burst", "steady"]
_HOUR = 3600.0
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Window:
    """A ground-truth window an event creates at one station (relative seconds).

    Args:
        station_id: the affected station.
        kind: truth kind (e.g. ``heavy_rain``, ``traffic_incident``).
        start_s: start, seconds after the run's start.
        end_s: end, seconds after the run's start.
        quantities: the affected quantities (empty: all).
        detail: free text for the label.
    """

    station_id: str
    kind: str
    start_s: float
    end_s: float
    quantities: tuple[Quantity, ...] = ()
    detail: str = ""


def trapezoid(t_rel: Array, start_s: float, end_s: float, ramp_s: float) -> Array:
    """0 outside [start, end], 1 on the plateau, linear ramps of ``ramp_s`` at both ends."""
    ramp = max(ramp_s, 1e-9)
    up = np.clip((t_rel - start_s) / ramp, 0.0, 1.0)
    down = np.clip((end_s - t_rel) / ramp, 0.0, 1.0)
    return np.asarray(np.minimum(up, down), dtype=np.float64)


def _shape_pdf(shape: RainShape, x: Array) -> Array:
    """Rain profile over the event (x in [0, 1]) with unit integral."""
    inside = (x >= 0.0) & (x <= 1.0)
    xc = np.clip(x, 0.0, 1.0)
    if shape == "storm":
        pdf = 2.0 * np.sin(np.pi * xc) ** 2
    elif shape == "burst":  # front-loaded: peak at 18 % of the duration
        a = 0.18
        norm = a * a * (1.0 - np.exp(-1.0 / a) * (1.0 + 1.0 / a))
        pdf = xc * np.exp(-xc / a) / norm
    else:
        pdf = trapezoid(xc, 0.0, 1.0, 0.1) / 0.9
    return np.where(inside, pdf, 0.0)


@dataclass(frozen=True, slots=True)
class RainEvent:
    """Scripted rain over some gauges.

    Args:
        name: event name.
        start_s: start offset.
        duration_s: length.
        totals_mm: rain total per gauge id over the event.
        shape: ``storm`` (bell), ``burst`` (front-loaded downpour) or ``steady``.
    """

    name: str
    start_s: float
    duration_s: float
    totals_mm: tuple[tuple[str, float], ...]
    shape: RainShape = "storm"

    def rate(self, gauges: Sequence[str], t_rel: Array) -> npt.NDArray[np.float64]:
        """Rain rate in mm/h, shape (len(gauges), len(t_rel))."""
        totals = dict(self.totals_mm)
        pdf = _shape_pdf(self.shape, (t_rel - self.start_s) / self.duration_s)
        per_hour = pdf * _HOUR / self.duration_s
        return np.array([totals.get(g, 0.0) * per_hour for g in gauges]).reshape(len(gauges), -1)

    def windows(self, stations: Mapping[str, Mapping[str, object]]) -> Iterator[Window]:
        """A ``heavy_rain`` window for each gauge that gets rain."""
        for gauge, total in self.totals_mm:
            if gauge in stations and total > 0:
                detail = f"{self.name}: {total:g} mm in {self.duration_s / 60:.0f} min"
                yield Window(
                    gauge,
                    "heavy_rain",
                    self.start_s,
                    self.start_s + self.duration_s,
                    (Quantity.RAINFALL,),
                    detail,
                )


@dataclass(frozen=True, slots=True)
class PollutionEpisode:
    """A multi-day PM episode (stagnation) at some air stations.

    Args:
        name: event name.
        stations: affected air-station ids.
        start_s: start offset.
        duration_s: length.
        factor: multiplier on the background PM on the plateau.
        floor_ug_m3: PM2.5 held at least this high on the plateau (0 = none).
        ramp_s: build-up and clearing time.
    """

    name: str
    stations: tuple[str, ...]
    start_s: float
    duration_s: float
    factor: float = 2.0
    floor_ug_m3: float = 0.0
    ramp_s: float = 12 * _HOUR

    def effect(self, station_id: str, t_rel: Array) -> tuple[Array, Array, Array]:
        """(PM factor, PM2.5 floor, gas factor) at ``t_rel`` for one station."""
        if station_id not in self.stations:
            n = len(t_rel)
            return np.ones(n), np.zeros(n), np.ones(n)
        p = trapezoid(t_rel, self.start_s, self.start_s + self.duration_s, self.ramp_s)
        excess = self.factor - 1.0
        return 1.0 + excess * p, self.floor_ug_m3 * p, 1.0 + 0.4 * excess * p

    def windows(self, stations: Mapping[str, Mapping[str, object]]) -> Iterator[Window]:
        """A ``pollution_episode`` window per affected station."""
        detail = f"{self.name}: PM x{self.factor:g}" + (
            f", PM2.5 >= {self.floor_ug_m3:g} ug/m3" if self.floor_ug_m3 else ""
        )
        for station in self.stations:
            if station in stations:
                yield Window(
                    station,
                    "pollution_episode",
                    self.start_s,
                    self.start_s + self.duration_s,
                    (Quantity.PM25, Quantity.PM10),
                    detail,
                )


@dataclass(frozen=True, slots=True)
class OxygenCrash:
    """West Lake algal bloom, collapse under overcast skies, oxygen crash, aerated recovery.

    Follows the synthetic timeline of domain.md §4.3 [U]: a bloom for days, an overcast
    day on which it collapses, decaying algae consuming oxygen through the night, aerators,
    and recovery over a few days.

    Args:
        name: event name.
        stations: affected buoys.
        bloom_start_s: bloom starts growing.
        collapse_s: bloom collapses (overcast day starts 6 h before).
        aeration_s: aerators switched on.
        recovery_s: time from aeration to normal conditions.
        bloom_factor: chlorophyll multiplier at the bloom's height.
        decay_mg_l_h: extra oxygen demand from decaying algae right after the collapse.
    """

    name: str
    stations: tuple[str, ...]
    bloom_start_s: float
    collapse_s: float
    aeration_s: float
    recovery_s: float = 3 * _DAY
    bloom_factor: float = 3.5
    decay_mg_l_h: float = 1.1

    def effect(self, station_id: str, t_rel: Array) -> tuple[Array, Array, Array, Array]:
        """(chl factor, extra respiration, aeration, NH4 added) for one buoy."""
        n = len(t_rel)
        if station_id not in self.stations:
            return np.ones(n), np.zeros(n), np.zeros(n), np.zeros(n)
        growth = np.clip(
            (t_rel - self.bloom_start_s) / (self.collapse_s - self.bloom_start_s), 0, 1
        )
        after = np.maximum(t_rel - self.collapse_s, 0.0)
        collapsed = t_rel >= self.collapse_s
        recovery = np.clip((t_rel - self.aeration_s) / self.recovery_s, 0.0, 1.0)
        crashed = 0.3 + (self.bloom_factor - 0.3) * np.exp(-after / (6 * _HOUR))
        chl = np.where(collapsed, crashed + (1.0 - crashed) * recovery, self.bloom_factor**growth)
        # Dead algae take hours to start decomposing, then their oxygen demand fades.
        rot = (1.0 - np.exp(-after / (12 * _HOUR))) * np.exp(-after / (2.5 * _DAY))
        decay = np.where(collapsed, self.decay_mg_l_h * rot, 0.0)
        aerating = (t_rel >= self.aeration_s) & (t_rel < self.aeration_s + self.recovery_s)
        nh4 = np.where(
            collapsed, 1.5 * (1 - np.exp(-after / (8 * _HOUR))) * np.exp(-after / (4 * _DAY)), 0
        )
        return chl, decay * (1.0 - recovery), np.where(aerating, 0.35, 0.0), nh4

    def overcast(self, t_rel: Array) -> Array:
        """Forced cloud cover on the collapse day (0 = no override)."""
        return 0.95 * trapezoid(
            t_rel, self.collapse_s - 6 * _HOUR, self.collapse_s + 18 * _HOUR, _HOUR
        )

    def windows(self, stations: Mapping[str, Mapping[str, object]]) -> Iterator[Window]:
        """``algal_bloom`` then ``oxygen_crash`` windows per affected buoy."""
        oxygen = (Quantity.DISSOLVED_OXYGEN, Quantity.PH, Quantity.AMMONIUM)
        for station in self.stations:
            if station in stations:
                yield Window(
                    station,
                    "algal_bloom",
                    self.bloom_start_s,
                    self.collapse_s,
                    (Quantity.CHLOROPHYLL_A, Quantity.DISSOLVED_OXYGEN, Quantity.PH),
                    f"{self.name}: chl-a x{self.bloom_factor:g}",
                )
                yield Window(
                    station,
                    "oxygen_crash",
                    self.collapse_s,
                    self.aeration_s + self.recovery_s,
                    oxygen,
                    f"{self.name}: bloom collapse, oxygen depletion",
                )


@dataclass(frozen=True, slots=True)
class TrafficIncident:
    """A crash or fallen tree blocking a corridor at one detector.

    The queue grows upstream at ``queue_kmh`` while the blockage lasts and clears at
    ``clear_kmh`` afterwards; downstream detectors see little traffic at free speed [U].

    Args:
        name: event name.
        corridor: corridor slug.
        position: detector position of the blockage (1 = upstream end).
        start_s: start offset.
        duration_s: how long the corridor is blocked.
        capacity_factor: share of traffic still getting through.
        queue_kmh: growth speed of the queue.
        clear_kmh: speed at which the queue clears after the blockage.
    """

    name: str
    corridor: str
    position: int
    start_s: float
    duration_s: float
    capacity_factor: float = 0.1
    queue_kmh: float = 4.0
    clear_kmh: float = 8.0

    def _span(self, attrs: Mapping[str, object], site_km: float) -> tuple[str, float, float] | None:
        if attrs.get("corridor") != self.corridor:
            return None
        position = int(str(attrs["position"]))
        km = float(str(attrs["km_from_start"]))
        end = self.start_s + self.duration_s
        if position > self.position:
            return "downstream", self.start_s + 120.0, end + 120.0
        distance = site_km - km
        begin = self.start_s + distance / self.queue_kmh * _HOUR
        if begin >= end:
            return None
        role = "site" if position == self.position else "upstream queue"
        return role, begin, end + distance / self.clear_kmh * _HOUR

    def effect(
        self, attrs: Mapping[str, object], site_km: float, t_rel: Array
    ) -> tuple[Array, Array]:
        """(jam 0–1, throughput 0–1) at a detector with registry ``attrs``."""
        n = len(t_rel)
        span = self._span(attrs, site_km)
        if span is None:
            return np.zeros(n), np.ones(n)
        role, begin, end = span
        p = trapezoid(t_rel, begin, end, 300.0)
        if role == "downstream":
            return np.zeros(n), 1.0 - (1.0 - self.capacity_factor) * p
        return p, np.ones(n)

    def windows(
        self, stations: Mapping[str, Mapping[str, object]], site_km: float
    ) -> Iterator[Window]:
        """A ``traffic_incident`` window per affected detector."""
        for station, attrs in stations.items():
            span = self._span(attrs, site_km)
            if span is not None:
                role, begin, end = span
                yield Window(
                    station,
                    "traffic_incident",
                    begin,
                    end,
                    (),
                    f"{self.name}: {self.corridor} blocked at detector {self.position} ({role})",
                )


Event = RainEvent | PollutionEpisode | OxygenCrash | TrafficIncident
