"""EWMA z-score: distance from an exponentially weighted mean, in running standard deviations."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from processing.detectors._private import (
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

__all__ = ["EwmaDetector"]


class EwmaDetector(VectorDetector):
    """Sudden departures from a slowly moving level (a generic change/outlier detector).

    Keeps an exponentially weighted mean and variance per sensor (an exact running mean while
    warming up). Score: ``z / (z + z_half)`` with ``z = |x - mean| / std``; the default
    threshold 0.5 flags ``|z| >= z_half`` (4 standard deviations).

    Args:
        alpha: weight of a new reading in the mean and variance.
        z_half: the z-score that scores 0.5.
        warmup: readings learned before the detector scores anything above 0.
        min_std: absolute floor on the standard deviation (a constant signal stays finite).
        rel_std: floor as a fraction of ``|mean|``.
        relearn_after: see :class:`~processing.detectors.base.VectorDetector`.
        capacity: slots allocated up front.

    >>> d = EwmaDetector()
    >>> for i in range(30):
    ...     d.learn_one(10.0 + (i % 3) * 0.1, 60.0 * i)
    >>> d.score_one(10.1, 1800.0) < 0.5 < d.score_one(25.0, 1800.0)
    True
    """

    name: ClassVar[str] = "ewma"
    default_threshold: ClassVar[float] = 0.5
    catches: ClassVar[str] = "sudden departures from the recent level (spikes, steps)"

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        z_half: float = 4.0,
        warmup: int = 10,
        min_std: float = 1e-6,
        rel_std: float = 1e-4,
        relearn_after: int = 30,
        capacity: int = 0,
    ) -> None:
        check_fraction("alpha", alpha)
        check_positive("z_half", z_half)
        check_count("warmup", warmup, 1)
        check_positive("min_std", min_std)
        self.alpha, self.z_half, self.warmup = alpha, z_half, warmup
        self.min_std, self.rel_std = min_std, rel_std
        params: dict[str, ParamValue] = {"alpha": alpha, "z_half": z_half, "warmup": warmup}
        params |= {"min_std": min_std, "rel_std": rel_std}
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        return {"n": StateField(), "mean": StateField(), "var": StateField()}

    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        n, mean, var = (self._state[k][slots] for k in ("n", "mean", "var"))
        std = np.maximum(np.sqrt(var), scale_floor(mean, self.min_std, self.rel_std))
        z = np.abs(values - mean) / std
        return np.where(n >= self.warmup, squash(z, self.z_half), 0.0)

    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        s = slots[train]
        x = values[train]
        n, mean, var = (self._state[k][s] for k in ("n", "mean", "var"))
        rate = np.where(n == 0, 1.0, ewma_rate(n, self.alpha))
        delta = x - mean
        self._state["mean"][s] = mean + rate * delta
        self._state["var"][s] = np.where(n == 0, 0.0, (1.0 - rate) * (var + rate * delta**2))
        self._state["n"][s] = n + 1.0
