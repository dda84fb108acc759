"""Per-station simulation: the city's drivers in, one station's true readings out.

Each kind of station wraps its signal model from :mod:`simulators.signals`, reads the
drivers it needs from the shared :class:`CityFrame` (weather, rain, traffic demand, the
scenario's events) and returns readings in canonical units at its own sample times.
Sensor noise is added here; faults come later, in :mod:`simulators.faults`.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from contract import Quantity, Station
from simulators.events import Event, OxygenCrash, PollutionEpisode, TrafficIncident
from simulators.fault_config import FaultKind
from simulators.signals.air import AirDrivers, AirStationModel
from simulators.signals.cycles import solar_elevation_sin
from simulators.signals.flood import FloodDepthModel, RainGaugeModel
from simulators.signals.noise import Maintenance, quantise
from simulators.signals.traffic import TrafficDetectorModel, corridor_activity
from simulators.signals.water import BuoyModel, LakeDrivers
from simulators.signals.weather import WeatherFrame
from simulators.truth import Label, ThresholdEpisodes

__all__ = ["CityFrame", "Readings", "StationSim", "make_station_sim"]

Readings = tuple[dict[Quantity, npt.NDArray[np.float64]], list[Label]]
"""Readings by quantity at the sample times, and the event labels that closed."""

Array = npt.NDArray[np.float64]
Q = Quantity


@dataclass(frozen=True, slots=True)
class CityFrame:
    """The drivers of one chunk on the grid, shared by all stations.

    Args:
        weather: the weather on the grid.
        origin_s: unix time of the run's start (event times are relative to it).
        step_s: grid step.
        gauges: rain gauge ids, in the row order of ``weather.rain_mm_h``.
        events: the scenario's events.
        site_km: for each traffic incident, the km position of its blocked detector.
    """

    weather: WeatherFrame
    origin_s: float
    step_s: float
    gauges: tuple[str, ...]
    events: tuple[Event, ...]
    site_km: Mapping[int, float] = field(default_factory=dict)

    @property
    def grid_s(self) -> Array:
        """Grid times."""
        return self.weather.t_s

    def at(self, series: Array, times_s: Array) -> Array:
        """A grid series at sample times (linear interpolation)."""
        return np.interp(times_s, self.weather.t_s, series)

    def rain(self, gauge: str) -> Array:
        """A gauge's rain rate on the grid (mm/h)."""
        return np.asarray(self.weather.rain_mm_h[self.gauges.index(gauge)], dtype=np.float64)


class StationSim(Protocol):
    """One simulated station's true readings (before faults)."""

    def sample(self, rng: np.random.Generator, times_s: Array, city: CityFrame) -> Readings:
        """Readings at ``times_s`` in canonical units, and event labels that closed."""
        ...

    def flush(self, known_s: float) -> list[Label]:
        """Labels of episodes still open at the end of the run."""
        ...


@dataclass(slots=True)
class _AirSim:
    info: Station
    model: AirStationModel

    def sample(self, rng: np.random.Generator, times_s: Array, city: CityFrame) -> Readings:
        w = city.weather
        rel = times_s - city.origin_s
        factor, floor, gas = np.ones(len(times_s)), np.zeros(len(times_s)), np.ones(len(times_s))
        for event in city.events:
            if isinstance(event, PollutionEpisode):
                f, fl, g = event.effect(self.info.station_id, rel)
                factor, floor, gas = factor * f, np.maximum(floor, fl), gas * g
        corridor = str(self.info.attributes.get("nearest_corridor", ""))
        drivers = AirDrivers(
            city.at(w.air_temperature, times_s),
            city.at(w.humidity, times_s),
            city.at(w.cloud, times_s),
            city.at(w.wet, times_s),
            city.at(w.stagnation, times_s),
            corridor_activity(times_s, corridor),
            factor,
            floor,
            gas,
        )
        return self.model.sample(rng, times_s, drivers), []

    def flush(self, known_s: float) -> list[Label]:
        return []


@dataclass(frozen=True, slots=True)
class _Probe:
    """One probe of a water-quality sonde, as it measures.

    Args:
        sd: noise standard deviation, canonical units.
        resolution: the smallest step it reports.
        heavy: optical probes glitch (Student-t noise: bubbles, drifting weed, a fish).
        service_sd: spread of the gain a monthly cleaning and recalibration leaves (0: none).
        glitch_rate: share of readings a wiper stroke or debris on the window throws off
            several-fold (labelled ``spike`` faults in the truth).
    """

    sd: float
    resolution: float
    heavy: bool = False
    service_sd: float = 0.0
    glitch_rate: float = 0.0


_BUOY_PROBES = {
    Q.WATER_TEMPERATURE: _Probe(0.05, 0.1),
    Q.DISSOLVED_OXYGEN: _Probe(0.05, 0.01, heavy=True, service_sd=0.03),
    Q.PH: _Probe(0.02, 0.01),
    Q.TURBIDITY: _Probe(0.8, 1.0, heavy=True, service_sd=0.08, glitch_rate=1 / 1500),
    Q.CONDUCTIVITY: _Probe(3.0, 1.0, service_sd=0.02),
    Q.CHLOROPHYLL_A: _Probe(1.0, 0.1, heavy=True, service_sd=0.1, glitch_rate=1 / 1500),
    Q.AMMONIUM: _Probe(0.02, 0.01, heavy=True, service_sd=0.1),
}
"""The sonde's probes (domain.md §4 instruments): resolutions as the buoys report them
(whole NTU and µS/cm), optical probes with heavy tails and glitches, gains after service."""
_SERVICE_GAP_S = 30 * 86_400.0  # the sonde is cleaned and recalibrated about monthly


def _probe_services() -> dict[Quantity, Maintenance]:
    return {q: Maintenance(_SERVICE_GAP_S, p.service_sd) for q, p in _BUOY_PROBES.items()}


@dataclass(slots=True)
class _BuoySim:
    info: Station
    model: BuoyModel
    hypoxia: ThresholdEpisodes
    probes: np.random.Generator
    """The probes' own randomness (gains, heavy tails, glitches): the lake itself, drawn from
    the stream the caller passes, stays the realisation it was before the probes had it."""
    services: dict[Quantity, Maintenance] = field(default_factory=_probe_services)

    def sample(self, rng: np.random.Generator, times_s: Array, city: CityFrame) -> Readings:
        w = city.weather
        grid, n = city.grid_s, len(city.grid_s)
        rel = grid - city.origin_s
        chl, decay, aeration, nh4 = np.ones(n), np.zeros(n), np.zeros(n), np.zeros(n)
        for event in city.events:
            if isinstance(event, OxygenCrash):
                c, d, a, h = event.effect(self.info.station_id, rel)
                chl, decay, aeration, nh4 = chl * c, decay + d, aeration + a, nh4 + h
        drivers = LakeDrivers(
            w.air_temperature,
            solar_elevation_sin(grid),
            w.cloud,
            w.city_rain_mm_h,
            chl,
            decay,
            aeration,
            nh4,
        )
        true = {q: city.at(v, times_s) for q, v in self.model.grid(rng, grid, drivers).items()}
        labels = self.hypoxia.update(times_s, true[Q.DISSOLVED_OXYGEN])
        out: dict[Quantity, Array] = {}
        for q, values in true.items():
            out[q] = self._measure(rng, q, times_s, values, labels)
        return out, labels

    def _measure(
        self, rng: np.random.Generator, q: Quantity, times_s: Array, values: Array,
        labels: list[Label],
    ) -> Array:  # fmt: skip
        """One probe's readings of the true values; its glitches are labelled."""
        probe, k, own = _BUOY_PROBES[q], len(times_s), self.probes
        noise = rng.normal(0.0, probe.sd, k)
        if probe.heavy:  # Student t (3 df, same sd): the normal draw over sqrt(chi2 / df)
            noise *= np.sqrt(1.0 / 3.0) / np.sqrt(own.chisquare(3.0, k) / 3.0)
        measured = values * self.services[q].gains(own, times_s) + noise
        if probe.glitch_rate > 0:
            for i in np.flatnonzero(own.random(k) < probe.glitch_rate).tolist():
                factor = float(own.uniform(3.0, 6.0))
                measured[i] = max(measured[i], 0.0) * factor + 4.0 * probe.sd * factor
                t = float(times_s[i])
                detail = f"x{factor:.1f}: debris on the optical window"
                spike = FaultKind.SPIKE.value
                labels.append(Label(self.info.station_id, spike, "fault", t, t, t, (q,), detail))
        digits = max(0, -int(np.floor(np.log10(probe.resolution))))
        return np.round(quantise(np.maximum(measured, 0.0), probe.resolution), digits)

    def flush(self, known_s: float) -> list[Label]:
        return self.hypoxia.flush(known_s)


@dataclass(slots=True)
class _GaugeSim:
    info: Station
    model: RainGaugeModel

    def sample(self, rng: np.random.Generator, times_s: Array, city: CityFrame) -> Readings:
        rain = city.rain(self.info.station_id)
        return {Q.RAINFALL: self.model.sample(city.grid_s, rain, times_s, city.step_s)}, []

    def flush(self, known_s: float) -> list[Label]:
        return []


@dataclass(slots=True)
class _FloodSim:
    info: Station
    model: FloodDepthModel
    flood: ThresholdEpisodes

    def sample(self, rng: np.random.Generator, times_s: Array, city: CityFrame) -> Readings:
        gauge = str(self.info.attributes["upstream_gauge"])
        depth = city.at(self.model.depth(city.rain(gauge), city.step_s), times_s)
        labels = self.flood.update(times_s, depth)
        noise = rng.normal(0.0, 0.3, len(times_s))
        return {Q.WATER_DEPTH: np.round(depth + noise, 1)}, labels

    def flush(self, known_s: float) -> list[Label]:
        return self.flood.flush(known_s)


@dataclass(slots=True)
class _TrafficSim:
    info: Station
    model: TrafficDetectorModel

    def sample(self, rng: np.random.Generator, times_s: Array, city: CityFrame) -> Readings:
        rel = times_s - city.origin_s
        jam, throughput = np.zeros(len(times_s)), np.ones(len(times_s))
        for index, event in enumerate(city.events):
            if isinstance(event, TrafficIncident):
                j, t = event.effect(self.info.attributes, city.site_km.get(index, 0.0), rel)
                jam, throughput = np.maximum(jam, j), throughput * t
        rain = city.at(city.weather.city_rain_mm_h, times_s)
        return self.model.sample(rng, times_s, rain, jam, throughput), []

    def flush(self, known_s: float) -> list[Label]:
        return []


def make_station_sim(info: Station, rng: np.random.Generator, step_s: float) -> StationSim:
    """The simulation of one registry station (by its ``kind``).

    Raises:
        ValueError: for a station kind the simulators do not know.
    """
    interval = info.sensors[0].interval_s
    attrs = info.attributes
    sid = info.station_id
    if info.kind == "air_quality":
        weight = float(str(attrs.get("traffic_weight", 0.5)))
        site = float(np.exp(rng.normal(0.0, 0.08)))
        return _AirSim(info, AirStationModel(weight, interval, site, float(rng.uniform(0.2, 0.9))))
    if info.kind == "buoy":
        sewer = float(str(attrs.get("sewer_influence", 1.0)))
        buoy = BuoyModel(step_s, sewer, float(np.exp(rng.normal(0.0, 0.1))))
        return _BuoySim(
            info,
            buoy,
            ThresholdEpisodes(
                sid, "hypoxia", Q.DISSOLVED_OXYGEN, 2.0, 3.0, above=False, unit="mg/L"
            ),
            np.random.default_rng(int(rng.integers(2**63))),
        )
    if info.kind == "rain_gauge":
        return _GaugeSim(info, RainGaugeModel(float(str(attrs.get("bucket_mm", 0.2)))))
    if info.kind == "flood_depth":
        model = FloodDepthModel(
            float(str(attrs["concentration"])),
            float(str(attrs["drain_mm_h"])),
            float(str(attrs["recession_h"])),
            float(str(attrs["lag_min"])),
            float(str(attrs.get("max_depth_cm", 120.0))),
            float(np.exp(rng.normal(0.0, 0.08))),
        )
        return _FloodSim(
            info, model, ThresholdEpisodes(sid, "flood", Q.WATER_DEPTH, 10.0, 5.0, unit="cm")
        )
    if info.kind == "traffic":
        return _TrafficSim(
            info,
            TrafficDetectorModel(
                str(attrs["corridor"]),
                float(str(attrs["free_flow_kmh"])),
                float(str(attrs["capacity_pcu_h"])),
                str(attrs["mix"]),
                interval,
            ),
        )
    msg = f"station {sid}: unknown station kind {info.kind!r}"
    raise ValueError(msg)
