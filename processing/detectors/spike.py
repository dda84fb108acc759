"""Spikes: a reading whose distance from the recent median is rare for this sensor."""

from __future__ import annotations

from typing import ClassVar, Final

import numpy as np

from processing.detectors._private import (
    MEAN_ABS_TO_SIGMA,
    BoolArray,
    FloatArray,
    IntArray,
    check_alarm,
    check_count,
    check_fraction,
    check_positive,
    check_seconds,
    event_scores,
    ewma_rate,
    scale_floor,
)
from processing.detectors._tail import (
    TAIL_FIELDS,
    TailConfig,
    rarity_many,
    tail_init,
    tail_learn_many,
    tail_p_many,
)
from processing.detectors.base import ParamValue, StateField, VectorDetector
from processing.errors import DetectorConfigError
from processing.windows import nan_median_rows, ring_push

__all__ = ["SpikeDetector"]

Z_FLOOR: Final = 4.0
"""A reading within four scales of the median is never rare, whatever its calibration says
(a sensor that has sat on one value for days has a calibration with nothing in its tail);
it also spares most rounds the tail arithmetic."""
_U0: Final = 2.0
"""Starting calibration threshold of the distance, in scales."""
_TAIL0: Final = np.array(tail_init(_U0))
"""A new sensor's calibration (the columns of its ``tails`` row are :data:`TAIL_FIELDS`)."""


class SpikeDetector(VectorDetector):
    """Isolated spikes and glitches (a bad sample, electrical noise, a bird on the sensor).

    **Distance.** The reference is the median of the sensor's last ``window`` readings; the
    scale is the running mean absolute residual against it, never below the data's own
    floors: half the sensor's resolution (the smallest step seen between two readings, so a
    quantised sensor moving one step is not a spike), ``long_floor`` times a slowly learnt
    long-run scale (a sensor resting on a floor for hours, ozone at night or a dry street,
    would otherwise call the morning a spike), ``rel_scale`` of the level and ``min_scale``.

    **Calibration.** The distance in scales is scored by its tail probability against the
    sensor's own history of distances (:mod:`~processing.detectors._tail`, the calibration of
    the ``calibrated`` detector): heavy-tailed noise learns a heavy tail, so its ordinary
    outliers stay ordinary. The score is :func:`~processing.detectors._tail.rarity_many` of
    it: the default threshold 0.4 flags a distance this sensor shows once in about 10 000
    readings (a week of one-minute readings, five weeks of five-minute ones), and the lanes
    report a flag only once the next reading shows it isolated; a distance within four
    scales is never rare. A young calibration (its first few hundred readings) inflates its
    probabilities, so a new sensor's spikes must be far larger to be called.

    **Learning never locks.** Every reading teaches, with bounded influence: it enters the
    median window (one spike barely moves a median; a new level takes it over after half a
    window), the scale learns residuals clipped at ``clip`` scales and the calibration's
    moments move a bounded amount per value; only alarms and the readings of their
    refractory periods stay out of the calibration (a burst of glitches must not make
    glitches ordinary), while the distances under the alarm keep teaching it, so a sensor
    whose noise truly grows heavier is learnt. Protection is ignored.

    **One event, one alarm; time in seconds.** A raw score at or above ``alarm`` opens a
    refractory period of ``refractory_s`` (extended while raw alarms go on) during which
    scores are capped at ``calm``. A reading more than ``stale_s`` after the sensor's
    previous one is not scored (there is nothing recent to compare it with) but teaches;
    repeated and backward timestamps are scored like any reading and never move the
    sensor's clock back.

    Args:
        window: readings in the reference median.
        alpha: smallest learning rate of the scale.
        clip: residual clipping, in scales, once warmed up.
        warmup: residuals learned before scoring starts.
        min_scale: absolute floor on the scale.
        rel_scale: floor as a fraction of ``|median|``.
        long_alpha: learning rate of the long-run scale.
        long_floor: the scale's floor as a fraction of the long-run scale.
        tail_spread: the calibration threshold, in mean absolute deviations above the mean.
        memory: readings the calibration remembers.
        alarm: raw score that opens a refractory period (default: the default threshold).
        calm: score cap during a refractory period.
        refractory_s: seconds after an alarm during which no other alarm is raised.
        stale_s: a reading this long after the previous one is not scored.
        relearn_after: unused (every reading trains); kept for the common contract.
        capacity: slots allocated up front.

    >>> d = SpikeDetector()
    >>> for i in range(60):
    ...     d.learn_one(50.0 + (i % 4), 60.0 * i)
    >>> d.score_one(52.0, 3600.0) < 0.4 < d.score_one(150.0, 3600.0)
    True
    """

    name: ClassVar[str] = "spike"
    default_threshold: ClassVar[float] = 0.4
    catches: ClassVar[str] = "isolated spikes and glitches"

    def __init__(
        self,
        *,
        window: int = 5,
        alpha: float = 0.05,
        clip: float = 3.0,
        warmup: int = 10,
        min_scale: float = 1e-6,
        rel_scale: float = 1e-4,
        long_alpha: float = 0.0005,
        long_floor: float = 0.5,
        tail_spread: float = 2.5,
        memory: float = 10_000.0,
        alarm: float | None = None,
        calm: float = 0.2,
        refractory_s: float = 900.0,
        stale_s: float = 3600.0,
        relearn_after: int = 0,
        capacity: int = 0,
    ) -> None:
        check_count("window", window, 1)
        check_fraction("alpha", alpha)
        check_positive("clip", clip)
        check_count("warmup", warmup, 1)
        check_positive("min_scale", min_scale)
        check_fraction("long_alpha", long_alpha)
        check_positive("tail_spread", tail_spread)
        check_positive("stale_s", stale_s)
        if not 0 <= long_floor <= 1:
            msg = f"long_floor must lie in [0, 1], got {long_floor!r}"
            raise DetectorConfigError(msg)
        check_seconds("refractory_s", refractory_s)
        self.alarm = check_alarm(calm, self.default_threshold if alarm is None else alarm)
        self.window, self.alpha, self.clip, self.warmup = window, alpha, clip, warmup
        self.min_scale, self.rel_scale = min_scale, rel_scale
        self.long_alpha, self.long_floor = long_alpha, long_floor
        self.calm, self.refractory_s, self.stale_s = calm, refractory_s, stale_s
        self.tail = TailConfig(tail_spread, memory)
        params: dict[str, ParamValue] = {
            "window": window, "alpha": alpha, "clip": clip, "warmup": warmup,
            "min_scale": min_scale, "rel_scale": rel_scale, "long_alpha": long_alpha,
            "long_floor": long_floor, "tail_spread": tail_spread, "memory": memory,
            "alarm": alarm, "calm": calm, "refractory_s": refractory_s, "stale_s": stale_s,
        }  # fmt: skip
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        fields = {"ring": StateField((self.window,), np.nan), "pos": StateField()}
        fields |= {key: StateField() for key in ("count", "n", "spread", "long_spread")}
        fields |= {"quantum": StateField(), "last": StateField((), np.nan)}
        fields |= {"t_last": StateField((), np.nan), "quiet_until": StateField((), -np.inf)}
        return fields | {"tails": StateField((len(TAIL_FIELDS),))}

    def _reference(self, slots: IntArray) -> tuple[FloatArray, FloatArray]:
        st = self._state
        median = nan_median_rows(st["ring"][slots])  # a median needs no order
        floor = scale_floor(np.nan_to_num(median), self.min_scale, self.rel_scale)
        floor = np.maximum(floor, self.long_floor * MEAN_ABS_TO_SIGMA * st["long_spread"][slots])
        floor = np.maximum(floor, 0.5 * st["quantum"][slots])
        return median, np.maximum(MEAN_ABS_TO_SIGMA * st["spread"][slots], floor)

    def _tails(self, slots: IntArray) -> tuple[FloatArray, dict[str, FloatArray]]:
        block = self._state["tails"][slots]  # one gather, then a column per field
        return block, {key: block[:, j] for j, key in enumerate(TAIL_FIELDS)}

    def _evaluate(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        """Rows: distance in scales, raw score, whether scored, median, scale (pure, memoised)."""

        def compute() -> FloatArray:
            st = self._state
            median, scale = self._reference(slots)
            z = np.abs(values - median) / scale
            ready = (st["count"][slots] >= self.window) & (st["n"][slots] >= self.warmup)
            ready &= np.isfinite(z) & (times_s - st["t_last"][slots] <= self.stale_s)
            # Most readings lie under their calibration threshold: only the others are worked on.
            md = st["tails"][slots, :2]
            u = md[:, 0] + self.tail.spread * md[:, 1]
            rare = np.flatnonzero(ready & (z > np.maximum(u, Z_FLOOR)))
            raw = np.zeros(slots.size)
            if rare.size:
                p = tail_p_many(self._tails(slots[rare])[1], z[rare], self.tail, np.array(True),
                                np.array(Z_FLOOR))  # fmt: skip
                raw[rare] = rarity_many(p)
            return np.stack([z, raw, ready.astype(np.float64), median, scale])

        return self._memoised("spike", slots, values, times_s, compute)

    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        raw = self._evaluate(slots, values, times_s)[1]
        quiet = times_s < self._state["quiet_until"][slots]
        return event_scores(raw, quiet, self.calm, self.alarm)

    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        del train  # every reading trains, with bounded influence
        z, raw, ready, median, scale = self._evaluate(slots, values, times_s)
        st = self._state
        residual = np.abs(values - median)
        learn = np.isfinite(residual)
        s = slots
        if not learn.all():  # a sensor's first reading: nothing to measure against yet
            s, residual, scale = slots[learn], residual[learn], scale[learn]
        n, spread = st["n"][s], st["spread"][s]
        if (n == 0).any():
            st["tails"][s[n == 0]] = _TAIL0  # a new (or reset) sensor: a fresh calibration
        limit = np.where(n < self.warmup, np.inf, self.clip * scale)
        clipped = np.minimum(residual, limit)
        st["spread"][s] = spread + ewma_rate(n, self.alpha) * (clipped - spread)
        long = st["long_spread"][s]
        st["long_spread"][s] = long + ewma_rate(n, self.long_alpha) * (clipped - long)
        st["n"][s] = n + 1.0
        scored = ready > 0
        # An event (an alarm and its refractory period) does not teach the calibration what
        # is ordinary: a burst of glitches would otherwise fatten the tail that judges them.
        quiet = times_s < st["quiet_until"][slots]
        teach = scored & ~quiet & (raw < self.alarm)
        if teach.any():
            c, zc = (slots, z) if teach.all() else (slots[teach], z[teach])
            block, tails = self._tails(c)
            new = tail_learn_many(tails, zc, self.tail, np.array(Z_FLOOR))
            for j, key in enumerate(TAIL_FIELDS):
                block[:, j] = new[key]
            st["tails"][c] = block
        alarms = scored & (raw >= self.alarm)
        a = slots[alarms]
        st["quiet_until"][a] = np.maximum(st["quiet_until"][a], times_s[alarms] + self.refractory_s)
        self._learn_time(slots, values, times_s)
        ring_push(st["ring"], st["pos"], st["count"], slots, values)

    def _learn_time(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> None:
        """The sensor's resolution, previous value and clock."""
        st = self._state
        last = st["last"][slots]
        gap = np.abs(values - last)
        resolves = np.isfinite(gap) & (gap > 1e-12 * (np.abs(values) + np.abs(last)))
        quantum = st["quantum"][slots]
        st["quantum"][slots] = np.where(
            resolves, np.where(quantum <= 0, gap, np.minimum(quantum, gap)), quantum
        )
        st["last"][slots] = values
        st["t_last"][slots] = np.fmax(st["t_last"][slots], times_s)
