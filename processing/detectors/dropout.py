"""Dropout: readings missing for several reporting intervals (a dead or silent sensor)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from processing.detectors._private import (
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

__all__ = ["DropoutDetector"]


class DropoutDetector(VectorDetector):
    """Gaps in reporting: a dead, silent or intermittently connected sensor.

    The expected reporting interval is ``interval_s`` when configured (the registry's
    nominal interval), otherwise learned from unflagged gaps (each gap capped at
    ``max_gap_factor`` intervals, so one outage barely moves it). With ``m`` the number of
    intervals missed (``gap / interval - 1``) the score is ``m / (m + missed_half)``; the
    default threshold 0.5 flags three missed readings. A reading scores the gap that it
    ends; :meth:`score_silence` scores sensors that are *still* silent at a given time, which
    is how a service notices a dead sensor without waiting for its next reading.

    Args:
        interval_s: nominal reporting interval in seconds, or None to learn it.
        missed_half: missed intervals that score 0.5.
        alpha: smallest learning rate of the learned interval.
        max_gap_factor: gaps longer than this many intervals are capped when learning.
        warmup: gaps learned before scoring starts (ignored with ``interval_s``).
        relearn_after: see :class:`~processing.detectors.base.VectorDetector`.
        capacity: slots allocated up front.

    >>> d = DropoutDetector()
    >>> for i in range(20):
    ...     d.learn_one(1.0, 60.0 * i)
    >>> round(d.score_one(1.0, 60.0 * 20), 2), round(d.score_one(1.0, 60.0 * 22), 2)
    (0.0, 0.4)
    >>> bool(d.score_silence(60.0 * 30.0)[0] >= 0.5)
    True
    """

    name: ClassVar[str] = "dropout"
    default_threshold: ClassVar[float] = 0.5
    catches: ClassVar[str] = "missing readings (dead, silent or intermittent sensors)"

    def __init__(
        self,
        *,
        interval_s: float | None = None,
        missed_half: float = 3.0,
        alpha: float = 0.05,
        max_gap_factor: float = 3.0,
        warmup: int = 3,
        relearn_after: int = 3,
        capacity: int = 0,
    ) -> None:
        if interval_s is not None:
            check_positive("interval_s", interval_s)
        check_positive("missed_half", missed_half)
        check_fraction("alpha", alpha)
        check_positive("max_gap_factor", max_gap_factor)
        check_count("warmup", warmup, 1)
        self.interval_s, self.missed_half, self.alpha = interval_s, missed_half, alpha
        self.max_gap_factor, self.warmup = max_gap_factor, warmup
        params: dict[str, ParamValue] = {
            "interval_s": interval_s,
            "missed_half": missed_half,
            "alpha": alpha,
        }
        params |= {"max_gap_factor": max_gap_factor, "warmup": warmup}
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        return {"last_t": StateField((), np.nan), "interval": StateField(), "n": StateField()}

    def _gap_score(self, slots: IntArray, times_s: FloatArray) -> FloatArray:
        st = self._state
        gap = times_s - st["last_t"][slots]
        if self.interval_s is not None:
            expected = np.full(slots.shape[0], self.interval_s)
            ready = np.isfinite(gap)
        else:
            expected = st["interval"][slots]
            ready = np.isfinite(gap) & (st["n"][slots] >= self.warmup) & (expected > 0)
        missed = gap / np.where(expected > 0, expected, 1.0) - 1.0
        return np.where(ready, squash(missed, self.missed_half), 0.0)

    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        return self._gap_score(slots, times_s)

    def score_silence(
        self, now_s: float, slots: npt.ArrayLike | None = None, *, since_s: float | None = None
    ) -> FloatArray:
        """Score how overdue each slot's next reading is at ``now_s`` (0 for unseen slots).

        Args:
            now_s: the current time, epoch seconds.
            slots: the slots to check; all allocated slots when None.
            since_s: when watching began (e.g. a restart): a gap is counted from no earlier
                than this, so sensors are not called silent for the time nobody listened.
        """
        chosen = np.arange(self._capacity) if slots is None else np.asarray(slots, np.intp)
        if chosen.size:
            self.ensure_capacity(int(chosen.max()) + 1)  # slots reserved, never scored yet
        now = np.full(chosen.shape[0], float(now_s))
        if since_s is not None:
            # Counting the gap from max(last_t, since) is scoring "now - (since - last_t)".
            last = self._state["last_t"][chosen]
            now = now - np.maximum(0.0, np.nan_to_num(float(since_s) - last, nan=0.0))
        with np.errstate(all="ignore"):
            scores = self._gap_score(chosen, now)
        return np.clip(np.nan_to_num(scores, nan=0.0), 0.0, 1.0)

    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        st = self._state
        last = st["last_t"][slots]
        gap = times_s - last
        learn = train & np.isfinite(gap) & (gap > 0)
        s, g = slots[learn], gap[learn]
        n, interval = st["n"][s], st["interval"][s]
        capped = np.where(n == 0, g, np.minimum(g, self.max_gap_factor * interval))
        st["interval"][s] = np.where(
            n == 0, g, interval + ewma_rate(n, self.alpha) * (capped - interval)
        )
        st["n"][s] = n + 1.0
        st["last_t"][slots] = np.fmax(last, times_s)
