"""Spikes: a reading far from the median of the sensor's last few accepted readings."""

from __future__ import annotations

from typing import ClassVar

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
    scale_floor,
    squash,
)
from processing.detectors.base import ParamValue, StateField, VectorDetector
from processing.errors import DetectorConfigError
from processing.windows import nan_median_rows, ring_ordered, ring_push

__all__ = ["SpikeDetector"]


class SpikeDetector(VectorDetector):
    """Isolated spikes and glitches (a bad sample, electrical noise, a bird on the sensor).

    The reference is the median of the last ``window`` *accepted* readings, so a flagged
    spike never becomes part of it; the scale is the running mean absolute residual against
    that median. Score: ``z / (z + z_half)``; the default threshold 0.5 flags readings five
    scales away. The scale never falls below ``long_floor`` times a slowly learned long-run
    scale (rate ``long_alpha``): a sensor resting on a floor for hours (ozone at night, a
    dry street) would otherwise shrink its scale to nothing and call the morning a spike.
    After ``relearn_after`` flagged readings in a row the new level is accepted (a step is a
    step, not a spike).

    Args:
        window: accepted readings in the reference median.
        z_half: the z-score that scores 0.5.
        alpha: smallest learning rate of the scale.
        clip: residual clipping, in scales, once warmed up.
        warmup: residuals learned before scoring starts.
        min_scale: absolute floor on the scale.
        rel_scale: floor as a fraction of ``|median|``.
        long_alpha: learning rate of the long-run scale.
        long_floor: the scale's floor as a fraction of the long-run scale.
        relearn_after: see :class:`~processing.detectors.base.VectorDetector`.
        capacity: slots allocated up front.

    >>> d = SpikeDetector()
    >>> for i in range(30):
    ...     d.learn_one(50.0 + (i % 4), 60.0 * i)
    >>> d.score_one(52.0, 1800.0) < 0.5 < d.score_one(90.0, 1800.0)
    True
    """

    name: ClassVar[str] = "spike"
    default_threshold: ClassVar[float] = 0.5
    catches: ClassVar[str] = "isolated spikes and glitches"

    def __init__(
        self,
        *,
        window: int = 5,
        z_half: float = 5.0,
        alpha: float = 0.05,
        clip: float = 3.0,
        warmup: int = 10,
        min_scale: float = 1e-6,
        rel_scale: float = 1e-4,
        long_alpha: float = 0.0005,
        long_floor: float = 0.5,
        relearn_after: int = 3,
        capacity: int = 0,
    ) -> None:
        check_count("window", window, 1)
        check_positive("z_half", z_half)
        check_fraction("alpha", alpha)
        check_positive("clip", clip)
        check_count("warmup", warmup, 1)
        check_positive("min_scale", min_scale)
        check_fraction("long_alpha", long_alpha)
        if not 0 <= long_floor <= 1:
            msg = f"long_floor must lie in [0, 1], got {long_floor!r}"
            raise DetectorConfigError(msg)
        self.long_alpha, self.long_floor = long_alpha, long_floor
        self.window, self.z_half, self.alpha, self.clip = window, z_half, alpha, clip
        self.warmup, self.min_scale, self.rel_scale = warmup, min_scale, rel_scale
        params: dict[str, ParamValue] = {
            "window": window,
            "z_half": z_half,
            "alpha": alpha,
            "clip": clip,
        }
        params |= {"warmup": warmup, "min_scale": min_scale, "rel_scale": rel_scale}
        params |= {"long_alpha": long_alpha, "long_floor": long_floor}
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        fields = {"ring": StateField((self.window,), np.nan), "pos": StateField()}
        fields |= {"count": StateField(), "n": StateField(), "spread": StateField()}
        return fields | {"long_spread": StateField()}

    def _reference(self, slots: IntArray) -> tuple[FloatArray, FloatArray]:
        st = self._state
        median = nan_median_rows(ring_ordered(st["ring"], st["pos"], slots))
        floor = scale_floor(np.nan_to_num(median), self.min_scale, self.rel_scale)
        floor = np.maximum(floor, self.long_floor * MEAN_ABS_TO_SIGMA * st["long_spread"][slots])
        return median, np.maximum(MEAN_ABS_TO_SIGMA * st["spread"][slots], floor)

    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        median, scale = self._reference(slots)
        z = np.abs(values - median) / scale
        st = self._state
        ready = (st["count"][slots] >= self.window) & (st["n"][slots] >= self.warmup)
        return np.where(ready & np.isfinite(median), squash(z, self.z_half), 0.0)

    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        st = self._state
        median, scale = self._reference(slots)
        residual = np.abs(values - median)
        learn = train & np.isfinite(residual)
        s = slots[learn]
        n, spread = st["n"][s], st["spread"][s]
        clipped = np.where(
            n < self.warmup, residual[learn], np.minimum(residual[learn], self.clip * scale[learn])
        )
        st["spread"][s] = spread + ewma_rate(n, self.alpha) * (clipped - spread)
        long = st["long_spread"][s]
        st["long_spread"][s] = long + ewma_rate(n, self.long_alpha) * (clipped - long)
        st["n"][s] = n + 1.0
        ring_push(st["ring"], st["pos"], st["count"], slots[train], values[train])
