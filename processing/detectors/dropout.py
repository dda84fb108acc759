"""Dropout: a gap in reporting that this sensor's own history of gaps makes rare."""

from __future__ import annotations

from typing import ClassVar, Final

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
)
from processing.detectors._tail import (
    TAIL_FIELDS,
    TailConfig,
    tail_init,
    tail_rarity_rows,
    tail_teach_rows,
)
from processing.detectors.base import ParamValue, StateField, VectorDetector

__all__ = ["DropoutDetector"]

_TAIL0: Final = np.array(tail_init(2.0))
"""A new sensor's calibration, its threshold and spread per unit of its first gap."""
_IN_SECONDS: Final = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
"""The fields of a calibration in the statistic's units (its mean and deviation)."""


class DropoutDetector(VectorDetector):
    """Gaps in reporting: a dead, silent or intermittently connected sensor.

    **Statistic.** The gap, in seconds, since the sensor's latest reading: the one a reading
    ends, or (:meth:`score_silence`) the one still open at a given time, which is how a
    service notices a dead sensor without waiting for its next reading.

    **Calibration.** The gap is scored by its tail probability against the sensor's own
    history of gaps (:mod:`~processing.detectors._tail`, the calibration of the
    ``calibrated`` and ``spike`` detectors): an irregular reporter (a gateway that batches, a
    device on a flaky link) learns a long tail of gaps and is not called silent when it is
    merely irregular; a metronome's gap of a few intervals is rare. A gap under ``min_gap``
    usual intervals is never rare; the usual interval is ``interval_s`` when configured (the
    registry's nominal interval), otherwise learnt from ordinary gaps, each capped at
    ``max_gap_factor`` intervals so one outage barely moves it. The default threshold 0.4
    flags a gap this sensor shows once in about 10 000; a young calibration (its first few
    hundred gaps) inflates its probabilities, so it waits longer.

    **Learning never locks; one outage, one alarm.** Each gap teaches the calibration when
    the reading that ends it arrives, unless that reading was flagged (an outage must not
    teach that outages are normal) — but after ``relearn_after`` flagged gaps in a row they
    do (the sensor's schedule has changed). An outage is one gap: its alarm stays open until
    the sensor is heard again (the silence rule keeps one alert per station).

    Args:
        interval_s: nominal reporting interval in seconds, or None to learn it.
        min_gap: gaps up to this many usual intervals are never rare.
        alpha: smallest learning rate of the learned interval.
        max_gap_factor: gaps longer than this many intervals are capped when learning it.
        warmup: gaps learned before scoring starts (ignored with ``interval_s``).
        tail_spread: the calibration threshold, in mean absolute deviations above the mean.
        memory: gaps the calibration remembers.
        relearn_after: see :class:`~processing.detectors.base.VectorDetector`.
        capacity: slots allocated up front.

    >>> d = DropoutDetector()
    >>> for i in range(400):
    ...     d.learn_one(1.0, 60.0 * i)
    >>> round(d.score_one(1.0, 60.0 * 400), 2), bool(d.score_one(1.0, 60.0 * 402) < 0.4)
    (0.0, True)
    >>> bool(d.score_silence(60.0 * 420.0)[0] >= 0.4)
    True
    """

    name: ClassVar[str] = "dropout"
    default_threshold: ClassVar[float] = 0.4
    catches: ClassVar[str] = "missing readings (dead, silent or intermittent sensors)"

    def __init__(
        self,
        *,
        interval_s: float | None = None,
        min_gap: float = 2.0,
        alpha: float = 0.05,
        max_gap_factor: float = 3.0,
        warmup: int = 3,
        tail_spread: float = 2.5,
        memory: float = 10_000.0,
        relearn_after: int = 3,
        capacity: int = 0,
    ) -> None:
        if interval_s is not None:
            check_positive("interval_s", interval_s)
        for key, value in (("min_gap", min_gap), ("max_gap_factor", max_gap_factor),
                           ("tail_spread", tail_spread)):  # fmt: skip
            check_positive(key, value)
        check_fraction("alpha", alpha)
        check_count("warmup", warmup, 1)
        self.interval_s, self.min_gap, self.alpha = interval_s, min_gap, alpha
        self.max_gap_factor, self.warmup = max_gap_factor, warmup
        self.tail = TailConfig(tail_spread, memory)
        params: dict[str, ParamValue] = {
            "interval_s": interval_s, "min_gap": min_gap, "alpha": alpha,
            "max_gap_factor": max_gap_factor, "warmup": warmup, "tail_spread": tail_spread,
            "memory": memory,
        }  # fmt: skip
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        fields = {"last_t": StateField((), np.nan), "interval": StateField(), "n": StateField()}
        return fields | {"tails": StateField((len(TAIL_FIELDS),))}

    def _usual(self, slots: IntArray) -> tuple[FloatArray, BoolArray]:
        """The usual interval of each slot, and whether its gaps are judged yet."""
        st = self._state
        if self.interval_s is not None:
            return np.full(slots.shape[0], self.interval_s), st["n"][slots] >= 1
        interval = st["interval"][slots]
        return interval, (st["n"][slots] >= self.warmup) & (interval > 0)

    def _gap_score(self, slots: IntArray, times_s: FloatArray) -> FloatArray:
        gap = times_s - self._state["last_t"][slots]
        interval, ready = self._usual(slots)
        ready &= np.isfinite(gap) & (gap > 0)
        scores = np.zeros(slots.shape[0])
        r = np.flatnonzero(ready)
        if r.size:
            floors = self.min_gap * interval[r]
            scores[r] = tail_rarity_rows(self._state["tails"], slots[r], gap[r], self.tail, floors)
        return scores

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
        first = n == 0
        if first.any():  # a new (or reset) sensor: a calibration in units of its first gap
            scale = np.where(_IN_SECONDS > 0, g[first, None], 1.0)
            st["tails"][s[first]] = _TAIL0 * scale
        usual = np.full(s.shape[0], self.interval_s) if self.interval_s else interval
        usual = np.where(usual > 0, usual, g)
        tail_teach_rows(st["tails"], s, g, self.tail, self.min_gap * usual)
        capped = np.where(first, g, np.minimum(g, self.max_gap_factor * interval))
        st["interval"][s] = np.where(
            first, g, interval + ewma_rate(n, self.alpha) * (capped - interval)
        )
        st["n"][s] = n + 1.0
        st["last_t"][slots] = np.fmax(last, times_s)
