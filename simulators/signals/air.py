"""Air-quality stations: PM from climatology, gases from traffic, O3 from sunlight.

PM2.5 is the monthly climatology × the diurnal multiplier × a synoptic stagnation factor ×
rain washout, plus a roadside share; NO2 and CO follow traffic and the mixing layer; O3
follows the sun; temperature and humidity come from the city's weather.

Measurement: the optical PM counter glitches (Student-t noise, heavy tails), its coarse channel
reports whole µg/m³, and monthly service visits leave it a new gain (a new normal).

Shapes follow domain.md §5: monthly PM2.5 means [U], the diurnal multiplier (high 02–08,
lowest 14–15), PM2.5/PM10 ratio 0.6–0.8 [U], NO2 and CO following traffic with a shallow
night-time mixing layer, O3 peaking 13–16 and highest April–October.
"""

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from contract import Quantity
from simulators.signals.cycles import (
    HOUR_S,
    PM25_MONTHLY,
    local_hour,
    local_weekday,
    monthly,
    pm_diurnal,
    solar_elevation_sin,
)
from simulators.signals.noise import AR1, Maintenance, quantise, student_t

__all__ = ["AirDrivers", "AirStationModel"]

Array = npt.NDArray[np.float64]
Q = Quantity

_WEEKLY_PM = np.array([1.03, 1.04, 1.04, 1.04, 1.04, 0.97, 0.90])  # Mon..Sun [U]
_MIXING_SEASON = (1.25, 1.2, 1.1, 1.0, 0.9, 0.85, 0.85, 0.85, 0.9, 1.0, 1.15, 1.25)  # [U]
_O3_SEASON = (0.6, 0.65, 0.8, 0.95, 1.0, 1.0, 0.95, 0.95, 0.95, 0.9, 0.75, 0.65)  # [U]
_SO2_SEASON = (1.0, 0.9, 0.7, 0.5, 0.3, 0.2, 0.2, 0.2, 0.3, 0.5, 0.8, 1.0)  # [U]


@dataclass(frozen=True, slots=True)
class AirDrivers:
    """City drivers at an air station's sample times.

    Args:
        temperature: air temperature, °C.
        humidity: relative humidity, %.
        cloud: cloud cover 0–1.
        wet: wetness 0–1 (washout).
        stagnation: synoptic PM multiplier (mean 1).
        activity: traffic demand of the nearest corridor over its capacity.
        pm_factor: scripted pollution-episode multiplier on PM (1 = none).
        pm_floor: scripted minimum PM2.5 level, µg/m³ (0 = none).
        gas_factor: scripted multiplier on primary gases (1 = none).
    """

    temperature: Array
    humidity: Array
    cloud: Array
    wet: Array
    stagnation: Array
    activity: Array
    pm_factor: Array
    pm_floor: Array
    gas_factor: Array


@dataclass(slots=True)
class AirStationModel:
    """One air-quality station.

    Args:
        traffic_weight: how much local traffic reaches the inlet (1 = roadside).
        interval_s: reporting interval.
        site_factor: the site's PM level relative to the city.
        heat_island_c: urban heat-island offset of the thermometer.
    """

    traffic_weight: float
    interval_s: float
    site_factor: float = 1.0
    heat_island_c: float = 0.5
    _pm: AR1 = field(init=False)
    _service: Maintenance = field(init=False)
    _ratio: AR1 = field(init=False)
    _gas: AR1 = field(init=False)
    _o3: AR1 = field(init=False)

    def __post_init__(self) -> None:
        self._pm = AR1(0.10, 2 * HOUR_S, self.interval_s)
        self._ratio = AR1(0.04, 6 * HOUR_S, self.interval_s)
        self._gas = AR1(0.12, HOUR_S, self.interval_s)
        self._o3 = AR1(6.0, 2 * HOUR_S, self.interval_s)
        # The optical PM counter is cleaned and recalibrated about monthly; its gain moves.
        self._service = Maintenance(30 * 24 * HOUR_S, 0.06)

    def sample(self, rng: np.random.Generator, t_s: Array, d: AirDrivers) -> dict[Quantity, Array]:
        """All eight readings at ``t_s`` in canonical units (µg/m³, °C, %RH)."""
        n = len(t_s)
        gain = self._service.gains(rng, t_s)
        pm25 = self._pm25(rng, t_s, d) * gain
        ratio = np.clip(0.7 + self._ratio.sample(rng, n), 0.55, 0.85)
        dust = self.traffic_weight * 10.0 * d.activity * (1.0 - d.wet)
        # The coarse channel is noisier, glitches (heavy tails) and reports whole µg/m³.
        pm10 = pm25 / ratio + dust * gain + student_t(rng, n, 2.0)
        hour = local_hour(t_s)
        mixing = (1.0 + 0.35 * np.cos(2 * np.pi * (hour - 3.0) / 24.0)) * monthly(
            t_s, _MIXING_SEASON
        )
        gas_noise = np.exp(self._gas.sample(rng, n))
        traffic = self.traffic_weight * d.activity * mixing * d.gas_factor * gas_noise
        no2 = 14.0 * monthly(t_s, _MIXING_SEASON) + 45.0 * traffic + rng.normal(0.0, 2.0, n)
        co = 450.0 + 1400.0 * traffic + 4.0 * pm25 + rng.normal(0.0, 40.0, n)
        so2 = 6.0 + 10.0 * monthly(t_s, _SO2_SEASON) + 0.06 * pm25 + rng.normal(0.0, 1.5, n)
        sun = np.maximum(solar_elevation_sin(t_s - 1.5 * HOUR_S), 0.0) ** 1.2
        heat = np.clip(d.temperature / 30.0, 0.6, 1.2)
        o3 = (
            18.0
            + 120.0 * sun * (1.0 - 0.6 * d.cloud) * monthly(t_s, _O3_SEASON) * heat
            - 11.0 * traffic  # titration by fresh NO near roads
            + self._o3.sample(rng, n)
        )
        out = {
            Q.PM25: np.round(np.maximum(pm25, 1.0), 1),
            Q.PM10: quantise(np.maximum(pm10, pm25 + 0.5), 1.0),
            Q.NO2: np.round(np.maximum(no2, 2.0), 1),
            Q.SO2: np.round(np.maximum(so2, 0.5), 1),
            Q.CO: np.round(np.maximum(co, 100.0), 0),
            Q.O3: np.round(np.maximum(o3, 2.0), 1),
            Q.AIR_TEMPERATURE: np.round(
                d.temperature + self.heat_island_c + rng.normal(0.0, 0.15, n), 1
            ),
            Q.RELATIVE_HUMIDITY: np.round(
                np.clip(d.humidity - 2.0 * self.heat_island_c + rng.normal(0.0, 1.0, n), 20, 100), 1
            ),
        }
        return {q: np.asarray(v, dtype=np.float64) for q, v in out.items()}

    def _pm25(self, rng: np.random.Generator, t_s: Array, d: AirDrivers) -> Array:
        n = len(t_s)
        background = (
            monthly(t_s, PM25_MONTHLY)
            * pm_diurnal(t_s)
            * _WEEKLY_PM[local_weekday(t_s)]
            * d.stagnation
            * (1.0 - 0.6 * d.wet)
            * self.site_factor
            * np.exp(self._pm.sample(rng, n) - 0.005)
        )
        local = self.traffic_weight * 8.0 * d.activity
        pm25 = (background + local) * d.pm_factor
        floor = d.pm_floor * np.exp(rng.normal(0.0, 0.05, n))
        return np.asarray(np.maximum(pm25, floor) + student_t(rng, n, 1.0), dtype=np.float64)
