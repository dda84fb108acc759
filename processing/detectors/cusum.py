"""CUSUM: a sum of small persistent rises (or falls) whose size is rare for the sensor."""

from __future__ import annotations

from typing import ClassVar, Final

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
    check_alarm,
    check_count,
    check_fraction,
    check_positive,
    check_seconds,
    event_scores,
    local_hour,
)
from processing.detectors._tail import (
    TAIL_FIELDS,
    TailConfig,
    tail_init,
    tail_rarity_rows,
    tail_teach_ordinary,
)
from processing.detectors.base import ParamValue, StateField, VectorDetector
from processing.errors import DetectorConfigError

__all__ = ["CusumDetector"]

_TAIL0: Final = np.array(tail_init(2.0))
"""A new sensor's calibration (columns :data:`~processing.detectors._tail.TAIL_FIELDS`)."""


class CusumDetector(VectorDetector):
    """Small but persistent shifts away from the usual level (a slow build-up, a step).

    **Statistic.** The reference is a robust baseline by local hour of day (as in
    ``seasonal_mad``, learned from unflagged readings with the slow rate ``alpha``), so a
    daily cycle is not a shift; with ``daily=False`` it is a single robust level. Each reading
    is standardised against it, ``z = (x - level) / spread``, clipped at ``z_clip`` (one wild
    reading adds a bounded amount: a sustained rise is many readings), and fed to the two
    one-sided sums ``S+ = max(0, S+ + z - k)`` and ``S- = max(0, S- - z - k)``, capped at
    ``cap`` so an alarm's sum comes back down soon after the shift ends. The statistic is
    ``S = max(S+, S-)`` (only ``S+`` with ``direction="up"``).

    **Calibration.** ``S`` is scored by its tail probability against the sensor's own history
    of sums (:mod:`~processing.detectors._tail`, the calibration of the ``calibrated`` and
    ``spike`` detectors, imported, not copied), turned into a score by
    :func:`~processing.detectors._tail.rarity_many`: the default threshold 0.4 flags a sum
    this sensor reaches once in about 10 000 readings (14 months of hourly means), whatever
    its noise (heavy tails, whole units, a wandering level each learn their own tail of
    sums). A sum within
    ``min_sum`` is never rare; a young calibration inflates its probabilities.

    **Learning never locks; one event, one alarm; time in seconds.** The sums advance on
    every reading; the baseline learns from unflagged readings (and again after
    ``relearn_after`` flagged ones, so a new level is adopted); the calibration learns every
    ordinary sum, with bounded influence, but not the sums of an alarm and of its refractory
    period (a long episode must not teach that episodes are usual). A raw score at or above
    ``alarm`` opens a refractory period of ``refractory_s`` seconds, extended while raw alarms
    go on, during which scores are capped at ``calm``: a sustained rise is one alarm.

    Args:
        alpha: smallest learning rate of the reference's hour-of-day profile.
        level_alpha: smallest learning rate of its level (slow, so shifts stand out).
        k: allowance (in standard deviations) subtracted per reading.
        z_clip: largest standardised step one reading adds.
        cap: the sums never exceed it.
        min_sum: a sum within it is never rare.
        daily: reference by local hour of day (24 bins) rather than one level.
        direction: ``both`` sums, or only ``up`` (rises) or ``down`` (falls): a pollution
            alert about a rise must not fire when rain washes the air clean.
        prior: readings an hour needs before it is trusted (and scored).
        clip: residual clipping of the reference, in spreads.
        warmup: readings learned before scoring starts.
        utc_offset_s: local time offset (Hanoi: +7 h).
        min_scale: absolute floor on the spread.
        rel_scale: floor as a fraction of ``|level|``.
        tail_spread: the calibration threshold, in mean absolute deviations above the mean.
        memory: readings the calibration remembers.
        alarm: raw score that opens a refractory period (default: the default threshold).
        calm: score cap during a refractory period.
        refractory_s: seconds after an alarm during which no other alarm is raised.
        relearn_after: see :class:`~processing.detectors.base.VectorDetector`.
        capacity: slots allocated up front.

    >>> d = CusumDetector(warmup=5, daily=False)
    >>> for i in range(600):
    ...     d.learn_one(1.0 + 0.1 * ((i * 7) % 3), 60.0 * i)
    >>> scores = []
    >>> for i in range(600, 630):  # a shift of about two and a half spreads builds up
    ...     scores.append(d.score_one(1.3, 60.0 * i))
    ...     d.learn_one(1.3, 60.0 * i, protect=scores[-1] >= 0.4)
    >>> scores[0] < 0.4 <= max(scores)
    True
    """

    name: ClassVar[str] = "cusum"
    default_threshold: ClassVar[float] = 0.4
    catches: ClassVar[str] = "small persistent shifts from the usual level (build-ups, steps)"

    def __init__(
        self,
        *,
        alpha: float = 0.01,
        level_alpha: float = 0.002,
        k: float = 0.5,
        z_clip: float = 4.0,
        cap: float = 24.0,
        min_sum: float = 4.0,
        daily: bool = True,
        direction: str = "both",
        prior: float = 3.0,
        clip: float = 3.0,
        warmup: int = 20,
        utc_offset_s: float = HANOI_UTC_OFFSET_S,
        min_scale: float = 1e-6,
        rel_scale: float = 1e-4,
        tail_spread: float = 2.5,
        memory: float = 10_000.0,
        alarm: float | None = None,
        calm: float = 0.2,
        refractory_s: float = 6 * 3600.0,
        relearn_after: int = 120,
        capacity: int = 0,
    ) -> None:
        check_fraction("alpha", alpha)
        check_fraction("level_alpha", level_alpha)
        positive = {"z_clip": z_clip, "cap": cap, "min_sum": min_sum, "prior": prior}
        for key, value in (positive | {"clip": clip, "tail_spread": tail_spread}).items():
            check_positive(key, value)
        check_positive("min_scale", min_scale)
        check_count("warmup", warmup, 1)
        if direction not in ("both", "up", "down"):
            msg = f"direction must be 'both', 'up' or 'down', got {direction!r}"
            raise DetectorConfigError(msg)
        if not (np.isfinite(k) and k >= 0):
            msg = f"k must be a finite number >= 0, got {k!r}"
            raise DetectorConfigError(msg)
        check_seconds("refractory_s", refractory_s)
        self.alarm = check_alarm(calm, self.default_threshold if alarm is None else alarm)
        self.alpha, self.k, self.z_clip, self.cap, self.daily = alpha, k, z_clip, cap, daily
        self.min_sum, self.direction = min_sum, direction
        self.warmup, self.utc_offset_s = warmup, float(utc_offset_s)
        self.calm, self.refractory_s = calm, refractory_s
        self.tail = TailConfig(tail_spread, memory)
        bins = 24 if daily else 1
        self._cfg = BaselineConfig(
            bins, alpha, level_alpha, prior, clip, warmup, min_scale, rel_scale
        )
        params: dict[str, ParamValue] = {
            "alpha": alpha, "k": k, "z_clip": z_clip, "cap": cap, "min_sum": min_sum,
            "daily": daily, "prior": prior, "clip": clip, "warmup": warmup,
            "utc_offset_s": self.utc_offset_s, "min_scale": min_scale, "rel_scale": rel_scale,
            "level_alpha": level_alpha, "direction": direction, "tail_spread": tail_spread,
            "memory": memory, "alarm": alarm, "calm": calm, "refractory_s": refractory_s,
        }  # fmt: skip
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        fields = baseline_fields(self._cfg.bins) | {"s_hi": StateField(), "s_lo": StateField()}
        fields |= {"quiet_until": StateField((), -np.inf), "pending": StateField()}
        return fields | {"tails": StateField((len(TAIL_FIELDS),))}

    def _bins(self, times_s: FloatArray) -> IntArray:
        if not self.daily:
            return np.zeros(times_s.shape[0], dtype=np.intp)
        return np.floor(local_hour(times_s, self.utc_offset_s)).astype(np.intp)

    def _evaluate(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        """Rows: the updated sums S+ and S-, the statistic, raw score, whether scored."""

        def compute() -> FloatArray:
            st = self._state
            level, scale, weight = baseline(st, self._cfg, slots, self._bins(times_s)[:, None])
            z = np.clip((values - level[:, 0]) / scale[:, 0], -self.z_clip, self.z_clip)
            s_hi = np.clip(st["s_hi"][slots] + z - self.k, 0.0, self.cap)
            s_lo = np.clip(st["s_lo"][slots] - z - self.k, 0.0, self.cap)
            # An hour seen fewer than ``prior`` times cannot tell a shift from the daily cycle.
            ready = (st["n"][slots] >= self.warmup) & (weight[:, 0] >= 0.5) & np.isfinite(z)
            s_hi, s_lo = np.where(ready, s_hi, 0.0), np.where(ready, s_lo, 0.0)
            if self.direction == "up":
                stat = s_hi
            elif self.direction == "down":
                stat = s_lo
            else:
                stat = np.maximum(s_hi, s_lo)
            raw = np.zeros(slots.size)
            j = np.flatnonzero(stat > self.min_sum)
            if j.size:
                floors = np.full(j.size, self.min_sum)
                raw[j] = tail_rarity_rows(st["tails"], slots[j], stat[j], self.tail, floors,
                                          heavy=False)  # fmt: skip
            return np.stack([s_hi, s_lo, stat, raw, ready.astype(np.float64)])

        return self._memoised("cusum", slots, values, times_s, compute)

    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        raw = self._evaluate(slots, values, times_s)[3]
        quiet = times_s < self._state["quiet_until"][slots]
        return event_scores(raw, quiet, self.calm, self.alarm)

    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        s_hi, s_lo, stat, raw, ready = self._evaluate(slots, values, times_s)
        st = self._state
        fresh = st["n"][slots] == 0
        if fresh.any():
            st["tails"][slots[fresh]] = _TAIL0  # a new (or reset) sensor: a fresh calibration
        st["s_hi"][slots], st["s_lo"][slots] = s_hi, s_lo
        scored = ready > 0
        quiet = times_s < st["quiet_until"][slots]
        alarms = scored & (raw >= self.alarm)
        # An alarm and its refractory period do not teach the calibration what is ordinary;
        # a sum above calm waits until its excursion ends by itself (see tail_teach_ordinary).
        t = np.flatnonzero(scored)
        if t.size:
            hot, drop = raw[t] >= self.calm, quiet[t] | alarms[t]
            tail_teach_ordinary(st["tails"], st["pending"], slots[t], stat[t], hot, drop,
                                self.tail, np.full(t.size, self.min_sum))  # fmt: skip
        a = slots[alarms]
        st["quiet_until"][a] = np.maximum(st["quiet_until"][a], times_s[alarms] + self.refractory_s)
        bins = self._bins(times_s[train])
        learn_baseline(st, self._cfg, slots[train], bins, values[train])
