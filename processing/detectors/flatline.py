"""Flatline: a sensor repeating the same value for longer than its own history makes likely."""

from __future__ import annotations

import math
from typing import ClassVar, Final

import numpy as np

from processing.detectors._private import (
    BoolArray,
    FloatArray,
    IntArray,
    check_count,
    check_fraction,
    check_positive,
    squash,
)
from processing.detectors.base import ParamValue, StateField, VectorDetector
from processing.errors import DetectorConfigError

__all__ = ["FlatlineDetector"]

_PRIOR_WEIGHT: Final = 5.0


class FlatlineDetector(VectorDetector):
    """A stuck (frozen) sensor: the same value over and over.

    The detector learns ``p``, the probability that a reading repeats the previous one (within
    ``tolerance``), from unflagged readings. A run of ``r`` repeats has probability ``p**r``
    under normal behaviour; the score is ``s / (s + surprise_half)`` with the surprise
    ``s = -r * ln(p)``, and only runs of at least ``min_run`` repeats score at all. With the
    default ``surprise_half = ln(10 000)`` the default threshold 0.5 flags a run that normal
    behaviour would produce less than once in 10 000 tries: a noisy analogue sensor after
    ``min_run`` repeats, a coarsely quantised one much later. Readings equal to
    ``exempt_value`` never count (a rain gauge at 0 mm or a dry street at 0 cm is not stuck).
    With ``floor_visits`` the detector also learns the sensor's *floor*, the lowest value its
    runs start at: once runs have come down to the same floor ``floor_visits`` separate times
    it is a detection limit or a physical zero (ozone at night), and runs there are normal.
    A sensor frozen at a new low is still flagged: its first visit does not make a floor.

    Args:
        tolerance: absolute difference still counted as a repeat.
        rel_tolerance: the same as a fraction of the previous value.
        min_run: repeats needed before the score can rise above 0.
        surprise_half: the surprise that scores 0.5.
        prior_p: repeat probability assumed before anything is learned.
        p_min: lower bound on the learned probability.
        p_max: upper bound on the learned probability.
        alpha: smallest learning rate of the probability.
        warmup: transitions learned before scoring starts.
        exempt_value: a value whose runs are normal, or None.
        floor_visits: separate runs at the lowest value that make it a floor (0: off).
        relearn_after: see :class:`~processing.detectors.base.VectorDetector` (0: a stuck
            sensor stays flagged).
        capacity: slots allocated up front.

    >>> d = FlatlineDetector()
    >>> for i in range(40):
    ...     d.learn_one(20.0 + 0.37 * ((i * 7) % 5), 60.0 * i)
    >>> scores = []
    >>> for i in range(40, 50):  # then the sensor freezes at 21.1
    ...     scores.append(d.score_one(21.1, 60.0 * i))
    ...     d.learn_one(21.1, 60.0 * i, protect=scores[-1] >= 0.5)
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
        min_run: int = 5,
        surprise_half: float = math.log(1e4),
        prior_p: float = 0.1,
        p_min: float = 0.02,
        p_max: float = 0.995,
        alpha: float = 0.01,
        warmup: int = 10,
        exempt_value: float | None = None,
        floor_visits: int = 0,
        relearn_after: int = 0,
        capacity: int = 0,
    ) -> None:
        if not (tolerance >= 0 and rel_tolerance >= 0):
            msg = "tolerance and rel_tolerance must be >= 0"
            raise DetectorConfigError(msg)
        if not 0 < p_min <= prior_p <= p_max < 1:
            msg = "need 0 < p_min <= prior_p <= p_max < 1"
            raise DetectorConfigError(msg)
        check_count("min_run", min_run, 1)
        check_count("warmup", warmup, 0)
        check_positive("surprise_half", surprise_half)
        check_fraction("alpha", alpha)
        check_count("floor_visits", floor_visits, 0)
        self.floor_visits = floor_visits
        self.tolerance, self.rel_tolerance, self.min_run = tolerance, rel_tolerance, min_run
        self.surprise_half, self.prior_p, self.alpha = surprise_half, prior_p, alpha
        self.p_min, self.p_max, self.warmup = p_min, p_max, warmup
        self.exempt_value = exempt_value
        params: dict[str, ParamValue] = {
            "tolerance": tolerance,
            "rel_tolerance": rel_tolerance,
            "min_run": min_run,
        }
        params |= {"surprise_half": surprise_half, "prior_p": prior_p, "alpha": alpha}
        params |= {"p_min": p_min, "p_max": p_max, "warmup": warmup}
        params |= {"exempt_value": exempt_value, "floor_visits": floor_visits}
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        return {
            "last": StateField((), np.nan),
            "run": StateField(),
            "p_same": StateField((), self.prior_p),
            "n": StateField(),
            "floor": StateField((), np.nan),
            "visits": StateField(),
        }

    def _repeats(self, slots: IntArray, values: FloatArray) -> tuple[BoolArray, FloatArray]:
        last = self._state["last"][slots]
        same = np.abs(values - last) <= self.tolerance + self.rel_tolerance * np.abs(last)
        same &= np.isfinite(last)
        return same, np.where(same, self._state["run"][slots] + 1.0, 0.0)

    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        _, repeats = self._repeats(slots, values)
        p = np.clip(self._state["p_same"][slots], self.p_min, self.p_max)
        surprise = -repeats * np.log(p)
        active = (repeats >= self.min_run) & (self._state["n"][slots] >= self.warmup)
        if self.exempt_value is not None:
            active &= np.abs(values - self.exempt_value) > self.tolerance
        if self.floor_visits:
            active &= ~(self._at_floor(slots, values) & (self._state["visits"][slots]
                                                         >= self.floor_visits))  # fmt: skip
        return np.where(active, squash(surprise, self.surprise_half), 0.0)

    def _at_floor(self, slots: IntArray, values: FloatArray) -> BoolArray:
        floor = self._state["floor"][slots]
        near: BoolArray = np.abs(values - floor) <= self.tolerance + self.rel_tolerance * np.abs(
            floor
        )
        return near & np.isfinite(floor)

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
        st = self._state
        same, repeats = self._repeats(slots, values)
        if self.floor_visits:
            self._learn_floor(slots, values, train & (repeats == 1.0))
        learn = train & np.isfinite(st["last"][slots])
        st["run"][slots] = repeats
        st["last"][slots] = values
        s = slots[learn]
        n, p = st["n"][s], st["p_same"][s]
        # The prior counts as a few pseudo-observations so one transition cannot swing p.
        rate = np.maximum(self.alpha, 1.0 / (n + _PRIOR_WEIGHT))
        st["p_same"][s] = p + rate * (same[learn] - p)
        st["n"][s] = n + 1.0
