"""Flood nowcasting (pure): when will a hotspot reach each depth level?

For one street hotspot: the recent depth series gives a robust trend (Theil-Sen slope with
its confidence interval, ``scipy.stats.theilslopes``) and the upstream rain gauges give an
intensity; rain above the drainage capacity implies a rise of ``rain_gain_cm_per_mm`` per
mm, which warns before the depth sensor has responded. The expected rate is the larger of
the two; each configured level gets an expected time of arrival with an early/late range, or
None when no crossing is expected within the horizon.

The rain parameters are project estimates [U]: ``drain_capacity_mm_h = 25`` follows the
Hanoi Drainage Company's rule of thumb (< 50 mm in 2 h: no flooding, domain reference §6.1);
``rain_gain_cm_per_mm`` is a placeholder to calibrate per hotspot. Levels default to the
project's [U] proposal in :mod:`processing.indices.flood`.

>>> t = [60.0 * i for i in range(10)]
>>> depth = [2.0 + 1.5 * i for i in range(10)]  # rising 90 cm/h, now 15.5 cm
>>> n = nowcast_flood(t, depth)
>>> round(n.rate_cm_h), [(e.level.value, round(e.eta_s / 60)) for e in n.warnings(1800.0)]
(90, [('warning', 3), ('severe', 10), ('extreme', 23)])
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

from contract import Quantity, Reading
from processing.errors import DetectorConfigError
from processing.indices.flood import FloodLevel, FloodLevels, classify_depth
from processing.windows import TimeWindow, theil_sen_interval

__all__ = [
    "MAX_RAIN_MM_H",
    "FloodNowcast",
    "FloodNowcaster",
    "LevelEta",
    "NowcastConfig",
    "nowcast_flood",
]

MAX_RAIN_MM_H: Final = 200.0
"""No rain reading counts for more than this intensity over its interval [U]: a gauge glitch
is not a cloudburst (Hanoi's heaviest storms measure ~100 mm/h; 150 mm/h for 40 minutes
already overloads every drain)."""

FloatArray = npt.NDArray[np.float64]

_S_PER_H: Final = 3600.0
_WINDOW_SLACK_S: Final = 900.0
_DEFAULT_RAIN_INTERVAL_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class NowcastConfig:
    """Parameters of the flood nowcast.

    Args:
        levels: depth levels to forecast (project proposal [U], configurable).
        window_s: depth history used for the trend.
        min_points: depth readings needed in the window.
        min_span_s: time those readings must span: a trend of a few minutes' history is
            too sure of itself to warn anyone.
        horizon_s: crossings expected later than this are reported as None.
        rain_window_s: window of the upstream rain intensity.
        drain_capacity_mm_h: rain intensity the drains absorb [U].
        rain_gain_cm_per_mm: depth rise per mm of rain above capacity [U].
        min_rate_cm_h: slower rises count as "no crossing expected".
        confidence_level: confidence of the slope interval.
        max_rain_mm_h: a rain reading never counts for more than this intensity over its
            interval (a gauge glitch of +30 mm in one minute is not a cloudburst) [U].
    """

    levels: FloodLevels = field(default_factory=FloodLevels)
    window_s: float = 1800.0
    min_points: int = 4
    min_span_s: float = 300.0
    horizon_s: float = 3 * _S_PER_H
    rain_window_s: float = 1800.0
    drain_capacity_mm_h: float = 25.0
    rain_gain_cm_per_mm: float = 0.5
    min_rate_cm_h: float = 2.0
    confidence_level: float = 0.9
    max_rain_mm_h: float = MAX_RAIN_MM_H

    @property
    def z(self) -> float:
        """The normal quantile of the slope interval's lower tail (Sen 1968)."""
        alpha = min(self.confidence_level, 1.0 - self.confidence_level)
        return float(ndtri(alpha / 2.0))

    def __post_init__(self) -> None:
        positive = (self.window_s, self.horizon_s, self.rain_window_s, self.min_rate_cm_h)
        if min(positive) <= 0 or self.min_points < 3 or not 0 < self.confidence_level < 1:
            msg = "nowcast windows, horizon and min_rate_cm_h must be > 0, min_points >= 3"
            raise DetectorConfigError(msg)
        if self.min_span_s < 0 or self.min_span_s >= self.window_s:
            msg = "min_span_s must be >= 0 and shorter than window_s"
            raise DetectorConfigError(msg)
        if self.drain_capacity_mm_h < 0 or self.rain_gain_cm_per_mm < 0:
            msg = "drain_capacity_mm_h and rain_gain_cm_per_mm must be >= 0"
            raise DetectorConfigError(msg)


@dataclass(frozen=True, slots=True)
class LevelEta:
    """Expected arrival of one depth level.

    Args:
        level: the level.
        depth_cm: its threshold.
        eta_s: seconds until it is reached (0: already reached; None: not expected within
            the horizon).
        eta_early_s: the same at the fast end of the rate interval.
        eta_late_s: the same at the slow end (None: it may not be reached).
    """

    level: FloodLevel
    depth_cm: float
    eta_s: float | None
    eta_early_s: float | None
    eta_late_s: float | None

    @property
    def reached(self) -> bool:
        """True when the depth is already at or above the level."""
        return self.eta_s == 0.0


@dataclass(frozen=True, slots=True)
class FloodNowcast:
    """The nowcast of one hotspot at one time.

    Args:
        hotspot_id: the depth sensor's station.
        at_s: time of the nowcast, epoch seconds.
        depth_cm: current depth estimate.
        current_level: level of ``depth_cm``.
        trend_cm_h: Theil-Sen slope of the depth window.
        trend_low_cm_h: lower end of its confidence interval.
        trend_high_cm_h: upper end.
        rain_mm_h: upstream rain intensity, None without linked gauges.
        rain_rate_cm_h: rise implied by rain above the drainage capacity.
        rate_cm_h: the expected rate used for the arrival times.
        confidence: 0-1, how sure the rate is positive (lower/expected rate, clipped).
        etas: one entry per configured level, mildest first.
    """

    hotspot_id: str
    at_s: float
    depth_cm: float
    current_level: FloodLevel
    trend_cm_h: float
    trend_low_cm_h: float
    trend_high_cm_h: float
    rain_mm_h: float | None
    rain_rate_cm_h: float
    rate_cm_h: float
    confidence: float
    etas: tuple[LevelEta, ...]

    @property
    def at(self) -> datetime:
        """Time of the nowcast (UTC)."""
        return datetime.fromtimestamp(self.at_s, UTC)

    def warnings(self, lead_time_s: float) -> tuple[LevelEta, ...]:
        """Levels not reached yet but expected within ``lead_time_s``: raise these now."""
        return tuple(e for e in self.etas if e.eta_s is not None and 0.0 < e.eta_s <= lead_time_s)

    def next_level(self) -> LevelEta | None:
        """The mildest level not reached yet, if a crossing is expected."""
        pending = [e for e in self.etas if not e.reached]
        return pending[0] if pending and pending[0].eta_s is not None else None


def _eta_s(gap_cm: float, rate_cm_h: float, config: NowcastConfig) -> float | None:
    if gap_cm <= 0:
        return 0.0
    if rate_cm_h < config.min_rate_cm_h:
        return None
    eta = gap_cm / rate_cm_h * _S_PER_H
    return eta if eta <= config.horizon_s else None


def _rain_intensity(
    times_s: np.ndarray, rain_mm: np.ndarray, now_s: float, window_s: float
) -> float:
    recent = (times_s > now_s - window_s) & (times_s <= now_s) & np.isfinite(rain_mm)
    return float(np.sum(rain_mm[recent])) / (window_s / _S_PER_H)


def nowcast_flood(
    depth_times_s: npt.ArrayLike,
    depth_cm: npt.ArrayLike,
    *,
    now_s: float | None = None,
    rain_times_s: npt.ArrayLike | None = None,
    rain_mm: npt.ArrayLike | None = None,
    config: NowcastConfig | None = None,
    hotspot_id: str = "",
) -> FloodNowcast | None:
    """Nowcast one hotspot from its depth series and (optionally) upstream rain.

    Args:
        depth_times_s: epoch seconds of the depth readings.
        depth_cm: the depths.
        now_s: time of the nowcast (default: the last depth reading).
        rain_times_s: epoch seconds of the upstream rain readings.
        rain_mm: rain in each reading's interval (mm), summed over linked gauges' mean.
        config: nowcast parameters.
        hotspot_id: carried into the result.

    Returns:
        None when the window holds fewer than ``min_points`` depth readings or they span
        less than ``min_span_s``.
    """
    cfg = config or NowcastConfig()
    times = np.asarray(depth_times_s, dtype=np.float64)
    depths = np.asarray(depth_cm, dtype=np.float64)
    ok = np.isfinite(times) & np.isfinite(depths)
    times, depths = times[ok], depths[ok]
    if times.size == 0:
        return None
    now = float(times.max()) if now_s is None else float(now_s)
    keep = (times >= now - cfg.window_s) & (times <= now)
    times, depths = times[keep], depths[keep]
    if times.size < cfg.min_points or np.ptp(times) <= 0 or np.ptp(times) < cfg.min_span_s:
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # a flat window has no spread: scipy warns on the interval's sqrt of 0, harmlessly
        warnings.simplefilter("ignore", RuntimeWarning)
        slope, low, high = theil_sen_interval(times, depths, cfg.z)
    low = slope if not np.isfinite(low) else low
    high = slope if not np.isfinite(high) else high
    trend, low_h, high_h = slope * _S_PER_H, low * _S_PER_H, high * _S_PER_H
    last = np.argsort(times)[-3:]
    current = float(np.median(depths[last] + slope * (now - times[last])))
    rain_h: float | None = None
    rain_rate = 0.0
    if rain_times_s is not None and rain_mm is not None:
        r_times = np.asarray(rain_times_s, dtype=np.float64)
        r_mm = np.asarray(rain_mm, dtype=np.float64)
        rain_h = _rain_intensity(r_times, r_mm, now, cfg.rain_window_s) if r_times.size else None
        excess = max(0.0, (rain_h or 0.0) - cfg.drain_capacity_mm_h)
        rain_rate = cfg.rain_gain_cm_per_mm * excess
    rate = max(trend, rain_rate) if rain_rate > 0 else trend
    rate_high = max(high_h, rain_rate)
    rate_low = max(low_h, 0.5 * rain_rate)  # rain-driven rise: at least half of it [U]
    confidence = float(np.clip(rate_low / rate, 0.0, 1.0)) if rate > 0 else 0.0
    etas = tuple(
        LevelEta(
            level,
            depth,
            _eta_s(depth - current, rate, cfg),
            _eta_s(depth - current, rate_high, cfg),
            _eta_s(depth - current, rate_low, cfg),
        )
        for level, depth in cfg.levels.thresholds()
    )
    level_now = classify_depth(current, cfg.levels)
    return FloodNowcast(
        hotspot_id, now, current, level_now, float(trend), float(low_h), float(high_h),
        rain_h, rain_rate, float(rate), confidence, etas,
    )  # fmt: skip


class FloodNowcaster:
    """Recent depth and rain per hotspot, kept for nowcasts (bounded, pure).

    Hotspots are stations reporting ``water_depth``; rain gauges are stations reporting
    ``rainfall`` (mm per reporting interval). Link each hotspot to its upstream gauges with
    :meth:`link` (e.g. from the registry's station attributes). At most ``max_series``
    hotspots and gauges are tracked; readings of further ones are refused and counted.

    Args:
        config: nowcast parameters.
        max_series: bound on hotspots plus gauges.

    >>> caster = FloodNowcaster()
    >>> caster.link("fd-thai-ha", ["rg-lang"])
    >>> for i in range(1, 7):  # the street is still dry, but 8 mm fall every 5 minutes
    ...     caster.observe_depth("fd-thai-ha", 300.0 * i, 1.0)
    ...     caster.observe_rain("rg-lang", 300.0 * i, 8.0)
    >>> n = caster.nowcast("fd-thai-ha")
    >>> round(n.rain_mm_h), round(n.rate_cm_h, 1), n.next_level().level.value
    (96, 35.5, 'watch')
    """

    def __init__(self, config: NowcastConfig | None = None, *, max_series: int = 20_000) -> None:
        self.config = config or NowcastConfig()
        self.max_series = max_series
        self._depth: dict[str, TimeWindow] = {}
        self._rain: dict[str, TimeWindow] = {}
        self._links: dict[str, tuple[str, ...]] = {}
        self.refused = 0

    def link(self, hotspot_id: str, rain_gauges: Sequence[str]) -> None:
        """Set the upstream rain gauges of a hotspot."""
        self._links[hotspot_id] = tuple(rain_gauges)

    def _window(self, store: dict[str, TimeWindow], key: str, span_s: float) -> TimeWindow | None:
        window = store.get(key)
        if window is None:
            if len(self._depth) + len(self._rain) >= self.max_series:
                self.refused += 1
                return None
            # Some slack beyond the span: a batch may hold points measured a little later
            # than the nowcast's time, and those must not push needed points out.
            window = store[key] = TimeWindow(span_s + _WINDOW_SLACK_S)
        return window

    def observe_depth(self, hotspot_id: str, time_s: float, depth_cm: float) -> None:
        """Record one depth reading (below zero counts as zero).

        A depth sensor reading under 0 cm has an offset (drift, a dry road below its zero):
        there is no water either way, and a reset of that offset must not look like a rise.
        """
        window = self._window(self._depth, hotspot_id, self.config.window_s)
        if window is not None:
            window.append(time_s, max(depth_cm, 0.0))

    def observe_rain(self, gauge_id: str, time_s: float, rain_mm: float) -> None:
        """Record one rain reading (mm fallen in its reporting interval, capped as plausible)."""
        window = self._window(self._rain, gauge_id, self.config.rain_window_s)
        if window is None:
            return
        window.append_amount(time_s, rain_mm, self.config.max_rain_mm_h, _DEFAULT_RAIN_INTERVAL_S)

    def observe(self, reading: Reading) -> None:
        """Route a reading by quantity (other quantities are ignored)."""
        when = reading.measured_at.timestamp()
        if reading.quantity is Quantity.WATER_DEPTH:
            self.observe_depth(reading.station_id, when, reading.value)
        elif reading.quantity is Quantity.RAINFALL:
            self.observe_rain(reading.station_id, when, reading.value)

    def hotspots(self) -> list[str]:
        """Hotspots with depth data."""
        return sorted(self._depth)

    def nowcast(self, hotspot_id: str, now_s: float | None = None) -> FloodNowcast | None:
        """The nowcast of one hotspot (None without enough depth data)."""
        window = self._depth.get(hotspot_id)
        if window is None:
            return None
        gauges = [self._rain[g] for g in self._links.get(hotspot_id, ()) if g in self._rain]
        rain_t: list[float] | None = None
        rain_v: list[float] | None = None
        if gauges:
            # Mean over the linked gauges: each gauge's readings weigh 1/len(gauges).
            pairs = [(t, v / len(gauges)) for g in gauges for t, v in g]
            rain_t, rain_v = [t for t, _ in pairs], [v for _, v in pairs]
        return nowcast_flood(
            window.times(), window.values(), now_s=now_s, rain_times_s=rain_t,
            rain_mm=rain_v, config=self.config, hotspot_id=hotspot_id,
        )  # fmt: skip

    def warnings(self, now_s: float, lead_time_s: float) -> list[tuple[FloodNowcast, LevelEta]]:
        """Every hotspot level expected within ``lead_time_s`` of ``now_s``."""
        out: list[tuple[FloodNowcast, LevelEta]] = []
        for hotspot in self.hotspots():
            result = self.nowcast(hotspot, now_s)
            if result is not None:
                out += [(result, eta) for eta in result.warnings(lead_time_s)]
        return out
