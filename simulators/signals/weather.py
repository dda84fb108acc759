"""City-wide weather drivers on the base grid: temperature, humidity, cloud, rain, stagnation.

Rain falls as storms: seasonal background storms (Poisson arrivals, lognormal peaks, a
per-gauge intensity factor and time shift so gauges differ) plus the scenario's scripted
rain. A "wetness" state follows rain quickly and dries slowly; it cools the air, raises
humidity and washes PM out (domain.md §5.2: −50–70 % within hours of ≥10 mm) [U].
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from simulators.signals.cycles import (
    DAY_S,
    HOUR_S,
    HUMIDITY_MONTHLY,
    TEMPERATURE_MONTHLY,
    local_hour,
    monthly,
)
from simulators.signals.noise import AR1

__all__ = ["BackgroundRain", "CityWeather", "Storm", "WeatherFrame"]

Array = npt.NDArray[np.float64]
BackgroundRain = Literal["seasonal", "light", "none"]

# Background storms [U]: arrivals per day and median peak intensity (mm/h) by month.
_STORMS_PER_DAY = (0.15, 0.2, 0.3, 0.35, 0.45, 0.55, 0.6, 0.6, 0.45, 0.25, 0.15, 0.1)
_PEAK_MEDIAN_MM_H = (1.5, 1.5, 2.5, 6.0, 12.0, 15.0, 15.0, 15.0, 12.0, 8.0, 4.0, 2.0)
_LIGHT_CAP_MM_H = 6.0
_DIURNAL_AMPLITUDE_C = 3.2  # half of the daily range [U]


def _daily_shape(hour: Array) -> Array:
    """-1 at 05:30 (dawn minimum), +1 at 14:00, half-cosines in between."""
    rising = (hour >= 5.5) & (hour < 14.0)
    up = -np.cos(np.pi * (hour - 5.5) / 8.5)
    down = np.cos(np.pi * np.mod(hour - 14.0, 24.0) / 15.5)
    return np.asarray(np.where(rising, up, down), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Storm:
    """One background rain storm crossing the city.

    Args:
        start_s: unix time it starts (before per-gauge shifts).
        duration_s: how long it rains at one gauge.
        peak_mm_h: peak intensity before per-gauge factors.
        factors: per-gauge intensity factors.
        shifts_s: per-gauge time shifts.
    """

    start_s: float
    duration_s: float
    peak_mm_h: float
    factors: npt.NDArray[np.float64]
    shifts_s: npt.NDArray[np.float64]

    @property
    def end_s(self) -> float:
        """When it has stopped at every gauge."""
        return self.start_s + self.duration_s + float(self.shifts_s.max(initial=0.0))

    def rate(self, t_s: Array) -> npt.NDArray[np.float64]:
        """Rain rate (mm/h), shape (gauges, len(t_s))."""
        x = (t_s[None, :] - self.start_s - self.shifts_s[:, None]) / self.duration_s
        inside = (x >= 0) & (x <= 1)
        shape = np.where(inside, np.sin(np.pi * np.clip(x, 0, 1)) ** 2, 0.0)
        return np.asarray(self.peak_mm_h * self.factors[:, None] * shape, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class WeatherFrame:
    """Weather on the grid ``t_s`` (one value per grid step).

    Args:
        t_s: grid times (unix seconds), evenly spaced by the grid step.
        air_temperature: city air temperature, °C.
        humidity: relative humidity, %.
        cloud: cloud cover fraction 0–1.
        rain_mm_h: rain rate per gauge, shape (gauges, steps), mm/h.
        wet: wetness 0–1 (rain now or recently).
        stagnation: PM multiplier from the synoptic situation (mean 1).
    """

    t_s: Array
    air_temperature: Array
    humidity: Array
    cloud: Array
    rain_mm_h: npt.NDArray[np.float64]
    wet: Array
    stagnation: Array

    @property
    def city_rain_mm_h(self) -> Array:
        """Mean rain rate over the gauges."""
        return np.asarray(self.rain_mm_h.mean(axis=0), dtype=np.float64)


ScriptedRain = Callable[[Array], npt.NDArray[np.float64]]
"""Scenario rain: grid times -> rate per gauge (gauges, steps) in mm/h."""
CloudOverride = Callable[[Array], Array]
"""Scenario cloud: grid times -> forced minimum cloud cover (0 = no override)."""


@dataclass(slots=True)
class CityWeather:
    """Stateful weather generator, advanced chunk by chunk.

    Args:
        gauges: rain gauge ids (their order is the row order of ``rain_mm_h``).
        rng: this model's random generator.
        step_s: grid step.
        background: background storms: seasonal, light (capped) or none.
    """

    gauges: Sequence[str]
    rng: np.random.Generator
    step_s: float = 60.0
    background: BackgroundRain = "seasonal"
    _storms: list[Storm] = field(default_factory=list)
    _next_storm_s: float | None = None
    _wet: float = 0.0
    _temp: AR1 = field(init=False)
    _cloud: AR1 = field(init=False)
    _stagnation: AR1 = field(init=False)
    _humid: AR1 = field(init=False)

    def __post_init__(self) -> None:
        self._temp = AR1(1.5, 2 * DAY_S, self.step_s)
        self._cloud = AR1(0.25, 6 * HOUR_S, self.step_s)
        self._stagnation = AR1(0.35, 1.5 * DAY_S, self.step_s)
        self._humid = AR1(4.0, DAY_S, self.step_s)

    def frame(
        self,
        t_s: Array,
        scripted_rain: ScriptedRain | None = None,
        cloud_override: CloudOverride | None = None,
    ) -> WeatherFrame:
        """Advance over the grid ``t_s`` (which must follow the previous call's grid)."""
        rain = self._background_rain(t_s)
        if scripted_rain is not None:
            rain = rain + scripted_rain(t_s)
        wet = self._wetness(rain.mean(axis=0))
        cloud = np.clip(0.45 + self._cloud.sample(self.rng, len(t_s)) + 0.5 * wet, 0.0, 1.0)
        if cloud_override is not None:
            cloud = np.maximum(cloud, cloud_override(t_s))
        daily = _daily_shape(local_hour(t_s))
        amplitude = _DIURNAL_AMPLITUDE_C * (1.0 - 0.5 * cloud)
        anomaly = self._temp.sample(self.rng, len(t_s))
        temperature = monthly(t_s, TEMPERATURE_MONTHLY) + amplitude * daily + anomaly - 3.0 * wet
        humidity = (
            monthly(t_s, HUMIDITY_MONTHLY)
            - 3.0 * amplitude * daily
            + 15.0 * wet
            + self._humid.sample(self.rng, len(t_s))
        )
        sigma = self._stagnation.sigma
        stagnation = np.exp(self._stagnation.sample(self.rng, len(t_s)) - 0.5 * sigma * sigma)
        return WeatherFrame(
            t_s,
            temperature,
            np.clip(humidity, 30.0, 100.0),
            cloud,
            rain,
            wet,
            stagnation,
        )

    def _wetness(self, city_rain: Array) -> Array:
        rise = 1.0 - np.exp(-self.step_s / (0.5 * HOUR_S))
        dry = 1.0 - np.exp(-self.step_s / (10 * HOUR_S))
        out = np.empty_like(city_rain)
        wet = self._wet
        for i, rate in enumerate(city_rain.tolist()):
            target = min(rate / 4.0, 1.0)
            wet += (target - wet) * (rise if target > wet else dry)
            out[i] = wet
        self._wet = wet
        return out

    def _background_rain(self, t_s: Array) -> npt.NDArray[np.float64]:
        rain = np.zeros((len(self.gauges), len(t_s)))
        if self.background == "none" or len(t_s) == 0:
            return rain
        t_end = float(t_s[-1]) + self.step_s
        self._schedule_until(float(t_s[0]), t_end)
        self._storms = [s for s in self._storms if s.end_s >= float(t_s[0])]
        for storm in self._storms:
            if storm.start_s <= t_end:
                rain += storm.rate(t_s)
        return rain

    def _schedule_until(self, t0: float, t1: float) -> None:
        if self._next_storm_s is None:
            self._next_storm_s = t0 + self._gap_s(t0)
        while self._next_storm_s <= t1:
            start = self._next_storm_s
            self._storms.append(self._storm(start))
            self._next_storm_s = start + self._gap_s(start)

    def _gap_s(self, at_s: float) -> float:
        per_day = float(monthly(np.array([at_s]), _STORMS_PER_DAY)[0])
        return float(self.rng.exponential(DAY_S / per_day))

    def _storm(self, start_s: float) -> Storm:
        moment = np.array([start_s])
        median = float(monthly(moment, _PEAK_MEDIAN_MM_H)[0])
        peak = min(median * float(np.exp(self.rng.normal(0.0, 0.7))), 120.0)
        if self.background == "light":
            peak = min(peak, _LIGHT_CAP_MM_H)
        # Convective summer storms are short, winter drizzle is long [U].
        duration_h = (4.0 if median < 5 else 1.3) * float(np.exp(self.rng.normal(0.0, 0.4)))
        n = len(self.gauges)
        return Storm(
            start_s,
            duration_h * HOUR_S,
            peak,
            np.exp(self.rng.normal(0.0, 0.35, n)),
            self.rng.uniform(0.0, 0.5 * HOUR_S, n),
        )
