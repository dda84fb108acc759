"""Rate of rise: a robust recent slope whose excess over the usual rate is rare for the sensor."""

from __future__ import annotations

from typing import ClassVar, Final, Literal

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
from processing.windows import ring_ordered, ring_push, theil_sen_rows

__all__ = ["RateOfRiseDetector"]

Direction = Literal["rise", "fall", "both"]
_DIRECTIONS: Final = ("rise", "fall", "both")
_TAIL0: Final = np.array(tail_init(2.0))
"""A new sensor's calibration (columns :data:`~processing.detectors._tail.TAIL_FIELDS`)."""


class RateOfRiseDetector(VectorDetector):
    """Fast rises (or falls): a street starting to flood, a river surging, DO collapsing.

    **Statistic.** The rate is the Theil-Sen slope (units per hour) of the last ``window``
    readings, the current one included, so one spike among them barely moves it. The detector
    learns the usual rate and its spread from unflagged readings; the statistic is the rate's
    excess over the usual one in the chosen ``direction``, in spreads, never below 0. The
    spread never falls under ``min_rate_scale_per_h``: a sensor that hardly ever changes (a
    dry street at 0 cm) does not treat a tiny slope as extreme.

    **Calibration.** The excess is scored by its tail probability against the sensor's own
    history of excesses (:mod:`~processing.detectors._tail`, the calibration of the
    ``calibrated``, ``spike`` and ``flatline`` detectors, imported, not copied), turned into a
    score by :func:`~processing.detectors._tail.rarity_many`: the default threshold 0.5 flags
    an excess this sensor shows once in about 100 000 readings. An excess within
    ``min_excess`` spreads is never rare (the physical floor: with the flood lane's 5 cm/h,
    water rising under 5 cm/h faster than usual never alarms). Above it, a sensor with no
    tail of its own (a dry street) is judged by the prior, an exponential tail: a first rise
    of three spreads (15 cm/h on the flood lane) is about one in a million. An excess beyond
    ``never_usual`` spreads (40 cm/h on the flood lane) never teaches: floods, however
    frequent, do not make floods usual.

    **Learning never locks; one event, one alarm; time in seconds.** Every ordinary reading
    teaches the calibration, with bounded influence; the readings of an event and of its
    refractory period do not (a flood must not teach that floods are usual). A raw score at
    or above ``alarm`` opens an event, which stays flagged while the raw score stays at or
    above ``calm`` (the water goes on rising: one alert, open while it rises); once it ends,
    for ``refractory_s`` seconds scores are capped at ``calm``. The usual rate learns from
    unflagged readings, and again after ``relearn_after`` flagged ones in a row, so a sensor
    whose rates truly change is learnt.

    Args:
        window: readings in the slope, the current one included (>= 3).
        direction: ``rise``, ``fall`` or ``both``.
        alpha: smallest learning rate of the usual rate and its spread.
        clip: residual clipping, in spreads, once warmed up.
        warmup: rates learned before scoring starts.
        min_rate_scale_per_h: floor on the rate spread, in units per hour.
        min_excess: an excess within this many spreads is never rare.
        never_usual: an excess beyond this many spreads never teaches the calibration (nor
            does the excursion it belongs to): however often a street floods, a flood's
            rise is never learnt as usual.
        tail_spread: the calibration threshold, in mean absolute deviations above the mean.
        memory: readings the calibration remembers.
        alarm: raw score that opens an event (default: the default threshold).
        calm: an event closes below it; the score cap during a refractory period.
        refractory_s: seconds after an event during which no other alarm is raised.
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
        clip: float = 2.5,
        warmup: int = 20,
        min_rate_scale_per_h: float = 1e-6,
        min_excess: float = 1.0,
        never_usual: float = 8.0,
        tail_spread: float = 2.5,
        memory: float = 10_000.0,
        alarm: float | None = None,
        calm: float = 0.2,
        refractory_s: float = 1800.0,
        relearn_after: int = 30,
        capacity: int = 0,
    ) -> None:
        check_count("window", window, 3)
        if direction not in _DIRECTIONS:
            msg = f"direction must be one of {_DIRECTIONS}, got {direction!r}"
            raise DetectorConfigError(msg)
        check_fraction("alpha", alpha)
        for key, value in (("clip", clip), ("min_rate_scale_per_h", min_rate_scale_per_h),
                           ("min_excess", min_excess), ("tail_spread", tail_spread)):  # fmt: skip
            check_positive(key, value)
        if not never_usual > min_excess:
            msg = f"never_usual must exceed min_excess, got {never_usual!r}"
            raise DetectorConfigError(msg)
        check_count("warmup", warmup, 1)
        check_seconds("refractory_s", refractory_s)
        self.alarm = check_alarm(calm, self.default_threshold if alarm is None else alarm)
        self.window, self.direction, self.alpha = window, direction, alpha
        self.clip, self.warmup = clip, warmup
        self.min_rate_scale_per_h, self.min_excess = min_rate_scale_per_h, min_excess
        self.never_usual = never_usual
        self.calm, self.refractory_s = calm, refractory_s
        self.tail = TailConfig(tail_spread, memory)
        params: dict[str, ParamValue] = {
            "window": window, "direction": direction, "alpha": alpha, "clip": clip,
            "warmup": warmup, "min_rate_scale_per_h": min_rate_scale_per_h,
            "min_excess": min_excess, "never_usual": never_usual,
            "tail_spread": tail_spread, "memory": memory, "alarm": alarm, "calm": calm,
            "refractory_s": refractory_s,
        }  # fmt: skip
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        ring = StateField((self.window - 1,), np.nan)
        fields = {"ring_v": ring, "ring_t": ring, "pos": StateField(), "count": StateField()}
        fields |= {"n": StateField(), "mean": StateField(), "spread": StateField()}
        fields |= {"event": StateField(), "quiet_until": StateField((), -np.inf)}
        fields |= {"pending": StateField()}
        return fields | {"tails": StateField((len(TAIL_FIELDS),))}

    def _evaluate(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        """Rows: rate per hour, excess in spreads, raw score, whether scored (pure, memoised)."""

        def compute() -> FloatArray:
            st = self._state
            v = np.column_stack([ring_ordered(st["ring_v"], st["pos"], slots), values])
            t = np.column_stack([ring_ordered(st["ring_t"], st["pos"], slots), times_s])
            full = st["count"][slots] >= self.window - 1
            rate = np.where(full, theil_sen_rows(v, t) * 3600.0, np.nan)
            excess = self._excess(slots, rate)
            excess = np.maximum(np.nan_to_num(excess, nan=0.0), 0.0)
            ready = (st["n"][slots] >= self.warmup) & np.isfinite(rate)
            raw = np.zeros(slots.size)
            j = np.flatnonzero(ready & (excess > self.min_excess))
            if j.size:
                floors = np.full(j.size, self.min_excess)
                raw[j] = tail_rarity_rows(st["tails"], slots[j], excess[j], self.tail, floors,
                                          heavy=False)  # fmt: skip
            return np.stack([rate, excess, raw, ready.astype(np.float64)])

        return self._memoised("rate", slots, values, times_s, compute)

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
        raw = self._evaluate(slots, values, times_s)[2]
        st = self._state
        # An open event stays flagged while the rise goes on (hysteresis at ``calm``).
        held = (st["event"][slots] > 0) & (raw >= self.calm)
        quiet = times_s < st["quiet_until"][slots]
        return event_scores(raw, quiet, self.calm, self.alarm, held)

    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        st = self._state
        rate, excess, raw, ready = self._evaluate(slots, values, times_s)
        n0 = st["n"][slots] == 0
        if n0.any():
            st["tails"][slots[n0]] = _TAIL0  # a new (or reset) sensor: a fresh calibration
        scored = ready > 0
        was = st["event"][slots] > 0
        quiet = times_s < st["quiet_until"][slots]
        opened = scored & ~was & ~quiet & (raw >= self.alarm)
        closed = was & ~(scored & (raw >= self.calm))
        st["quiet_until"][slots[closed]] = times_s[closed] + self.refractory_s
        event = (was & ~closed) | opened
        st["event"][slots] = event.astype(np.float64)
        # An event and its refractory period do not teach the calibration what is ordinary;
        # an excess above calm waits until its excursion ends by itself.
        t = np.flatnonzero(scored)
        if t.size:
            drop = (event | was | quiet)[t] | (excess[t] > self.never_usual)
            hot = raw[t] >= self.calm
            tail_teach_ordinary(st["tails"], st["pending"], slots[t], excess[t], hot, drop,
                                self.tail, np.full(t.size, self.min_excess))  # fmt: skip
        self._learn_rate(slots, values, times_s, rate, train)

    def _learn_rate(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, rate: FloatArray,
        train: BoolArray,
    ) -> None:  # fmt: skip
        """The window of readings, and the usual rate and its spread where ``train``."""
        st = self._state
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
