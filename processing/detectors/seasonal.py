"""Robust seasonal baseline: location and spread by local hour of day and day type."""

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
    seasonal_bin,
    squash,
)
from processing.detectors.base import ParamValue, StateField, VectorDetector
from processing.errors import DetectorConfigError

__all__ = ["SeasonalMadDetector"]


class SeasonalMadDetector(VectorDetector):
    """Values unusual for this hour of the day (and weekday/weekend), e.g. a pollution episode.

    For every sensor it keeps a robust level and spread per local hour (Asia/Ho_Chi_Minh by
    default) and day type. A reading is compared with its hour's level (or, for an hour never
    seen, a global level) and with a spread that blends the hour's own spread and the spread
    pooled over all hours, weight ``n_bin / (n_bin + prior)``. Both are streaming M-estimates:
    residuals are clipped at ``clip`` spreads before they update anything, so a spike moves
    the baseline by a bounded amount, and the spread is a running mean absolute deviation
    scaled to a standard deviation (a median/MAD approximation in O(1) memory per bin).
    Score: ``z / (z + z_half)`` with ``z = |x - level| / spread``; the default threshold 0.5
    flags ``z >= 4``.

    Args:
        alpha: smallest learning rate of the hour-of-day profile and spreads.
        level_alpha: smallest learning rate of the sensor's level (tracks slow drift).
        z_half: the robust z-score that scores 0.5.
        clip: residual clipping, in spreads.
        prior: readings a bin needs to weigh as much as the global baseline.
        warmup: readings learned before the detector scores anything above 0.
        weekly: separate bins for Saturday/Sunday.
        direction: ``both`` (unusually high or low), or only ``up`` or ``down``.
        utc_offset_s: local time offset (Hanoi: +7 h, no daylight saving).
        min_scale: absolute floor on the spread.
        rel_scale: floor as a fraction of ``|level|``.
        relearn_after: see :class:`~processing.detectors.base.VectorDetector`.
        capacity: slots allocated up front.

    >>> d = SeasonalMadDetector(weekly=False)
    >>> for i in range(24 * 6):  # six days of hourly data with a daily cycle
    ...     d.learn_one(20.0 + 10.0 * (i % 24 >= 12) + 0.5 * (i // 24 % 2), 3600.0 * i)
    >>> t = 3600.0 * (24 * 6 + 20 - 7)  # 20:00 local (13:00 UTC): the high part of the cycle
    >>> d.score_one(30.2, t) < 0.5 < d.score_one(20.2, t)
    True
    """

    name: ClassVar[str] = "seasonal_mad"
    default_threshold: ClassVar[float] = 0.5
    catches: ClassVar[str] = "values unusual for the hour of day / day type (episodes, outliers)"

    def __init__(
        self,
        *,
        alpha: float = 0.02,
        level_alpha: float = 0.01,
        z_half: float = 4.0,
        clip: float = 2.5,
        prior: float = 3.0,
        warmup: int = 10,
        weekly: bool = True,
        direction: str = "both",
        utc_offset_s: float = HANOI_UTC_OFFSET_S,
        min_scale: float = 1e-6,
        rel_scale: float = 1e-3,
        relearn_after: int = 60,
        capacity: int = 0,
    ) -> None:
        check_fraction("alpha", alpha)
        check_fraction("level_alpha", level_alpha)
        for key, value in (("z_half", z_half), ("clip", clip), ("prior", prior)):
            check_positive(key, value)
        check_positive("min_scale", min_scale)
        check_count("warmup", warmup, 1)
        if direction not in ("both", "up", "down"):
            msg = f"direction must be 'both', 'up' or 'down', got {direction!r}"
            raise DetectorConfigError(msg)
        self.direction = direction
        self.alpha, self.z_half, self.clip, self.prior = alpha, z_half, clip, prior
        self.warmup, self.weekly, self.utc_offset_s = warmup, weekly, float(utc_offset_s)
        self.min_scale, self.rel_scale = min_scale, rel_scale
        self.bins = 48 if weekly else 24
        self._cfg = BaselineConfig(
            self.bins, alpha, level_alpha, prior, clip, warmup, min_scale, rel_scale
        )
        params: dict[str, ParamValue] = {
            "alpha": alpha,
            "z_half": z_half,
            "clip": clip,
            "prior": prior,
        }
        params |= {"warmup": warmup, "weekly": weekly, "utc_offset_s": self.utc_offset_s}
        params |= {"min_scale": min_scale, "rel_scale": rel_scale, "level_alpha": level_alpha}
        params |= {"direction": direction}
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        return baseline_fields(self.bins)

    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        bins = seasonal_bin(times_s, self.utc_offset_s, self.weekly)
        level, scale, _ = baseline(self._state, self._cfg, slots, bins[:, None])
        deviation = values - level[:, 0]
        if self.direction == "up":
            deviation = np.maximum(deviation, 0.0)
        elif self.direction == "down":
            deviation = np.minimum(deviation, 0.0)
        z = np.abs(deviation) / scale[:, 0]
        return np.where(self._state["n"][slots] >= self.warmup, squash(z, self.z_half), 0.0)

    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        bins = seasonal_bin(times_s[train], self.utc_offset_s, self.weekly)
        learn_baseline(self._state, self._cfg, slots[train], bins, values[train])
