"""Rate of rise: a robust recent slope far steeper than the sensor's usual rate of change."""

from __future__ import annotations

from typing import ClassVar, Final, Literal

import numpy as np

from processing.detectors._private import (
    MEAN_ABS_TO_SIGMA,
    BoolArray,
    FloatArray,
    IntArray,
    check_count,
    check_fraction,
    check_positive,
    ewma_rate,
    squash,
)
from processing.detectors.base import ParamValue, StateField, VectorDetector
from processing.errors import DetectorConfigError
from processing.windows import ring_ordered, ring_push, theil_sen_rows

__all__ = ["RateOfRiseDetector"]

Direction = Literal["rise", "fall", "both"]
_DIRECTIONS: Final = ("rise", "fall", "both")


class RateOfRiseDetector(VectorDetector):
    """Fast rises (or falls): a street starting to flood, a river surging, DO collapsing.

    The rate is the Theil-Sen slope (units per hour) of the last ``window`` readings, the
    current one included, so one spike among them barely moves it. The detector learns the
    usual rate and its spread from unflagged readings and scores how many spreads the current
    rate lies beyond the usual one, in the chosen ``direction``: ``z / (z + z_half)``; the
    default threshold 0.5 flags ``z >= 5``. ``min_rate_scale_per_h`` stops a sensor that
    hardly ever changes (a dry street at 0 cm) from treating a tiny slope as extreme.

    Args:
        window: readings in the slope, the current one included (>= 3).
        direction: ``rise``, ``fall`` or ``both``.
        alpha: smallest learning rate of the usual rate and its spread.
        z_half: the rate z-score that scores 0.5.
        clip: residual clipping, in spreads, once warmed up.
        warmup: rates learned before scoring starts.
        min_rate_scale_per_h: floor on the rate spread, in units per hour.
        relearn_after: see :class:`~processing.detectors.base.VectorDetector`.
        capacity: slots allocated up front.

    >>> d = RateOfRiseDetector(min_rate_scale_per_h=1.0)
    >>> for i in range(60):  # a dry street: depth noise around 0 cm, one reading a minute
    ...     d.learn_one(0.3 * ((i * 7) % 5) / 4, 60.0 * i)
    >>> scores = []
    >>> for k in (1, 2, 3):  # then the water rises 5 cm a minute
    ...     scores.append(d.score_one(5.0 * k, 60.0 * (60 + k)))
    ...     d.learn_one(5.0 * k, 60.0 * (60 + k), protect=scores[-1] >= 0.5)
    >>> [s >= 0.5 for s in scores]
    [False, True, True]
    """

    name: ClassVar[str] = "rate_of_rise"
    default_threshold: ClassVar[float] = 0.5
    catches: ClassVar[str] = "unusually fast rises or falls (flash flooding, DO collapse)"

    def __init__(
        self,
        *,
        window: int = 7,
        direction: Direction = "rise",
        alpha: float = 0.02,
        z_half: float = 5.0,
        clip: float = 2.5,
        warmup: int = 20,
        min_rate_scale_per_h: float = 1e-6,
        relearn_after: int = 30,
        capacity: int = 0,
    ) -> None:
        check_count("window", window, 3)
        if direction not in _DIRECTIONS:
            msg = f"direction must be one of {_DIRECTIONS}, got {direction!r}"
            raise DetectorConfigError(msg)
        check_fraction("alpha", alpha)
        check_positive("z_half", z_half)
        check_positive("clip", clip)
        check_count("warmup", warmup, 1)
        check_positive("min_rate_scale_per_h", min_rate_scale_per_h)
        self.window, self.direction, self.alpha = window, direction, alpha
        self.z_half, self.clip, self.warmup = z_half, clip, warmup
        self.min_rate_scale_per_h = min_rate_scale_per_h
        params: dict[str, ParamValue] = {
            "window": window,
            "direction": direction,
            "alpha": alpha,
            "z_half": z_half,
        }
        params |= {"clip": clip, "warmup": warmup}
        params |= {"min_rate_scale_per_h": min_rate_scale_per_h}
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        ring = StateField((self.window - 1,), np.nan)
        fields = {"ring_v": ring, "ring_t": ring, "pos": StateField(), "count": StateField()}
        return fields | {"n": StateField(), "mean": StateField(), "spread": StateField()}

    def _rate_per_h(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        def compute() -> FloatArray:
            return self._compute_rate(slots, values, times_s)

        return self._memoised("rate", slots, values, times_s, compute)

    def _compute_rate(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        st = self._state
        v = np.column_stack([ring_ordered(st["ring_v"], st["pos"], slots), values])
        t = np.column_stack([ring_ordered(st["ring_t"], st["pos"], slots), times_s])
        full = st["count"][slots] >= self.window - 1
        return np.where(full, theil_sen_rows(v, t) * 3600.0, np.nan)

    def _excess(self, slots: IntArray, rate: FloatArray) -> FloatArray:
        mean, spread = self._state["mean"][slots], self._state["spread"][slots]
        scale = np.maximum(MEAN_ABS_TO_SIGMA * spread, self.min_rate_scale_per_h)
        deviation = (rate - mean) / scale
        if self.direction == "rise":
            return deviation
        if self.direction == "fall":
            return -deviation
        return np.abs(deviation)

    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        rate = self._rate_per_h(slots, values, times_s)
        z = self._excess(slots, rate)
        ready = (self._state["n"][slots] >= self.warmup) & np.isfinite(rate)
        return np.where(ready, squash(z, self.z_half), 0.0)

    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        st = self._state
        rate = self._rate_per_h(slots, values, times_s)
        ring_push(st["ring_v"], st["pos"], st["count"], slots, values)
        # The time ring shares the write position, which ring_push has just advanced.
        write = (st["pos"][slots].astype(np.intp) - 1) % (self.window - 1)
        st["ring_t"][slots, write] = times_s
        learn = train & np.isfinite(rate)
        s, r = slots[learn], rate[learn]
        n, mean, spread = st["n"][s], st["mean"][s], st["spread"][s]
        step = ewma_rate(n, self.alpha)
        limit = self.clip * np.maximum(MEAN_ABS_TO_SIGMA * spread, self.min_rate_scale_per_h)
        residual = r - mean
        clipped = np.where(n < self.warmup, residual, np.clip(residual, -limit, limit))
        st["mean"][s] = np.where(n == 0, r, mean + step * clipped)
        st["spread"][s] = np.where(n == 0, 0.0, spread + step * (np.abs(clipped) - spread))
        st["n"][s] = n + 1.0
