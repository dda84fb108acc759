"""Flatline: a value unchanged for longer than this sensor's own history makes rare."""

from __future__ import annotations

from typing import ClassVar, Final

import numpy as np

from processing.detectors._private import (
    BoolArray,
    FloatArray,
    IntArray,
    check_alarm,
    check_count,
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
    tail_settled,
    tail_teach_rows,
    tail_zeros,
)
from processing.detectors.base import ParamValue, StateField, VectorDetector
from processing.errors import DetectorConfigError

__all__ = ["FlatlineDetector"]

_TAIL0: Final = np.array(tail_init(0.0))
"""A new sensor's calibration: no stillness seen yet (its floor judges until it has)."""
_INTERVAL_ALPHA: Final = 0.05


class FlatlineDetector(VectorDetector):
    """A stuck (frozen) sensor: the same value for longer than this sensor makes likely.

    **Statistic.** How long, in seconds, the value has not moved (within ``tolerance``): 0 on
    a reading that differs from the previous one, growing by the time between readings while
    it repeats. A step counts at most ``max_step`` usual intervals (the sensor's learnt
    reporting interval), so a gap in reporting is not stillness.

    **Calibration.** That duration is scored by its tail probability against the sensor's
    own history of completed runs (how long its value stayed unchanged each time before it
    moved; :mod:`~processing.detectors._tail`, the calibration of the ``calibrated`` and
    ``spike`` detectors, imported, not copied): a quantised or slow sensor repeats itself all
    the time and learns a long tail, so its ordinary runs stay ordinary, while a noisy
    analogue sensor that never repeats finds a few repeats rare. A stillness under
    ``min_still`` usual intervals is never rare. The default threshold 0.5 flags a stillness
    this sensor's runs reach once in about 100 000; a young calibration (its first few
    hundred runs) inflates its probabilities, so it waits longer.

    **Values whose stillness is normal.** Readings equal to ``exempt_value`` never score (a
    dry street at 0 cm is not stuck). With ``floor_visits`` the detector also learns the
    sensor's *floor*, the lowest value its runs start at: once runs have come down to the
    same floor ``floor_visits`` separate times it is a detection limit or a physical zero
    (ozone at night), and runs there are normal. A sensor frozen at a new low is still
    flagged: its first visit does not make a floor. Neither teaches the calibration.

    **Learning never locks; one event, one alarm.** Every ordinary reading teaches the
    calibration its stillness; the readings of a run that raised an alarm do not (a stuck
    sensor must not teach that being stuck is normal), but when such a run ends by itself
    its length is taught once, with bounded influence, so a sensor whose long runs are its
    nature is learnt. A run that raised an alarm stays flagged while it lasts (one alert,
    open while the sensor is stuck); once it ends, for ``refractory_s`` seconds new runs
    score at most ``calm``. Protection is ignored: the detector keeps its own events.

    Args:
        tolerance: absolute difference still counted as a repeat.
        rel_tolerance: the same as a fraction of the previous value.
        min_still: stillness, in usual intervals, that is never rare.
        max_step: most usual intervals one step between readings adds to the stillness.
        warmup: readings learned before scoring starts.
        tail_spread: the calibration threshold, in mean absolute deviations above the mean.
        memory: readings the calibration remembers.
        alarm: raw score that opens an event (default: the default threshold).
        calm: score cap during a refractory period.
        refractory_s: seconds after an event during which no other alarm is raised.
        exempt_value: a value whose runs are normal, or None.
        floor_visits: separate runs at the lowest value that make it a floor (0: off).
        relearn_after: unused (the detector keeps its own events); kept for the contract.
        capacity: slots allocated up front.

    >>> d = FlatlineDetector()
    >>> for i in range(400):
    ...     d.learn_one(20.0 + 0.37 * ((i * 7) % 5), 60.0 * i)
    >>> scores = []
    >>> for i in range(400, 420):  # then the sensor freezes at 21.1
    ...     scores.append(d.score_one(21.1, 60.0 * i))
    ...     d.learn_one(21.1, 60.0 * i)
    >>> [round(s, 2) for s in scores[:2]], scores[-1] >= 0.5
    ([0.0, 0.0], True)
    """

    name: ClassVar[str] = "flatline"
    default_threshold: ClassVar[float] = 0.5
    catches: ClassVar[str] = "stuck sensors repeating one value"

    def __init__(
        self,
        *,
        tolerance: float = 0.0,
        rel_tolerance: float = 0.0,
        min_still: float = 1.0,
        max_step: float = 3.0,
        warmup: int = 10,
        tail_spread: float = 2.5,
        memory: float = 10_000.0,
        alarm: float | None = None,
        calm: float = 0.2,
        refractory_s: float = 900.0,
        exempt_value: float | None = None,
        floor_visits: int = 0,
        relearn_after: int = 0,
        capacity: int = 0,
    ) -> None:
        if not (tolerance >= 0 and rel_tolerance >= 0):
            msg = "tolerance and rel_tolerance must be >= 0"
            raise DetectorConfigError(msg)
        for key, value in (("min_still", min_still), ("max_step", max_step),
                           ("tail_spread", tail_spread)):  # fmt: skip
            check_positive(key, value)
        check_count("warmup", warmup, 0)
        check_count("floor_visits", floor_visits, 0)
        check_seconds("refractory_s", refractory_s)
        self.alarm = check_alarm(calm, self.default_threshold if alarm is None else alarm)
        self.tolerance, self.rel_tolerance = tolerance, rel_tolerance
        self.min_still, self.max_step, self.warmup = min_still, max_step, warmup
        self.calm, self.refractory_s = calm, refractory_s
        self.exempt_value, self.floor_visits = exempt_value, floor_visits
        self.tail = TailConfig(tail_spread, memory)
        params: dict[str, ParamValue] = {
            "tolerance": tolerance, "rel_tolerance": rel_tolerance, "min_still": min_still,
            "max_step": max_step, "warmup": warmup, "tail_spread": tail_spread,
            "memory": memory, "alarm": alarm, "calm": calm, "refractory_s": refractory_s,
            "exempt_value": exempt_value, "floor_visits": floor_visits,
        }  # fmt: skip
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        missing = StateField((), np.nan)
        fields = {"last": missing, "t_last": missing, "still_s": StateField()}
        fields |= {"interval": StateField(), "n": StateField(), "event": StateField()}
        fields |= {"quiet_until": StateField((), -np.inf), "zeros": StateField()}
        fields |= {"floor": missing, "visits": StateField()}
        return fields | {"tails": StateField((len(TAIL_FIELDS),))}

    def _close(self, values: FloatArray, reference: FloatArray) -> BoolArray:
        near: BoolArray = np.abs(values - reference) <= (
            self.tolerance + self.rel_tolerance * np.abs(reference)
        )
        return near

    def _normal_at(self, slots: IntArray, values: FloatArray) -> BoolArray:
        """Values whose stillness is normal (the exempt value, a learnt floor)."""
        normal = np.zeros(values.shape, dtype=bool)
        if self.exempt_value is not None:
            normal |= self._close(values, np.full(values.shape, self.exempt_value))
        if self.floor_visits:
            normal |= self._at_floor(slots, values) & (
                self._state["visits"][slots] >= self.floor_visits
            )
        return normal

    def _evaluate(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        """Rows: stillness in seconds, raw score, the value repeats (pure, memoised)."""

        def compute() -> FloatArray:
            st = self._state
            same = self._close(values, st["last"][slots]) & np.isfinite(st["last"][slots])
            interval = st["interval"][slots]
            step = np.clip(times_s - st["t_last"][slots], 0.0, self.max_step * interval)
            still = np.where(same, st["still_s"][slots] + np.nan_to_num(step), 0.0)
            judged = same & (interval > 0) & (st["n"][slots] >= self.warmup)
            judged &= ~self._normal_at(slots, values)
            raw = np.zeros(slots.size)
            j = np.flatnonzero(judged)
            if j.size:
                floors = self.min_still * interval[j]
                raw[j] = tail_rarity_rows(st["tails"], slots[j], still[j], self.tail, floors,
                                          pending=st["zeros"][slots[j]])  # fmt: skip
            return np.stack([still, raw, same.astype(np.float64)])

        return self._memoised("flatline", slots, values, times_s, compute)

    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        _, raw, same = self._evaluate(slots, values, times_s)
        st = self._state
        # A new run inside the refractory period of an event is quiet; the event's own run
        # (the sensor still stuck) keeps its score, so its alert stays open.
        own = (st["event"][slots] > 0) & (same > 0)
        quiet = (times_s < st["quiet_until"][slots]) & ~own
        return event_scores(raw, quiet, self.calm, self.alarm)

    def _at_floor(self, slots: IntArray, values: FloatArray) -> BoolArray:
        floor = self._state["floor"][slots]
        return self._close(values, floor) & np.isfinite(floor)

    def _learn_floor(self, slots: IntArray, values: FloatArray, starts: BoolArray) -> None:
        """A run starting at the floor is one more visit; lower than it, a new floor."""
        st = self._state
        s, v = slots[starts], values[starts]
        again = self._at_floor(s, v)
        lower = ~again & ~(v > st["floor"][s])  # also where no floor is known yet (NaN)
        st["visits"][s] = np.where(again, st["visits"][s] + 1.0,
                                   np.where(lower, 1.0, st["visits"][s]))  # fmt: skip
        st["floor"][s] = np.where(lower, v, st["floor"][s])

    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        del train  # the detector keeps its own events
        still, raw, same = self._evaluate(slots, values, times_s)
        st = self._state
        n, interval, last = st["n"][slots], st["interval"][slots], st["last"][slots]
        if (n == 0).any():
            st["tails"][slots[n == 0]] = _TAIL0  # a new (or reset) sensor: a fresh calibration
        repeats = same > 0
        # A run teaches its length once, when it ends: the run going on teaches nothing (a
        # stuck sensor would otherwise teach that being stuck is normal), and every run
        # that ends teaches, an alarm's too, with bounded influence: learning never locks.
        ended = ~repeats & np.isfinite(last) & (interval > 0)
        ended &= ~self._normal_at(slots, np.nan_to_num(last))
        if ended.any():
            self._teach_runs(slots[ended], st["still_s"][slots[ended]], interval[ended])
        event = st["event"][slots] > 0
        closed = np.flatnonzero(event & ~repeats)
        st["quiet_until"][slots[closed]] = times_s[closed] + self.refractory_s
        alarms = (raw >= self.alarm) & ~(times_s < st["quiet_until"][slots])
        st["event"][slots] = ((event & repeats) | alarms).astype(np.float64)
        if self.floor_visits:
            self._learn_floor(slots, values, repeats & (st["still_s"][slots] == 0))
        self._learn_interval(slots, times_s, interval, n)
        st["still_s"][slots] = still
        st["last"][slots] = values

    def _teach_runs(self, slots: IntArray, runs_s: FloatArray, interval: FloatArray) -> None:
        """Teach the calibration the runs that ended; runs of no length wait (see below).

        A noisy sensor ends a run of no length at every reading: once its calibration is
        settled, those zeros are counted and taught in bulk when a real run ends, with the
        same algebra (:func:`~processing.detectors._tail.tail_zeros`), and scored with them
        counted in, so most rounds of many sensors touch no calibration at all.
        """
        st = self._state
        wait = (runs_s == 0.0) & tail_settled(st["tails"], slots, self.tail)
        st["zeros"][slots[wait]] += 1.0
        now = slots[~wait]
        if not now.size:
            return
        pending = st["zeros"][now]
        flush = now[pending > 0]
        if flush.size:
            st["tails"][flush] = tail_zeros(st["tails"][flush], st["zeros"][flush], self.tail)
            st["zeros"][flush] = 0.0
        tail_teach_rows(
            st["tails"], now, runs_s[~wait], self.tail, self.min_still * interval[~wait]
        )

    def _learn_interval(
        self, slots: IntArray, times_s: FloatArray, interval: FloatArray, n: FloatArray
    ) -> None:
        """The sensor's usual reporting interval (gaps capped, so an outage barely moves it)."""
        st = self._state
        gap = times_s - st["t_last"][slots]
        known = np.isfinite(gap) & (gap > 0)
        capped = np.where(interval > 0, np.minimum(gap, self.max_step * interval), gap)
        rate = ewma_rate(n, _INTERVAL_ALPHA)
        learnt = np.where(interval > 0, interval + rate * (capped - interval), capped)
        st["interval"][slots] = np.where(known, learnt, interval)
        st["n"][slots] = n + known
        st["t_last"][slots] = np.fmax(st["t_last"][slots], times_s)
