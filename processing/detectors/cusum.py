"""Two-sided CUSUM: accumulates small persistent shifts away from a learned reference level."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from contract import HANOI_UTC_OFFSET_S
from processing.detectors._baseline import (
    BaselineConfig,
    baseline,
    baseline_fields,
    learn_baseline,
)
from processing.detectors._private import (
    BoolArray,
    FloatArray,
    IntArray,
    check_count,
    check_fraction,
    check_positive,
    local_hour,
    squash,
)
from processing.detectors.base import ParamValue, StateField, VectorDetector
from processing.errors import DetectorConfigError

__all__ = ["CusumDetector"]


class CusumDetector(VectorDetector):
    """Small but persistent shifts away from the usual level (a slow build-up, a step).

    The reference is a robust baseline by local hour of day (as in ``seasonal_mad``, learned
    from unflagged readings with the slow rate ``alpha``), so a daily cycle is not a shift;
    with ``daily=False`` it is a single robust level. Each reading is standardised against
    it, ``z = (x - level) / spread``, and fed to the two one-sided sums
    ``S+ = max(0, S+ + z - k)`` and ``S- = max(0, S- - z - k)``. The score is
    ``S / (S + h)`` with ``S = max(S+, S-)``, so the default threshold 0.5 is the classic
    alarm ``S >= h`` (h = 8: about 10 000 readings between false alarms on independent
    noise; a shift of one standard deviation is found after about 18 readings, of two after
    about 6). The sums advance on every reading (they are the test statistic, not the
    baseline) and are capped at ``cap * h`` so the alarm ends soon after the shift does.

    Args:
        alpha: smallest learning rate of the reference's hour-of-day profile.
        level_alpha: smallest learning rate of its level (slow, so shifts stand out).
        k: allowance (in standard deviations) subtracted per reading.
        h: decision interval; ``S = h`` scores 0.5.
        cap: the sums never exceed ``cap * h``.
        daily: reference by local hour of day (24 bins) rather than one level.
        direction: ``both`` sums, or only ``up`` (rises) or ``down`` (falls): a pollution
            alert about a rise must not fire when rain washes the air clean.
        prior: readings an hour needs before it is trusted (and scored).
        clip: residual clipping of the reference, in spreads.
        warmup: readings learned before scoring starts.
        utc_offset_s: local time offset (Hanoi: +7 h).
        min_scale: absolute floor on the spread.
        rel_scale: floor as a fraction of ``|level|``.
        relearn_after: see :class:`~processing.detectors.base.VectorDetector`.
        capacity: slots allocated up front.

    >>> d = CusumDetector(warmup=5, daily=False)
    >>> for i in range(60):
    ...     d.learn_one(1.0 + 0.1 * (i % 2), 60.0 * i)
    >>> scores = []
    >>> for i in range(60, 80):  # a shift of about two standard deviations builds up
    ...     scores.append(d.score_one(1.15, 60.0 * i))
    ...     d.learn_one(1.15, 60.0 * i, protect=scores[-1] >= 0.5)
    >>> scores[0] < 0.5 <= max(scores)
    True
    """

    name: ClassVar[str] = "cusum"
    default_threshold: ClassVar[float] = 0.5
    catches: ClassVar[str] = "small persistent shifts from the usual level (build-ups, steps)"

    def __init__(
        self,
        *,
        alpha: float = 0.01,
        level_alpha: float = 0.002,
        k: float = 0.5,
        h: float = 8.0,
        cap: float = 1.5,
        daily: bool = True,
        direction: str = "both",
        prior: float = 3.0,
        clip: float = 3.0,
        warmup: int = 20,
        utc_offset_s: float = HANOI_UTC_OFFSET_S,
        min_scale: float = 1e-6,
        rel_scale: float = 1e-4,
        relearn_after: int = 120,
        capacity: int = 0,
    ) -> None:
        check_fraction("alpha", alpha)
        check_fraction("level_alpha", level_alpha)
        for key, value in (("h", h), ("cap", cap), ("prior", prior), ("clip", clip)):
            check_positive(key, value)
        check_positive("min_scale", min_scale)
        check_count("warmup", warmup, 1)
        if direction not in ("both", "up", "down"):
            msg = f"direction must be 'both', 'up' or 'down', got {direction!r}"
            raise DetectorConfigError(msg)
        if not (np.isfinite(k) and k >= 0):
            msg = f"k must be a finite number >= 0, got {k!r}"
            raise DetectorConfigError(msg)
        self.alpha, self.k, self.h, self.cap, self.daily = alpha, k, h, cap, daily
        self.direction = direction
        self.warmup, self.utc_offset_s = warmup, float(utc_offset_s)
        bins = 24 if daily else 1
        self._cfg = BaselineConfig(
            bins, alpha, level_alpha, prior, clip, warmup, min_scale, rel_scale
        )
        params: dict[str, ParamValue] = {"alpha": alpha, "k": k, "h": h, "cap": cap}
        params |= {"daily": daily, "prior": prior, "clip": clip, "warmup": warmup}
        params |= {"utc_offset_s": self.utc_offset_s, "min_scale": min_scale}
        params |= {"rel_scale": rel_scale, "level_alpha": level_alpha, "direction": direction}
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        return baseline_fields(self._cfg.bins) | {"s_hi": StateField(), "s_lo": StateField()}

    def _bins(self, times_s: FloatArray) -> IntArray:
        if not self.daily:
            return np.zeros(times_s.shape[0], dtype=np.intp)
        return np.floor(local_hour(times_s, self.utc_offset_s)).astype(np.intp)

    def _sums(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        """The updated sums, and whether the reference is ready to judge this reading."""
        level, scale, weight = baseline(self._state, self._cfg, slots, self._bins(times_s)[:, None])
        z = (values - level[:, 0]) / scale[:, 0]
        limit = self.cap * self.h
        s_hi = np.clip(self._state["s_hi"][slots] + z - self.k, 0.0, limit)
        s_lo = np.clip(self._state["s_lo"][slots] - z - self.k, 0.0, limit)
        # An hour seen fewer than ``prior`` times cannot tell a shift from the daily cycle.
        ready = (self._state["n"][slots] >= self.warmup) & (weight[:, 0] >= 0.5)
        return s_hi, s_lo, ready

    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        s_hi, s_lo, ready = self._sums(slots, values, times_s)
        if self.direction == "up":
            s_lo = np.zeros_like(s_lo)
        elif self.direction == "down":
            s_hi = np.zeros_like(s_hi)
        return np.where(ready, squash(np.maximum(s_hi, s_lo), self.h), 0.0)

    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        s_hi, s_lo, ready = self._sums(slots, values, times_s)
        self._state["s_hi"][slots] = np.where(ready, s_hi, 0.0)
        self._state["s_lo"][slots] = np.where(ready, s_lo, 0.0)
        bins = self._bins(times_s[train])
        learn_baseline(self._state, self._cfg, slots[train], bins, values[train])
