"""Spatial: a sensor that disagrees with its neighbours (outlier now, or drifting away)."""

from __future__ import annotations

from typing import ClassVar, Final

import numpy as np
import numpy.typing as npt

from processing.detectors._neighbours import neighbour_table
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
)
from processing.detectors._tail import (
    TAIL_FIELDS,
    TailConfig,
    tail_init,
    tail_rarity_rows,
    tail_teach_rows,
)
from processing.detectors.base import DetectorSnapshot, ParamValue, StateField, VectorDetector
from processing.windows import nan_median_rows

__all__ = ["SpatialDetector"]

_TRIM: Final = 3.0  # residuals beyond this many spreads do not train the baseline
_TAIL0: Final = np.array(tail_init(1.0))
"""A new sensor's calibration of its evidence (in spreads)."""
_TAILS: Final = ("tails", "tails_next", "tails_judge", "tails_aside")
"""The calibration as it learns, as it stood at the last checkpoint, and as it stood at the
one before: the last judges (so what an emerging drift teaches judges nothing for at least
``teach_lag_s``), and an alarm puts the learning one back to it; and the one an excursion
teaches until it is over."""


class SpatialDetector(VectorDetector):
    """Drift against spatial neighbours (a miscalibrated or drifting sensor).

    Each sensor is compared with the median of its ``k`` nearest neighbours of the same
    group (same quantity) within ``radius_km`` (found with ``scipy.spatial.cKDTree``), using
    each neighbour's latest value measured at or before the reading's time and at most
    ``max_age_s`` old; the values of the round being processed are published first, so
    sensors reporting at the same time are compared with each other and a city-wide jump is
    not a disagreement. The residual ``x - median`` has a learned bias (sites differ; time
    constant ``bias_tau_s``, trimmed so a drift cannot drag it along) and spread.

    **Statistic: accumulated evidence.** Each reading's deviation from its bias, in spreads
    and clipped at ``clip`` (one wild reading is bounded evidence), enters a time-weighted
    mean with time constant ``evidence_tau_s`` (in seconds, so an irregular sensor weighs
    time, not rows); the statistic is its size. A slow drift builds it up over readings,
    one noisy point barely moves it (isolated glitches are the spike lane's).

    **Calibration.** The statistic is scored by its tail probability against this sensor's
    own history of it (:mod:`~processing.detectors._tail`, the calibration of the
    ``calibrated`` and ``spike`` detectors): a sensor whose site wanders against its
    neighbours (a local source, a street canyon) learns a wide tail, a sensor that tracks
    them closely a narrow one, so the same threshold means the same rarity on both. Evidence
    under ``min_evidence`` spreads is never rare. The default threshold 0.5 flags evidence this
    sensor shows once in about 100 000 readings.

    **Events, in seconds.** Every reading outside an event teaches the calibration (an
    excursion above ``calm`` once it has ended by itself, see :meth:`_teach`), which
    judges only ``teach_lag_s`` to twice that later (two checkpoints: an emerging drift must
    not teach that drifting is normal before it is judged). An alarm opens an event and puts
    the learning calibration back to the one that judged it; the event stays
    flagged while the evidence is above ``calm`` (one alarm per drift) and, once it closes,
    for ``refractory_s`` seconds scores are capped at ``calm``. During an event the bias does
    not learn, nor while the evidence is above ``calm`` (a slow drift must not drag it along);
    after ``adopt_s`` seconds of an event it does, untrimmed: a sensor moved or recalibrated
    for good is a new normal, and learning never locks.

    With ``log`` the comparison is made on ``log(1 + x)``: concentrations scale together (a
    city-wide episode multiplies every site, so absolute site differences grow with it, while
    ratios stay), and a sensor's drift is judged relative to the level.

    Sequential semantics are per *timestamp*, not per reading: one batch gives the same
    result as the same readings fed one timestamp at a time (when each timestamp holds at
    most one reading per sensor), while ``learn_one``/``score_one`` calls are rounds of
    their own and only see neighbours already learned.

    Args:
        k: neighbours per sensor.
        radius_km: neighbours further away are ignored.
        min_neighbors: fresh neighbour values needed for a reference.
        max_age_s: oldest neighbour value still used.
        bias_tau_s: time constant of the learned bias.
        evidence_tau_s: time constant of the accumulated evidence.
        spread_tau_s: time constant of the residual spread once warmed up.
        alpha: largest learning rate of the residual spread.
        clip: a reading's deviation counts at most this many spreads.
        min_readings: one reading weighs at most ``1 / min_readings`` of the evidence (an
            infrequent sensor's single reading is not a drift).
        min_evidence: evidence, in spreads, that is never rare.
        warmup: residuals learned before scoring starts.
        min_scale: floor on the residual spread.
        log: compare ``log(1 + x)`` (for concentrations) instead of ``x``.
        tail_spread: the calibration threshold, in mean absolute deviations above the mean.
        memory: readings the calibration remembers.
        alarm: raw score that opens an event (default: the default threshold).
        calm: the event closes below it; the score cap during a refractory period.
        refractory_s: seconds after an event during which no other alarm is raised.
        teach_lag_s: what the calibration learns judges after this long (to twice it).
        adopt_s: seconds of an event after which the bias learns again.
        relearn_after: unused (the detector keeps its own events); kept for the contract.
        capacity: slots allocated up front.

    >>> d = SpatialDetector(warmup=5)
    >>> d.set_positions(np.arange(4), np.full(4, 21.03), 105.85 + 0.01 * np.arange(4))
    >>> rng = np.random.default_rng(0)
    >>> flags = []
    >>> for i in range(1200):  # a reading every 5 minutes; sensor 3 drifts after 3 days
    ...     drift = np.array([0.0, 0.0, 0.0, max(0.0, (i - 864) * 0.05)])
    ...     x = 30.0 + np.array([0.0, 1.0, -1.0, 0.5]) + rng.normal(0, 0.5, 4) + drift
    ...     flags.append(d.process_many(np.arange(4), x, np.full(4, 300.0 * i))[1])
    >>> first = [int(np.argmax([f[j] for f in flags])) for j in range(4)]
    >>> first[:3], 864 < first[3] < 960
    ([0, 0, 0], True)
    """

    name: ClassVar[str] = "spatial"
    default_threshold: ClassVar[float] = 0.5
    catches: ClassVar[str] = "sensors drifting away from their neighbours"
    cross_sensor: ClassVar[bool] = True

    def __init__(
        self,
        *,
        k: int = 5,
        radius_km: float = 5.0,
        min_neighbors: int = 2,
        max_age_s: float = 3600.0,
        bias_tau_s: float = 3 * 86400.0,
        evidence_tau_s: float = 3600.0,
        spread_tau_s: float = 86400.0,
        alpha: float = 0.02,
        clip: float = 12.0,
        min_readings: int = 6,
        min_evidence: float = 0.5,
        warmup: int = 10,
        min_scale: float = 1e-6,
        log: bool = False,
        tail_spread: float = 2.5,
        memory: float = 10_000.0,
        alarm: float | None = None,
        calm: float = 0.2,
        refractory_s: float = 3600.0,
        teach_lag_s: float = 6 * 3600.0,
        adopt_s: float = 2 * 86400.0,
        relearn_after: int = 0,
        capacity: int = 0,
    ) -> None:
        check_count("k", k, 1)
        check_count("min_neighbors", min_neighbors, 1)
        check_count("warmup", warmup, 1)
        check_count("min_readings", min_readings, 1)
        for key, value in (
            ("radius_km", radius_km), ("max_age_s", max_age_s), ("bias_tau_s", bias_tau_s),
            ("evidence_tau_s", evidence_tau_s), ("spread_tau_s", spread_tau_s),
            ("clip", clip), ("min_evidence", min_evidence), ("min_scale", min_scale),
            ("tail_spread", tail_spread), ("teach_lag_s", teach_lag_s), ("adopt_s", adopt_s),
        ):  # fmt: skip
            check_positive(key, value)
        check_fraction("alpha", alpha)
        check_seconds("refractory_s", refractory_s)
        self.alarm = check_alarm(calm, self.default_threshold if alarm is None else alarm)
        self.k, self.radius_km, self.min_neighbors = k, radius_km, min(min_neighbors, k)
        self.max_age_s, self.bias_tau_s, self.evidence_tau_s = max_age_s, bias_tau_s, evidence_tau_s
        self.alpha, self.clip, self.min_evidence = alpha, clip, min_evidence
        self.min_readings = min_readings
        self.spread_tau_s = spread_tau_s
        self.warmup, self.min_scale = warmup, min_scale
        self.calm, self.refractory_s, self.teach_lag_s = calm, refractory_s, teach_lag_s
        self.adopt_s = adopt_s
        self.tail = TailConfig(tail_spread, memory)
        params: dict[str, ParamValue] = {
            "k": k, "radius_km": radius_km, "min_neighbors": min_neighbors,
            "max_age_s": max_age_s, "bias_tau_s": bias_tau_s, "evidence_tau_s": evidence_tau_s,
            "spread_tau_s": spread_tau_s, "alpha": alpha, "clip": clip,
            "min_readings": min_readings,
            "min_evidence": min_evidence, "warmup": warmup, "min_scale": min_scale, "log": log,
            "tail_spread": tail_spread, "memory": memory, "alarm": alarm, "calm": calm,
            "refractory_s": refractory_s, "teach_lag_s": teach_lag_s, "adopt_s": adopt_s,
        }  # fmt: skip
        self.log = log
        self._neighbours: IntArray = np.full((0, k), -1, dtype=np.intp)
        self._dirty = True
        super().__init__(params, relearn_after=relearn_after, capacity=capacity)

    def _fields(self) -> dict[str, StateField]:
        missing = StateField((), np.nan)
        fields = {"lat": missing, "lon": missing, "group": StateField()}
        fields |= {"last_v": missing, "last_t": missing, "prev_v": missing, "prev_t": missing}
        fields |= {"own_t": missing, "ckpt_t": missing, "event_t": missing, "aside_t": missing}
        fields |= {key: StateField() for key in ("bias", "spread", "evidence", "n", "event")}
        fields |= {"quiet_until": StateField((), -np.inf)}
        return fields | {key: StateField((len(TAIL_FIELDS),)) for key in _TAILS}

    def reset(self, slots: npt.ArrayLike) -> None:
        """Forget ``slots``, positions included (their neighbourhoods are rebuilt lazily)."""
        super().reset(slots)
        self._dirty = True

    def load_snapshot(self, snapshot: DetectorSnapshot) -> None:
        """Load state as the base class does, then rebuild the neighbour table lazily."""
        super().load_snapshot(snapshot)
        self._dirty = True

    def set_positions(
        self,
        slots: npt.ArrayLike,
        lat_deg: npt.ArrayLike,
        lon_deg: npt.ArrayLike,
        groups: npt.ArrayLike | None = None,
    ) -> None:
        """Place sensors (WGS84 degrees); only sensors of the same group are neighbours."""
        slot_arr = np.asarray(slots, dtype=np.intp)
        if slot_arr.size:
            self.ensure_capacity(int(slot_arr.max()) + 1)
        self._state["lat"][slot_arr] = np.asarray(lat_deg, dtype=np.float64)
        self._state["lon"][slot_arr] = np.asarray(lon_deg, dtype=np.float64)
        group = np.zeros(slot_arr.shape[0]) if groups is None else np.asarray(groups, np.float64)
        self._state["group"][slot_arr] = group
        self._dirty = True

    def _inputs(
        self, slots: npt.ArrayLike, values: npt.ArrayLike, times_s: npt.ArrayLike
    ) -> tuple[IntArray, FloatArray, FloatArray]:
        slot_arr, value_arr, time_arr = super()._inputs(slots, values, times_s)
        if self.log:
            with np.errstate(invalid="ignore"):
                value_arr = np.log1p(np.maximum(value_arr, 0.0))
        return slot_arr, value_arr, time_arr

    def _neighbour_table(self) -> IntArray:
        if self._dirty:
            self._neighbours = self._build_neighbours()
            self._dirty = False
        elif self._neighbours.shape[0] < self._capacity:
            pad = np.full((self._capacity - self._neighbours.shape[0], self.k), -1, np.intp)
            self._neighbours = np.vstack([self._neighbours, pad])
        return self._neighbours

    def _build_neighbours(self) -> IntArray:
        st = self._state
        return neighbour_table(st["lat"], st["lon"], st["group"], self.k, self.radius_km)

    def _reference(self, slots: IntArray, times_s: FloatArray) -> FloatArray:
        st = self._state
        nbr = self._neighbour_table()[slots]
        has = nbr >= 0
        j = np.where(has, nbr, 0)
        t = times_s[:, None]
        use_last = st["last_t"][j] <= t
        value = np.where(use_last, st["last_v"][j], st["prev_v"][j])
        when = np.where(use_last, st["last_t"][j], st["prev_t"][j])
        fresh = has & (when <= t) & (t - when <= self.max_age_s)
        median = nan_median_rows(np.where(fresh, value, np.nan))
        return np.where(fresh.sum(axis=1) >= self.min_neighbors, median, np.nan)

    def _evaluate(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        """Rows: residual, evidence, scale, raw score (pure, memoised)."""

        def compute() -> FloatArray:
            st = self._state
            residual = values - self._reference(slots, times_s)
            scale = np.maximum(MEAN_ABS_TO_SIGMA * st["spread"][slots], self.min_scale)
            n = st["n"][slots]
            deviation = np.clip((residual - st["bias"][slots]) / scale, -self.clip, self.clip)
            dt = np.maximum(times_s - st["own_t"][slots], 0.0)
            rate = np.minimum(-np.expm1(-dt / self.evidence_tau_s), 1.0 / self.min_readings)
            rate = np.where(np.isfinite(dt), rate, 1.0 / self.min_readings)
            before = st["evidence"][slots]
            evidence = np.where(np.isfinite(deviation), before + rate * (deviation - before),
                                before)  # fmt: skip
            evidence = np.where(n >= self.warmup, evidence, 0.0)  # the spread is not known yet
            ready = np.flatnonzero((n >= self.warmup) & np.isfinite(residual))
            raw = np.zeros(slots.size)
            if ready.size:
                floors = np.full(ready.size, self.min_evidence)
                raw[ready] = tail_rarity_rows(
                    st["tails_judge"], slots[ready], np.abs(evidence[ready]), self.tail, floors
                )
            return np.stack([residual, evidence, scale, raw])

        return self._memoised("spatial", slots, values, times_s, compute)

    def _score(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> FloatArray:
        raw = self._evaluate(slots, values, times_s)[3]
        st = self._state
        # An open event stays flagged while its evidence is more than ordinary (hysteresis:
        # one alarm per drift, not one per excursion above the threshold).
        held = (st["event"][slots] > 0) & (raw >= self.calm)
        quiet = times_s < st["quiet_until"][slots]
        return event_scores(raw, quiet, self.calm, self.alarm, held)

    def _learn(
        self, slots: IntArray, values: FloatArray, times_s: FloatArray, train: BoolArray
    ) -> None:
        del train  # the detector keeps its own events
        st = self._state
        residual, evidence, scale, raw = self._evaluate(slots, values, times_s)
        known = np.isfinite(residual)
        fresh = slots[known & (st["n"][slots] == 0)]
        for key in _TAILS:
            st[key][fresh] = _TAIL0  # a new (or reset) sensor: a fresh calibration
        st["ckpt_t"][fresh] = times_s[known & (st["n"][slots] == 0)]
        event = self._events(slots, times_s, raw, np.abs(evidence), known)
        st["evidence"][slots[known]] = evidence[known]
        adopting = event & (times_s - st["event_t"][slots] >= self.adopt_s)
        # The site's bias and spread learn from ordinary readings only: a slow drift moves a
        # little each reading, within any trim, and would otherwise drag them along.
        ordinary = ~event & (raw < self.calm)
        self._learn_bias(slots, times_s, residual, scale, known & (ordinary | adopting), adopting)
        st["own_t"][slots] = np.fmax(st["own_t"][slots], times_s)

    def _events(
        self,
        slots: IntArray,
        times_s: FloatArray,
        raw: FloatArray,
        strength: FloatArray,
        known: BoolArray,
    ) -> BoolArray:
        """Open and close events, teach the calibration and keep its checkpoints.

        Returns:
            Which slots are in an event after this reading.
        """
        st = self._state
        ready = known & (st["n"][slots] >= self.warmup)
        was = st["event"][slots] > 0
        quiet = times_s < st["quiet_until"][slots]
        opened = ready & ~was & ~quiet & (raw >= self.alarm)
        closed = was & ready & (raw < self.calm)
        if opened.any():
            o = slots[opened]
            st["tails"][o] = st["tails_judge"][o]  # the emerging event teaches nothing
            st["event_t"][o] = times_s[opened]
        st["quiet_until"][slots[closed]] = times_s[closed] + self.refractory_s
        event = (was & ~closed) | opened
        st["event"][slots] = event.astype(np.float64)
        st["aside_t"][slots[opened]] = np.nan  # what the excursion taught is dropped
        self._teach(slots, times_s, strength, ready & ~event & ~quiet, raw >= self.calm)
        return event

    def _teach(
        self,
        slots: IntArray,
        times_s: FloatArray,
        strength: FloatArray,
        teachable: BoolArray,
        unusual: BoolArray,
    ) -> None:
        """Teach the calibration; an excursion above ``calm`` only once it is over.

        An excursion's readings are taught to a calibration set aside, which replaces the
        calibration when the excursion ends by itself (or has lasted ``adopt_s``), and is
        dropped when it becomes an alarm: an emerging drift cannot teach that it is normal.
        Every ``teach_lag_s`` outside excursions the calibration is checkpointed.
        """
        st = self._state
        unusual = teachable & unusual
        aside = np.isfinite(st["aside_t"][slots])
        begin = slots[unusual & ~aside]
        st["tails_aside"][begin] = st["tails"][begin]
        st["aside_t"][begin] = times_s[unusual & ~aside]
        u = np.flatnonzero(unusual)
        floors = np.full(u.size, self.min_evidence)
        tail_teach_rows(st["tails_aside"], slots[u], strength[u], self.tail, floors)
        over = (teachable & ~unusual & aside) | (
            unusual & (times_s - st["aside_t"][slots] >= self.adopt_s)
        )
        done = slots[over]
        st["tails"][done] = st["tails_aside"][done]
        st["aside_t"][done] = np.nan
        usual = np.flatnonzero(teachable & ~unusual)
        floors = np.full(usual.size, self.min_evidence)
        tail_teach_rows(st["tails"], slots[usual], strength[usual], self.tail, floors)
        settled = teachable & ~np.isfinite(st["aside_t"][slots])
        due = np.flatnonzero(settled & (times_s - st["ckpt_t"][slots] >= self.teach_lag_s))
        if due.size:
            d = slots[due]
            st["tails_judge"][d] = st["tails_next"][d]
            st["tails_next"][d] = st["tails"][d]
            st["ckpt_t"][d] = times_s[due]

    def _learn_bias(
        self,
        slots: IntArray,
        times_s: FloatArray,
        residual: FloatArray,
        scale: FloatArray,
        train: BoolArray,
        adopting: BoolArray,
    ) -> None:
        """The site's bias and the residual's spread (trimmed, slow; untrimmed to adopt)."""
        st = self._state
        s = slots[train]
        r, sc, t = residual[train], scale[train], times_s[train]
        n, bias, spread = st["n"][s], st["bias"][s], st["spread"][s]
        deviation = r - bias
        # Trimmed, slow learning: a residual beyond ``_TRIM`` spreads teaches nothing, so a
        # drift cannot widen the spread or drag the bias along before it is flagged.
        keep = (n < self.warmup) | (np.abs(deviation) <= _TRIM * sc) | adopting[train]
        dt = np.maximum(np.nan_to_num(t - st["own_t"][s], nan=0.0), 0.0)
        bias_rate = np.maximum(-np.expm1(-dt / self.bias_tau_s), 1.0 / (n + 1.0))
        settled = np.minimum(self.alpha, np.maximum(-np.expm1(-dt / self.spread_tau_s),
                                                    1 / (n + 1)))  # fmt: skip
        spread_rate = np.where(n < self.warmup, 1.0 / (n + 1.0), settled)
        st["bias"][s] = np.where(n == 0, r, bias + keep * bias_rate * deviation)
        st["spread"][s] = np.where(
            n == 0, 0.0, spread + keep * spread_rate * (np.abs(deviation) - spread)
        )
        st["n"][s] = n + 1.0

    def _begin_round(self, slots: IntArray, values: FloatArray, times_s: FloatArray) -> None:
        """Publish the round's values so neighbours measured at the same time see each other."""
        ok = np.isfinite(values) & np.isfinite(times_s)
        slots, values, times_s = slots[ok], values[ok], times_s[ok]
        st = self._state
        last_t = st["last_t"][slots]
        newer = ~(times_s <= last_t)  # also true when nothing was seen yet
        same = times_s == last_t
        shift = slots[newer]
        st["prev_v"][shift], st["prev_t"][shift] = st["last_v"][shift], st["last_t"][shift]
        st["last_v"][shift], st["last_t"][shift] = values[newer], times_s[newer]
        st["last_v"][slots[same]] = values[same]
