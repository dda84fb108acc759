"""West Lake buoys: water temperature, an oxygen budget, and the quantities tied to it.

Dissolved oxygen follows photosynthesis minus respiration plus re-aeration towards
saturation, integrated on the grid: it bottoms out around dawn and peaks in mid-afternoon
well above saturation when algae are abundant (Hanoi lakes: ~20 % at 04–06, ~180 % at
15–17, domain.md §4.2). Saturation depends on water temperature (the formula of §3.3), and
water temperature tracks air temperature with about a day's lag. pH rises with DO
(algal CO2 uptake). Storms raise turbidity and dilute conductivity. Seasonal envelopes are
the [U] estimates of §4.2.
"""

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from contract import Quantity
from simulators.signals.cycles import DAY_S, HOUR_S, TEMPERATURE_MONTHLY, monthly
from simulators.signals.noise import AR1

__all__ = ["BuoyModel", "LakeDrivers", "do_saturation"]

Array = npt.NDArray[np.float64]
Q = Quantity

_CHL_MONTHLY = (12.0, 12.0, 15.0, 22.0, 30.0, 38.0, 42.0, 42.0, 38.0, 30.0, 20.0, 14.0)  # [U]
_TURBIDITY_MONTHLY = (8.0, 8.0, 9.0, 11.0, 14.0, 16.0, 17.0, 17.0, 15.0, 12.0, 10.0, 9.0)  # [U]
_CONDUCTIVITY_MONTHLY = (
    400.0,
    400.0,
    390.0,
    370.0,
    330.0,
    300.0,
    290.0,
    290.0,
    300.0,
    330.0,
    370.0,
    390.0,
)  # [U]
_NH4_MONTHLY = (0.45, 0.45, 0.5, 0.55, 0.6, 0.65, 0.65, 0.65, 0.6, 0.55, 0.5, 0.45)  # [U]

_P_MAX = 1.1  # mg/L/h gross production at full sun, chl 30 µg/L, 25 °C [U calibration]
_R_BASE = 0.33  # mg/L/h respiration at chl 30 µg/L, 20 °C [U calibration]
_K_AIR = 0.1  # 1/h re-aeration of a calm shallow lake [U]
_IK = 0.2  # light saturation of photosynthesis (fraction of full sun) [U]


def do_saturation(temperature_c: Array) -> Array:
    """Oxygen saturation of fresh water (mg/L) at a temperature (domain.md §3.3).

    >>> [round(float(v), 2) for v in do_saturation(np.array([20.0, 25.0, 30.0]))]
    [9.02, 8.18, 7.44]
    """
    t = temperature_c
    return np.asarray(14.652 - 0.41022 * t + 0.0079910 * t**2 - 0.000077774 * t**3)


@dataclass(frozen=True, slots=True)
class LakeDrivers:
    """Drivers on the grid for one buoy.

    Args:
        air_temperature: °C.
        sun: sine of solar elevation (negative at night).
        cloud: cloud cover 0–1.
        rain_mm_h: city rain rate.
        chl_factor: scripted multiplier on chlorophyll-a (bloom, collapse).
        extra_respiration: scripted oxygen demand from decaying algae, mg/L/h.
        aeration: scripted extra re-aeration (aerators), 1/h.
        nh4_add: scripted extra ammonium, mg/L.
    """

    air_temperature: Array
    sun: Array
    cloud: Array
    rain_mm_h: Array
    chl_factor: Array
    extra_respiration: Array
    aeration: Array
    nh4_add: Array


@dataclass(slots=True)
class BuoyModel:
    """One West Lake buoy.

    Args:
        step_s: grid step of the oxygen budget.
        sewer_influence: ammonium relative to the lake average (outfalls nearby).
        algae_factor: this spot's chlorophyll relative to the lake average.
    """

    step_s: float
    sewer_influence: float = 1.0
    algae_factor: float = 1.0
    _water_c: float | None = None
    _do: float | None = None
    _turbidity_storm: float = 0.0
    _recent_rain_mm: float = 0.0
    _chl_noise: AR1 = field(init=False)
    _nh4_noise: AR1 = field(init=False)

    def __post_init__(self) -> None:
        self._chl_noise = AR1(0.15, 3 * DAY_S, self.step_s)
        self._nh4_noise = AR1(0.2, DAY_S, self.step_s)

    def grid(self, rng: np.random.Generator, t_s: Array, d: LakeDrivers) -> dict[Quantity, Array]:
        """True values on the grid (the caller samples them at reporting times)."""
        n = len(t_s)
        if self._water_c is None:
            self._water_c = float(monthly(t_s[:1], TEMPERATURE_MONTHLY)[0]) + 1.0
        chl = (
            monthly(t_s, _CHL_MONTHLY)
            * self.algae_factor
            * np.exp(self._chl_noise.sample(rng, n))
            * d.chl_factor
        )
        water = self._water_temperature(d.air_temperature) + 0.8 * np.maximum(
            np.interp(t_s - 2 * HOUR_S, t_s, d.sun), 0.0
        )
        oxygen = self._oxygen(water, chl, d)
        turbidity, conductivity, recent = self._storm_response(t_s, d.rain_mm_h)
        saturation = 100.0 * oxygen / do_saturation(water)
        ph = 7.75 + 0.009 * (saturation - 100.0) + 0.006 * (chl - 30.0)
        nh4 = (
            monthly(t_s, _NH4_MONTHLY)
            * self.sewer_influence
            * np.exp(self._nh4_noise.sample(rng, n))
            + d.nh4_add
            + 0.004 * recent
        )
        return {
            Q.WATER_TEMPERATURE: water,
            Q.DISSOLVED_OXYGEN: oxygen,
            Q.PH: np.clip(ph, 6.5, 9.8),
            Q.TURBIDITY: turbidity + 0.25 * chl,
            Q.CONDUCTIVITY: conductivity,
            Q.CHLOROPHYLL_A: chl,
            Q.AMMONIUM: nh4,
        }

    def _water_temperature(self, air: Array) -> Array:
        keep = float(np.exp(-self.step_s / (30 * HOUR_S)))
        out = np.empty_like(air)
        water = float(self._water_c or 0.0)
        for i, a in enumerate(air.tolist()):
            water = keep * water + (1.0 - keep) * (a + 1.0)
            out[i] = water
        self._water_c = water
        return out

    def _oxygen(self, water: Array, chl: Array, d: LakeDrivers) -> Array:
        light = np.maximum(d.sun, 0.0) * (1.0 - 0.65 * d.cloud)
        production = _P_MAX * np.tanh(light / _IK) * (chl / 30.0) ** 0.8 * 1.04 ** (water - 25.0)
        respiration = _R_BASE * (chl / 30.0) ** 0.6 * 1.07 ** (water - 20.0) + d.extra_respiration
        k_air = _K_AIR + d.aeration
        saturation = do_saturation(water)
        dt_h = self.step_s / HOUR_S
        oxygen = float(saturation[0]) if self._do is None else self._do
        out = np.empty_like(water)
        rows = zip(
            production.tolist(),
            respiration.tolist(),
            k_air.tolist(),
            saturation.tolist(),
            strict=True,
        )
        for i, (p, r, k, sat) in enumerate(rows):
            oxygen = max(0.0, oxygen + (p - r + k * (sat - oxygen)) * dt_h)
            out[i] = oxygen
        self._do = oxygen
        return out

    def _storm_response(self, t_s: Array, rain: Array) -> tuple[Array, Array, Array]:
        dt_h = self.step_s / HOUR_S
        keep_turbidity = float(np.exp(-self.step_s / (18 * HOUR_S)))
        keep_rain = float(np.exp(-self.step_s / (3 * DAY_S)))
        turbidity = np.empty_like(rain)
        recent = np.empty_like(rain)
        storm, total = self._turbidity_storm, self._recent_rain_mm
        for i, r in enumerate(rain.tolist()):
            storm = storm * keep_turbidity + 1.5 * r * dt_h
            total = total * keep_rain + r * dt_h
            turbidity[i], recent[i] = storm, total
        self._turbidity_storm, self._recent_rain_mm = storm, total
        base = monthly(t_s, _TURBIDITY_MONTHLY)
        conductivity = np.maximum(monthly(t_s, _CONDUCTIVITY_MONTHLY) - 0.8 * recent, 150.0)
        return base + turbidity, conductivity, recent
