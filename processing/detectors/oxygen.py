"""West Lake oxygen risk: the danger that dissolved oxygen falls below the fish-kill level."""

from __future__ import annotations

from typing import ClassVar, Final

import numpy as np
import numpy.typing as npt

from contract import HANOI_UTC_OFFSET_S, Quantity
from processing.detectors._baseline import (
    BaselineConfig,
    baseline,
    baseline_fields,
    learn_baseline,
)
from processing.detectors._private import (
    MEAN_ABS_TO_SIGMA,
    BoolArray,
    FloatArray,
    IntArray,
    check_count,
    check_fraction,
    check_positive,
    ewma_rate,
    local_hour,
    sigmoid,
    squash,
)
from processing.detectors.base import ParamValue, StateField, VectorDetector
from processing.errors import DetectorConfigError
from processing.indices.water import do_saturation_mg_l_many
from processing.windows import ring_ordered, ring_push, theil_sen_rows

__all__ = ["OxygenRiskDetector"]

_CONTEXT: Final = {
    Quantity.WATER_TEMPERATURE: "temp",
    Quantity.CHLOROPHYLL_A: "chl",
    Quantity.PH: "ph",
}
_HOURS: Final = 24
_WARMUP: Final = 10  # readings before residuals are clipped
_MIN_SLOPE_SCALE: Final = 0.1  # mg/L per hour
_DAY_START_H: Final = 9.0  # local hours when photosynthesis should keep DO up
_DAY_END_H: Final = 17.0


class OxygenRiskDetector(VectorDetector):
    """Risk of a fish kill from oxygen depletion (West Lake, domain reference §4).

    Scored on dissolved-oxygen readings (mg/L) of a buoy; the buoy's water temperature,
    chlorophyll-a and pH arrive as *context* (:meth:`update_context`, or ``learn_one`` with a
    context :class:`~contract.Reading`). Without context it works on DO alone with
    ``default_temp_c``. The risk combines:

    * **now**: DO already below ``crit_mg_l`` (2 mg/L, fish-kill danger) scores above 0.5;
    * **projection**: the lowest DO expected within ``horizon_h`` hours, taken as the current
      DO minus the decline this buoy *usually* shows over the coming hours (a learned
      hour-of-day baseline: DO normally falls all night to a pre-dawn minimum) plus any fall
      faster than usual beyond ``slope_allow`` learned slope spreads (Theil-Sen slope of the
      last ``window`` readings, extrapolated over ``trend_h``), scored with a logistic centred
      on ``crit_mg_l``;
    * **gate** on the projection, so a normal night is not an alarm: DO lower than usual for
      this hour (``z`` spreads, 0.5 at ``z_gate``), an algal bloom (chlorophyll-a between
      ``chl_bloom_ug_l`` and ``chl_severe_ug_l``, or pH above ``ph_bloom``), or daytime DO
      below ``sat_low_pct`` % of saturation (bloom collapse). While the baseline is young the
      gate is open, so the projection alone decides.

    Score: ``max(now, projection * gate)``; the default threshold 0.5. The baseline learns
    only unflagged readings and never relearns a crash (``relearn_after = 0``).

    Args:
        crit_mg_l: the fish-kill danger level.
        width_mg_l: logistic width of the projection term.
        horizon_h: hours of usual decline looked ahead.
        trend_h: hours over which a faster-than-usual fall is extrapolated.
        window: readings in the slope, the current one included.
        alpha: smallest learning rate of the hour-of-day baseline.
        level_alpha: smallest learning rate of the day-to-day DO level.
        prior: readings an hour needs before its baseline counts fully.
        z_gate: DO this many spreads below usual opens the gate halfway.
        slope_allow: slope spreads of a fall that still count as usual.
        chl_bloom_ug_l: chlorophyll-a where the bloom factor starts.
        chl_severe_ug_l: chlorophyll-a where it is full.
        ph_bloom: pH above which photosynthesis marks a bloom.
        sat_low_pct: daytime saturation below this is suspicious.
        min_spread_mg_l: floor on the hour-of-day spread.
        default_temp_c: water temperature assumed without context.
        context_max_age_s: older context readings are ignored.
        utc_offset_s: local time offset (Hanoi: +7 h).
        relearn_after: see :class:`~processing.detectors.base.VectorDetector`.
        capacity: slots allocated up front.

    >>> d = OxygenRiskDetector()
    >>> d.score_one(6.5, 0.0) < 0.5 < d.score_one(1.5, 0.0)
    True
    """

    name: ClassVar[str] = "oxygen_risk"
    default_threshold: ClassVar[float] = 0.5
    catches: ClassVar[str] = "dissolved oxygen heading below the fish-kill level (West Lake)"
    context_quantities: ClassVar[frozenset[Quantity]] = frozenset(_CONTEXT)
    primary_quantity: ClassVar[Quantity | None] = Quantity.DISSOLVED_OXYGEN

    def __init__(
        self,
        *,
        crit_mg_l: float = 2.0,
        width_mg_l: float = 0.3,
        horizon_h: int = 6,
        trend_h: float = 1.0,
        window: int = 5,
        alpha: float = 0.05,
        level_alpha: float = 0.02,
        prior: float = 3.0,
        z_gate: float = 2.0,
        slope_allow: float = 2.0,
        chl_bloom_ug_l: float = 60.0,
        chl_severe_ug_l: float = 150.0,
        ph_bloom: float = 9.0,
        sat_low_pct: float = 40.0,
        min_spread_mg_l: float = 0.05,
        default_temp_c: float = 28.0,
        context_max_age_s: float = 3 * 3600.0,
        utc_offset_s: float = HANOI_UTC_OFFSET_S,
        relearn_after: int = 0,
        capacity: int = 0,
    ) -> None:
        for key, value in (
            ("crit_mg_l", crit_mg_l),
            ("width_mg_l", width_mg_l),
            ("trend_h", trend_h),
            ("prior", prior),
            ("z_gate", z_gate),
            ("slope_allow", slope_allow),
            ("context_max_age_s", context_max_age_s),
            ("min_spread_mg_l", min_spread_mg_l),
        ):
            check_positive(key, value)
        check_count("horizon_h", horizon_h, 1)
        check_count("window", window, 3)
        check_fraction("alpha", alpha)
        check_fraction("level_alpha", level_alpha)
        if not chl_bloom_ug_l < chl_severe_ug_l:
            msg = "chl_bloom_ug_l must be below chl_severe_ug_l"
            raise DetectorConfigError(msg)
        self.crit_mg_l, self.width_mg_l, self.horizon_h = crit_mg_l, width_mg_l, horizon_h
        self.trend_h, self.window, self.alpha, self.prior = trend_h, window, alpha, prior
        self.z_gate, self.chl_bloom_ug_l, self.chl_severe_ug_l = (
            z_gate,
            chl_bloom_ug_l,
            chl_severe_ug_l,
        )
        self.ph_bloom, self.sat_low_pct, self.default_temp_c = ph_bloom, sat_low_pct, default_temp_c
        self.context_max_age_s, self.utc_offset_s = context_max_age_s, float(utc_offset_s)
        self.min_spread_mg_l, self.slope_allow = min_spread_mg_l, slope_allow
        self._cfg = BaselineConfig(
            _HOURS, alpha, level_alpha, prior, 3.0, _WARMUP, min_spread_mg_l, 0.0
        )
        params: dict[str, ParamValue] = {
            "crit_mg_l": crit_mg_l,
            "width_mg_l": width_mg_l,
            "horizon_h": horizon_h,
        }
        params |= {"trend_h": trend_h, "window": window, "alpha": alpha, "prior": prior}
        params |= {"z_gate": z_gate, "chl_bloom_ug_l": chl_bloom_ug_l}
        params |= {"chl_severe_ug_l": chl_severe_ug_l, "ph_bloom": ph_bloom}
        params |= {"sat_low_pct": sat_low_pct, "default_temp_c": default_temp_c}
        params |= {"min_spread_mg_l": min_spread_mg_l, "slope_allow": slope_allow}
        params |= {"level_alpha": level_alpha}
        params |= {"context_max_age_s": context_max_age_s, "utc_offset_s": self.utc_offset_s}
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        missing = StateField((), np.nan)
        fields = {f"{key}{suffix}": missing for key in _CONTEXT.values() for suffix in ("", "_t")}
        ring = StateField((self.window - 1,), np.nan)
        fields |= {"ring_v": ring, "ring_t": ring, "pos": StateField(), "count": StateField()}
        fields |= {"slope_n": StateField(), "slope_spread": StateField()}
        return fields | baseline_fields(_HOURS)

    def update_context(
        self,
        slots: npt.ArrayLike,
        quantity: Quantity,
        values: npt.ArrayLike,
        times_s: npt.ArrayLike,
    ) -> None:
        """Record water temperature (°C), chlorophyll-a (µg/L) or pH for ``slots``."""
        key = _CONTEXT.get(quantity)
        if key is None:
            super().update_context(slots, quantity, values, times_s)
            return
        slot_arr, value_arr, time_arr = self._inputs(slots, values, times_s)
        ok = np.isfinite(value_arr) & np.isfinite(time_arr)
        newer = ok & ~(time_arr < self._state[f"{key}_t"][slot_arr])
        self._state[key][slot_arr[newer]] = value_arr[newer]
        self._state[f"{key}_t"][slot_arr[newer]] = time_arr[newer]

    def _context(self, key: str, slots: IntArray, times_s: FloatArray) -> FloatArray:
        age = times_s - self._state[f"{key}_t"][slots]
        fresh = np.abs(age) <= self.context_max_age_s
        return np.where(fresh, self._state[key][slots], np.nan)

    def _slope_deviation(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, usual_slope: FloatArray
    ) -> FloatArray:
        """Current DO slope minus the usual one for this hour (mg/L per hour; NaN if unknown)."""
        st = self._state

        def slope() -> FloatArray:
            v = np.column_stack([ring_ordered(st["ring_v"], st["pos"], slots), values])
            t = np.column_stack([ring_ordered(st["ring_t"], st["pos"], slots), times_s])
            return theil_sen_rows(v, t) * 3600.0

        return self._memoised("slope", slots, values, times_s, slope) - usual_slope

    def _bloom(self, slots: IntArray, times_s: FloatArray) -> FloatArray:
        chl = self._context("chl", slots, times_s)
        span = self.chl_severe_ug_l - self.chl_bloom_ug_l
        by_chl = np.nan_to_num(np.clip((chl - self.chl_bloom_ug_l) / span, 0.0, 1.0))
        ph = self._context("ph", slots, times_s)
        by_ph = np.nan_to_num(np.clip((ph - self.ph_bloom) / 0.5, 0.0, 1.0))
        return np.maximum(by_chl, by_ph)

    def _usual(
        self, slots: IntArray, times_s: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """Usual level, spread, readiness, decline ahead and slope for the current hour."""
        hour = np.floor(local_hour(times_s, self.utc_offset_s)).astype(np.intp)
        ahead = (hour[:, None] + np.arange(self.horizon_h + 1)) % _HOURS
        level, scale, weight = baseline(self._state, self._cfg, slots, ahead)
        ready = weight[:, 0] * (self._state["n"][slots] > 0)
        drop = np.maximum(0.0, level[:, 0] - level.min(axis=1)) * ready
        slope = (level[:, 1] - level[:, 0]) * ready
        return level[:, 0], scale[:, 0], ready, drop, slope

    def components(
        self, slots: npt.ArrayLike, values: npt.ArrayLike, times_s: npt.ArrayLike
    ) -> dict[str, FloatArray]:
        """The risk's parts, e.g. to explain an alert (scores nothing, learns nothing).

        Returns:
            ``now``, ``projection`` and ``gate`` in [0, 1], ``projected_min_mg_l`` and
            ``saturation_pct``, one value per reading.
        """
        slot_arr, value_arr, time_arr = self._inputs(slots, values, times_s)
        with np.errstate(all="ignore"):
            return self._components(slot_arr, value_arr, time_arr)

    def _components(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray
    ) -> dict[str, FloatArray]:
        st = self._state
        level, scale, ready, usual_drop, usual_slope = self._usual(slots, times_s)
        deviation = self._slope_deviation(slots, values, times_s, usual_slope)
        slope_scale = np.maximum(MEAN_ABS_TO_SIGMA * st["slope_spread"][slots], _MIN_SLOPE_SCALE)
        # Only a fall beyond the usual slope noise counts as "faster than usual".
        excess = np.minimum(0.0, np.nan_to_num(deviation) + self.slope_allow * slope_scale)
        projected = values - usual_drop + excess * self.trend_h
        z_low = np.maximum(0.0, level - values) / scale
        unusual = ready * squash(z_low, self.z_gate) + (1.0 - ready)
        temp = np.nan_to_num(self._context("temp", slots, times_s), nan=self.default_temp_c)
        saturation_pct = 100.0 * values / do_saturation_mg_l_many(temp)
        hour_f = local_hour(times_s, self.utc_offset_s)
        daytime = (hour_f >= _DAY_START_H) & (hour_f <= _DAY_END_H)
        low_sat = np.where(daytime, sigmoid((self.sat_low_pct - saturation_pct) / 5.0), 0.0)
        return {
            "now": sigmoid((self.crit_mg_l - values) / (self.width_mg_l / 3.0)),
            "projection": sigmoid((self.crit_mg_l - projected) / self.width_mg_l),
            "gate": np.maximum(np.maximum(unusual, self._bloom(slots, times_s)), low_sat),
            "projected_min_mg_l": projected,
            "saturation_pct": saturation_pct,
        }

    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        parts = self._components(slots, values, times_s)
        return np.maximum(parts["now"], parts["projection"] * parts["gate"])

    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        st = self._state
        _, _, _, _, usual_slope = self._usual(slots, times_s)
        deviation = self._slope_deviation(slots, values, times_s, usual_slope)
        ring_push(st["ring_v"], st["pos"], st["count"], slots, values)
        write = (st["pos"][slots].astype(np.intp) - 1) % (self.window - 1)
        st["ring_t"][slots, write] = times_s
        known = train & np.isfinite(deviation)
        s, dev = slots[known], np.abs(deviation[known])
        slope_n, slope_spread = st["slope_n"][s], st["slope_spread"][s]
        limit = np.where(slope_n < _WARMUP, np.inf, 3.0 * slope_spread * MEAN_ABS_TO_SIGMA)
        step = ewma_rate(slope_n, self.alpha)
        st["slope_spread"][s] = slope_spread + step * (np.minimum(dev, limit) - slope_spread)
        st["slope_n"][s] = slope_n + 1.0
        self._learn_level(slots[train], values[train], times_s[train])

    def _learn_level(self, s: IntArray, x: FloatArray, times_s: FloatArray) -> None:
        hour = np.floor(local_hour(times_s, self.utc_offset_s)).astype(np.intp)
        learn_baseline(self._state, self._cfg, s, hour, x)
